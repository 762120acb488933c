#pragma once
// Tool calling on top of the chat templates: the tools and earlier calls/results written into
// the conversation in the convention a model family was trained on, the grammar of a forced
// call (so its arguments always parse under the parameters' schema), and the model's output
// parsed back into calls.
//
// Two conventions:
//  - kHermes: tools as JSON lines in <tools></tools> in the system prompt, a call as
//    <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, results as
//    <tool_response>...</tool_response> in a user turn (Qwen2.5, Hermes and other ChatML
//    models; also used for families whose templates here define no tool format).
//  - kLlama3: Llama 3.1's JSON tool calling: the tools and the instruction in the first user
//    message, a call as {"name": ..., "parameters": {...}}, results in "ipython" turns.
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/chat/chat_template.h"
#include "engine/structured/grammar.h"
#include "engine/structured/json_schema.h"

namespace zs::engine::structured {

enum class ToolFormat { kHermes, kLlama3 };
ToolFormat tool_format_for(ChatTemplateKind kind);

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

// The conversation as the family's template expects it: only system/user/assistant (and
// "ipython" for Llama 3) roles remain. `tools` may be empty (tool_choice none): earlier calls
// and results are still written in.
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

}  // namespace zs::engine::structured
