#include "gateway/server/gateway_server.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "core/log.h"
#include "core/process_limits.h"
#include "core/random_id.h"
#include "gateway/fetch/image_fetcher.h"
#include "gateway/http/http_client.h"
#include "gateway/http/router.h"
#include "gateway/http/sse.h"
#include "gateway/hub/model_store.h"
#include "gateway/openai/base64.h"
#include "gateway/openai/openai_error.h"
#include "gateway/openai/openai_response.h"
#include "gateway/server/batch_api.h"
#include "gateway/server/console_api.h"
#include "worker/worker_protocol.h"

namespace zs::gateway {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using openai::respond_error;

namespace {

// "pulling model.gguf: 45% (180.0 MiB of 400.0 MiB)", for SSE comments.
std::string describe_pull(const ModelPullNote& n) {
  std::string out = "pulling " + n.file + ": ";
  if (n.total == 0) return out + hub::format_size(n.done);
  return out + std::to_string(static_cast<int>(100.0 * static_cast<double>(n.done) / static_cast<double>(n.total))) + "% (" +
         hub::format_size(n.done) + " of " + hub::format_size(n.total) + ")";
}


// Seconds a client should wait before retrying a request refused because the server is stopping.
constexpr int kShutdownRetryAfterS = 2;
// Instances one request may be dispatched to when the earlier ones could not be reached.
constexpr int kMaxDispatchAttempts = 3;
// A request body this large (or a JSON parsed from it) leaves freed memory in the allocator's
// heaps; it is given back to the OS (release_free_memory) every kTrimEvery for kTrimFor after.
constexpr size_t kLargeBody = 1u << 20;
constexpr auto kTrimEvery = std::chrono::seconds(1);
constexpr auto kTrimFor = std::chrono::seconds(60);
// When idle (nothing proxied), what small requests left is given back this often.
constexpr auto kIdleTrimEvery = std::chrono::seconds(30);

constexpr const char* kColdStartHeader = "X-Zeroserve-Cold-Start-Ms";
using worker::kPriorityHeader;
// How the request found its instance: "cold|wake|warm; ms=N" (start_kind in fleet_core.h);
// N is the cold start waited for, the wake's own time as the worker measured it, or the
// time spent queued for a slot.
constexpr const char* kStartHeader = "X-Zeroserve-Start";

double steady_seconds() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }



// Pulls the usage object out of a response body or out of the SSE events of a stream.
void read_usage(const std::string& payload, int64_t* prompt, int64_t* completion) {
  auto j = json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("usage") || !j["usage"].is_object()) return;
  // Any runtime may answer here (command runtimes too): read defensively, never throw.
  const auto& u = j["usage"];
  if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) *prompt = u["prompt_tokens"].get<int64_t>();
  if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer())
    *completion = u["completion_tokens"].get<int64_t>();
}

}  // namespace

// A request from its arrival until its response ends.
struct GatewayServer::Pending {
  ~Pending() { settle(0); }
  // Returns the caller's quota before the client sees the end of the response, so that its
  // next request finds the tokens charged and the concurrency slot free.
  void settle(int64_t tokens) {
    if (auto f = std::exchange(on_finish, nullptr)) f(tokens);
  }
  std::shared_ptr<ResponseWriter> w;
  Caller caller;
  platform::RequestClass cls = platform::RequestClass::kInteractive;
  std::function<void(int64_t tokens)> on_finish;  // returns the caller's quota when the request ends
  std::string endpoint;  // the upstream path
  std::string deployment;
  std::string body;
  bool stream = false;
  Clock::time_point arrival = Clock::now();
  // When it first asked the fleet for a slot: a request sent again keeps its request_timeout.
  std::optional<Clock::time_point> first_asked;
  // Orders the keepalive thread's writes to a waiting stream against the lease's answer.
  core::Mutex mutex;
  bool stream_open GUARDED_BY(mutex) = false;  // headers already sent (the client is waiting on a stream)
  bool leased GUARDED_BY(mutex) = false;
  int order = 0;     // within its class, in the fleet's queue
  int attempts = 0;  // instances that could not be reached for it
};

GatewayServer::GatewayServer(GatewayOptions options, platform::Fleet& fleet, platform::MetricsRegistry& metrics,
                             RecordFn record, CostsFn costs_json, ImageFetcher* fetcher)
    : options_(std::move(options)),
      fleet_(fleet),
      metrics_(metrics),
      record_(std::move(record)),
      costs_json_(std::move(costs_json)),
      fetcher_(fetcher),
      internal_key_("zs-internal-" + core::random_hex(32)) {
  set_api_keys(options_.api_keys);
}

