#include "gateway/server/batch_api.h"

#include <nlohmann/json.hpp>

#include <chrono>

#include "gateway/http/multipart.h"
#include "gateway/http/router.h"
#include "gateway/openai/openai_error.h"
#include "platform/batch/batch_input.h"

namespace zs::gateway {

using nlohmann::json;
using openai::respond_error;

namespace {

json file_json(const platform::StoredFile& f) {
  return {{"id", f.id},           {"object", "file"},   {"bytes", f.bytes}, {"created_at", f.created_at},
          {"filename", f.filename}, {"purpose", f.purpose}, {"status", "processed"}};
}

json time_or_null(int64_t t) { return t > 0 ? json(t) : json(nullptr); }

// Splits "/v1/batches/ID/cancel" into {"ID", "cancel"}.
std::pair<std::string, std::string> id_and_action(const std::string& rest) {
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return {rest, ""};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace

BatchApi::BatchApi(platform::BatchStore& store, BatchRunner& runner, ModelExists model_exists, size_t max_file_bytes)
    : store_(store), runner_(runner), model_exists_(std::move(model_exists)), max_file_bytes_(max_file_bytes) {}

void BatchApi::handle(const HttpRequest& req, std::shared_ptr<ResponseWriter> w, const std::string& owner) {
  const std::string path(req.path());
  const bool files = path.rfind("/v1/files", 0) == 0;
  const std::string base = files ? "/v1/files" : "/v1/batches";
  if (path == base || path == base + "/") {
    if (files && req.method == "POST") return upload_file(req, *w, owner);
    if (files && req.method == "GET") {
      json data = json::array();
      for (const auto& f : store_.list_files(owner)) data.push_back(file_json(f));
      return w->respond_json(200, json{{"object", "list"}, {"data", data}}.dump());
    }
    if (!files && req.method == "POST") return create_batch(req, *w, owner);
    if (!files && req.method == "GET") return list_batches(req, *w, owner);
    return respond_method_not_allowed(*w, req.method, path, "GET, POST");
  }
  if (path.rfind(base + "/", 0) != 0) return respond_error(*w, core::Status::not_found("no such endpoint: " + path));
  auto [id, action] = id_and_action(path.substr(base.size() + 1));
  if (files) {
    auto f = visible_file(id, owner);
    if (!f) return respond_error(*w, f.status(), "file_id");
    if (action.empty() && req.method == "GET") return w->respond_json(200, file_json(*f).dump());
    if (action.empty() && req.method == "DELETE") {
      if (auto st = store_.delete_file(id); !st) return respond_error(*w, st);
      return w->respond_json(200, json{{"id", id}, {"object", "file"}, {"deleted", true}}.dump());
    }
    if (action == "content" && req.method == "GET") {
      auto content = store_.file_content(id);
      if (!content) return respond_error(*w, content.status());
      return w->respond(200, "application/jsonl", std::move(*content));
    }
    return respond_error(*w, core::Status::not_found("no such endpoint: " + req.method + " " + path));
  }
  auto b = store_.batch(id);
  if (b && !owner.empty() && b->owner != owner) b = core::Status::not_found("no such batch: " + id);
  if (!b) return respond_error(*w, b.status(), "batch_id");
  if (action.empty() && req.method == "GET") return w->respond_json(200, batch_json(*b).dump());
  if (action == "cancel" && req.method == "POST") {
    if (auto st = store_.request_cancel(id); !st) return respond_error(*w, st);
    runner_.wake();
    auto now = store_.batch(id);
    return w->respond_json(200, batch_json(now ? *now : *b).dump());
  }
  return respond_error(*w, core::Status::not_found("no such endpoint: " + req.method + " " + path));
}

core::Result<platform::StoredFile> BatchApi::visible_file(const std::string& id, const std::string& owner) {
  auto f = store_.file(id);
  // Another key's file answers as if it did not exist: its id tells nothing.
  if (f && !owner.empty() && f->owner != owner) return core::Status::not_found("no such file: " + id);
  return f;
}

void BatchApi::upload_file(const HttpRequest& req, ResponseWriter& w, const std::string& owner) {
  std::string purpose, filename = "upload.jsonl", content;
  const std::string type = req.header("Content-Type");
  if (type.rfind("multipart/form-data", 0) == 0) {
    auto parts = parse_multipart(type, req.body);
    if (!parts) return respond_error(w, parts.status().with_context("malformed multipart upload"));
    bool have_file = false;
    for (auto& p : *parts) {
      if (p.name == "purpose") purpose = p.data;
      if (p.name == "file") {
        have_file = true;
        if (!p.filename.empty()) filename = p.filename;
        content = std::move(p.data);
      }
    }
    if (!have_file) return respond_error(w, core::Status::invalid_argument("the upload has no 'file' part"), "file");
  } else {
    // A raw JSONL body: purpose and filename in the query string.
    purpose = query_param(req.query(), "purpose");
    if (auto f = query_param(req.query(), "filename"); !f.empty()) filename = f;
    content = req.body;
  }
  if (purpose != "batch")
    return respond_error(w,
                         core::Status::invalid_argument(
                             "purpose must be 'batch' (the only purpose this server stores files for), got '" + purpose + "'"),
                         "purpose");
  if (content.empty()) return respond_error(w, core::Status::invalid_argument("the file is empty"), "file");
  if (content.size() > max_file_bytes_)
    return respond_error(w,
                         core::Status::too_large("the file has " + std::to_string(content.size()) +
                                                 " bytes; the limit is " + std::to_string(max_file_bytes_)),
                         "file");
  auto f = store_.add_file(purpose, filename, content, owner);
  if (!f) return respond_error(w, f.status().with_context("cannot store the file"));
  w.respond_json(200, file_json(*f).dump());
}

void BatchApi::create_batch(const HttpRequest& req, ResponseWriter& w, const std::string& owner) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return respond_error(w, core::Status::invalid_argument("the request body is not a JSON object"));
  auto string_field = [&](const char* name) {
    return body.contains(name) && body[name].is_string() ? body[name].get<std::string>() : std::string();
  };
  const std::string file_id = string_field("input_file_id");
  const std::string endpoint = string_field("endpoint");
  const std::string window = body.contains("completion_window") ? string_field("completion_window") : "24h";
  if (file_id.empty()) return respond_error(w, core::Status::invalid_argument("'input_file_id' is required"), "input_file_id");
  if (!platform::is_batch_endpoint(endpoint))
    return respond_error(w,
                         core::Status::invalid_argument("'endpoint' must be " + platform::batch_endpoints_text() +
                                                        ", got '" + endpoint + "'"),
                         "endpoint");
  auto window_s = platform::parse_completion_window(window);
  if (!window_s) return respond_error(w, window_s.status(), "completion_window");
  std::string metadata = "{}";
  if (body.contains("metadata") && !body["metadata"].is_null()) {
    if (!body["metadata"].is_object())
      return respond_error(w, core::Status::invalid_argument("'metadata' must be an object"), "metadata");
    metadata = body["metadata"].dump();
  }
  auto file = visible_file(file_id, owner);
  if (!file) return respond_error(w, file.status(), "input_file_id");
  auto content = store_.file_content(file_id);
  if (!content) return respond_error(w, content.status(), "input_file_id");
  auto items = platform::parse_batch_input(*content, endpoint);
  if (!items)
    return respond_error(w, items.status().with_context("input file " + file_id), "input_file_id");
  for (const auto& item : *items) {
    const std::string model = json::parse(item.body).value("model", "");
    if (!model_exists_(model))
      return respond_error(w,
                           core::Status::invalid_argument("input file " + file_id + ": line " +
                                                          std::to_string(item.line) + ": unknown model '" + model + "'"),
                           "input_file_id");
  }
  auto b = store_.create_batch(file_id, endpoint, window, *window_s, metadata, owner, *items);
  if (!b) return respond_error(w, b.status().with_context("cannot store the batch"));
  runner_.wake();
  w.respond_json(200, batch_json(*b).dump());
}

void BatchApi::list_batches(const HttpRequest& req, ResponseWriter& w, const std::string& owner) {
  int limit = 20;
  if (auto l = query_param(req.query(), "limit"); !l.empty()) limit = std::clamp(std::atoi(l.c_str()), 1, 100);
  auto batches = store_.list_batches(limit + 1, query_param(req.query(), "after"), owner);
  const bool more = static_cast<int>(batches.size()) > limit;
  if (more) batches.resize(limit);
  json data = json::array();
  for (const auto& b : batches) data.push_back(batch_json(b));
  json out{{"object", "list"}, {"data", data}, {"has_more", more}};
  out["first_id"] = batches.empty() ? json(nullptr) : json(batches.front().id);
  out["last_id"] = batches.empty() ? json(nullptr) : json(batches.back().id);
  w.respond_json(200, out.dump());
}

json BatchApi::batch_json(const platform::BatchRecord& b) const {
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t done = b.completed + b.failed;
  json progress{{"attempts", b.attempts}, {"in_flight", runner_.in_flight(b.id)}};
  // Throughput since the job started; an estimate, as the job may have paused (restart,
  // interactive load).
  const int64_t elapsed = (b.completed_at > 0 ? b.completed_at : now) - b.in_progress_at;
  if (b.in_progress_at > 0 && elapsed > 0 && done > 0) {
    const double rate = static_cast<double>(done) / static_cast<double>(elapsed);
    progress["items_per_second"] = rate;
    progress["eta_seconds"] = b.state == platform::BatchState::kInProgress
                                  ? json(static_cast<double>(b.total - done) / rate)
                                  : json(0);
  } else {
    progress["items_per_second"] = nullptr;
    progress["eta_seconds"] = nullptr;
  }
  json out{{"id", b.id},
           {"object", "batch"},
           {"endpoint", b.endpoint},
           {"errors", nullptr},
           {"input_file_id", b.input_file_id},
           {"completion_window", b.completion_window},
           {"status", std::string(platform::batch_state_name(b.state))},
           {"output_file_id", b.output_file_id.empty() ? json(nullptr) : json(b.output_file_id)},
           {"error_file_id", b.error_file_id.empty() ? json(nullptr) : json(b.error_file_id)},
           {"created_at", b.created_at},
           {"in_progress_at", time_or_null(b.in_progress_at)},
           {"expires_at", time_or_null(b.expires_at)},
           {"finalizing_at", time_or_null(b.finalizing_at)},
           {"completed_at", time_or_null(b.completed_at)},
           {"failed_at", nullptr},
           {"expired_at", time_or_null(b.expired_at)},
           {"cancelling_at", time_or_null(b.cancelling_at)},
           {"cancelled_at", time_or_null(b.cancelled_at)},
           {"request_counts", {{"total", b.total}, {"completed", b.completed}, {"failed", b.failed}}},
           {"metadata", json::parse(b.metadata_json, nullptr, false)},
           {"zeroserve", progress}};
  if (out["metadata"].is_discarded()) out["metadata"] = nullptr;
  return out;
}

}  // namespace zs::gateway
