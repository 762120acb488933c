#pragma once
// Validating the input file of an OpenAI-compatible batch (POST /v1/batches): JSONL, one
// request per line, {"custom_id": "...", "method": "POST", "url": "<endpoint>",
// "body": {"model": "...", ...}}. Everything is checked when the batch is created, so that a
// bad file fails at once with the line to fix instead of hours later, item by item.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::platform {

// One request of a batch, as validated from its input file.
struct BatchItem {
  int64_t line = 0;  // 1-based line of the input file, so errors and results can point at it
  std::string custom_id;
  std::string method;  // always "POST"
  std::string url;     // the batch's endpoint
  std::string body;    // the JSON text of the request body (an object with a string "model")
};

// The endpoints a batch may target.
inline constexpr std::string_view kBatchChatEndpoint = "/v1/chat/completions";
inline constexpr std::string_view kBatchCompletionsEndpoint = "/v1/completions";
inline constexpr std::string_view kBatchEmbeddingsEndpoint = "/v1/embeddings";
// Whether a batch may target `endpoint`.
bool is_batch_endpoint(std::string_view endpoint);
// "/v1/chat/completions, /v1/completions or /v1/embeddings", for messages.
std::string batch_endpoints_text();
// OpenAI's limit on requests in one batch.
inline constexpr size_t kMaxBatchItems = 50000;

// Parses and validates `jsonl` for a batch targeting `endpoint`. Blank lines are skipped
// (a final newline, or one left by an editor); a leading UTF-8 byte order mark is ignored,
// as is "\r" before "\n". Each other line must be a JSON object with a non-empty string
// "custom_id" unique in the file, "method" "POST", "url" equal to `endpoint`, and an object
// "body" with a string "model"; other keys are ignored. The first problem found is the
// error, naming its line: "line 3: 'custom_id' \"a\" repeats line 1". More than `max_items`
// requests is refused before any is parsed: "the file has 50001 requests; the limit is 50000".
core::Result<std::vector<BatchItem>> parse_batch_input(std::string_view jsonl, const std::string& endpoint,
                                                       size_t max_items = kMaxBatchItems);

// Seconds in a completion window "<n>h", n from 1 to 168 (one week). OpenAI accepts only
// "24h"; shorter and longer windows are an extension for deployments that want them.
core::Result<int64_t> parse_completion_window(std::string_view window);

}  // namespace zs::platform