core::Result<std::unique_ptr<GatewayServer>> GatewayServer::start(GatewayOptions options, platform::Fleet& fleet,
                                                                  platform::MetricsRegistry& metrics, RecordFn record,
                                                                  CostsFn costs_json, ImageFetcher* fetcher) {
  std::unique_ptr<GatewayServer> g(
      new GatewayServer(std::move(options), fleet, metrics, std::move(record), std::move(costs_json), fetcher));
  g->console_ = std::make_unique<ConsoleApi>(fleet);
  HttpServerOptions http;
  http.address = g->options_.listen;
  http.max_body_bytes = g->options_.max_body_bytes;
  http.io_threads = 2;
  http.max_connections = g->options_.max_connections;
  auto server = HttpServer::start(http, g->routes());
  if (!server) return server.status();
  g->server_ = std::move(server.value());
  bool open_api;
  {
    core::MutexLock lock(g->mutex_);
    open_api = g->api_keys_.empty();
  }
  if (open_api)
    core::log_warn("gateway", "no API keys configured: the API is open to anyone who can reach " + g->address());
  g->keepalive_ = std::thread([gp = g.get()] { gp->keepalive_loop(); });
  return g;
}

GatewayServer::~GatewayServer() { stop(std::chrono::milliseconds(0)); }

void GatewayServer::set_api_keys(std::vector<platform::ApiKeyConfig> keys) {
  for (const auto& k : keys)
    quotas_.set_limits(k.name, {k.requests_per_minute, k.tokens_per_minute, k.max_concurrent}, steady_seconds());
  core::MutexLock lock(mutex_);
  api_keys_ = std::move(keys);
}

void GatewayServer::set_deployment_kinds(std::map<std::string, openai::ModelKind> kinds) {
  core::MutexLock lock(mutex_);
  kinds_ = std::move(kinds);
}

