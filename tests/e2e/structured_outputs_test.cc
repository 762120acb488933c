// Structured outputs and log-probabilities through a real worker: stories260K never writes JSON
// by itself, but has byte tokens, so valid JSON comes out only through the constraint.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "engine/model/random_model.h"
#include "gateway/http/http_client.h"
#include "serve_fixture.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

using Worker = zs::testing::WorkerProcess;

// An independent checker for the schemas below (not the grammar under test).
bool validates(const ojson& v, const ojson& schema, std::string* why) {
  auto no = [&](const std::string& m) {
    *why = m + ": " + v.dump();
    return false;
  };
  if (schema.contains("enum")) {
    for (const auto& e : schema["enum"])
      if (e == v) return true;
    return no("not in enum");
  }
  const std::string t = schema["type"];
  if (t == "string") {
    if (!v.is_string()) return no("not a string");
    if (schema.contains("maxLength")) {
      size_t chars = 0;  // code points
      for (unsigned char c : v.get<std::string>()) chars += (c & 0xC0) != 0x80;
      if (chars > schema["maxLength"].get<size_t>()) return no("too long");
    }
    return true;
  }
  if (t == "integer") return v.is_number_integer() || no("not an integer");
  if (t == "number") return v.is_number() || no("not a number");
  if (t == "boolean") return v.is_boolean() || no("not a boolean");
  if (t == "array") {
    if (!v.is_array()) return no("not an array");
    if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<size_t>()) return no("too many items");
    for (const auto& x : v)
      if (!validates(x, schema["items"], why)) return false;
    return true;
  }
  if (t == "object") {
    if (!v.is_object()) return no("not an object");
    for (const auto& [k, x] : v.items()) {
      if (!schema["properties"].contains(k)) return no("unexpected key " + k);
      if (!validates(x, schema["properties"][k], why)) return false;
    }
    for (const auto& r : schema["required"])
      if (!v.contains(r.get<std::string>())) return no("missing " + r.get<std::string>());
    return true;
  }
  return no("unknown type " + t);
}

const char* kInvoiceSchema = R"({
  "type": "object",
  "properties": {
    "vendor": {"type": "string", "maxLength": 12},
    "status": {"enum": ["paid", "due", "overdue"]},
    "total": {"type": "number"},
    "lines": {
      "type": "array", "maxItems": 3,
      "items": {
        "type": "object",
        "properties": {"sku": {"type": "string", "maxLength": 6}, "qty": {"type": "integer"}, "taxed": {"type": "boolean"}},
        "required": ["sku", "qty", "taxed"], "additionalProperties": false
      }
    },
    "customer": {
      "type": "object",
      "properties": {"name": {"type": "string", "maxLength": 10}, "vip": {"type": "boolean"}},
      "required": ["name", "vip"], "additionalProperties": false
    }
  },
  "required": ["vendor", "status", "total", "lines", "customer"],
  "additionalProperties": false
})";

json schema_request(double temperature, int seed, bool stream = false) {
  return {{"model", "m"},
          {"messages", json::array({{{"role", "user"}, {"content", "Extract the invoice."}}})},
          {"max_tokens", 3000},
          {"temperature", temperature},
          {"seed", seed},
          {"stream", stream},
          {"response_format",
           {{"type", "json_schema"},
            {"json_schema", {{"name", "invoice"}, {"strict", true}, {"schema", json::parse(kInvoiceSchema)}}}}}};
}

