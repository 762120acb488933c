#pragma once
// The OpenAI request schema (/v1/chat/completions, /v1/completions): parsing and validation
// of client JSON into plain structs, pure (no I/O). Every refusal names the field at fault,
// so that both the worker and the gateway answer 400 with a useful OpenAI error object.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/openai/openai_error.h"

namespace zs::gateway::openai {

// Bounds on what a request may carry. Exceeding one is a 400 naming the field, not a
// truncation.
struct Limits {
  size_t max_messages = 1024;
  size_t max_content_parts = 256;  // per message
  size_t max_images = 16;          // per request
  size_t max_image_bytes = 20u << 20;  // decoded bytes of one data: URL image
  int max_tokens = 1 << 20;        // upper bound for max_tokens / max_completion_tokens
  size_t max_stop_sequences = 4;
  size_t max_stop_length = 256;    // bytes per stop sequence
  size_t max_json_depth = 64;      // nesting of arrays/objects in the body
};

enum class Role { kSystem, kUser, kAssistant };
const char* role_name(Role role);

// An image given inline (data: URL, decoded here) or by remote URL (kept for the caller:
// workers refuse those, the gateway fetches them).
struct ImageInput {
  std::string data;       // decoded bytes of a data: URL; empty for a remote URL
  std::string mime_type;  // from the data: URL ("image/png"); empty for a remote URL
  std::string url;        // the http(s) URL when remote; empty for a data: URL
  std::string detail;     // "auto", "low" or "high" ("auto" when absent)

  bool is_remote() const { return !url.empty(); }
};

struct ContentPart {
  enum class Type { kText, kImage };
  Type type = Type::kText;
  std::string text;  // kText
  ImageInput image;  // kImage
};

struct ChatMessage {
  Role role = Role::kUser;
  std::vector<ContentPart> content;  // a string content becomes one text part
  std::string name;                  // optional participant name

  // The text parts joined, in order (images left out).
  std::string text() const;
};

// Sampling and stopping fields shared by both endpoints. Absent fields stay unset so that
// the model's or deployment's defaults apply.
struct SamplingOptions {
  std::optional<int> max_tokens;  // max_completion_tokens, or else max_tokens
  std::optional<double> temperature;  // [0, 2]
  std::optional<double> top_p;        // (0, 1]
  std::optional<int64_t> seed;
  std::vector<std::string> stop;      // at most Limits::max_stop_sequences, none empty
  double presence_penalty = 0;        // [-2, 2]
  double frequency_penalty = 0;       // [-2, 2]
  // Extensions that llama.cpp's server and vLLM accept too.
  std::optional<int> top_k;               // >= 0 (0: off)
  std::optional<double> min_p;            // [0, 1]
  std::optional<double> repeat_penalty;   // (0, 10]; "repeat_penalty" or "repetition_penalty"
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingOptions sampling;
  std::string user;  // accepted, only for logs

  size_t image_count() const;
  bool has_remote_images() const;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  SamplingOptions sampling;
  std::string user;
};

// Parses and validates a /v1/chat/completions body. On failure the Status message is the
// user-facing message, and `error` (when given) receives it with the field (`param`) and a
// code, ready for ApiError::to_json().
core::Result<ChatRequest> parse_chat_completion_request(const std::string& body,
                                                        const Limits& limits = {},
                                                        ApiError* error = nullptr);

// Parses and validates a /v1/completions body: `prompt` is a string or an array of exactly
// one string.
core::Result<CompletionRequest> parse_completion_request(const std::string& body,
                                                         const Limits& limits = {},
                                                         ApiError* error = nullptr);

// The message a worker answers (400, param "messages[i].content[j].image_url.url") for a
// request with remote image URLs.
inline constexpr const char* kRemoteImageRefused = "remote image URLs are not fetched by workers";

// For a worker: the 400 for the first remote image URL in `request`, if any.
std::optional<ApiError> remote_image_error(const ChatRequest& request);

// A data: URL split and decoded. Only base64 image data is accepted.
core::Result<ImageInput> parse_image_data_url(const std::string& url, size_t max_bytes);

}  // namespace zs::gateway::openai