void GatewayServer::stop(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) return;  // from here on, new requests get 503 + Retry-After
  const auto deadline = Clock::now() + grace;
  // The listener stays open while requests being proxied finish, so that new ones are answered
  // (503) rather than refused.
  auto drain = [&] {
    while (proxies_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  drain();
  // Requests still queued for a slot get a clean 503 + Retry-After rather than a reset when their
  // connection closes; those that got a slot meanwhile finish.
  fleet_.close_class(platform::RequestClass::kInteractive, "the server is shutting down; retry shortly");
  fleet_.close_class(platform::RequestClass::kBatch, "the server is shutting down; retry shortly");
  drain();
  if (keepalive_.joinable()) keepalive_.join();
  // Responses already being written (the 503s above) get time to go out before connections close.
  if (server_) server_->stop(std::chrono::seconds(5));
}

void GatewayServer::count(const std::string& deployment, int status) {
  metrics_.counter("zs_gateway_requests_total", "Requests by deployment and HTTP status.",
                   {{"deployment", deployment}, {"status", std::to_string(status)}})
      .add();
}

std::optional<GatewayServer::Caller> GatewayServer::authenticate(const HttpRequest& req,
                                                                  const std::shared_ptr<ResponseWriter>& w) {
  const std::string auth = req.header("Authorization");
  const std::string prefix = "Bearer ";
  const std::string token = auth.rfind(prefix, 0) == 0 ? auth.substr(prefix.size()) : "";
  // The server's own batch runner: batch class, no quotas, metered to the job's owner.
  if (token == internal_key_) return Caller{req.header("X-Zeroserve-Batch-Owner"), platform::RequestClass::kBatch, true};
  {
    core::MutexLock lock(mutex_);
    if (api_keys_.empty()) return Caller{"", platform::RequestClass::kInteractive, false, true};
    for (const auto& k : api_keys_)
      if (token == k.key) return Caller{k.name, k.default_class, false, k.admin};
  }
  respond_error(*w, core::Status::unauthenticated("missing or invalid API key (send 'Authorization: Bearer <key>')"), "",
                "invalid_api_key");
  return std::nullopt;
}

bool GatewayServer::admin_authorized(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w) {
  auto caller = authenticate(req, w);
  if (!caller) return false;
  if (caller->admin) return true;
  respond_error(*w,
                core::Status::unauthenticated("the admin API needs an admin key (an api_keys entry with admin: true); " +
                                              (caller->internal ? std::string("the server's own key") : "key '" + caller->key_name + "'") +
                                              " is not one"),
                "", "admin_key_required");
  return false;
}

bool GatewayServer::admit(const Caller& caller, const std::string& deployment,
                          const std::shared_ptr<ResponseWriter>& w) {
  if (caller.internal || caller.key_name.empty()) return true;
  auto refusal = quotas_.admit(caller.key_name, steady_seconds());
  if (!refusal) return true;
  metrics_.counter("zs_gateway_quota_refusals_total", "Requests refused by a per-key quota, by key and limit.",
                   {{"key", caller.key_name}, {"limit", refusal->limit}})
      .add();
  char limit[32];
  std::snprintf(limit, sizeof limit, "%g", refusal->limit_value);
  const std::string retry_after = std::to_string(std::max(1, static_cast<int>(std::ceil(refusal->retry_after_s))));
  const core::Status refused = core::Status::resource_exhausted(refusal->message + "; retry after " + retry_after + " s");
  count(deployment, openai::http_error_for(refused.code()).status);
  respond_error(*w, refused, "", refusal->limit + "_exceeded",
                {{"Retry-After", retry_after}, {"X-Zeroserve-Limit", refusal->limit + "=" + limit}});
  return false;
}

Router GatewayServer::routes() {
  Router r;
  r.add("GET", "/health", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    // Load balancers stop sending here as soon as the daemon stops.
    if (stopping_)
      return w->respond(503, "application/json", R"({"status":"stopping"})",
                        {{"Retry-After", std::to_string(kShutdownRetryAfterS)}});
    w->respond_json(200, R"({"status":"ok"})");
  });
  r.add("GET", "/metrics", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->respond(200, "text/plain; version=0.0.4", metrics_.render());
  });
  r.add("GET", "/v1/models", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    if (!authorized(req, w)) return;
    std::map<std::string, openai::ModelKind> kinds;
    {
      core::MutexLock lock(mutex_);
      kinds = kinds_;
    }
    json data = json::array();
    for (const auto& s : fleet_.status())
      data.push_back({{"id", s.name},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "zeroserve"},
                      {"type", kinds.count(s.name) ? json(openai::model_kind_name(kinds.at(s.name))) : json(nullptr)},
                      {"state", s.state()},
                      {"instances",
                       {{"ready", s.instances_ready}, {"starting", s.instances_starting}, {"sleeping", s.instances_sleeping}}},
                      {"queued", s.queued},
                      {"in_flight", s.in_flight}});
    w->respond_json(200, json{{"object", "list"}, {"data", data}}.dump());
  });
  // ?since=&until= (unix seconds; default: everything up to now) bound the report, so that the
  // console and scripts report the same range.
  r.add("GET", "/admin/costs", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    if (!admin_authorized(req, w)) return;
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    double bounds[2] = {0, now + 1};
    const char* names[2] = {"since", "until"};
    for (int i = 0; i < 2; ++i) {
      const std::string v = query_param(req.query(), names[i]);
      if (v.empty()) continue;
      char* end = nullptr;
      const double t = std::strtod(v.c_str(), &end);
      if (*end != '\0' || !std::isfinite(t) || t < 0)
        return respond_error(*w, core::Status::invalid_argument(std::string(names[i]) + " must be a time in seconds since the Unix epoch, got '" + v + "'"),
                             names[i]);
      bounds[i] = t;
    }
    if (bounds[0] >= bounds[1])
      return respond_error(*w, core::Status::invalid_argument("since must be before until"), "since");
    if (!costs_json_) return w->respond_json(200, "{}");
    auto j = costs_json_(bounds[0], bounds[1]);
    if (!j) return respond_error(*w, j.status());
    w->respond_json(200, j.value());
  });
  r.add("POST", "/admin/reload", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    if (!admin_authorized(req, w)) return;
    ReloadFn reload;
    {
      core::MutexLock lock(mutex_);
      reload = reload_;
    }
    if (!reload) return respond_error(*w, core::Status::not_found("reloading is not enabled on this server"));
    // Reading the configuration and the models' headers blocks: off the I/O thread.
    proxies_.fetch_add(1);
    std::thread([this, w, reload = std::move(reload)] {
      core::Status st = reload();
      if (!st) respond_error(*w, st);
      else w->respond_json(200, json{{"action", "reload"}, {"ok", true}, {"deployments", fleet_.deployment_names().size()}}.dump());
      proxies_.fetch_sub(1);
    }).detach();
  });
  // The web console: its page at / and /console/..., its JSON at /console/api/... (any key).
  r.add("GET", "/", [](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) { ConsoleApi::serve_page(req, *w); });
  r.add("GET", "/admin/deployments", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    if (!admin_authorized(req, w)) return;
    json data = json::array();
    PullProgressFn pull_progress;
    {
      core::MutexLock lock(mutex_);
      pull_progress = pull_progress_;
    }
    for (const auto& s : fleet_.status()) {
      data.push_back({{"name", s.name},
                      {"state", s.state()},
                      {"instances",
                       {{"ready", s.instances_ready},
                        {"starting", s.instances_starting},
                        {"sleeping", s.instances_sleeping},
                        {"draining", s.instances_draining}}},
                      {"queued", s.queued},
                      {"in_flight", s.in_flight},
                      {"cold_starts", s.cold_starts},
                      {"wakes", s.wakes},
                      {"crashes", s.crashes}});
      if (auto note = pull_progress ? pull_progress(s.name) : std::nullopt)
        data.back()["pull"] = {{"file", note->file}, {"done", note->done}, {"total", note->total}};
    }
    json devices = json::array();
    for (const auto& d : fleet_.device_memory())
      devices.push_back({{"device", d.device}, {"memory_used", d.used}, {"memory_total", d.capacity}});
    w->respond_json(200, json{{"deployments", data}, {"devices", devices}}.dump());
  });
  // POST /admin/deployments/{name}/scale {"instances": n} and POST /admin/deployments/{name}/prewarm;
  // the batch API's paths with ids in them.
  r.set_fallback([this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    const std::string prefix = "/admin/deployments/";
    const std::string path(req.path());
    if (path.rfind("/v1/files", 0) == 0 || path.rfind("/v1/batches", 0) == 0) {
      auto caller = authenticate(req, w);
      if (!caller) return;
      BatchApi* batches;
      {
        core::MutexLock lock(mutex_);
        batches = batch_api_;
      }
      if (!batches) return respond_error(*w, core::Status::not_found("batch jobs are not enabled on this server"));
      return batches->handle(req, std::move(w), caller->key_name);
    }
    if (path == "/console/api/auth") {  // public: whether the console must ask for a key
      bool keys_required;
      {
        core::MutexLock lock(mutex_);
        keys_required = !api_keys_.empty();
      }
      return w->respond_json(200, json{{"keys_required", keys_required}}.dump());
    }
    if (path.rfind("/console/api/", 0) == 0) {
      auto caller = authenticate(req, w);
      if (!caller) return;
      if (req.method != "GET") return respond_method_not_allowed(*w, req.method, path, "GET");
      ConsoleCaller who;
      {
        core::MutexLock lock(mutex_);
        who.keys_required = !api_keys_.empty();
      }
      who.admin = caller->admin;
      who.key_name = caller->key_name;
      return console_->handle_api(req, *w, who);
    }
    if (path == "/console" || path.rfind("/console/", 0) == 0) {
      if (req.method != "GET") return respond_method_not_allowed(*w, req.method, path, "GET");
      return ConsoleApi::serve_page(req, *w);
    }
    const size_t slash = path.rfind('/');
    if (path.rfind(prefix, 0) != 0 || slash <= prefix.size())
      return respond_error(*w, core::Status::not_found("no such endpoint: " + path));
    if (!admin_authorized(req, w)) return;
    if (req.method != "POST") return respond_method_not_allowed(*w, req.method, path, "POST");
    const std::string name = path.substr(prefix.size(), slash - prefix.size());
    const std::string action = path.substr(slash + 1);
    if (!fleet_.has_deployment(name)) return respond_error(*w, core::Status::not_found("unknown deployment '" + name + "'"));
    core::Status st = core::Status::ok();
    if (action == "prewarm") {
      st = fleet_.prewarm(name);
    } else if (action == "scale") {
      if (req.body.size() >= kLargeBody) last_large_body_ = Clock::now().time_since_epoch().count();
  json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("instances") || !body["instances"].is_number_integer())
        return respond_error(*w, core::Status::invalid_argument("send {\"instances\": N}"), "instances");
      st = fleet_.scale(name, body["instances"].get<int>());
    } else {
      return respond_error(*w, core::Status::not_found("no such action '" + action + "' (scale, prewarm)"));
    }
    if (!st) return respond_error(*w, st);
    w->respond_json(200, json{{"deployment", name}, {"action", action}, {"ok", true}}.dump());
  });
  r.add("POST", "/v1/chat/completions", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    handle_inference(req, std::move(w), "/v1/chat/completions");
  });
  r.add("POST", "/v1/completions", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    handle_inference(req, std::move(w), "/v1/completions");
  });
  r.add("POST", "/v1/embeddings", [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    handle_inference(req, std::move(w), "/v1/embeddings");
  });
  return r;
}

