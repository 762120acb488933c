// Tool calling: the conversation written in each family's convention, the grammar of a forced
// call, and the output parsed back into calls.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/structured/constraint.h"
#include "engine/structured/tools.h"

namespace zs::engine::structured {
namespace {

using nlohmann::json;

std::vector<ToolSpec> weather_tools() {
  return {{"get_weather", "Current weather",
           R"({"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"]})"},
          {"get_time", "", ""}};
}

ChatMessage text(const std::string& role, const std::string& t) { return {role, {ChatPart{ChatPart::Kind::kText, t}}}; }

std::string joined(const ChatMessage& m) {
  std::string s;
  for (const auto& p : m.parts) s += p.text;
  return s;
}

TEST(ToolsTest, HermesConversation) {
  std::vector<ToolChatMessage> in = {
      {text("system", "Be brief."), {}, ""},
      {text("user", "Weather in Oslo?"), {}, ""},
      {text("assistant", ""), {{"call_1", "get_weather", R"({"city":"Oslo","unit":"c"})"}}, ""},
      {text("tool", "-3 C"), {}, "call_1"},
      {text("tool", "12:00"), {}, "call_2"},
  };
  auto out = render_tool_conversation(ToolFormat::kHermes, in, weather_tools());
  ASSERT_EQ(out.size(), 4u);  // the two results share one user turn
  EXPECT_EQ(out[0].role, "system");
  EXPECT_EQ(joined(out[0]).rfind("Be brief.\n\n# Tools", 0), 0u) << joined(out[0]);
  EXPECT_NE(joined(out[0]).find("<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_weather\""), std::string::npos)
      << joined(out[0]);
  EXPECT_EQ(joined(out[2]), "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Oslo\",\"unit\":\"c\"}}\n</tool_call>");
  EXPECT_EQ(out[3].role, "user");
  EXPECT_EQ(joined(out[3]), "<tool_response>\n-3 C\n</tool_response>\n<tool_response>\n12:00\n</tool_response>");
}

TEST(ToolsTest, Llama3Conversation) {
  std::vector<ToolChatMessage> in = {
      {text("user", "Weather in Oslo?"), {}, ""},
      {text("assistant", ""), {{"call_1", "get_weather", R"({"city":"Oslo","unit":"c"})"}}, ""},
      {text("tool", "-3 C"), {}, "call_1"},
  };
  auto out = render_tool_conversation(ToolFormat::kLlama3, in, weather_tools());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(joined(out[0]).rfind("Given the following functions", 0), 0u);
  EXPECT_NE(joined(out[0]).find("Weather in Oslo?"), std::string::npos);
  EXPECT_EQ(joined(out[1]), R"({"name":"get_weather","parameters":{"city":"Oslo","unit":"c"}})");
  EXPECT_EQ(out[2].role, "ipython");
  // The Llama 3 template writes the ipython header.
  auto rendered = apply_chat_template(ChatTemplateKind::kLlama3, out, true, "<|begin_of_text|>", "");
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().message();
  EXPECT_NE(rendered->text.find("<|start_header_id|>ipython<|end_header_id|>\n\n-3 C<|eot_id|>"), std::string::npos);
}

TEST(ToolsTest, ParsesCallsBack) {
  const auto tools = weather_tools();
  auto h = parse_tool_output(ToolFormat::kHermes,
                             "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", "
                             "\"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
                             tools);
  ASSERT_EQ(h.calls.size(), 2u);
  EXPECT_EQ(h.content, "Let me check.");
  EXPECT_EQ(h.calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(h.calls[0].arguments), json::parse(R"({"city":"Oslo","unit":"c"})"));
  EXPECT_EQ(h.calls[1].arguments, "{}");

  auto l = parse_tool_output(ToolFormat::kLlama3, R"({"name": "get_weather", "parameters": {"city": "Oslo", "unit": "f"}})", tools);
  ASSERT_EQ(l.calls.size(), 1u);
  EXPECT_EQ(json::parse(l.calls[0].arguments)["unit"], "f");

  // Unknown tools and text stay text.
  EXPECT_TRUE(parse_tool_output(ToolFormat::kHermes, "<tool_call>\n{\"name\": \"rm\", \"arguments\": {}}\n</tool_call>", tools)
                  .calls.empty());
  EXPECT_TRUE(parse_tool_output(ToolFormat::kLlama3, "It is sunny.", tools).calls.empty());
  EXPECT_EQ(parse_tool_output(ToolFormat::kLlama3, "It is sunny.", tools).content, "It is sunny.");
}

TEST(ToolsTest, MayBeToolCall) {
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kHermes, ""));
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kHermes, " <tool_"));
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kHermes, "<tool_call>\n{"));
  EXPECT_FALSE(may_be_tool_call(ToolFormat::kHermes, "Hello"));
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kLlama3, "\n{"));
  EXPECT_FALSE(may_be_tool_call(ToolFormat::kLlama3, "Sure"));
}

std::shared_ptr<const TokenIndex> bytes() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  return std::make_shared<TokenIndex>(pieces, std::vector<int32_t>{});
}

TEST(ToolsTest, ForcedCallGrammar) {
  auto g = tool_call_grammar(ToolFormat::kHermes, weather_tools(), 2);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  Constraint c(std::move(g.value()), bytes());
  EXPECT_TRUE(c.matches("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\", \"unit\": \"c\"}}\n</tool_call>"));
  EXPECT_TRUE(c.matches("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": "
                        "\"get_time\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(c.matches("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"a\": 1}}\n</tool_call>"));
  EXPECT_FALSE(c.matches("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\"}}\n</tool_call>"));
  EXPECT_FALSE(c.matches("<tool_call>\n{\"name\": \"nope\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(c.matches("hello"));

  auto l = tool_call_grammar(ToolFormat::kLlama3, {weather_tools()[0]}, 1);
  ASSERT_TRUE(l.is_ok());
  Constraint lc(std::move(l.value()), bytes());
  EXPECT_TRUE(lc.matches(R"({"name": "get_weather", "parameters": {"city": "x", "unit": "f"}})"));
  EXPECT_FALSE(lc.matches(R"({"name": "get_time", "parameters": {}})"));

  SchemaError err;
  std::string failed;
  auto bad = tool_call_grammar(ToolFormat::kHermes, {{"f", "", R"({"type":"object","properties":{"a":{"type":"string","pattern":"x"}}})"}},
                               1, &err, &failed);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(err.keyword, "pattern");
  EXPECT_EQ(failed, "f");
}

}  // namespace
}  // namespace zs::engine::structured
