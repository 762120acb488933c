#include "gateway/openai/openai_response.h"

#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/random_id.h"
#include "gateway/openai/base64.h"

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

json bytes_json(const std::string& t) {
  json b = json::array();
  for (char c : t) b.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return b;
}

json chat_logprobs_json(const std::vector<LogprobEntry>* lps) {
  if (!lps) return nullptr;
  json content = json::array();
  for (const LogprobEntry& e : *lps) {
    json top = json::array();
    for (const auto& [t, lp] : e.top) top.push_back({{"token", t}, {"logprob", lp}, {"bytes", bytes_json(t)}});
    content.push_back({{"token", e.token}, {"logprob", e.logprob}, {"bytes", bytes_json(e.token)}, {"top_logprobs", top}});
  }
  return json{{"content", content}, {"refusal", nullptr}};
}

json completion_logprobs_json(const std::vector<LogprobEntry>* lps, int64_t offset) {
  if (!lps) return nullptr;
  json tokens = json::array(), values = json::array(), tops = json::array(), offsets = json::array();
  for (const LogprobEntry& e : *lps) {
    tokens.push_back(e.token);
    values.push_back(e.logprob);
    json top = json::object();
    for (const auto& [t, lp] : e.top) top[t] = lp;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(e.token.size());
  }
  return json{{"tokens", tokens}, {"token_logprobs", values}, {"top_logprobs", tops}, {"text_offset", offsets}};
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
                                     const Usage& usage, const std::vector<LogprobEntry>* logprobs,
                                     const std::vector<ToolCallOut>* tool_calls) {
  json j = envelope(id, "chat.completion", created, model);
  json message = {{"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
  if (tool_calls && !tool_calls->empty()) {
    if (text.empty()) message["content"] = nullptr;
    json calls = json::array();
    for (const ToolCallOut& c : *tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    message["tool_calls"] = calls;
  }
  j["choices"] = json::array({json{
      {"index", 0},
      {"message", message},
      {"logprobs", chat_logprobs_json(logprobs)},
      {"finish_reason", finish_reason},
  }});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string chat_completion_chunk(const std::string& id, int64_t created, const std::string& model,
                                  const std::optional<std::string>& delta_role,
                                  const std::optional<std::string>& delta_text,
                                  const std::optional<std::string>& finish_reason,
                                  bool include_usage_null, const std::vector<LogprobEntry>* logprobs, int index) {
  json delta = json::object();
  if (delta_role) delta["role"] = *delta_role;
  if (delta_text) delta["content"] = *delta_text;
  json j = envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array({json{
      {"index", index},
      {"delta", delta},
      {"logprobs", chat_logprobs_json(logprobs)},
      {"finish_reason", opt(finish_reason)},
  }});
  if (include_usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string chat_tool_calls_chunk(const std::string& id, int64_t created, const std::string& model,
                                  const std::vector<ToolCallOut>& calls, bool include_usage_null, int index) {
  json list = json::array();
  for (size_t i = 0; i < calls.size(); ++i)
    list.push_back({{"index", i},
                    {"id", calls[i].id},
                    {"type", "function"},
                    {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}});
  json j = envelope(id, "chat.completion.chunk", created, model);
  j["choices"] = json::array({json{
      {"index", index},
      {"delta", {{"tool_calls", list}}},
      {"logprobs", nullptr},
      {"finish_reason", nullptr},
  }});
  if (include_usage_null) j["usage"] = nullptr;
  return dump(j);
}

std::string merge_choice_responses(const std::vector<std::string>& responses) {
  if (responses.empty()) return "{}";
  json merged = json::parse(responses.front());
  merged["choices"] = json::array();
  int64_t completion = 0;
  for (size_t i = 0; i < responses.size(); ++i) {
    json one = json::parse(responses[i]);
    for (auto& c : one["choices"]) {
      c["index"] = i;
      merged["choices"].push_back(c);
    }
    completion += one["usage"]["completion_tokens"].get<int64_t>();
  }
  merged["usage"]["completion_tokens"] = completion;
  merged["usage"]["total_tokens"] = merged["usage"]["prompt_tokens"].get<int64_t>() + completion;
  return dump(merged);
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
                                const Usage& usage, const std::vector<LogprobEntry>* logprobs) {
  json j = envelope(id, "text_completion", created, model);
  j["choices"] = json::array({json{{"index", 0},
                                   {"text", text},
                                   {"logprobs", completion_logprobs_json(logprobs, 0)},
                                   {"finish_reason", finish_reason}}});
  j["usage"] = usage_json(usage);
  return dump(j);
}

std::string completion_chunk(const std::string& id, int64_t created, const std::string& model,
                             const std::string& text, const std::optional<std::string>& finish_reason,
                             bool include_usage_null, const std::vector<LogprobEntry>* logprobs,
                             int64_t text_offset, int index) {
  json j = envelope(id, "text_completion", created, model);
  j["choices"] = json::array({json{{"index", index},
                                   {"text", text},
                                   {"logprobs", completion_logprobs_json(logprobs, text_offset)},
                                   {"finish_reason", opt(finish_reason)}}});
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
    json entry{{"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}};
    if (!m.type.empty()) entry["type"] = m.type;
    if (m.dimensions > 0) entry["dimensions"] = m.dimensions;
    data.push_back(std::move(entry));
  }
  return dump(json{{"object", "list"}, {"data", data}});
}

std::string float32_le_bytes(const std::vector<float>& v) {
  std::string out(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    const uint32_t bits = std::bit_cast<uint32_t>(v[i]);
    for (int b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return out;
}

std::string embeddings_response(const std::vector<std::vector<float>>& vectors, bool base64, const std::string& model,
                                int64_t prompt_tokens) {
  // Written by hand: a vector of 1024 floats through nlohmann::json would be widened to
  // double and printed with 17 digits; to_chars gives each float's shortest exact form.
  std::string out = R"({"object":"list","data":[)";
  size_t per_vector = vectors.empty() ? 0 : vectors[0].size() * (base64 ? 6 : 12) + 64;
  out.reserve(vectors.size() * per_vector + 128);
  char num[32];
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i > 0) out += ',';
    out += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    if (base64) {
      out += '"';
      out += base64_encode(float32_le_bytes(vectors[i]));
      out += '"';
    } else {
      out += '[';
      for (size_t j = 0; j < vectors[i].size(); ++j) {
        if (j > 0) out += ',';
        const float x = std::isfinite(vectors[i][j]) ? vectors[i][j] : 0.0f;  // JSON has no NaN
        auto r = std::to_chars(num, num + sizeof num, x);
        out.append(num, r.ptr);
      }
      out += ']';
    }
    out += '}';
  }
  out += R"(],"model":)" + json(model).dump(-1, ' ', false, json::error_handler_t::replace);
  out += R"(,"usage":{"prompt_tokens":)" + std::to_string(prompt_tokens) + R"(,"total_tokens":)" +
         std::to_string(prompt_tokens) + "}}";
  return out;
}

}  // namespace zs::gateway::openai