void GatewayServer::handle_inference(const HttpRequest& req, std::shared_ptr<ResponseWriter> w,
                                     const std::string& endpoint) {
  auto caller = authenticate(req, w);
  if (!caller) return;
  if (stopping_)
    return respond_error(*w, core::Status::unavailable("the server is shutting down; retry shortly (against its replacement)"),
                         "", "", {{"Retry-After", std::to_string(kShutdownRetryAfterS)}});
  platform::RequestClass cls = caller->default_class;
  if (const std::string h = req.header(kPriorityHeader); !h.empty()) {
    auto parsed = platform::parse_request_class(h);
    if (!parsed)
      return respond_error(*w, core::Status::invalid_argument("header X-Priority must be 'interactive' or 'batch', got '" + h + "'"),
                           "X-Priority");
    cls = *parsed;
  }
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    // The endpoint's own parser says what is wrong (where the JSON breaks, which field holds a
    // number beyond a double's range), as the worker would.
    openai::ApiError err;
    const bool refused =
        openai::is_embeddings_endpoint(endpoint) ? !openai::parse_embedding_request(req.body, {}, &err).is_ok()
        : endpoint == "/v1/completions"          ? !openai::parse_completion_request(req.body, {}, &err).is_ok()
                                                 : !openai::parse_chat_completion_request(req.body, {}, &err).is_ok();
    if (refused) return respond_error(*w, err);
    return respond_error(*w, core::Status::invalid_argument("the request body is not a JSON object"));
  }
  if (!body.contains("model") || !body["model"].is_string())
    return respond_error(*w, core::Status::invalid_argument("'model' is required and must name a deployment"), "model",
                         "missing_required_parameter");
  const bool embeddings = openai::is_embeddings_endpoint(endpoint);
  if (!embeddings && body.contains("stream") && !body["stream"].is_boolean() && !body["stream"].is_null())
    return respond_error(*w, core::Status::invalid_argument("'stream' must be true or false"), "stream", "invalid_type");
  auto p = std::make_shared<Pending>();
  p->w = std::move(w);
  p->endpoint = endpoint;
  p->deployment = body["model"].get<std::string>();
  // Embeddings are one JSON document, never a stream.
  p->stream = !embeddings && body.contains("stream") && body["stream"].is_boolean() && body["stream"].get<bool>();
  p->caller = *caller;
  p->cls = cls;
  if (!fleet_.has_deployment(p->deployment)) {
    std::string names;
    for (const auto& n : fleet_.deployment_names()) names += (names.empty() ? "" : ", ") + n;
    const core::Status unknown = core::Status::not_found("unknown model '" + p->deployment + "'; available: " + names);
    count(p->deployment, openai::http_error_for(unknown.code()).status);
    return respond_error(*p->w, unknown, "model", "model_not_found");
  }
  // The wrong kind of model, or a malformed embeddings request, is answered here: it must
  // not start an instance only to be refused there.
  std::optional<openai::ModelKind> kind;
  {
    core::MutexLock lock(mutex_);
    if (auto it = kinds_.find(p->deployment); it != kinds_.end()) kind = it->second;
  }
  if (kind) {
    if (auto err = openai::wrong_model_kind_error(*kind, endpoint, p->deployment)) {
      count(p->deployment, err->http_status());
      return respond_error(*p->w, *err);
    }
  }
  if (embeddings) {
    openai::ApiError err;
    if (!openai::parse_embedding_request(req.body, {}, &err)) {
      count(p->deployment, err.http_status());
      return respond_error(*p->w, err);
    }
  }
  if (!admit(p->caller, p->deployment, p->w)) return;
  // A non-standard "priority" number orders requests within their class.
  const int order = body.contains("priority") && body["priority"].is_number_integer() ? body["priority"].get<int>() : 0;
  if (!p->caller.internal && !p->caller.key_name.empty())
    p->on_finish = [this, key = p->caller.key_name](int64_t tokens) {
      quotas_.finish(key, static_cast<double>(tokens), steady_seconds());
    };
  // Remote images are fetched here (workers have no network) and passed on as data URLs.
  // Fetching blocks, so requests that have any leave the I/O thread first.
  if (endpoint == "/v1/chat/completions" && has_remote_images(body)) {
    proxies_.fetch_add(1);
    std::thread([this, p, order, body = std::move(body)]() mutable {
      if (fetch_remote_images(*p, body)) {
        p->body = body.dump();
        enqueue(p, order);
      }
      proxies_.fetch_sub(1);
    }).detach();
    return;
  }
  p->body = req.body;
  enqueue(p, order);
}

