#include "engine/chat/chat_template.h"

#include <algorithm>
#include <array>
#include <utility>

#include "core/log.h"

namespace zs::engine {
namespace {

constexpr std::string_view kLogComponent = "chat";

struct NamedKind {
  std::string_view name;
  ChatTemplateKind kind;
};

// Canonical names first (chat_template_name returns the first match), then aliases.
constexpr std::array<NamedKind, 18> kNames = {{
    {"chatml", ChatTemplateKind::kChatML},
    {"llama2", ChatTemplateKind::kLlama2},
    {"llama3", ChatTemplateKind::kLlama3},
    {"vicuna", ChatTemplateKind::kVicuna},
    {"idefics3", ChatTemplateKind::kIdefics3},
    {"gemma", ChatTemplateKind::kGemma},
    {"phi3", ChatTemplateKind::kPhi3},
    {"mistral", ChatTemplateKind::kMistral},
    {"mistral-v3", ChatTemplateKind::kMistralV3},
    {"phi4-mini", ChatTemplateKind::kPhi4Mini},
    {"zephyr", ChatTemplateKind::kZephyr},
    {"deepseek", ChatTemplateKind::kDeepSeek},
    {"glm4", ChatTemplateKind::kGlm4},
    {"qwen", ChatTemplateKind::kChatML},
    {"llava", ChatTemplateKind::kVicuna},
    {"smolvlm", ChatTemplateKind::kIdefics3},
    {"deepseek3", ChatTemplateKind::kDeepSeek},
    {"chatglm4", ChatTemplateKind::kGlm4},
}};

// DeepSeek's markers use FULLWIDTH VERTICAL LINE (U+FF5C) and LOWER ONE EIGHTH BLOCK (U+2581).
constexpr std::string_view kDeepSeekUser = "<｜User｜>";
constexpr std::string_view kDeepSeekAssistant = "<｜Assistant｜>";
constexpr std::string_view kDeepSeekEnd = "<｜end▁of▁sentence｜>";

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// One message's content: its text with the offsets (into that text) of its images.
struct Content {
  std::string text;
  std::vector<size_t> image_offsets;
  std::vector<int> image_indices;

  void append_text(std::string_view s) { text += s; }
  void append_image(int index) {
    image_offsets.push_back(text.size());
    image_indices.push_back(index);
  }
  void append(const Content& other) {
    for (size_t i = 0; i < other.image_offsets.size(); ++i) {
      image_offsets.push_back(text.size() + other.image_offsets[i]);
      image_indices.push_back(other.image_indices[i]);
    }
    text += other.text;
  }
  // Jinja's `trim` / Python's strip() on the whole content. Images keep their place relative
  // to the text; one that sat in stripped whitespace moves to the nearest kept end.
  void trim() {
    size_t b = 0;
    while (b < text.size() && is_space(text[b])) ++b;
    size_t e = text.size();
    while (e > b && is_space(text[e - 1])) --e;
    for (size_t& off : image_offsets) off = std::clamp(off, b, e) - b;
    text = text.substr(b, e - b);
  }
};

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

enum class Role { kSystem, kUser, kAssistant };

// A validated message: its role and its content with image ordinals resolved.
struct Turn {
  Role role;
  const ChatMessage* message;
  std::vector<int> image_indices;  // one per image part, in part order
  bool tool_result = false;        // role "tool": a user-side turn the template may wrap
};

// The validated conversation, and the tool definitions of a "tools" message if there is one.
struct Conversation {
  std::vector<Turn> turns;
  std::optional<std::string> tools;
};

enum class ImagePlacement {
  kInline,      // where the image part is among the text parts
  kBeforeText,  // all images first, each followed by "\n" (LLaVA-1.5)
};

struct ContentStyle {
  ImagePlacement images = ImagePlacement::kInline;
  bool trim_each_text_part = false;  // Gemma 3 trims every text item on its own
};

Content flatten(const Turn& turn, ContentStyle style) {
  Content c;
  size_t next_image = 0;
  if (style.images == ImagePlacement::kBeforeText) {
    for (const ChatPart& p : turn.message->parts) {
      if (p.kind != ChatPart::Kind::kImage) continue;
      c.append_image(turn.image_indices[next_image++]);
      c.append_text("\n");
    }
    for (const ChatPart& p : turn.message->parts) {
      if (p.kind == ChatPart::Kind::kText) c.append_text(p.text);
    }
    return c;
  }
  for (const ChatPart& p : turn.message->parts) {
    if (p.kind == ChatPart::Kind::kImage) {
      c.append_image(turn.image_indices[next_image++]);
    } else {
      c.append_text(style.trim_each_text_part ? trimmed(p.text) : std::string_view(p.text));
    }
  }
  return c;
}

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kSystem: return "system";
    case Role::kUser: return "user";
    case Role::kAssistant: return "assistant";
  }
  return "?";
}

