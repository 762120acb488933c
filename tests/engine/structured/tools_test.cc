// Tool calling: the conversation written in each family's convention, the grammar of a forced
// call, and the output parsed back into calls.
#include <gtest/gtest.h>

#include <cctype>

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
  // JSON as the templates' tojson writes it: ", " and ": " separators.
  EXPECT_NE(joined(out[0]).find("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\""),
            std::string::npos)
      << joined(out[0]);
  EXPECT_EQ(joined(out[2]), "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"c\"}}\n</tool_call>");
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
  EXPECT_EQ(joined(out[1]), R"({"name": "get_weather", "parameters": {"city": "Oslo", "unit": "c"}})");
  EXPECT_EQ(out[2].role, "tool");
  // The Llama 3 template writes the ipython header.
  auto rendered = apply_chat_template(ChatTemplateKind::kLlama3, out, true, "<|begin_of_text|>", "");
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().message();
  EXPECT_NE(rendered->text.find("<|start_header_id|>ipython<|end_header_id|>\n\n-3 C<|eot_id|>"), std::string::npos);
}

TEST(ToolsTest, MistralConversation) {
  std::vector<ToolChatMessage> in = {
      {text("system", "Be brief."), {}, ""},
      {text("user", "Weather in Oslo?"), {}, ""},
      {text("assistant", "ignored"), {{"abcdefghi", "get_weather", R"({"city":"Oslo","unit":"c"})"}}, ""},
      {text("tool", "-3 C"), {}, "abcdefghi"},
      {text("tool", R"({"t": -3})"), {}, "abcdefghj"},
  };
  auto out = render_tool_conversation(ToolFormat::kMistral, in, {weather_tools()[1]});
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0].role, "tools");
  EXPECT_EQ(joined(out[0]),
            R"([{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}])");
  EXPECT_EQ(joined(out[3]),
            R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}, "id": "abcdefghi"}])");
  // Text results are quoted, JSON results written as they are.
  EXPECT_EQ(joined(out[4]), R"({"content": "-3 C", "call_id": "abcdefghi"})");
  EXPECT_EQ(joined(out[5]), R"({"content": {"t": -3}, "call_id": "abcdefghj"})");
  auto rendered = apply_chat_template(ChatTemplateKind::kMistralV3, out, true, "<s>", "</s>");
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().message();
  EXPECT_EQ(rendered->text,
            "<s>[AVAILABLE_TOOLS] " + joined(out[0]) + "[/AVAILABLE_TOOLS][INST] Be brief.\n\nWeather in Oslo?[/INST]" +
                joined(out[3]) + "</s>[TOOL_RESULTS] " + joined(out[4]) + "[/TOOL_RESULTS][TOOL_RESULTS] " +
                joined(out[5]) + "[/TOOL_RESULTS]");
}

TEST(ToolsTest, PhiConversation) {
  std::vector<ToolChatMessage> in = {
      {text("user", "Weather in Oslo?"), {}, ""},
      {text("assistant", ""), {{"call_1", "get_weather", R"({"city":"Oslo","unit":"c"})"}}, ""},
      {text("tool", "-3 C"), {}, "call_1"},
  };
  auto out = render_tool_conversation(ToolFormat::kPhi, in, {weather_tools()[1]});
  ASSERT_EQ(out.size(), 4u);
  // Without a system message, the model card's leads the tool list.
  EXPECT_EQ(joined(out[0]),
            R"(You are a helpful assistant with some tools.<|tool|>[{"name": "get_time", "parameters": {"type": "object", "properties": {}}}]<|/tool|>)");
  EXPECT_EQ(joined(out[2]), R"(<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}]<|/tool_call|>)");
  auto rendered = apply_chat_template(ChatTemplateKind::kPhi4Mini, out, true, "", "<|endoftext|>");
  ASSERT_TRUE(rendered.is_ok()) << rendered.status().message();
  EXPECT_EQ(rendered->text, "<|system|>" + joined(out[0]) + "<|end|><|user|>Weather in Oslo?<|end|><|assistant|>" +
                                joined(out[2]) + "<|end|><|tool_response|>-3 C<|end|><|assistant|>");
  // A system message of the client's own takes the default's place.
  in.insert(in.begin(), {text("system", "Be brief."), {}, ""});
  EXPECT_EQ(joined(render_tool_conversation(ToolFormat::kPhi, in, {weather_tools()[1]})[0]).rfind("Be brief.<|tool|>", 0), 0u);
}

TEST(ToolsTest, FormatsFollowTheTemplateAndIdsFitThem) {
  EXPECT_EQ(tool_format_for(ChatTemplateKind::kMistralV3), ToolFormat::kMistral);
  EXPECT_EQ(tool_format_for(ChatTemplateKind::kMistral), ToolFormat::kHermes);  // v0.1/v0.2 were not trained on tools
  EXPECT_EQ(tool_format_for(ChatTemplateKind::kPhi4Mini), ToolFormat::kPhi);
  EXPECT_EQ(tool_format_for(ChatTemplateKind::kPhi3), ToolFormat::kHermes);
  EXPECT_EQ(tool_format_for(ChatTemplateKind::kLlama3), ToolFormat::kLlama3);
  const std::string m = new_tool_call_id(ToolFormat::kMistral);
  EXPECT_EQ(m.size(), 9u);
  for (char c : m) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << m;
  EXPECT_EQ(new_tool_call_id(ToolFormat::kHermes).rfind("call_", 0), 0u);
  EXPECT_EQ(tool_call_markers(ToolFormat::kMistral), std::vector<std::string>{"[TOOL_CALLS]"});
  EXPECT_EQ(tool_call_markers(ToolFormat::kPhi), (std::vector<std::string>{"<|tool_call|>", "<|/tool_call|>"}));
  EXPECT_TRUE(tool_call_markers(ToolFormat::kLlama3).empty());
}