namespace {

// The http(s) URL of an image_url content part, or "" for any other part (data: URLs included).
std::string remote_image_url(const json& part) {
  auto text = [](const json& o, const char* key) {
    return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
  };
  if (!part.is_object() || text(part, "type") != "image_url" || !part.contains("image_url")) return "";
  const auto& iu = part["image_url"];
  const std::string url = iu.is_string() ? iu.get<std::string>() : iu.is_object() ? text(iu, "url") : "";
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0 ? url : "";
}

}  // namespace

bool GatewayServer::has_remote_images(const nlohmann::json& body) {
  if (!body.contains("messages") || !body["messages"].is_array()) return false;
  for (const auto& m : body["messages"]) {
    if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
    for (const auto& part : m["content"])
      if (!remote_image_url(part).empty()) return true;
  }
  return false;
}

bool GatewayServer::fetch_remote_images(Pending& p, nlohmann::json& body) {
  for (size_t m = 0; m < body["messages"].size(); ++m) {
    auto& content = body["messages"][m]["content"];
    if (!content.is_array()) continue;
    for (size_t c = 0; c < content.size(); ++c) {
      auto& part = content[c];
      const std::string url = remote_image_url(part);
      if (url.empty()) continue;
      auto& iu = part["image_url"];
      const std::string param = "messages[" + std::to_string(m) + "].content[" + std::to_string(c) + "].image_url.url";
      if (!fetcher_) {
        const core::Status off = core::Status::invalid_argument("remote image URLs are not enabled on this server");
        count(p.deployment, openai::http_error_for(off.code()).status);
        respond_error(*p.w, off, param);
        return false;
      }
      auto img = fetcher_->fetch(url);
      if (!img) {
        // An image the client named that cannot be fetched is a fault of the request, whatever
        // the cause (a refused address, a remote 404, a timeout).
        const core::Status failed = img.status().with_code(core::StatusCode::kInvalidArgument);
        count(p.deployment, openai::http_error_for(failed.code()).status);
        respond_error(*p.w, failed, param, "image_fetch_failed");
        return false;
      }
      const std::string data_url = "data:" + img->mime_type + ";base64," + openai::base64_encode(img->bytes);
      if (iu.is_string()) iu = data_url;
      else iu["url"] = data_url;
    }
  }
  return true;
}

bool GatewayServer::retry_elsewhere(const std::shared_ptr<Pending>& p, const platform::Lease& lease,
                                    const std::string& error) {
  if (stopping_ || p->attempts + 1 >= kMaxDispatchAttempts || p->w->client_gone()) return false;
  ++p->attempts;
  core::log_warn("gateway", "instance " + lease.instance_id + " of '" + p->deployment + "' could not be reached (" +
                                error + "); the request goes to another instance");
  {
    core::MutexLock lock(p->mutex);
    p->leased = false;
  }
  fleet_.release(lease, /*instance_failed=*/true);  // no request goes to it until it proves alive
  enqueue(p, p->order);
  return true;
}