TEST(StructuredOutputs, JsonSchemaOutputParsesAndValidates) {
  Worker w;
  ASSERT_FALSE(w.address().empty());
  const ojson schema = ojson::parse(kInvoiceSchema);
  for (int seed : {1, 2, 3}) {
    for (double temperature : {0.0, 1.0}) {
      auto r = w.post("/v1/chat/completions", schema_request(temperature, seed).dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const json j = json::parse(r.body);
      EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
      const std::string text = j["choices"][0]["message"]["content"];
      ojson out;
      ASSERT_NO_THROW(out = ojson::parse(text)) << text;
      std::string why;
      EXPECT_TRUE(validates(out, schema, &why)) << why << "\n" << text;
      if (temperature == 0) break;  // greedy: the seed does not matter
    }
  }
}

TEST(StructuredOutputs, JsonSchemaStreams) {
  Worker w;
  const ojson schema = ojson::parse(kInvoiceSchema);
  auto events = w.stream("/v1/chat/completions", schema_request(1.0, 7, true).dump());
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text, finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    const auto& choice = c["choices"][0];
    if (choice["delta"].contains("content")) text += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(finish, "stop");
  ojson out;
  ASSERT_NO_THROW(out = ojson::parse(text)) << text;
  std::string why;
  EXPECT_TRUE(validates(out, schema, &why)) << why << "\n" << text;
}

TEST(StructuredOutputs, JsonObject) {
  Worker w;
  for (int seed : {1, 2}) {
    json body = {{"model", "m"},
                 {"messages", json::array({{{"role", "user"}, {"content", "Reply in JSON."}}})},
                 {"max_tokens", 1500},
                 {"temperature", 0.8},
                 {"seed", seed},
                 {"response_format", {{"type", "json_object"}}}};
    auto r = w.post("/v1/chat/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    const std::string text = j["choices"][0]["message"]["content"];
    if (j["choices"][0]["finish_reason"] == "length") continue;  // a random walk may outlast max_tokens
    json out;
    ASSERT_NO_THROW(out = json::parse(text)) << text;
    EXPECT_TRUE(out.is_object()) << text;
  }
}

TEST(StructuredOutputs, RefusesBadSchemasNamingTheKeyword) {
  Worker w;
  json body = schema_request(0, 1);
  body["response_format"]["json_schema"]["schema"] = {{"type", "string"}, {"pattern", "^[a-z]+$"}};
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  json e = json::parse(r.body)["error"];
  EXPECT_EQ(e["param"], "response_format.json_schema.schema");
  EXPECT_NE(e["message"].get<std::string>().find("pattern"), std::string::npos) << e.dump();

  body["response_format"]["json_schema"]["schema"] = {{"type", "object"}, {"properties", {{"a", {{"$ref", "#"}}}}}, {"required", {"a"}}};
  r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("no finite output"), std::string::npos) << r.body;

  body["response_format"] = {{"type", "yaml"}};
  r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "response_format.type");
}

TEST(StructuredOutputs, VocabularyWithoutBracesIsAClearError) {
  Worker w({}, "TinyStories-656K-Q8_0.gguf");
  ASSERT_FALSE(w.address().empty());
  json body = {{"model", "m"},
               {"messages", json::array({{{"role", "user"}, {"content", "JSON please"}}})},
               {"response_format", {{"type", "json_object"}}}};
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "response_format");
  EXPECT_NE(r.body.find("vocabulary"), std::string::npos) << r.body;
}

TEST(Logprobs, ChatTopEntryIsTheGreedyToken) {
  Worker w;
  json body = {{"model", "m"},
               {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
               {"max_tokens", 12},
               {"temperature", 0},
               {"logprobs", true},
               {"top_logprobs", 3}};
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  const json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), j["usage"]["completion_tokens"].get<size_t>());
  std::string joined;
  for (const auto& e : content) {
    ASSERT_EQ(e["top_logprobs"].size(), 3u);
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);  // greedy: the sampled token is the best
    EXPECT_DOUBLE_EQ(e["top_logprobs"][0]["logprob"].get<double>(), e["logprob"].get<double>());
    EXPECT_LE(e["logprob"].get<double>(), 0.0);
    double mass = 0;
    for (const auto& t : e["top_logprobs"]) mass += std::exp(t["logprob"].get<double>());
    EXPECT_LE(mass, 1.0 + 1e-4);
    EXPECT_GE(e["top_logprobs"][0]["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
    std::string bytes;
    for (const auto& b : e["bytes"]) bytes += static_cast<char>(b.get<int>());
    joined += bytes;
  }
  EXPECT_EQ(joined, j["choices"][0]["message"]["content"].get<std::string>());
}

