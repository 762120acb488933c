#include "engine/chat/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zs::engine {
namespace {

ChatPart text(std::string s) { return {ChatPart::Kind::kText, std::move(s), -1}; }
ChatPart image(int index = -1) { return {ChatPart::Kind::kImage, "", index}; }
ChatMessage msg(std::string role, std::string content) {
  return {std::move(role), {text(std::move(content))}};
}

// System + two user turns + one assistant turn: the shape every template test renders.
std::vector<ChatMessage> conversation() {
  return {msg("system", "You are helpful."), msg("user", "Hello"), msg("assistant", "Hi there!"),
          msg("user", "How are you?")};
}

std::string render(ChatTemplateKind kind, const std::vector<ChatMessage>& messages, bool gen,
                   std::string_view bos, std::string_view eos) {
  auto r = apply_chat_template(kind, messages, gen, bos, eos);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r->text : std::string();
}

// ---- exact renderings -------------------------------------------------------------------

TEST(ChatTemplate, ChatML) {
  EXPECT_EQ(render(ChatTemplateKind::kChatML, conversation(), true, "<s>", "</s>"),
            "<|im_start|>system\nYou are helpful.<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there!<|im_end|>\n"
            "<|im_start|>user\nHow are you?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(ChatTemplateKind::kChatML, {msg("user", "Hello")}, false, "", ""),
            "<|im_start|>user\nHello<|im_end|>\n");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render(ChatTemplateKind::kLlama2, conversation(), true, "<s>", "</s>"),
            "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello [/INST] Hi there! </s>"
            "<s>[INST] How are you? [/INST]");
  // Without a system prompt, as HF renders Llama-2-chat: content is stripped.
  EXPECT_EQ(render(ChatTemplateKind::kLlama2,
                   {msg("user", " hello "), msg("assistant", "response"), msg("user", "again"),
                    msg("assistant", "response")},
                   false, "<s>", "</s>"),
            "<s>[INST] hello [/INST] response </s><s>[INST] again [/INST] response </s>");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, conversation(), true, "<|begin_of_text|>",
                   "<|eot_id|>"),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Llama-3's template trims content.
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, {msg("user", "\n  Hello \n")}, false, "", ""),
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>");
}

TEST(ChatTemplate, Vicuna) {
  EXPECT_EQ(render(ChatTemplateKind::kVicuna, conversation(), true, "<s>", "</s>"),
            "You are helpful. USER: Hello ASSISTANT: Hi there!</s>USER: How are you? ASSISTANT:");
  EXPECT_EQ(render(ChatTemplateKind::kVicuna, {msg("user", "Hello")}, true, "<s>", "</s>"),
            "USER: Hello ASSISTANT:");
}

TEST(ChatTemplate, Idefics3) {
  EXPECT_EQ(render(ChatTemplateKind::kIdefics3, conversation(), true, "<|im_start|>",
                   "<end_of_utterance>"),
            "<|im_start|>System: You are helpful.<end_of_utterance>\n"
            "User: Hello<end_of_utterance>\n"
            "Assistant: Hi there!<end_of_utterance>\n"
            "User: How are you?<end_of_utterance>\n"
            "Assistant:");
}

TEST(ChatTemplate, Gemma) {
  EXPECT_EQ(render(ChatTemplateKind::kGemma, conversation(), true, "<bos>", "<eos>"),
            "<bos><start_of_turn>user\nYou are helpful.\n\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there!<end_of_turn>\n"
            "<start_of_turn>user\nHow are you?<end_of_turn>\n"
            "<start_of_turn>model\n");
  // Without a system prompt (gemma-7b-it), content trimmed.
  EXPECT_EQ(render(ChatTemplateKind::kGemma,
                   {msg("user", "hello\n"), msg("assistant", " response"), msg("user", "again")},
                   false, "", ""),
            "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\nresponse<end_of_turn>\n"
            "<start_of_turn>user\nagain<end_of_turn>\n");
}

TEST(ChatTemplate, Phi3) {
  EXPECT_EQ(render(ChatTemplateKind::kPhi3, conversation(), true, "<s>", "<|endoftext|>"),
            "<s><|system|>\nYou are helpful.<|end|>\n"
            "<|user|>\nHello<|end|>\n"
            "<|assistant|>\nHi there!<|end|>\n"
            "<|user|>\nHow are you?<|end|>\n"
            "<|assistant|>\n");
  // Without a generation prompt the template closes with EOS.
  EXPECT_EQ(render(ChatTemplateKind::kPhi3, {msg("user", "Hello")}, false, "", "<|endoftext|>"),
            "<|user|>\nHello<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render(ChatTemplateKind::kMistral, conversation(), true, "<s>", "</s>"),
            "<s>[INST] You are helpful.\n\nHello [/INST]Hi there!</s>[INST] How are you? [/INST]");
  // mistralai/Mistral-7B-Instruct-v0.2 as rendered by transformers.
  EXPECT_EQ(render(ChatTemplateKind::kMistral,
                   {msg("user", "hello"), msg("assistant", "response"), msg("user", "again"),
                    msg("assistant", "response")},
                   false, "<s>", "</s>"),
            "<s>[INST] hello [/INST]response</s>[INST] again [/INST]response</s>");
}