void GatewayServer::enqueue(std::shared_ptr<Pending> p, int order) {
  p->order = order;
  // The fleet's callback owns the request while it waits (a cancel drops it).
  const bool again = p->first_asked.has_value();
  if (!again) p->first_asked = Clock::now();
  // The lease may be granted inside acquire(), and its proxy thread may already have sent the
  // request again (a new ticket) by the time acquire() returns: from here on only locals and
  // what is locked.
  const uint64_t ticket = fleet_.acquire(
      p->deployment, p->cls,
      [this, p](const platform::Lease* l, const platform::AcquireFailure* f) { on_lease(p, l, f); }, order,
      again ? p->first_asked : std::nullopt);
  if (ticket != 0) {
    platform::Fleet* fleet = &fleet_;
    // Cancelling a ticket already granted does nothing, so a request sent again cancels both.
    p->w->on_client_gone([fleet, ticket] { fleet->cancel(ticket); });
    if (p->stream) {
      core::MutexLock lock(mutex_);
      waiting_streams_.push_back(p);
    }
  }
}

void GatewayServer::on_lease(std::shared_ptr<Pending> p, const platform::Lease* lease,
                             const platform::AcquireFailure* failure) {
  {
    core::MutexLock lock(p->mutex);
    p->leased = true;
  }
  if (failure) {
    const auto answer = openai::http_error_for(failure->status.code());
    const int status = answer.status;
    const std::string type(answer.type);
    count(p->deployment, status);
    core::MutexLock lock(p->mutex);
    if (p->stream_open) {
      p->w->write(sse_event(openai::openai_error_json(failure->status.message(), type)));
      p->w->write(sse_event("[DONE]"));
      p->w->end();
    } else {
      HttpHeaders h;
      if (status == 429 || status == 503)
        h.push_back({"Retry-After", std::to_string(static_cast<int>(std::ceil(failure->retry_after_s)))});
      p->w->respond_json(status, openai::openai_error_json(failure->status.message(), type), std::move(h));
    }
    return;
  }
  if (lease->cold_start_ms >= 0)
    metrics_.histogram("zs_gateway_cold_start_wait_seconds", "Time requests waited for an instance to start.",
                       platform::MetricsRegistry::exponential_buckets(0.01, 2, 14), {{"deployment", p->deployment}})
        .observe(lease->cold_start_ms / 1000);
  metrics_.histogram("zs_gateway_queue_seconds", "Time requests waited for a free instance slot.",
                     platform::MetricsRegistry::exponential_buckets(0.001, 2, 16), {{"deployment", p->deployment}})
      .observe(lease->queue_ms / 1000);
  // Proxying blocks on the worker's answer, so it runs on its own thread; the number of
  // such threads is bounded by the instances' slots, since waiting requests hold none.
  proxies_.fetch_add(1);
  std::thread([this, p, l = *lease] { proxy(p, l); }).detach();
}

HttpHeaders GatewayServer::start_headers_for(const std::string& deployment, const platform::Lease& lease,
                                             const std::string& worker_wake_ms) {
  const char* kind = platform::start_kind(lease);
  double ms = lease.cold_start_ms >= 0 ? lease.cold_start_ms : lease.queue_ms;
  if (lease.cold_start_ms < 0 && lease.woke) {
    ms = std::strtod(worker_wake_ms.c_str(), nullptr);  // 0 when the worker did not say
    metrics_.histogram("zs_gateway_wake_seconds", "Time a sleeping instance took to wake for a request (as it measured).",
                       platform::MetricsRegistry::exponential_buckets(0.0001, 2, 16), {{"deployment", deployment}})
        .observe(ms / 1000);
  }
  metrics_.counter("zs_gateway_starts_total",
                   "Requests by how they found their instance: cold (waited for a start), wake (woke a sleeping "
                   "instance) or warm.",
                   {{"deployment", deployment}, {"start", kind}})
      .add();
  HttpHeaders h;
  if (lease.cold_start_ms >= 0) h.push_back({kColdStartHeader, std::to_string(static_cast<int64_t>(lease.cold_start_ms))});
  char value[64];
  std::snprintf(value, sizeof value, "%s; ms=%.1f", kind, ms);
  h.push_back({kStartHeader, value});
  return h;
}