TEST(Logprobs, AreLogSoftmaxOfTheLogits) {
  // `zeroserve golden` prints the last prompt position's top logits and their logsumexp; the
  // completion's first token's log-probability and alternatives must be those, minus it.
  auto g = zs::testing::run_command(zs::testing::zeroserve() + " golden --model " +
                                    zs::testing::shell_quote(zs::testing::golden_model("stories260K.gguf")) +
                                    " --prompt 'Once upon a time' --n 1 --threads 2");
  ASSERT_EQ(g.exit_code, 0) << g.out;
  const json golden = json::parse(g.out);
  const double lse = golden["last_logits_logsumexp"];
  Worker w;
  json body = {{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 5}};
  auto r = w.post("/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json lp = json::parse(r.body)["choices"][0]["logprobs"];
  const double expected = golden["last_logits_top10"][0][1].get<double>() - lse;
  EXPECT_NEAR(lp["token_logprobs"][0].get<double>(), expected, 2e-3);
  // The alternatives, best first, are the next logits minus the same logsumexp.
  std::vector<double> alts;
  for (const auto& [tok, v] : lp["top_logprobs"][0].items()) alts.push_back(v.get<double>());
  std::sort(alts.rbegin(), alts.rend());
  ASSERT_GE(alts.size(), 2u);
  EXPECT_NEAR(alts[1], golden["last_logits_top10"][1][1].get<double>() - lse, 2e-3);
}

TEST(Logprobs, StreamedAndCompletions) {
  Worker w;
  json body = {{"model", "m"},
               {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
               {"max_tokens", 10},
               {"temperature", 0},
               {"logprobs", true},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  auto events = w.stream("/v1/chat/completions", body.dump());
  size_t entries = 0;
  int64_t completion_tokens = -1;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    if (c.contains("usage") && c["usage"].is_object()) completion_tokens = c["usage"]["completion_tokens"];
    if (c["choices"].empty()) continue;
    const json& lp = c["choices"][0]["logprobs"];
    if (lp.is_object()) entries += lp["content"].size();
  }
  EXPECT_EQ(static_cast<int64_t>(entries), completion_tokens);

  json cbody = {{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 2}};
  auto r = w.post("/v1/completions", cbody.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json lp = json::parse(r.body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 6u);
  ASSERT_EQ(lp["token_logprobs"].size(), 6u);
  ASSERT_EQ(lp["top_logprobs"].size(), 6u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
}

TEST(Logprobs, UnderAConstraint) {
  Worker w;
  json body = schema_request(0, 1);
  body["logprobs"] = true;
  body["top_logprobs"] = 2;
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"].size(), j["usage"]["completion_tokens"].get<size_t>());
}

TEST(LogitBias, SteersTheOutputAndChecksIds) {
  Worker w;
  // stories260K has byte tokens <0x00>.. from id 3: id 3 + 'a' is the byte 'a'.
  json body = {{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0},
               {"logit_bias", {{std::to_string(3 + 'a'), 100}}}};
  auto r = w.post("/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["choices"][0]["text"], "aaaaa");
  body["logit_bias"] = {{"999999", 5}};
  r = w.post("/v1/completions", body.dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "logit_bias");
}

// ---- n > 1 ----

double prefix_cache_hits(const std::string& address) {
  auto m = gateway::http_request("GET", address, "/metrics");
  if (!m.is_ok()) return -1;
  const std::string key = "\nzs_worker_prefix_cache_hits ";
  const size_t at = m->body.find(key);
  return at == std::string::npos ? -1 : std::stod(m->body.substr(at + key.size()));
}

TEST(Choices, SeveralFromOnePromptShareItsPrefill) {
  Worker w;
  const double hits_before = prefix_cache_hits(w.address());
  json body = schema_request(1.0, 5);
  body["n"] = 3;
  body["logprobs"] = true;
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["choices"].size(), 3u);
  int64_t tokens = 0;
  std::set<std::string> texts;
  for (int i = 0; i < 3; ++i) {
    const json& c = j["choices"][i];
    EXPECT_EQ(c["index"], i);
    EXPECT_EQ(c["finish_reason"], "stop");
    const std::string text = c["message"]["content"];
    texts.insert(text);
    ojson out;
    ASSERT_NO_THROW(out = ojson::parse(text)) << text;
    std::string why;
    EXPECT_TRUE(validates(out, ojson::parse(kInvoiceSchema), &why)) << why;
    tokens += static_cast<int64_t>(c["logprobs"]["content"].size());
  }
  EXPECT_EQ(texts.size(), 3u);  // seeds differ per choice
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int64_t>(), tokens);
  // Choices 1 and 2 reused choice 0's prompt blocks.
  EXPECT_GE(prefix_cache_hits(w.address()) - hits_before, 2.0);

  json sbody = {{"model", "m"},
                {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
                {"max_tokens", 6},
                {"temperature", 0},
                {"n", 2},
                {"stream", true},
                {"stream_options", {{"include_usage", true}}}};
  auto events = w.stream("/v1/chat/completions", sbody.dump());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  std::map<int, std::string> text, finish;
  int64_t usage = -1;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    if (c.contains("usage") && c["usage"].is_object()) usage = c["usage"]["completion_tokens"];
    for (const auto& ch : c["choices"]) {
      const int idx = ch["index"];
      if (ch["delta"].contains("content")) text[idx] += ch["delta"]["content"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finish[idx] = ch["finish_reason"];
    }
  }
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text[0], text[1]);  // greedy: the same
  EXPECT_EQ(finish[0], "length");
  EXPECT_EQ(finish[1], "length");
  EXPECT_EQ(usage, 12);

  json bad = sbody;
  bad["n"] = 9;
  bad["stream"] = false;
  bad.erase("stream_options");
  auto b = w.post("/v1/chat/completions", bad.dump());
  ASSERT_EQ(b.status, 400) << b.body;
  EXPECT_EQ(json::parse(b.body)["error"]["param"], "n");
}

// ---- GBNF grammars ----

TEST(Grammar, ConstrainsCompletionsAndChatAndNamesErrors) {
  Worker w;
  for (int seed : {1, 2, 3}) {
    auto r = w.post("/v1/completions", json{{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 64},
                                            {"seed", seed}, {"grammar", "root ::= (\"yes\" | \"no\") \", \" [0-9]{2}"}}
                                           .dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string text = json::parse(r.body)["choices"][0]["text"];
    EXPECT_TRUE((text.size() == 7 && text.rfind("yes, ", 0) == 0) || (text.size() == 6 && text.rfind("no, ", 0) == 0))
        << text;
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(text.back()))) << text;
  }
  auto chat = w.post("/v1/chat/completions",
                     json{{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "Pick"}}})},
                          {"max_tokens", 64}, {"grammar", "root ::= [A-C] \".\""}}
                         .dump());
  ASSERT_EQ(chat.status, 200) << chat.body;
  const std::string answer = json::parse(chat.body)["choices"][0]["message"]["content"];
  ASSERT_EQ(answer.size(), 2u) << answer;
  EXPECT_TRUE(answer[0] >= 'A' && answer[0] <= 'C' && answer[1] == '.') << answer;

  auto bad = w.post("/v1/completions", json{{"model", "m"}, {"prompt", "x"}, {"grammar", "root ::= item"}}.dump());
  ASSERT_EQ(bad.status, 400) << bad.body;
  const json e = json::parse(bad.body)["error"];
  EXPECT_EQ(e["param"], "grammar");
  EXPECT_NE(e["message"].get<std::string>().find("line 1, column 10: rule 'item' is used but never defined"),
            std::string::npos)
      << e.dump();
}

