#include "platform/batch/batch_input.h"

#include <nlohmann/json.hpp>
#include <unordered_map>
#include <utility>

namespace zs::platform {
namespace {

using nlohmann::json;

// Longest custom_id quoted back in an error: enough to find it, short enough that a
// hostile id does not flood a log line.
constexpr size_t kMaxQuotedChars = 64;
constexpr int64_t kMaxWindowHours = 168;

// `s` as a JSON string literal, cut to kMaxQuotedChars characters.
std::string json_quoted(std::string_view s) {
  const bool cut = s.size() > kMaxQuotedChars;
  std::string text =
      json(std::string(s.substr(0, kMaxQuotedChars))).dump(-1, ' ', false, json::error_handler_t::replace);
  if (cut) text.insert(text.size() - 1, "...");
  return text;
}

std::string_view type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::binary:
      return "binary data";
    case json::value_t::discarded:
      return "nothing";
    default:
      return "a number";
  }
}

// nlohmann's parse message without its "[json.exception.parse_error.101] parse error at
// line 1, " prefix: the line is always 1 within one JSONL line, and the caller names the
// file's line.
std::string parse_error_text(const std::string& what) {
  std::string_view s = what;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find("] ");
    if (close != std::string_view::npos) s.remove_prefix(close + 2);
  }
  constexpr std::string_view kLinePrefix = "parse error at line 1, ";
  if (s.substr(0, kLinePrefix.size()) == kLinePrefix) s.remove_prefix(kLinePrefix.size());
  return std::string(s);
}

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// Calls `fn(line_number, text)` for each line of `jsonl` that is not blank, "\r" removed.
template <typename Fn>
void for_each_line(std::string_view jsonl, Fn&& fn) {
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (jsonl.substr(0, kBom.size()) == kBom) jsonl.remove_prefix(kBom.size());
  int64_t number = 0;
  size_t start = 0;
  while (start < jsonl.size()) {
    size_t end = jsonl.find('\n', start);
    if (end == std::string_view::npos) end = jsonl.size();
    ++number;
    std::string_view line = jsonl.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!is_blank(line)) {
      if (!fn(number, line)) return;
    }
    start = end + 1;
  }
}

core::Status line_error(int64_t number, const std::string& problem) {
  return core::Status::invalid_argument("line " + std::to_string(number) + ": " + problem);
}

// The string member `key` of `object`, or an error naming it.
core::Result<std::string> string_member(const json& object, const char* key, int64_t number) {
  const auto it = object.find(key);
  if (it == object.end()) return line_error(number, std::string("'") + key + "' is missing");
  if (!it->is_string()) {
    return line_error(number, std::string("'") + key + "' must be a string, not " + std::string(type_name(*it)));
  }
  return it->get<std::string>();
}

}  // namespace

bool is_batch_endpoint(std::string_view endpoint) {
  return endpoint == kBatchChatEndpoint || endpoint == kBatchCompletionsEndpoint ||
         endpoint == kBatchEmbeddingsEndpoint;
}

std::string batch_endpoints_text() {
  return std::string(kBatchChatEndpoint) + ", " + std::string(kBatchCompletionsEndpoint) + " or " +
         std::string(kBatchEmbeddingsEndpoint);
}

core::Result<std::vector<BatchItem>> parse_batch_input(std::string_view jsonl, const std::string& endpoint,
                                                       size_t max_items) {
  if (!is_batch_endpoint(endpoint)) {
    return core::Status::invalid_argument("unsupported batch endpoint " + json_quoted(endpoint) + ": use " +
                               batch_endpoints_text());
  }
  // Counted before parsing, so an oversized file is refused without building its items.
  size_t requests = 0;
  for_each_line(jsonl, [&](int64_t, std::string_view) {
    ++requests;
    return true;
  });
  if (requests == 0) return core::Status::invalid_argument("the file has no requests");
  if (requests > max_items) {
    return core::Status::invalid_argument("the file has " + std::to_string(requests) + " requests; the limit is " +
                               std::to_string(max_items));
  }

  std::vector<BatchItem> items;
  items.reserve(requests);
  std::unordered_map<std::string, int64_t> first_line_of;  // custom_id -> its line
  first_line_of.reserve(requests);
  core::Status status;
  for_each_line(jsonl, [&](int64_t number, std::string_view text) {
    json request;
    try {
      request = json::parse(text);
    } catch (const json::exception& e) {
      status = line_error(number, "not valid JSON: " + parse_error_text(e.what()));
      return false;
    }
    if (!request.is_object()) {
      status = line_error(number, "a request must be a JSON object, not " + std::string(type_name(request)));
      return false;
    }
    BatchItem item;
    item.line = number;

    auto custom_id = string_member(request, "custom_id", number);
    if (!custom_id) {
      status = custom_id.status();
      return false;
    }
    if (custom_id->empty()) {
      status = line_error(number, "'custom_id' is empty");
      return false;
    }
    const auto [it, inserted] = first_line_of.emplace(*custom_id, number);
    if (!inserted) {
      status =
          line_error(number, "'custom_id' " + json_quoted(*custom_id) + " repeats line " + std::to_string(it->second));
      return false;
    }
    item.custom_id = std::move(custom_id).value();

    auto method = string_member(request, "method", number);
    if (!method) {
      status = method.status();
      return false;
    }
    if (*method != "POST") {
      status = line_error(number, "'method' must be \"POST\", not " + json_quoted(*method));
      return false;
    }
    item.method = std::move(method).value();

    auto url = string_member(request, "url", number);
    if (!url) {
      status = url.status();
      return false;
    }
    if (*url != endpoint) {
      status = line_error(number, "'url' " + json_quoted(*url) + " is not the batch's endpoint " + endpoint);
      return false;
    }
    item.url = std::move(url).value();

    const auto body = request.find("body");
    if (body == request.end()) {
      status = line_error(number, "'body' is missing");
      return false;
    }
    if (!body->is_object()) {
      status = line_error(number, "'body' must be a JSON object, not " + std::string(type_name(*body)));
      return false;
    }
    const auto model = body->find("model");
    if (model == body->end()) {
      status = line_error(number, "'body.model' is missing");
      return false;
    }
    if (!model->is_string()) {
      status = line_error(number, "'body.model' must be a string, not " + std::string(type_name(*model)));
      return false;
    }
    // Parsed strings are valid UTF-8, so dumping cannot throw.
    item.body = body->dump();
    items.push_back(std::move(item));
    return true;
  });
  if (!status) return status;
  return items;
}

core::Result<int64_t> parse_completion_window(std::string_view window) {
  const auto bad = [&] {
    return core::Status::invalid_argument("completion_window " + json_quoted(window) +
                               " is not supported: use \"24h\" (or \"<n>h\" with n from 1 to " +
                               std::to_string(kMaxWindowHours) + ")");
  };
  if (window.size() < 2 || window.size() > 4 || window.back() != 'h') return bad();
  int64_t hours = 0;
  for (char c : window.substr(0, window.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    hours = hours * 10 + (c - '0');
  }
  if (window[0] == '0' || hours < 1 || hours > kMaxWindowHours) return bad();
  return hours * 3600;
}

}  // namespace zs::platform