void GatewayServer::proxy(std::shared_ptr<Pending> p, platform::Lease lease) {
  RequestRecord rec;
  rec.deployment = p->deployment;
  rec.api_key = p->caller.key_name;
  rec.cls = p->cls;
  // The worker pauses batch sequences when interactive ones arrive.
  HttpHeaders upstream_headers{{kPriorityHeader, std::string(platform::request_class_name(p->cls))}};
  // An instance off this machine (a Slurm job) takes only requests with its token.
  if (!lease.token.empty()) upstream_headers.push_back({"Authorization", "Bearer " + lease.token});
  rec.queue_seconds = lease.queue_ms / 1000;
  rec.cold_start = lease.cold_start_ms >= 0;
  bool instance_failed = false;
  bool started_stream = false;  // the worker's stream reached the client (errors go inside it)
  double ttft_s = -1;           // arrival to the first streamed byte, for the console's charts
  int64_t stream_events = 0;    // streamed choice events: the console's token count when no usage came
  HttpHeaders start_header;  // the start headers, once the worker's answer (and wake time) is known
  auto start_headers = [&](const HttpResponse& worker_answer) {
    start_header = start_headers_for(p->deployment, lease, worker_answer.header(worker::kWakeMsHeader));
  };

  // A request that has not reached a worker is safe to send to another instance (or to wait
  // for a new one): its instance exited after the lease was handed out, the connection could
  // not be opened, or it broke before the worker could have read the whole request. Once the
  // worker may have read it, it is never sent again (see docs/serving.md, "Retries").
  if (fleet_.instance_gone(lease) && retry_elsewhere(p, lease, "the instance has exited")) {
    proxies_.fetch_sub(1);
    return;
  }
  auto client = HttpClient::connect(lease.address, std::chrono::seconds(5));
  if (!client && retry_elsewhere(p, lease, client.status().message())) {
    proxies_.fetch_sub(1);
    return;
  }
  std::string first_error;
  if (!client) {
    instance_failed = true;
    first_error = client.status().message();
  }
  if (client && !p->stream) {
    auto r = client.value()->request("POST", p->endpoint, p->body, upstream_headers, std::chrono::hours(1));
    if (!r && !client.value()->request_delivered() && retry_elsewhere(p, lease, r.status().message())) {
      proxies_.fetch_sub(1);
      return;
    }
    if (!r) {
      instance_failed = true;
      first_error = r.status().message();
    } else {
      read_usage(r->body, &rec.prompt_tokens, &rec.completion_tokens);
      p->settle(rec.prompt_tokens + rec.completion_tokens);
      rec.status = r->status;
      start_headers(r.value());
      HttpHeaders h = start_header;
      p->w->respond(r->status, r->header("Content-Type").empty() ? "application/json" : r->header("Content-Type"),
                    std::move(r->body), std::move(h));
    }
  } else if (client) {
    bool opened;
    {
      core::MutexLock lock(p->mutex);
      opened = p->stream_open;
    }
    std::string pending_events;  // to find the usage chunk
    bool started = false;
    SseParser parser;
    auto r = client.value()->stream(
        "POST", p->endpoint, p->body, upstream_headers,
        [&](std::string_view chunk) {
          if (!started) {
            started = true;
            ttft_s = std::chrono::duration<double>(Clock::now() - p->arrival).count();
            if (p->cls == platform::RequestClass::kInteractive)
              fleet_.observe_ttft(p->deployment, std::chrono::duration<double>(Clock::now() - p->arrival).count());
            metrics_.histogram("zs_gateway_time_to_first_byte_seconds", "Time from arrival to the first streamed byte.",
                               platform::MetricsRegistry::exponential_buckets(0.005, 2, 16), {{"deployment", p->deployment}})
                .observe(std::chrono::duration<double>(Clock::now() - p->arrival).count());
            if (!opened) {
              p->w->start_stream(200, "text/event-stream", start_header);
            } else {  // the headers went out while it waited: the start comes as a comment
              if (lease.cold_start_ms >= 0)
                p->w->write(sse_comment("cold start took " + std::to_string(static_cast<int64_t>(lease.cold_start_ms)) + " ms"));
              for (const auto& [name, value] : start_header)
                if (name == kStartHeader) p->w->write(sse_comment(std::string(kStartHeader) + ": " + value));
            }
          }
          parser.feed(chunk);
          for (const auto& e : parser.take_events()) {
            if (e.find("\"usage\":{") != std::string::npos) read_usage(e, &rec.prompt_tokens, &rec.completion_tokens);
            else if (e.find("\"content\":\"") != std::string::npos && e.find("\"content\":\"\"") == std::string::npos) ++stream_events;
          }
          // Back-pressure: stop reading from the worker while the client lags behind.
          while (p->w->queued_bytes() > options_.max_buffered_bytes && !p->w->client_gone())
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          return p->w->write(std::string(chunk));  // false once the client left: hang up upstream too
        },
        std::chrono::minutes(10), start_headers);
    if (!r && !started && !client.value()->request_delivered() && retry_elsewhere(p, lease, r.status().message())) {
      proxies_.fetch_sub(1);
      return;
    }
    if (!r && !started) {
      instance_failed = true;
      first_error = r.status().message();
    } else if (r && !started) {
      // An error answer from the worker arrives as a plain body.
      rec.status = r->status;
      if (!opened) p->w->respond(r->status, "application/json", r->body, start_header);
      else {
        p->w->write(sse_event(r->body));
        p->w->end();
      }
    } else if (!r) {
      // The worker's connection broke mid-stream (it died, or stalled past the timeout): the
      // answer is cut, so the stream ends with an error event naming the cause (never a clean
      // end a client would take for a complete answer) and the request counts as failed.
      const core::Status cut = core::Status::upstream_failed("the instance of '" + p->deployment +
                                                            "' failed in the middle of the stream (" +
                                                            r.status().message() + "); the answer above is incomplete");
      rec.status = openai::http_error_for(cut.code()).status;
      instance_failed = true;
      started_stream = true;
      p->settle(rec.prompt_tokens + rec.completion_tokens);
      p->w->write(sse_event(openai::openai_error_json(cut)));
      p->w->end();
    } else {
      rec.status = r->status;
      if (r->status != 200 && opened) p->w->write(sse_event(r->body));
      p->settle(rec.prompt_tokens + rec.completion_tokens);
      p->w->end();
    }
  }
  if (instance_failed && !started_stream) {
    const core::Status failed =
        core::Status::upstream_failed("the instance of '" + p->deployment + "' failed while handling the request (" +
                                      first_error + "); retry: later requests go to a restarted instance");
    rec.status = openai::http_error_for(failed.code()).status;
    core::MutexLock lock(p->mutex);
    if (p->stream_open) {
      p->w->write(sse_event(openai::openai_error_json(failed)));
      p->w->write(sse_event("[DONE]"));
      p->w->end();
    } else {
      respond_error(*p->w, failed);
    }
  }
  count(p->deployment, rec.status);
  if (rec.prompt_tokens > 0)
    metrics_
        .counter("zs_gateway_prompt_tokens_total", "Prompt tokens of answered requests (embedding inputs included).",
                 {{"deployment", p->deployment}})
        .add(static_cast<double>(rec.prompt_tokens));
  if (rec.completion_tokens > 0)
    metrics_
        .counter("zs_gateway_completion_tokens_total", "Tokens generated for answered requests.",
                 {{"deployment", p->deployment}})
        .add(static_cast<double>(rec.completion_tokens));
  metrics_.histogram("zs_gateway_request_duration_seconds", "End-to-end request latency at the gateway.",
                     platform::MetricsRegistry::exponential_buckets(0.005, 2, 16), {{"deployment", p->deployment}})
      .observe(std::chrono::duration<double>(Clock::now() - p->arrival).count());
  fleet_.release(lease, instance_failed);
  p->settle(rec.prompt_tokens + rec.completion_tokens);
  if (record_) record_(rec);
  console_->observe(p->deployment, ttft_s, rec.completion_tokens > 0 ? rec.completion_tokens : stream_events);
  proxies_.fetch_sub(1);
}