// ---- tool calls ----

const char* kWeatherParams = R"({
  "type": "object",
  "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]},
                 "days": {"type": "integer"}},
  "required": ["city", "unit", "days"],
  "additionalProperties": false
})";

json tools_request(const json& tool_choice, bool stream = false, int seed = 1) {
  json tools = json::array({
      {{"type", "function"},
       {"function", {{"name", "get_weather"}, {"description", "Weather forecast"}, {"parameters", json::parse(kWeatherParams)}}}},
      {{"type", "function"}, {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}},
  });
  json body = {{"model", "m"},
               {"messages", json::array({{{"role", "user"}, {"content", "What is the weather in Oslo?"}}})},
               {"tools", tools},
               {"max_tokens", 2000},
               {"temperature", 1.0},
               {"seed", seed},
               {"stream", stream}};
  if (!tool_choice.is_null()) body["tool_choice"] = tool_choice;
  return body;
}

// Call ids: "call_..." as OpenAI's, or Mistral's 9 alphanumerics.
void expect_valid_weather_call(const json& call, bool mistral_id = false) {
  EXPECT_EQ(call["type"], "function");
  const std::string id = call["id"];
  if (mistral_id) {
    EXPECT_EQ(id.size(), 9u) << id;
    for (char c : id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << id;
  } else {
    EXPECT_EQ(id.rfind("call_", 0), 0u) << id;
  }
  ASSERT_TRUE(call["function"]["arguments"].is_string());
  ojson args;
  ASSERT_NO_THROW(args = ojson::parse(call["function"]["arguments"].get<std::string>())) << call.dump();
  if (call["function"]["name"] == "get_weather") {
    std::string why;
    EXPECT_TRUE(validates(args, ojson::parse(kWeatherParams), &why)) << why;
  } else {
    EXPECT_EQ(call["function"]["name"], "get_time");
    EXPECT_TRUE(args.is_object());
  }
}

TEST(ToolCalls, ForcedCallsParseAndValidate) {
  Worker w;
  for (int seed : {1, 2, 3}) {
    for (const json& choice : {json("required"), json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}) {
      auto r = w.post("/v1/chat/completions", tools_request(choice, false, seed).dump());
      ASSERT_EQ(r.status, 200) << r.body;
      const json j = json::parse(r.body);
      const json& choice0 = j["choices"][0];
      ASSERT_EQ(choice0["finish_reason"], "tool_calls") << r.body;
      const json& calls = choice0["message"]["tool_calls"];
      ASSERT_GE(calls.size(), 1u) << r.body;
      for (const auto& c : calls) expect_valid_weather_call(c);
      if (choice.is_object()) {
        ASSERT_EQ(calls.size(), 1u);
        EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
      }
    }
  }
}

// A streamed forced call, accumulated as the OpenAI SDK does.
void expect_streamed_weather_call(Worker& w, bool mistral_id = false) {
  auto events = w.stream("/v1/chat/completions",
                         tools_request(json{{"type", "function"}, {"function", {{"name", "get_weather"}}}}, true).dump());
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string finish, content;
  std::map<int, json> calls;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    const json& d = c["choices"][0]["delta"];
    if (d.contains("content") && d["content"].is_string()) content += d["content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const auto& tc : d["tool_calls"]) {  // accumulate as the OpenAI SDK does
        json& acc = calls[tc["index"].get<int>()];
        if (tc.contains("id")) acc["id"] = tc["id"];
        if (tc.contains("type")) acc["type"] = tc["type"];
        if (tc["function"].contains("name")) acc["function"]["name"] = tc["function"]["name"];
        acc["function"]["arguments"] = acc["function"].value("arguments", "") + tc["function"].value("arguments", "");
      }
    }
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_TRUE(content.empty()) << content;
  ASSERT_EQ(calls.size(), 1u);
  expect_valid_weather_call(calls[0], mistral_id);
}