TEST(ToolsTest, ParsesMistralAndPhiCalls) {
  const auto tools = weather_tools();
  auto m = parse_tool_output(ToolFormat::kMistral,
                             R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}, )"
                             R"({"name": "get_time", "arguments": {}}])",
                             tools);
  ASSERT_EQ(m.calls.size(), 2u);
  EXPECT_EQ(m.content, "");
  EXPECT_EQ(json::parse(m.calls[0].arguments), json::parse(R"({"city":"Oslo","unit":"c"})"));
  EXPECT_EQ(m.calls[1].name, "get_time");
  auto p = parse_tool_output(ToolFormat::kPhi,
                             R"(Checking.<|tool_call|>[{"name": "get_time", "arguments": {}}]<|/tool_call|> Done.)", tools);
  ASSERT_EQ(p.calls.size(), 1u);
  EXPECT_EQ(p.content, "Checking. Done.");
  // A single object instead of a list is taken too; broken JSON and unknown tools stay text.
  EXPECT_EQ(parse_tool_output(ToolFormat::kPhi, R"(<|tool_call|>{"name": "get_time", "arguments": {}}<|/tool_call|>)", tools)
                .calls.size(),
            1u);
  EXPECT_TRUE(parse_tool_output(ToolFormat::kMistral, R"([TOOL_CALLS] [{"name": "get_time", "argu)", tools).calls.empty());
  EXPECT_TRUE(parse_tool_output(ToolFormat::kMistral, R"([TOOL_CALLS] [])", tools).calls.empty());
  EXPECT_TRUE(parse_tool_output(ToolFormat::kPhi, R"(<|tool_call|>[{"name": "rm"}]<|/tool_call|>)", tools).calls.empty());
  EXPECT_EQ(parse_tool_output(ToolFormat::kMistral, "Hello [TOOL", tools).content, "Hello [TOOL");
}

// The stream splitter against the simplest reference: whatever the split into pieces, the text
// sent is the output before the first call (all of it when there is none), and nothing after it.
TEST(ToolsTest, StreamSendsTextAndHoldsCallsWhateverThePieces) {
  struct Case {
    ToolFormat format;
    std::string output;
    size_t call_at;  // npos: no call
  };
  const std::vector<Case> cases = {
      {ToolFormat::kHermes, "Sure.\n<tool_call>\n{}\n</tool_call>", 6},
      {ToolFormat::kHermes, "<tool text that is not a call", std::string::npos},
      {ToolFormat::kMistral, "[TOOL_CALLS] [{}]", 0},
      {ToolFormat::kMistral, "  [TOOL] is not it", std::string::npos},
      {ToolFormat::kPhi, "Let me see <|tool_call|>[]<|/tool_call|>", 11},
      {ToolFormat::kLlama3, " {\"name\": 1}", 0},
      {ToolFormat::kLlama3, "Plain answer {not a call}", std::string::npos},
  };
  for (const Case& c : cases) {
    for (size_t step : {1, 2, 3, 5, 64}) {
      ToolCallStream stream(c.format);
      std::string sent;
      for (size_t i = 0; i < c.output.size(); i += step) sent += stream.push(c.output.substr(i, step));
      const std::string held = stream.take_held();
      if (c.call_at == std::string::npos) {
        EXPECT_EQ(sent + held, c.output) << c.output << " step " << step;
        EXPECT_FALSE(stream.in_call()) << c.output;
      } else {
        EXPECT_EQ(sent, c.output.substr(0, c.call_at)) << c.output << " step " << step;
        EXPECT_TRUE(stream.in_call()) << c.output;
      }
    }
  }
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
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kMistral, "[TOOL"));
  EXPECT_FALSE(may_be_tool_call(ToolFormat::kMistral, "[TOOLS"));
  EXPECT_TRUE(may_be_tool_call(ToolFormat::kPhi, "<|tool_call|>["));
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

  auto m = tool_call_grammar(ToolFormat::kMistral, weather_tools(), 2);
  ASSERT_TRUE(m.is_ok());
  Constraint mc(std::move(m.value()), bytes());
  EXPECT_TRUE(mc.matches(R"([TOOL_CALLS] [{"name": "get_time", "arguments": {}}])"));
  EXPECT_TRUE(mc.matches(R"([TOOL_CALLS] [{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}}])"));
  EXPECT_FALSE(mc.matches(R"([TOOL_CALLS] [{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}}, )"
                          R"({"name": "get_time", "arguments": {}}])"));  // at most 2
  EXPECT_FALSE(mc.matches(R"([TOOL_CALLS] [])"));
  auto p = tool_call_grammar(ToolFormat::kPhi, weather_tools(), 1);
  ASSERT_TRUE(p.is_ok());
  Constraint pc(std::move(p.value()), bytes());
  EXPECT_TRUE(pc.matches(R"(<|tool_call|>[{"name": "get_weather", "arguments": {"city": "x", "unit": "f"}}]<|/tool_call|>)"));
  EXPECT_FALSE(pc.matches(R"(<|tool_call|>[{"name": "get_weather", "arguments": {"city": "x", "unit": "f"}}])"));

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