// Checks what every template needs and resolves image ordinals.
core::Result<Conversation> validate(const std::vector<ChatMessage>& messages) {
  if (messages.empty()) {
    return core::Status::error("the conversation is empty: at least one message is needed");
  }
  Conversation conv;
  std::vector<Turn>& turns = conv.turns;
  turns.reserve(messages.size());
  int image_ordinal = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string where = "message " + std::to_string(i);
    Turn t{Role::kUser, &m, {}};
    if (m.role == "tools") {
      if (conv.tools) return core::Status::error(where + ": only one message may carry the tool definitions");
      conv.tools = message_text(m);
      continue;
    }
    if (m.role == "system") {
      t.role = Role::kSystem;
    } else if (m.role == "user") {
      t.role = Role::kUser;
    } else if (m.role == "assistant") {
      t.role = Role::kAssistant;
    } else if (m.role == "tool") {
      t.role = Role::kUser;  // tool output: on the user side of the conversation
      t.tool_result = true;
    } else {
      return core::Status::error(where + ": role '" + m.role +
                                 "' is not supported (expected system, user, assistant or tool)");
    }
    // Most templates only know a leading system prompt; one in the middle of a conversation
    // would be silently dropped or misplaced by several of them, so it is refused for all.
    if (t.role == Role::kSystem && !turns.empty()) {
      return core::Status::error(where + ": a system message is only allowed as the first message");
    }
    for (const ChatPart& p : m.parts) {
      if (p.kind != ChatPart::Kind::kImage) continue;
      if (t.role != Role::kUser || t.tool_result) {
        return core::Status::error(where + ": images are only allowed in user messages, not in " +
                                   m.role + " messages");
      }
      t.image_indices.push_back(p.image_index >= 0 ? p.image_index : image_ordinal);
      ++image_ordinal;
    }
    turns.push_back(std::move(t));
  }
  if (turns.empty()) return core::Status::error("the conversation has no message besides the tool definitions");
  return conv;
}

bool starts_with_tool_calls(const Turn& t) {
  const std::string text = message_text(*t.message);
  const size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string::npos && std::string_view(text).substr(first).starts_with(kMistralToolCalls);
}

// Templates that fold the system prompt into the first user turn and raise on anything but
// user/assistant/user/... (Llama-2, Mistral, Gemma) get the same check here, as a clear error.
// mistral-v3 leaves tool results and the assistant's calls out of the check.
core::Status check_alternation(ChatTemplateKind kind, const std::vector<Turn>& turns) {
  size_t first = (turns[0].role == Role::kSystem) ? 1 : 0;
  if (first == turns.size()) {
    return core::Status::error(std::string("the ") + std::string(chat_template_name(kind)) +
                               " template puts the system message into the first user message, "
                               "but no user message follows it");
  }
  size_t n = 0;  // turns checked so far
  for (size_t i = first; i < turns.size(); ++i) {
    if (kind == ChatTemplateKind::kMistralV3 &&
        (turns[i].tool_result || (turns[i].role == Role::kAssistant && starts_with_tool_calls(turns[i]))))
      continue;
    Role expected = (n++ % 2 == 0) ? Role::kUser : Role::kAssistant;
    if (turns[i].role != expected) {
      return core::Status::error(
          "message " + std::to_string(i) + ": the " + std::string(chat_template_name(kind)) +
          " template needs user and assistant messages to alternate, starting with user; expected " +
          std::string(role_name(expected)) + ", got " + std::string(role_name(turns[i].role)));
    }
  }
  return core::Status::ok();
}