void expect_forced_weather_calls(Worker& w, bool mistral_id = false) {
  for (int seed : {1, 2}) {
    auto r = w.post("/v1/chat/completions", tools_request("required", false, seed).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    ASSERT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << r.body;
    const json& calls = j["choices"][0]["message"]["tool_calls"];
    ASSERT_GE(calls.size(), 1u) << r.body;
    for (const auto& c : calls) expect_valid_weather_call(c, mistral_id);
  }
}

json with_call_and_result(json body, const std::string& id) {
  body["messages"].push_back({{"role", "assistant"},
                              {"content", nullptr},
                              {"tool_calls", json::array({{{"id", id},
                                                           {"type", "function"},
                                                           {"function", {{"name", "get_weather"},
                                                                         {"arguments", R"({"city":"Oslo","unit":"celsius","days":1})"}}}}})}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", "-3 C and snow"}});
  return body;
}

TEST(ToolCalls, ForcedCallStreams) {
  Worker w;
  expect_streamed_weather_call(w);
}

// Mistral v0.3's vocabulary has [TOOL_CALLS] as a control token: the worker renders it as text,
// so calls written with it (or spelt out) parse, and get Mistral's 9-character ids.
TEST(ToolCalls, MistralV3CallsComeOutThroughItsControlToken) {
  zs::testing::TempDir dir;
  auto preset = engine::find_model_preset("mistral-7b-v0.3");
  ASSERT_TRUE(preset.is_ok());
  engine::ModelPreset p = preset.value();
  p.n_embd = 64;  // the real vocabulary and template on a narrow model
  p.n_layer = 1;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.n_ff = 128;
  const std::string path = dir.file("mistral.gguf");
  ASSERT_TRUE(engine::write_random_model(p, engine::FileType::kQ8_0, path).is_ok());
  Worker w({}, path);
  expect_forced_weather_calls(w, /*mistral_id=*/true);
  expect_streamed_weather_call(w, /*mistral_id=*/true);
  // Steered onto the control token itself (id 5), the output starts with it as text.
  json steered = tools_request("required");
  steered["logit_bias"] = {{"5", 100}};
  steered["logprobs"] = true;
  auto r = w.post("/v1/chat/completions", steered.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["token"], "[TOOL_CALLS]") << r.body;
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls") << r.body;
  // A conversation with a call and its result renders under the mistral-v3 template.
  json body = with_call_and_result(tools_request("auto"), "abcdefghi");
  body["max_tokens"] = 4;
  EXPECT_EQ(w.post("/v1/chat/completions", body.dump()).status, 200);
}

// Phi-4-mini's convention (<|tool_call|>[...]<|/tool_call|>), chosen here by the template name.
TEST(ToolCalls, Phi4MiniCallsParse) {
  Worker w({"--chat-template", "phi4-mini"});
  expect_forced_weather_calls(w);
  expect_streamed_weather_call(w);
  json body = with_call_and_result(tools_request("auto"), "call_1");
  body["max_tokens"] = 4;
  EXPECT_EQ(w.post("/v1/chat/completions", body.dump()).status, 200);
}

TEST(ToolCalls, AutoWithAModelThatAnswersInText) {
  Worker w;
  json body = tools_request("auto");
  body["max_tokens"] = 16;
  body["temperature"] = 0;
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(j["choices"][0]["message"].contains("tool_calls"));
  EXPECT_FALSE(j["choices"][0]["message"]["content"].get<std::string>().empty());

  body["stream"] = true;
  auto events = w.stream("/v1/chat/completions", body.dump());
  std::string content;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json c = json::parse(events[i]);
    const json& d = c["choices"][0]["delta"];
    EXPECT_FALSE(d.contains("tool_calls"));
    if (d.contains("content") && d["content"].is_string()) content += d["content"].get<std::string>();
  }
  EXPECT_EQ(content, j["choices"][0]["message"]["content"].get<std::string>());
}

TEST(ToolCalls, HistoryWithCallsAndResults) {
  Worker w;
  json body = with_call_and_result(tools_request("auto"), "call_1");
  body["max_tokens"] = 4;
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
}

TEST(ToolCalls, RefusesBadToolChoiceAndSchemas) {
  Worker w;
  auto status_param = [&](const json& body) {
    auto r = w.post("/v1/chat/completions", body.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    return json::parse(r.body)["error"].value("param", "");
  };
  EXPECT_EQ(status_param(tools_request(json{{"type", "function"}, {"function", {{"name", "nope"}}}})),
            "tool_choice.function.name");
  EXPECT_EQ(status_param(tools_request("sometimes")), "tool_choice");
  json no_tools = tools_request("required");
  no_tools.erase("tools");
  EXPECT_EQ(status_param(no_tools), "tool_choice");
  json bad = tools_request("required");
  bad["tools"][0]["function"]["parameters"]["properties"]["city"]["pattern"] = "^[A-Z]";
  EXPECT_EQ(status_param(bad), "tools[0].function.parameters");
  json both = tools_request("auto");
  both["response_format"] = {{"type", "json_object"}};
  EXPECT_EQ(status_param(both), "response_format");
}

// Through the gateway: scale from zero, then the same fields pass through unchanged.
TEST(StructuredOutputs, ThroughTheGateway) {
  zs::testing::Serve s("devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n"
                       "deployments:\n  - name: story\n    model: " + zs::testing::golden_model("stories260K.gguf") +
                       "\n    slots: 2\n    ctx: 4096\n    threads: 1\n");
  ASSERT_FALSE(s.address().empty());
  json body = schema_request(0, 1);
  body["model"] = "story";
  auto r = s.post(body);
  ASSERT_EQ(r.status, 200) << r.body;
  ojson out;
  ASSERT_NO_THROW(out = ojson::parse(json::parse(r.body)["choices"][0]["message"]["content"].get<std::string>()));
  std::string why;
  EXPECT_TRUE(validates(out, ojson::parse(kInvoiceSchema), &why)) << why;

  json tools = tools_request("required");
  tools["model"] = "story";
  r = s.post(tools);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["choices"][0]["finish_reason"], "tool_calls");

  body["response_format"]["json_schema"]["schema"] = {{"type", "integer"}, {"minimum", 0}};
  r = s.post(body);
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "response_format.json_schema.schema");
  EXPECT_NE(r.body.find("minimum"), std::string::npos);
}

}  // namespace
}  // namespace zs