void GatewayServer::set_pull_progress(PullProgressFn fn) {
  core::MutexLock lock(mutex_);
  pull_progress_ = std::move(fn);
}

void GatewayServer::set_reload(ReloadFn fn) {
  core::MutexLock lock(mutex_);
  reload_ = std::move(fn);
}

void GatewayServer::set_batch_api(BatchApi* api) {
  core::MutexLock lock(mutex_);
  batch_api_ = api;
}

void GatewayServer::keepalive_loop() {
  auto last = Clock::now();
  auto last_trim = Clock::now();
  while (!stopping_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    {
      const auto now = Clock::now();
      const auto large = Clock::time_point(Clock::duration(last_large_body_.load()));
      const bool after_large = last_large_body_.load() != 0 && now - large < kTrimFor && now - last_trim >= kTrimEvery;
      const bool idle = proxies_.load() == 0 && now - last_trim >= kIdleTrimEvery;
      if (after_large || idle) {
        core::release_free_memory();
        last_trim = now;
      }
    }
    std::vector<std::shared_ptr<Pending>> live;
    PullProgressFn pull_progress;
    {
      core::MutexLock lock(mutex_);
      pull_progress = pull_progress_;
      std::vector<std::weak_ptr<Pending>> keep;
      for (auto& wp : waiting_streams_)
        if (auto p = wp.lock()) {
          live.push_back(p);
          keep.push_back(wp);
        }
      waiting_streams_.swap(keep);
    }
    const auto now = Clock::now();
    const bool tick = now - last >= options_.stream_keepalive;
    if (tick) last = now;
    std::map<std::string, platform::DeploymentStatus> status;
    for (const auto& s : fleet_.status()) status[s.name] = s;
    // Downloads the waiting deployments' starts wait for, read outside every lock.
    std::map<std::string, std::string> pulls;
    if (tick && pull_progress)
      for (const auto& p : live)
        if (!pulls.count(p->deployment)) {
          auto note = pull_progress(p->deployment);
          pulls[p->deployment] = note ? describe_pull(*note) : "";
        }
    for (auto& p : live) {
      core::MutexLock lock(p->mutex);
      if (p->leased) continue;
      if (!p->stream_open && now - p->arrival >= options_.quiet_wait) {
        p->stream_open = true;
        p->w->start_stream(200, "text/event-stream", {{"X-Zeroserve-Cold-Start", "pending"}});
      }
      if (p->stream_open && tick) {
        const auto& s = status[p->deployment];
        const double waited = std::chrono::duration<double>(now - p->arrival).count();
        char text[160];
        std::snprintf(text, sizeof text, "waiting for an instance of %s: %s, %d starting (%.1f s), %.1f s waited",
                      p->deployment.c_str(), s.state().c_str(), s.instances_starting, s.starting_for_s, waited);
        std::string line = text;
        if (!s.pending_reason.empty()) line += "; pending in Slurm (reason: " + s.pending_reason + ")";
        if (!pulls[p->deployment].empty()) line += "; " + pulls[p->deployment];
        p->w->write(sse_comment(line));
      }
    }
    core::MutexLock lock(mutex_);
    waiting_streams_.erase(std::remove_if(waiting_streams_.begin(), waiting_streams_.end(),
                                          [](const auto& wp) {
                                            auto p = wp.lock();
                                            if (!p) return true;
                                            core::MutexLock l(p->mutex);
                                            return p->leased;
                                          }),
                           waiting_streams_.end());
  }
}

}  // namespace zs::gateway