// Accumulates the prompt and the absolute offsets of its images.
class PromptBuilder {
 public:
  void text(std::string_view s) { out_.text += s; }
  void content(const Content& c) {
    for (size_t i = 0; i < c.image_offsets.size(); ++i) {
      out_.image_offsets.push_back(out_.text.size() + c.image_offsets[i]);
      out_.image_indices.push_back(c.image_indices[i]);
    }
    out_.text += c.text;
  }
  RenderedPrompt take() { return std::move(out_); }

 private:
  RenderedPrompt out_;
};

std::string system_text(const std::vector<Turn>& turns) {
  if (turns[0].role != Role::kSystem) return {};
  return flatten(turns[0], {}).text;
}

RenderedPrompt render_chatml(const std::vector<Turn>& turns, bool gen) {
  PromptBuilder b;
  for (const Turn& t : turns) {
    b.text("<|im_start|>");
    b.text(role_name(t.role));
    b.text("\n");
    b.content(flatten(t, {}));
    b.text("<|im_end|>\n");
  }
  if (gen) b.text("<|im_start|>assistant\n");
  return b.take();
}

// Meta's Llama-2 chat template: BOS before every [INST], the system block inside the first
// user turn, content stripped, and the [/INST] itself acts as the generation prompt.
RenderedPrompt render_llama2(const std::vector<Turn>& turns, std::string_view bos,
                             std::string_view eos) {
  PromptBuilder b;
  const std::string system = system_text(turns);
  bool first = true;
  for (const Turn& t : turns) {
    if (t.role == Role::kSystem) continue;
    Content c;
    if (first && turns[0].role == Role::kSystem) {
      c.append_text("<<SYS>>\n" + system + "\n<</SYS>>\n\n");
    }
    first = false;
    c.append(flatten(t, {}));
    c.trim();
    if (t.role == Role::kUser) {
      b.text(bos);
      b.text("[INST] ");
      b.content(c);
      b.text(" [/INST]");
    } else {
      b.text(" ");
      b.content(c);
      b.text(" ");
      b.text(eos);
    }
  }
  return b.take();
}

