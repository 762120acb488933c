#pragma once
// Tool calling on top of the chat templates: the tools and earlier calls/results written into
// the conversation in the convention a model family was trained on, the grammar of a forced
// call (so its arguments always parse under the parameters' schema), and the model's output
// parsed back into calls. Pure functions and one small per-request class; no I/O, no locks.
//
// Four conventions, each chosen by the chat template detected from the model file:
//  - kHermes: tools as JSON lines in <tools></tools> in the system prompt, a call as
//    <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, results as
//    <tool_response>...</tool_response> in a user turn (Qwen2.5, Hermes and other ChatML
//    models; also used for families whose templates here define no tool format).
//  - kLlama3: Llama 3.1's JSON tool calling: the tools and the instruction in the first user
//    message, a call as {"name": ..., "parameters": {...}}, results in "ipython" turns.
//  - kMistral (template mistral-v3: Mistral 7B v0.3, Nemo, Small): the tools in
//    [AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS] before the last user turn, calls as
//    [TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...], results as
//    [TOOL_RESULTS] {"content": ..., "call_id": ...}[/TOOL_RESULTS]; call ids of 9 characters.
//  - kPhi (template phi4-mini): the tools as a JSON list in <|tool|>...<|/tool|> at the end of
//    the system turn, calls as <|tool_call|>[{"name": ..., "arguments": {...}}]<|/tool_call|>,
//    results as <|tool_response|> turns.
// The markers of Mistral and Phi are control tokens of their vocabularies: the worker has the
// tokenizer render them as text (tool_call_markers) so that output can be parsed and
// constrained like any other text.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/chat/chat_template.h"
#include "engine/structured/grammar.h"
#include "engine/structured/json_schema.h"

namespace zs::engine::structured {

enum class ToolFormat { kHermes, kLlama3, kMistral, kPhi };
ToolFormat tool_format_for(ChatTemplateKind kind);

// The texts that open and close calls in the model's output; where the vocabulary has them as
// control tokens, they must be rendered as text for parse_tool_output and the grammar to see.
std::vector<std::string> tool_call_markers(ToolFormat format);

// An id for a call the model made: "call_" + 24 hex digits, or 9 alphanumerics for kMistral
// (its template refuses other lengths).
std::string new_tool_call_id(ToolFormat format);

struct ToolSpec {
  std::string name;
  std::string description;
  std::string parameters;  // JSON Schema text (keys in the client's order); empty: no parameters
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

// A message before tools are written in: plain text parts, plus the assistant's earlier calls
// or, for a tool result, the id of the call it answers.
struct ToolChatMessage {
  ChatMessage message;          // role system, user, assistant or tool
  std::vector<ToolCall> calls;  // assistant
  std::string tool_call_id;     // tool
};

// The conversation as the family's template expects it: roles system/user/assistant, plus
// "tool" (results, wrapped by the template) and "tools" (the definitions, for mistral-v3's
// slot). `tools` may be empty (tool_choice none): earlier calls and results are still written in.
std::vector<ChatMessage> render_tool_conversation(ToolFormat format, const std::vector<ToolChatMessage>& messages,
                                                  const std::vector<ToolSpec>& tools);

// The grammar of output that is nothing but calls to `tools` (any of them; one for a named
// tool_choice): one call, or up to `max_calls` with parallel calls. Fails (naming the schema
// keyword in `error`) when a tool's parameters are not a supported schema.
core::Result<Grammar> tool_call_grammar(ToolFormat format, const std::vector<ToolSpec>& tools, int max_calls,
                                        SchemaError* error = nullptr, std::string* failed_tool = nullptr);

// The model's output split into text and calls. Calls to unknown tools or that do not parse
// leave the whole output as text.
struct ToolOutput {
  std::string content;  // text outside the calls, trimmed
  std::vector<ToolCall> calls;
};
ToolOutput parse_tool_output(ToolFormat format, const std::string& text, const std::vector<ToolSpec>& tools);

// While streaming: whether output that begins with `text` may still turn out to be a tool call
// (so it must be held back), as opposed to plain text that can be sent.
bool may_be_tool_call(ToolFormat format, const std::string& text);

// While streaming with tools: splits the output as it comes into text that can be sent now and
// text held back because it may be (or is) a tool call; the whole output is parsed at the end.
// Once a call has begun, everything after it is held.
class ToolCallStream {
 public:
  explicit ToolCallStream(ToolFormat format) : format_(format) {}
  // The part of the output so far, up to and including `piece`, that can be sent now.
  std::string push(const std::string& piece);
  bool in_call() const { return mode_ == Mode::kCall; }
  // The text held back so far (at the end: content after all when no call parsed).
  std::string take_held() { return std::exchange(held_, {}); }

 private:
  enum class Mode { kUndecided, kText, kCall };
  ToolFormat format_;
  Mode mode_ = Mode::kUndecided;
  std::string held_;
};

}  // namespace zs::engine::structured
