#pragma once
// The OpenAI request schema (/v1/chat/completions, /v1/completions, /v1/embeddings): parsing and validation
// of client JSON into plain structs, pure (no I/O). Every refusal names the field at fault,
// so that both the worker and the gateway answer 400 with a useful OpenAI error object.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/sampling_params.h"
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
  size_t max_embedding_inputs = 2048;  // inputs of one /v1/embeddings request (OpenAI's limit)
  int max_dimensions = 1 << 16;        // upper bound for `dimensions` before the model's own
  int max_choices = 8;                 // `n`
};

enum class Role { kSystem, kUser, kAssistant, kTool };
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

// A call the assistant made earlier in the conversation (messages[].tool_calls).
struct ToolCallRef {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the client sent it
};

struct ChatMessage {
  Role role = Role::kUser;
  std::vector<ContentPart> content;  // a string content becomes one text part
  std::string name;                  // optional participant name
  std::vector<ToolCallRef> tool_calls;  // assistant
  std::string tool_call_id;             // tool: the call this result answers

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
  // logit_bias: token id -> bias in [-100, 100] (whether the id is in the vocabulary is the
  // worker's check).
  std::vector<std::pair<int32_t, double>> logit_bias;
  int n = 1;  // choices to generate from the one prompt, [1, Limits::max_choices]

  // The values the engine samples with (OpenAI's defaults for absent fields; seed 0 when absent,
  // for the caller to choose). The parser refuses a request whose values fail
  // core::SamplingParams::invalid_field(), so the result of a parsed request is always valid.
  core::SamplingParams to_params() const;
};

// How the output must be shaped (`response_format`), or a GBNF `grammar` (llama.cpp's server).
struct OutputFormat {
  enum class Type { kText, kJsonObject, kJsonSchema, kGrammar };
  Type type = Type::kText;
  std::string grammar;      // kGrammar: the request's "grammar" (GBNF, as llama.cpp's server takes it)
  std::string schema_name;  // json_schema.name
  std::string schema;       // json_schema.schema as JSON text, keys in the client's order
  bool strict = false;      // json_schema.strict (the output is always constrained either way)
};

// Log-probabilities asked for: chat `logprobs: true` + `top_logprobs`, or completions' integer
// `logprobs`. -1: none; else how many alternatives per token (0..20).
struct LogprobsOption {
  int top = -1;
  bool wanted() const { return top >= 0; }
};

// tools[]: {"type": "function", "function": {"name", "description", "parameters", "strict"}}.
struct ToolDefinition {
  std::string name;
  std::string description;
  std::string parameters;  // JSON Schema text, keys in the client's order; empty when absent
  bool strict = false;
};

// tool_choice: "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.
// Absent: "auto" with tools, "none" without.
struct ToolChoice {
  enum class Mode { kNone, kAuto, kRequired, kFunction };
  Mode mode = Mode::kNone;
  std::string function;  // kFunction
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  std::vector<ToolDefinition> tools;
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingOptions sampling;
  OutputFormat response_format;
  LogprobsOption logprobs;
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
  OutputFormat output;  // only "grammar" (completions have no response_format)
  LogprobsOption logprobs;
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

// /v1/embeddings. One input is a text (tokenized by the worker) or token ids used as given.
struct EmbeddingInput {
  bool is_tokens = false;
  std::string text;             // !is_tokens: never empty
  std::vector<int32_t> tokens;  // is_tokens: never empty, every id in [0, 2^31)
};

enum class EncodingFormat { kFloat, kBase64 };

struct EmbeddingRequest {
  std::string model;
  // `input` as a string, an array of strings, an array of token ids (one input) or an array
  // of arrays of token ids; never empty, at most Limits::max_embedding_inputs.
  std::vector<EmbeddingInput> inputs;
  bool single = false;  // `input` was one string or one array of token ids: refusals name "input"
  EncodingFormat encoding_format = EncodingFormat::kFloat;
  std::optional<int> dimensions;  // >= 1; whether the model allows it is the worker's check
  std::string user;               // accepted, only for logs
};

// Parses and validates a /v1/embeddings body. Refusals name the field: "input", "input[3]"
// (an empty string, a token array with a bad id), "input[3][7]" (the id at fault),
// "encoding_format", "dimensions", "model", "user". Unknown fields are ignored.
core::Result<EmbeddingRequest> parse_embedding_request(const std::string& body, const Limits& limits = {},
                                                       ApiError* error = nullptr);

// What a model serves: text generation (/v1/chat/completions, /v1/completions) or vectors
// (/v1/embeddings). Shown as "type" in /v1/models.
enum class ModelKind { kChat, kEmbedding };
const char* model_kind_name(ModelKind kind);             // "chat" | "embedding"
bool is_embeddings_endpoint(std::string_view endpoint);  // "/v1/embeddings"

// The 400 (param "model", code "wrong_model_type") for a request to `endpoint` that a model
// of `kind` does not serve, or nullopt when it serves it. Worker and gateway answer the same.
std::optional<ApiError> wrong_model_kind_error(ModelKind kind, std::string_view endpoint, const std::string& model);

// The message a worker answers (400, param "messages[i].content[j].image_url.url") for a
// request with remote image URLs.
inline constexpr const char* kRemoteImageRefused = "remote image URLs are not fetched by workers";

// For a worker: the 400 for the first remote image URL in `request`, if any.
std::optional<ApiError> remote_image_error(const ChatRequest& request);

// A data: URL split and decoded. Only base64 image data is accepted.
core::Result<ImageInput> parse_image_data_url(const std::string& url, size_t max_bytes);

}  // namespace zs::gateway::openai