// Mistral v0.3 with tools, as its published template renders a conversation with a call
// and its result (the definitions right before the last user turn).
TEST(ChatTemplate, MistralV3WithToolsCallsAndResults) {
  const std::vector<ChatMessage> m = {
      msg("system", "Be brief."),
      msg("tools", R"([{"type": "function", "function": {"name": "f"}}])"),
      msg("user", "Weather?"),
      msg("assistant", R"([TOOL_CALLS] [{"name": "f", "arguments": {}, "id": "abcdefghi"}])"),
      msg("tool", R"({"content": 3, "call_id": "abcdefghi"})"),
      msg("assistant", "It is 3."),
      msg("user", "Thanks"),
  };
  EXPECT_EQ(render(ChatTemplateKind::kMistralV3, m, true, "<s>", "</s>"),
            "<s>[INST] Weather?[/INST][TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}, \"id\": \"abcdefghi\"}]</s>"
            "[TOOL_RESULTS] {\"content\": 3, \"call_id\": \"abcdefghi\"}[/TOOL_RESULTS] It is 3.</s>"
            "[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}][/AVAILABLE_TOOLS]"
            "[INST] Be brief.\n\nThanks[/INST]");
  // Without tools it is v0.3's plain conversation.
  EXPECT_EQ(render(ChatTemplateKind::kMistralV3, conversation(), true, "<s>", "</s>"),
            "<s>[INST] Hello[/INST] Hi there!</s>[INST] You are helpful.\n\nHow are you?[/INST]");
  // Calls and results are left out of the alternation check; two user turns in a row are not.
  std::vector<ChatMessage> bad = {msg("user", "a"), msg("user", "b")};
  EXPECT_FALSE(apply_chat_template(ChatTemplateKind::kMistralV3, bad, true, "", "").is_ok());
}

TEST(ChatTemplate, Phi4MiniHasNoNewlinesAndToolResponses) {
  const std::vector<ChatMessage> m = {
      msg("system", "S<|tool|>[]<|/tool|>"), msg("user", "Q"), msg("assistant", "<|tool_call|>[]<|/tool_call|>"),
      msg("tool", "42")};
  EXPECT_EQ(render(ChatTemplateKind::kPhi4Mini, m, true, "<s>", "<|endoftext|>"),
            "<|system|>S<|tool|>[]<|/tool|><|end|><|user|>Q<|end|><|assistant|><|tool_call|>[]<|/tool_call|><|end|>"
            "<|tool_response|>42<|end|><|assistant|>");
  EXPECT_EQ(render(ChatTemplateKind::kPhi4Mini, {msg("user", "Q")}, false, "", "<|endoftext|>"),
            "<|user|>Q<|end|><|endoftext|>");
}

