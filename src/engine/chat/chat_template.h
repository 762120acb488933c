#pragma once
// Chat templates: turning a conversation into the one prompt string a model was trained on.
//
// A GGUF file carries its template as Jinja source (`tokenizer.chat_template`). We do not run
// Jinja: we recognise the common templates by distinctive substrings of that source and render
// them natively, which keeps the worker free of a template engine and makes every format
// reviewable and testable here. See docs/chat-templates.md for the formats and the fallback.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::engine {

struct ChatPart {
  enum class Kind { kText, kImage };
  Kind kind = Kind::kText;
  std::string text;      // kText only
  int image_index = -1;  // kImage only: which of the request's images; -1 = its ordinal
};

struct ChatMessage {
  // "system", "user" or "assistant"; "tool": a tool result, which each template wraps in its
  // own way (Llama 3: an "ipython" turn; mistral-v3: [TOOL_RESULTS]; phi4-mini:
  // <|tool_response|>; the others: a user turn); "tools": the tool definitions, for the one
  // template with a slot of its own for them (mistral-v3, before the last user message).
  std::string role;
  std::vector<ChatPart> parts;
};

// The message's text parts, concatenated (images left out).
std::string message_text(const ChatMessage& m);

enum class ChatTemplateKind {
  kChatML,    // <|im_start|>role\n...<|im_end|>  (Qwen, Qwen2-VL, SmolLM, OpenHermes, ...)
  kLlama2,    // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
  kLlama3,    // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kVicuna,    // "... USER: ... ASSISTANT: ...</s>"  (Vicuna v1.1, LLaVA-1.5)
  kIdefics3,  // <|im_start|>User:...<end_of_utterance>\n  (SmolVLM, Idefics3)
  kGemma,     // <start_of_turn>user\n...<end_of_turn>\n  (Gemma 1/2/3)
  kPhi3,      // <|user|>\n...<|end|>\n
  kMistral,   // <s>[INST] ... [/INST]...</s>  (Mistral 7B Instruct v0.1/v0.2, Mixtral)
  kMistralV3, // <s>[AVAILABLE_TOOLS] ...[/AVAILABLE_TOOLS][INST] ...[/INST] ...</s>  (v0.3, Nemo, Small)
  kPhi4Mini,  // <|system|>...<|tool|>[...]<|/tool|><|end|><|user|>...<|end|><|assistant|>
  kZephyr,    // <|user|>\n...</s>\n
  kDeepSeek,  // <｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜>  (DeepSeek V3 / R1)
  kGlm4,      // [gMASK]<sop><|user|>\n...<|assistant|>\n...  (GLM-4, ChatGLM4)
};

// The special texts of the tool-calling conventions that templates write and the tool parser
// reads (defined once for both sides).
inline constexpr std::string_view kMistralToolCalls = "[TOOL_CALLS]";
inline constexpr std::string_view kMistralAvailableTools = "[AVAILABLE_TOOLS]";
inline constexpr std::string_view kMistralAvailableToolsEnd = "[/AVAILABLE_TOOLS]";
inline constexpr std::string_view kMistralToolResults = "[TOOL_RESULTS]";
inline constexpr std::string_view kMistralToolResultsEnd = "[/TOOL_RESULTS]";
inline constexpr std::string_view kPhiToolList = "<|tool|>";
inline constexpr std::string_view kPhiToolListEnd = "<|/tool|>";
inline constexpr std::string_view kPhiToolCall = "<|tool_call|>";
inline constexpr std::string_view kPhiToolCallEnd = "<|/tool_call|>";
inline constexpr std::string_view kPhiToolResponse = "<|tool_response|>";

// The template a Jinja source implements, or nullopt when none of ours is recognised.
std::optional<ChatTemplateKind> detect_chat_template(std::string_view jinja_source);

// The name accepted by parse_chat_template_name (and printed in logs), e.g. "chatml".
std::string_view chat_template_name(ChatTemplateKind kind);

// A template named by the operator (`--chat-template llama3`); the error lists valid names.
core::Result<ChatTemplateKind> parse_chat_template_name(std::string_view name);

struct ChatTemplateChoice {
  ChatTemplateKind kind = ChatTemplateKind::kChatML;
  std::string warning;  // non-empty when we fell back to ChatML; already logged
};

// Picks the template for a model: the override when one is given (an unknown name is an
// error), else the template detected from the GGUF source, else ChatML with a warning.
core::Result<ChatTemplateChoice> choose_chat_template(std::string_view override_name,
                                                      std::string_view gguf_jinja_source);

struct RenderedPrompt {
  std::string text;
  // Byte offsets in `text` where the images' embeddings go, in the order they appear. The
  // template's own image token is not in `text`: the worker inserts the model's image
  // tokens/embeddings (and any wrapper such as <fake_token_around_image>) at these offsets.
  std::vector<size_t> image_offsets;
  // image_indices[k] is the ChatPart::image_index of the k-th offset (its ordinal if unset).
  std::vector<int> image_indices;
};

// Renders `messages` with the template. `bos_text` / `eos_text` are the model's BOS and EOS
// token texts; they are written only where the template itself writes bos_token / eos_token,
// so the worker must tokenize `text` without adding another BOS when it already starts with
// one. With `add_generation_prompt` the text ends with the header of an assistant turn.
// Errors: an empty conversation, an unknown role, a system message after the first, images
// outside user messages, a "tools" message for a template without a place for it, and (for
// templates that require it) roles that do not alternate.
core::Result<RenderedPrompt> apply_chat_template(ChatTemplateKind kind,
                                                 const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt,
                                                 std::string_view bos_text,
                                                 std::string_view eos_text);

}  // namespace zs::engine
