#include "gateway/openai/openai_response.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/random_id.h"

namespace zs::gateway::openai {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
  // Model output may split or mangle UTF-8; a replacement character beats a failed response.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json usage_json(const Usage& u) {
  return json{
      {"prompt_tokens", u.prompt_tokens},
      {"completion_tokens", u.completion_tokens},
      {"total_tokens", u.prompt_tokens + u.completion_tokens},
      {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}, {"image_tokens", u.image_tokens}}},
  };
}

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(nullptr); }

json envelope(const std::string& id, const char* object, int64_t created, const std::string& model) {
  return json{{"id", id}, {"object", object}, {"created", created}, {"model", model},
              {"system_fingerprint", nullptr}};
}

}  // namespace

std::string make_response_id(std::string_view prefix) { return std::string(prefix) + "-" + core::random_hex(24); }

int64_t unix_time_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t utf8_complete_prefix(std::string_view text) {
  size_t n = text.size();
  // Look back at most 3 bytes for the lead byte of a sequence that may be cut.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

std::string chat_completion_response(const std::string& id, int64_t created, const std::string& model,
                                     const std::string& text, const std::string& finish_reason,
                                     const Usage& usage) {
  json j = envelope(id, "chat.completion", created, model);
  j["choices"] = json::array({json{
      {"index", 0},
      {"message", {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}}},
      {"logprobs", nullptr},
      {"finish_reason", finish_reason},
  }});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string chat_completion_chunk(const std::string& id, int64_t created, const std::string& model,
                                  const std::optional<std::string>& delta_role,
                                  const std::optional<std::string>& delta_text,
                                  const std::optional<std::string>& finish_reason,
                                  bool include_usage_null) {
  json delta = json::object();
  if (delta_role) delta["role"] = *delta_role;
  if (delta_text) delta["content"] = *delta_text;
  json j = envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array({json{
      {"index", 0},
      {"delta", delta},
      {"logprobs", nullptr},
      {"finish_reason", opt(finish_reason)},
  }});
  if (include_usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string usage_chunk(const std::string& id, int64_t created, const std::string& model,
                        const Usage& usage) {
  json j = envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_response(const std::string& id, int64_t created, const std::string& model,
                                const std::string& text, const std::string& finish_reason,
                                const Usage& usage) {
  json j = envelope(id, "text_completion", created, model);
  j["choices"] = json::array({json{
      {"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_reason}}});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_chunk(const std::string& id, int64_t created, const std::string& model,
                             const std::string& text, const std::optional<std::string>& finish_reason,
                             bool include_usage_null) {
  json j = envelope(id, "text_completion", created, model);
  j["choices"] = json::array({json{
      {"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", opt(finish_reason)}}});
  if (include_usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string completion_usage_chunk(const std::string& id, int64_t created, const std::string& model,
                                   const Usage& usage) {
  json j = envelope(id, "text_completion", created, model);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string models_list(const std::vector<ModelInfo>& models) {
  json data = json::array();
  for (const auto& m : models) {
    data.push_back(json{{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}});
  }
  return dump(json{{"object", "list"}, {"data", data}});
}

}  // namespace zs::gateway::openai