RenderedPrompt render_llama3(const std::vector<Turn>& turns, bool gen, std::string_view bos) {
  PromptBuilder b;
  b.text(bos);
  for (const Turn& t : turns) {
    b.text("<|start_header_id|>");
    b.text(t.tool_result ? "ipython" : role_name(t.role));
    b.text("<|end_header_id|>\n\n");
    Content c = flatten(t, {});
    c.trim();
    b.content(c);
    b.text("<|eot_id|>");
  }
  if (gen) b.text("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return b.take();
}

// FastChat's vicuna_v1.1 / LLaVA's conv_vicuna_v1: "{system} USER: {q} ASSISTANT: {a}</s>",
// with LLaVA-1.5's image at the start of the user turn followed by a newline.
RenderedPrompt render_vicuna(const std::vector<Turn>& turns, bool gen, std::string_view eos) {
  PromptBuilder b;
  for (const Turn& t : turns) {
    switch (t.role) {
      case Role::kSystem:
        b.content(flatten(t, {}));
        b.text(" ");
        break;
      case Role::kUser:
        b.text("USER: ");
        b.content(flatten(t, {ImagePlacement::kBeforeText}));
        b.text(" ");
        break;
      case Role::kAssistant:
        b.text("ASSISTANT: ");
        b.content(flatten(t, {}));
        b.text(eos);
        break;
    }
  }
  if (gen) b.text("ASSISTANT:");
  return b.take();
}

// HuggingFace's Idefics3 / SmolVLM template. The colon is glued to the role when the message
// starts with an image ("User:<image>..."), as the published template does.
RenderedPrompt render_idefics3(const std::vector<Turn>& turns, bool gen) {
  PromptBuilder b;
  b.text("<|im_start|>");
  for (const Turn& t : turns) {
    switch (t.role) {
      case Role::kSystem: b.text("System"); break;
      case Role::kUser: b.text("User"); break;
      case Role::kAssistant: b.text("Assistant"); break;
    }
    const auto& parts = t.message->parts;
    bool starts_with_image = !parts.empty() && parts[0].kind == ChatPart::Kind::kImage;
    b.text(starts_with_image ? ":" : ": ");
    b.content(flatten(t, {}));
    b.text("<end_of_utterance>\n");
  }
  if (gen) b.text("Assistant:");
  return b.take();
}

// Gemma 3's template (Gemma 1/2 render the same without a system message): no system role,
// so the system text leads the first user turn; the assistant is called "model".
RenderedPrompt render_gemma(const std::vector<Turn>& turns, bool gen, std::string_view bos) {
  PromptBuilder b;
  b.text(bos);
  const bool has_system = turns[0].role == Role::kSystem;
  bool first = true;
  for (const Turn& t : turns) {
    if (t.role == Role::kSystem) continue;
    b.text(t.role == Role::kUser ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
    if (first && has_system) b.text(system_text(turns) + "\n\n");
    first = false;
    b.content(flatten(t, {ImagePlacement::kInline, /*trim_each_text_part=*/true}));
    b.text("<end_of_turn>\n");
  }
  if (gen) b.text("<start_of_turn>model\n");
  return b.take();
}

// Phi-3 (mini/small): BOS, "<|role|>\n...<|end|>\n"; EOS closes a prompt with no generation.
RenderedPrompt render_phi3(const std::vector<Turn>& turns, bool gen, std::string_view bos,
                           std::string_view eos) {
  PromptBuilder b;
  b.text(bos);
  for (const Turn& t : turns) {
    b.text("<|");
    b.text(role_name(t.role));
    b.text("|>\n");
    b.content(flatten(t, {}));
    b.text("<|end|>\n");
  }
  b.text(gen ? std::string_view("<|assistant|>\n") : eos);
  return b.take();
}

// Mistral 7B Instruct v0.1/v0.2: one BOS, "[INST] q [/INST]a</s>". Its template has no
// system role; like Llama-2 we lead the first user turn with the system text.
RenderedPrompt render_mistral(const std::vector<Turn>& turns, std::string_view bos,
                              std::string_view eos) {
  PromptBuilder b;
  b.text(bos);
  const bool has_system = turns[0].role == Role::kSystem;
  bool first = true;
  for (const Turn& t : turns) {
    if (t.role == Role::kSystem) continue;
    if (t.role == Role::kUser) {
      b.text("[INST] ");
      if (first && has_system) b.text(system_text(turns) + "\n\n");
      b.content(flatten(t, {}));
      b.text(" [/INST]");
    } else {
      b.content(flatten(t, {}));
      b.text(eos);
    }
    first = false;
  }
  return b.take();
}

// Mistral v0.3 (and Nemo, Small): the tool definitions right before the last user turn, the
// system text leading that turn (the published template writes it only when that turn is the
// last message; we keep it whenever there is one), a space before each answer, calls as
// "[TOOL_CALLS] [...]</s>", results as "[TOOL_RESULTS] {...}[/TOOL_RESULTS]".
RenderedPrompt render_mistral_v3(const Conversation& conv, std::string_view bos, std::string_view eos) {
  const std::vector<Turn>& turns = conv.turns;
  PromptBuilder b;
  b.text(bos);
  size_t last_user = turns.size();
  for (size_t i = 0; i < turns.size(); ++i)
    if (turns[i].role == Role::kUser && !turns[i].tool_result) last_user = i;
  for (size_t i = 0; i < turns.size(); ++i) {
    const Turn& t = turns[i];
    if (t.role == Role::kSystem) continue;
    if (t.tool_result) {
      b.text(kMistralToolResults);
      b.text(" ");
      b.content(flatten(t, {}));
      b.text(kMistralToolResultsEnd);
    } else if (t.role == Role::kUser) {
      if (conv.tools && i == last_user) {
        b.text(kMistralAvailableTools);
        b.text(" ");
        b.text(*conv.tools);
        b.text(kMistralAvailableToolsEnd);
      }
      b.text("[INST] ");
      if (i == last_user && turns[0].role == Role::kSystem) b.text(system_text(turns) + "\n\n");
      b.content(flatten(t, {}));
      b.text("[/INST]");
    } else {
      Content c = flatten(t, {});
      c.trim();
      if (!starts_with_tool_calls(t)) b.text(" ");
      b.content(c);
      b.text(eos);
    }
  }
  return b.take();
}

// Phi-4-mini: "<|role|>" + content + "<|end|>" with no newlines and no BOS; the tool definitions
// end the system text inside <|tool|>...<|/tool|> (written there by the tool layer). Its
// published template has no form of its own for tool results (it would print them after
// <|tool|>, the tag of the definitions); we write them as a <|tool_response|> turn, the
// vocabulary's token for them.
RenderedPrompt render_phi4_mini(const std::vector<Turn>& turns, bool gen, std::string_view eos) {
  PromptBuilder b;
  for (const Turn& t : turns) {
    if (t.tool_result) {
      b.text(kPhiToolResponse);
    } else {
      b.text("<|");
      b.text(role_name(t.role));
      b.text("|>");
    }
    b.content(flatten(t, {}));
    b.text("<|end|>");
  }
  b.text(gen ? std::string_view("<|assistant|>") : eos);
  return b.take();
}

// Zephyr: "<|role|>\n" + content + eos + "\n"; the newline after each turn survives Jinja's
// trim_blocks because it follows an expression, not a block tag.
RenderedPrompt render_zephyr(const std::vector<Turn>& turns, bool gen, std::string_view eos) {
  PromptBuilder b;
  for (const Turn& t : turns) {
    b.text("<|");
    b.text(role_name(t.role));
    b.text("|>\n");
    b.content(flatten(t, {}));
    b.text(eos);
    b.text("\n");
  }
  if (gen) b.text("<|assistant|>\n");
  return b.take();
}

// DeepSeek V3 / R1: BOS, the system text bare, then "<｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜>".
RenderedPrompt render_deepseek(const std::vector<Turn>& turns, bool gen, std::string_view bos) {
  PromptBuilder b;
  b.text(bos);
  for (const Turn& t : turns) {
    switch (t.role) {
      case Role::kSystem:
        b.content(flatten(t, {}));
        break;
      case Role::kUser:
        b.text(kDeepSeekUser);
        b.content(flatten(t, {}));
        break;
      case Role::kAssistant:
        b.text(kDeepSeekAssistant);
        b.content(flatten(t, {}));
        b.text(kDeepSeekEnd);
        break;
    }
  }
  if (gen) b.text(kDeepSeekAssistant);
  return b.take();
}

// GLM-4: the prefix "[gMASK]<sop>" (two special tokens), then "<|role|>\n" + content for every
// turn with nothing between turns; the generation prompt is a bare "<|assistant|>".
RenderedPrompt render_glm4(const std::vector<Turn>& turns, bool gen) {
  PromptBuilder b;
  b.text("[gMASK]<sop>");
  for (const Turn& t : turns) {
    b.text("<|");
    b.text(role_name(t.role));
    b.text("|>\n");
    b.content(flatten(t, {}));
  }
  if (gen) b.text("<|assistant|>");
  return b.take();
}

}  // namespace

std::string message_text(const ChatMessage& m) {
  std::string out;
  for (const ChatPart& p : m.parts)
    if (p.kind == ChatPart::Kind::kText) out += p.text;
  return out;
}

std::optional<ChatTemplateKind> detect_chat_template(std::string_view src) {
  // Order matters: SmolVLM's template also contains <|im_start|>, Phi-3's and Zephyr's share
  // <|user|>/<|assistant|> (with GLM-4's), and Llama-2's and Mistral's share [INST].
  if (contains(src, "<end_of_utterance>")) return ChatTemplateKind::kIdefics3;
  if (contains(src, "[gMASK]<sop>")) return ChatTemplateKind::kGlm4;
  if (contains(src, "<|im_start|>")) return ChatTemplateKind::kChatML;
  if (contains(src, "<|start_header_id|>")) return ChatTemplateKind::kLlama3;
  if (contains(src, "<start_of_turn>")) return ChatTemplateKind::kGemma;
  if (contains(src, kDeepSeekUser) || contains(src, kDeepSeekAssistant)) {
    return ChatTemplateKind::kDeepSeek;
  }
  const bool phi_or_zephyr_tags = contains(src, "<|user|>") || contains(src, "<|assistant|>");
  if (phi_or_zephyr_tags && contains(src, "<|end|>")) {
    return contains(src, kPhiToolList) ? ChatTemplateKind::kPhi4Mini : ChatTemplateKind::kPhi3;
  }
  if (phi_or_zephyr_tags) return ChatTemplateKind::kZephyr;
  if (contains(src, "[INST]")) {
    if (contains(src, kMistralAvailableTools)) return ChatTemplateKind::kMistralV3;
    return contains(src, "<<SYS>>") ? ChatTemplateKind::kLlama2 : ChatTemplateKind::kMistral;
  }
  if (contains(src, "USER:") || contains(src, "ASSISTANT:")) return ChatTemplateKind::kVicuna;
  return std::nullopt;
}

std::string_view chat_template_name(ChatTemplateKind kind) {
  for (const NamedKind& n : kNames) {
    if (n.kind == kind) return n.name;
  }
  return "unknown";
}

core::Result<ChatTemplateKind> parse_chat_template_name(std::string_view name) {
  for (const NamedKind& n : kNames) {
    if (n.name == name) return n.kind;
  }
  std::string known;
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (i) known += ", ";
    known += kNames[i].name;
  }
  return core::Status::error("unknown chat template '" + std::string(name) +
                             "' (known: " + known + ")");
}

