#pragma once
// The OpenAI response schema: JSON text of completions, streamed chunks, usage and model
// lists, built from plain values, pure (no I/O). Text is expected in UTF-8; invalid bytes
// are written as U+FFFD rather than failing the response.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zs::gateway::openai {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  int64_t image_tokens = 0;   // prompt tokens that came from images
};

// One generated token's log-probability and its most likely alternatives (best first).
struct LogprobEntry {
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;
};

// A function call of the assistant's message (choices[].message.tool_calls).
struct ToolCallOut {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

// "<prefix>-<24 random hex digits>", e.g. make_response_id("chatcmpl").
std::string make_response_id(std::string_view prefix);

// Seconds since the Unix epoch, for `created`.
int64_t unix_time_now();

// The length of the longest prefix of `text` that does not end inside a UTF-8 sequence:
// a streamer sends that much and keeps the rest until the next token completes it.
size_t utf8_complete_prefix(std::string_view text);

// object "chat.completion": one choice with the assistant message, logprobs null, usage.
// With `logprobs`, choices[0].logprobs is {"content": [{token, logprob, bytes, top_logprobs}],
// "refusal": null} (OpenAI's shape); without, null.
std::string chat_completion_response(const std::string& id, int64_t created, const std::string& model,
                                     const std::string& text, const std::string& finish_reason,
                                     const Usage& usage, const std::vector<LogprobEntry>* logprobs = nullptr,
                                     const std::vector<ToolCallOut>* tool_calls = nullptr);

// A chunk whose delta holds `calls` as OpenAI streams them: each with its index, id, type and
// function name, and its arguments (whole, in this one chunk).
std::string chat_tool_calls_chunk(const std::string& id, int64_t created, const std::string& model,
                                  const std::vector<ToolCallOut>& calls, bool include_usage_null = false,
                                  int index = 0);

// n > 1: the responses of each choice (as built above, one choice each) as one response whose
// choices are numbered in order and whose usage counts the prompt once and every completion.
std::string merge_choice_responses(const std::vector<std::string>& responses);

// object "chat.completion.chunk" with one choice. The delta holds "role" and/or "content"
// when given; finish_reason is null until the last chunk. With include_usage_null the
// chunk carries "usage": null, as OpenAI does when stream_options.include_usage is set.
std::string chat_completion_chunk(const std::string& id, int64_t created, const std::string& model,
                                  const std::optional<std::string>& delta_role,
                                  const std::optional<std::string>& delta_text,
                                  const std::optional<std::string>& finish_reason,
                                  bool include_usage_null = false,
                                  const std::vector<LogprobEntry>* logprobs = nullptr, int index = 0);

// The final chunk for stream_options.include_usage: "choices": [] and the usage.
std::string usage_chunk(const std::string& id, int64_t created, const std::string& model,
                        const Usage& usage);

// object "text_completion" (/v1/completions).
// With `logprobs`, choices[0].logprobs is the legacy shape {tokens, token_logprobs,
// top_logprobs (objects token -> logprob), text_offset}, offsets counted from `text_offset`.
std::string completion_response(const std::string& id, int64_t created, const std::string& model,
                                const std::string& text, const std::string& finish_reason,
                                const Usage& usage, const std::vector<LogprobEntry>* logprobs = nullptr);

// A streamed /v1/completions chunk (object "text_completion").
std::string completion_chunk(const std::string& id, int64_t created, const std::string& model,
                             const std::string& text, const std::optional<std::string>& finish_reason,
                             bool include_usage_null = false, const std::vector<LogprobEntry>* logprobs = nullptr,
                             int64_t text_offset = 0, int index = 0);

// The final usage chunk of a streamed /v1/completions response.
std::string completion_usage_chunk(const std::string& id, int64_t created, const std::string& model,
                                   const Usage& usage);

struct ModelInfo {
  std::string id;
  int64_t created = 0;
  std::string owned_by = "zeroserve";
  std::string type;    // "chat" or "embedding"; omitted when empty (not known yet)
  int dimensions = 0;  // of an embedding model's vectors; omitted when 0
};

// object "list" of objects "model" (/v1/models).
std::string models_list(const std::vector<ModelInfo>& models);

// object "list" of objects "embedding" (/v1/embeddings), in input order, usage
// {prompt_tokens, total_tokens}. Each vector is a JSON array of numbers in their shortest form
// that reads back as the same float, or with `base64` a string: the vector's float32 values as
// little-endian bytes, base64-encoded (what OpenAI sends for encoding_format "base64").
std::string embeddings_response(const std::vector<std::vector<float>>& vectors, bool base64, const std::string& model,
                                int64_t prompt_tokens);

// The little-endian float32 bytes of `v` (the payload base64 encodes).
std::string float32_le_bytes(const std::vector<float>& v);

}  // namespace zs::gateway::openai