TEST(ChatTemplate, ToolResultsAreUserTurnsWhereTheTemplateHasNoFormForThem) {
  EXPECT_EQ(render(ChatTemplateKind::kChatML, {msg("user", "Q"), msg("assistant", "A"), msg("tool", "42")}, false, "", ""),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\n42<|im_end|>\n");
  EXPECT_EQ(render(ChatTemplateKind::kLlama3, {msg("user", "Q"), msg("tool", "42")}, false, "", ""),
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n42<|eot_id|>");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(render(ChatTemplateKind::kZephyr, conversation(), true, "<s>", "</s>"),
            "<|system|>\nYou are helpful.</s>\n"
            "<|user|>\nHello</s>\n"
            "<|assistant|>\nHi there!</s>\n"
            "<|user|>\nHow are you?</s>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, DeepSeek) {
  EXPECT_EQ(render(ChatTemplateKind::kDeepSeek, conversation(), true, "<｜begin▁of▁sentence｜>",
                   "<｜end▁of▁sentence｜>"),
            "<｜begin▁of▁sentence｜>You are helpful."
            "<｜User｜>Hello<｜Assistant｜>Hi there!<｜end▁of▁sentence｜>"
            "<｜User｜>How are you?<｜Assistant｜>");
}

TEST(ChatTemplate, Glm4WritesItsPrefixOnceAndTurnsWithoutSeparators) {
  EXPECT_EQ(render(ChatTemplateKind::kGlm4, conversation(), true, "", "<|endoftext|>"),
            "[gMASK]<sop><|system|>\nYou are helpful.<|user|>\nHello<|assistant|>\nHi there!"
            "<|user|>\nHow are you?<|assistant|>");
}

// ---- images -----------------------------------------------------------------------------

TEST(ChatTemplateImages, VicunaPutsImagesBeforeTheUserText) {
  // LLaVA-1.5: "USER: <image>\nWhat is this? ASSISTANT:", wherever the image part was.
  std::vector<ChatMessage> m = {{"user", {text("What is this?"), image()}}};
  auto r = apply_chat_template(ChatTemplateKind::kVicuna, m, true, "<s>", "</s>");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text, "USER: \nWhat is this? ASSISTANT:");
  EXPECT_EQ(r->image_offsets, std::vector<size_t>({6}));
  EXPECT_EQ(r->image_indices, std::vector<int>({0}));
}

TEST(ChatTemplateImages, Idefics3PutsImagesInline) {
  std::vector<ChatMessage> m = {
      {"user", {image(), text("Describe."), image(), text("Compare.")}}};
  auto r = apply_chat_template(ChatTemplateKind::kIdefics3, m, true, "", "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  // The colon is glued to "User" because the message starts with an image.
  EXPECT_EQ(r->text, "<|im_start|>User:Describe.Compare.<end_of_utterance>\nAssistant:");
  EXPECT_EQ(r->image_offsets,
            std::vector<size_t>({r->text.find("Describe."), r->text.find("Compare.")}));
  EXPECT_EQ(r->image_indices, std::vector<int>({0, 1}));
}

TEST(ChatTemplateImages, OffsetsAccountForEverythingBefore) {
  std::vector<ChatMessage> m = {msg("system", "Be brief."),
                                {"user", {text("A"), image(), text("B")}},
                                msg("assistant", "ok"),
                                {"user", {image(7), text("C")}}};
  auto r = apply_chat_template(ChatTemplateKind::kChatML, m, true, "", "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->image_offsets.size(), 2u);
  EXPECT_EQ(r->text.substr(0, r->image_offsets[0]),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nA");
  EXPECT_EQ(r->text.substr(r->image_offsets[0], 1), "B");
  EXPECT_EQ(r->text.substr(r->image_offsets[1], 1), "C");
  EXPECT_EQ(r->image_indices, std::vector<int>({0, 7}));
}

TEST(ChatTemplateImages, Llama2SystemBlockShiftsOffsets) {
  std::vector<ChatMessage> m = {msg("system", "S"), {"user", {image(), text(" hi")}}};
  auto r = apply_chat_template(ChatTemplateKind::kLlama2, m, true, "<s>", "</s>");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n hi [/INST]");
  EXPECT_EQ(r->image_offsets, std::vector<size_t>({r->text.find(" hi")}));
}

TEST(ChatTemplateImages, GemmaTrimsEachTextPartAroundTheImage) {
  std::vector<ChatMessage> m = {{"user", {text("  Look: "), image(), text(" what is it?\n")}}};
  auto r = apply_chat_template(ChatTemplateKind::kGemma, m, true, "<bos>", "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text,
            "<bos><start_of_turn>user\nLook:what is it?<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(r->image_offsets, std::vector<size_t>({r->text.find("what")}));
}

TEST(ChatTemplateImages, TrimmedWhitespaceKeepsImageAtTheEdge) {
  // Llama-3 trims the whole content; an image at the very end stays at the end.
  std::vector<ChatMessage> m = {{"user", {text(" Hi  "), image()}}};
  auto r = apply_chat_template(ChatTemplateKind::kLlama3, m, false, "", "");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->text, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(r->image_offsets, std::vector<size_t>({r->text.find("<|eot_id|>")}));
}

// ---- errors -----------------------------------------------------------------------------

std::string error_of(ChatTemplateKind kind, const std::vector<ChatMessage>& m) {
  auto r = apply_chat_template(kind, m, true, "<s>", "</s>");
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? std::string() : r.status().message();
}

TEST(ChatTemplateErrors, EmptyConversation) {
  EXPECT_NE(error_of(ChatTemplateKind::kChatML, {}).find("empty"), std::string::npos);
}

TEST(ChatTemplateErrors, UnknownRole) {
  std::string e = error_of(ChatTemplateKind::kChatML, {msg("user", "a"), msg("function", "b")});
  EXPECT_NE(e.find("message 1"), std::string::npos) << e;
  EXPECT_NE(e.find("'function'"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, SystemOnlyFirst) {
  std::string e = error_of(ChatTemplateKind::kChatML, {msg("user", "a"), msg("system", "b")});
  EXPECT_NE(e.find("first message"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, ImagesOnlyInUserMessages) {
  std::string e =
      error_of(ChatTemplateKind::kChatML, {msg("user", "a"), {"assistant", {image()}}});
  EXPECT_NE(e.find("only allowed in user messages"), std::string::npos) << e;
}

TEST(ChatTemplateErrors, ToolDefinitionsOnlyWhereTheTemplateHasAPlaceForThem) {
  std::string e = error_of(ChatTemplateKind::kChatML, {msg("tools", "[]"), msg("user", "a")});
  EXPECT_NE(e.find("chatml"), std::string::npos) << e;
  EXPECT_NE(e.find("mistral-v3"), std::string::npos) << e;
  e = error_of(ChatTemplateKind::kMistralV3, {msg("tools", "[]"), msg("tools", "[]"), msg("user", "a")});
  EXPECT_NE(e.find("only one"), std::string::npos) << e;
  EXPECT_FALSE(error_of(ChatTemplateKind::kMistralV3, {msg("tools", "[]")}).empty());
  // A tool result is no place for an image.
  ChatMessage with_image = msg("tool", "x");
  with_image.parts.push_back(image());
  EXPECT_NE(error_of(ChatTemplateKind::kLlama3, {msg("user", "a"), with_image}).find("images"), std::string::npos);
}

TEST(ChatTemplateErrors, AlternationForTemplatesThatRequireIt) {
  std::vector<ChatMessage> two_users = {msg("user", "a"), msg("user", "b")};
  for (auto kind : {ChatTemplateKind::kLlama2, ChatTemplateKind::kMistral, ChatTemplateKind::kGemma}) {
    std::string e = error_of(kind, two_users);
    EXPECT_NE(e.find("alternate"), std::string::npos) << e;
    EXPECT_NE(e.find(chat_template_name(kind)), std::string::npos) << e;
  }
  EXPECT_NE(error_of(ChatTemplateKind::kGemma, {msg("assistant", "a")}).find("starting with user"),
            std::string::npos);
  // Templates that do not require it render the same messages.
  EXPECT_TRUE(apply_chat_template(ChatTemplateKind::kChatML, two_users, true, "", "").is_ok());
}

TEST(ChatTemplateErrors, SystemWithoutUserForFoldingTemplates) {
  std::string e = error_of(ChatTemplateKind::kGemma, {msg("system", "s")});
  EXPECT_NE(e.find("no user message follows"), std::string::npos) << e;
  EXPECT_TRUE(
      apply_chat_template(ChatTemplateKind::kChatML, {msg("system", "s")}, true, "", "").is_ok());
}

// ---- detection from published template sources (abridged) ------------------------------

struct DetectCase {
  const char* name;
  const char* source;
  ChatTemplateKind expected;
};

const DetectCase kDetectCases[] = {
    {"Qwen2.5-Instruct",
     R"J({%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
{%- else %}
    {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %})J",
     ChatTemplateKind::kChatML},
    {"Qwen2-VL",
     R"J({% for message in messages %}<|im_start|>{{ message['role'] }}
{% for content in message['content'] %}{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>
{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant
{% endif %})J",
     ChatTemplateKind::kChatML},
    {"Llama-2-chat",
     R"J({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})J",
     ChatTemplateKind::kLlama2},
    {"Llama-3-Instruct",
     R"J({% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>

'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>

' }}{% endif %})J",
     ChatTemplateKind::kLlama3},
    {"llava-1.5-hf",
     R"J({% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %})J",
     ChatTemplateKind::kVicuna},
    {"SmolVLM",
     R"J(<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>
{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %})J",
     ChatTemplateKind::kIdefics3},
    {"gemma-7b-it",
     R"J({{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})J",
     ChatTemplateKind::kGemma},
    {"Phi-3-mini",
     R"J({{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %})J",
     ChatTemplateKind::kPhi3},
    {"Mistral-7B-Instruct-v0.1",
     R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %})J",
     ChatTemplateKind::kMistral},
    {"Mistral-7B-Instruct-v0.3",
     R"J({{- bos_token }}{%- for message in loop_messages %}{%- if message["role"] == "user" %}{%- if tools is not none and (message == user_messages[-1]) %}{{- "[AVAILABLE_TOOLS] [" }}{%- for tool in tools %}{{- tool|tojson }}{%- endfor %}{{- "[/AVAILABLE_TOOLS]" }}{%- endif %}{{- "[INST] " + message["content"] + "[/INST]" }}{%- elif message.tool_calls is defined and message.tool_calls is not none %}{{- "[TOOL_CALLS] [" }}{%- elif message["role"] == "assistant" %}{{- " " + message["content"]|trim + eos_token}}{%- elif message["role"] == "tool_results" or message["role"] == "tool" %}{{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}{%- endif %}{%- endfor %})J",
     ChatTemplateKind::kMistralV3},
    {"Phi-4-mini-instruct",
     R"J({% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %})J",
     ChatTemplateKind::kPhi4Mini},
    {"zephyr-7b-beta",
     R"J({% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>
' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>
'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %})J",
     ChatTemplateKind::kZephyr},
    {"DeepSeek-V3",
     R"J({% set ns = namespace(system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜>'}}{% endif %})J",
     ChatTemplateKind::kDeepSeek},
    // GLM-4's template shares <|user|>/<|assistant|> with Phi-3 and Zephyr; its prefix decides.
    {"glm-4-9b-chat",
     R"J([gMASK]<sop>{% for item in messages %}{% if item['role'] == 'system' %}<|system|>
{{ item['content'] }}{% elif item['role'] == 'user' %}<|user|>
{{ item['content'] }}{% elif item['role'] == 'assistant' %}<|assistant|>
{{ item['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %})J",
     ChatTemplateKind::kGlm4},
};

TEST(ChatTemplateDetect, PublishedSources) {
  for (const DetectCase& c : kDetectCases) {
    auto kind = detect_chat_template(c.source);
    ASSERT_TRUE(kind.has_value()) << c.name;
    EXPECT_EQ(chat_template_name(*kind), chat_template_name(c.expected)) << c.name;
  }
}

TEST(ChatTemplateDetect, UnknownSources) {
  EXPECT_FALSE(detect_chat_template("").has_value());
  EXPECT_FALSE(detect_chat_template(
                   "{% for message in messages %}### Instruction:\n{{ message['content'] }}\n\n"
                   "### Response:\n{% endfor %}")
                   .has_value());
}

TEST(ChatTemplateNames, RoundTripAndAliases) {
  for (auto kind : {ChatTemplateKind::kChatML, ChatTemplateKind::kLlama2, ChatTemplateKind::kLlama3,
                    ChatTemplateKind::kVicuna, ChatTemplateKind::kIdefics3, ChatTemplateKind::kGemma,
                    ChatTemplateKind::kPhi3, ChatTemplateKind::kMistral, ChatTemplateKind::kMistralV3,
                    ChatTemplateKind::kPhi4Mini, ChatTemplateKind::kZephyr,
                    ChatTemplateKind::kDeepSeek, ChatTemplateKind::kGlm4}) {
    auto parsed = parse_chat_template_name(chat_template_name(kind));
    ASSERT_TRUE(parsed.is_ok()) << chat_template_name(kind);
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(parse_chat_template_name("llava").value(), ChatTemplateKind::kVicuna);
  EXPECT_EQ(parse_chat_template_name("smolvlm").value(), ChatTemplateKind::kIdefics3);
  auto bad = parse_chat_template_name("jinja");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("'jinja'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("chatml"), std::string::npos);
}

TEST(ChatTemplateChoose, OverrideDetectAndFallback) {
  auto over = choose_chat_template("gemma", kDetectCases[0].source);
  ASSERT_TRUE(over.is_ok());
  EXPECT_EQ(over->kind, ChatTemplateKind::kGemma);
  EXPECT_TRUE(over->warning.empty());

  auto bad = choose_chat_template("nope", "");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("--chat-template"), std::string::npos);

  auto detected = choose_chat_template("", kDetectCases[3].source);
  ASSERT_TRUE(detected.is_ok());
  EXPECT_EQ(detected->kind, ChatTemplateKind::kLlama3);
  EXPECT_TRUE(detected->warning.empty());

  auto none = choose_chat_template("", "");
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(none->kind, ChatTemplateKind::kChatML);
  EXPECT_NE(none->warning.find("no tokenizer.chat_template"), std::string::npos);

  auto unknown = choose_chat_template("", "{{ messages[0]['content'] }}");
  ASSERT_TRUE(unknown.is_ok());
  EXPECT_EQ(unknown->kind, ChatTemplateKind::kChatML);
  EXPECT_NE(unknown->warning.find("not one we recognise"), std::string::npos);
}

}  // namespace
}  // namespace zs::engine