core::Result<ChatTemplateChoice> choose_chat_template(std::string_view override_name,
                                                      std::string_view gguf_jinja_source) {
  ChatTemplateChoice choice;
  if (!override_name.empty()) {
    auto kind = parse_chat_template_name(override_name);
    if (!kind) return kind.status().with_context("--chat-template");
    choice.kind = *kind;
    return choice;
  }
  if (auto kind = detect_chat_template(gguf_jinja_source)) {
    choice.kind = *kind;
    return choice;
  }
  // ChatML is the most widely trained-on format and its markers are unambiguous, so it is the
  // least harmful guess; the warning tells the operator to pass --chat-template.
  choice.kind = ChatTemplateKind::kChatML;
  choice.warning = gguf_jinja_source.empty()
                       ? "the model has no tokenizer.chat_template; using chatml (pass "
                         "--chat-template to choose another)"
                       : "the model's tokenizer.chat_template is not one we recognise; using "
                         "chatml (pass --chat-template to choose another)";
  core::log_warn(kLogComponent, choice.warning);
  return choice;
}

core::Result<RenderedPrompt> apply_chat_template(ChatTemplateKind kind,
                                                 const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt,
                                                 std::string_view bos_text,
                                                 std::string_view eos_text) {
  auto conv = validate(messages);
  if (!conv) return conv.status();
  const std::vector<Turn>& turns = conv->turns;
  const bool gen = add_generation_prompt;
  if (conv->tools && kind != ChatTemplateKind::kMistralV3) {
    return core::Status::error(std::string("the ") + std::string(chat_template_name(kind)) +
                               " template has no place for a \"tools\" message (only mistral-v3 has)");
  }
  switch (kind) {
    case ChatTemplateKind::kChatML:
      return render_chatml(turns, gen);
    case ChatTemplateKind::kLlama2:
      ZS_RETURN_IF_ERROR(check_alternation(kind, turns));
      return render_llama2(turns, bos_text, eos_text);
    case ChatTemplateKind::kLlama3:
      return render_llama3(turns, gen, bos_text);
    case ChatTemplateKind::kVicuna:
      return render_vicuna(turns, gen, eos_text);
    case ChatTemplateKind::kIdefics3:
      return render_idefics3(turns, gen);
    case ChatTemplateKind::kGemma:
      ZS_RETURN_IF_ERROR(check_alternation(kind, turns));
      return render_gemma(turns, gen, bos_text);
    case ChatTemplateKind::kPhi3:
      return render_phi3(turns, gen, bos_text, eos_text);
    case ChatTemplateKind::kMistral:
      ZS_RETURN_IF_ERROR(check_alternation(kind, turns));
      return render_mistral(turns, bos_text, eos_text);
    case ChatTemplateKind::kMistralV3:
      ZS_RETURN_IF_ERROR(check_alternation(kind, turns));
      return render_mistral_v3(*conv, bos_text, eos_text);
    case ChatTemplateKind::kPhi4Mini:
      return render_phi4_mini(turns, gen, eos_text);
    case ChatTemplateKind::kZephyr:
      return render_zephyr(turns, gen, eos_text);
    case ChatTemplateKind::kDeepSeek:
      return render_deepseek(turns, gen, bos_text);
    case ChatTemplateKind::kGlm4:
      return render_glm4(turns, gen);
  }
  return core::Status::error("unknown chat template kind " +
                             std::to_string(static_cast<int>(kind)));
}

}  // namespace zs::engine
