#include "gateway/openai/openai_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "gateway/openai/base64.h"

namespace zs::gateway::openai {
namespace {

using nlohmann::json;

// A tiny but real PNG signature + header prefix: the bytes are what matters, not validity.
const std::string kPngBytes = std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);

json minimal_chat() {
  return json{{"model", "qwen2-vl"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
}

// Parses `body` expecting failure; returns the ApiError.
ApiError chat_error(const json& body, const Limits& limits = {}) {
  ApiError err;
  auto r = parse_chat_completion_request(body.dump(), limits, &err);
  EXPECT_FALSE(r.is_ok()) << body.dump();
  if (!r.is_ok()) {
    EXPECT_EQ(r.status().message(), err.message);
  }
  return err;
}

ApiError completion_error(const json& body) {
  ApiError err;
  auto r = parse_completion_request(body.dump(), {}, &err);
  EXPECT_FALSE(r.is_ok()) << body.dump();
  return err;
}

TEST(ChatRequestTest, ParsesAFullRequest) {
  json body = {
      {"model", "llava-1.6"},
      {"messages",
       json::array({
           {{"role", "system"}, {"content", "Be brief."}},
           {{"role", "user"},
            {"content", json::array({
                            {{"type", "text"}, {"text", "What is "}},
                            {{"type", "image_url"},
                             {"image_url", {{"url", "data:image/png;base64," + base64_encode(kPngBytes)},
                                            {"detail", "low"}}}},
                            {{"type", "text"}, {"text", "this?"}},
                            {{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.jpg"}}}},
                        })}},
           {{"role", "assistant"}, {"content", "A cat."}},
           {{"role", "user"}, {"content", "Sure?"}, {"name", "bob"}},
       })},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"max_tokens", 64},
      {"temperature", 0.7},
      {"top_p", 0.9},
      {"seed", -5},
      {"stop", json::array({"\n\n", "END"})},
      {"presence_penalty", 0.5},
      {"frequency_penalty", -0.5},
      {"n", 1},
      {"logprobs", false},
      {"priority", 3},
      {"user", "u-1"},
      {"some_future_field", {{"x", 1}}},
  };
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ChatRequest& req = r.value();
  EXPECT_EQ(req.model, "llava-1.6");
  ASSERT_EQ(req.messages.size(), 4u);
  EXPECT_EQ(req.messages[0].role, Role::kSystem);
  EXPECT_EQ(req.messages[0].text(), "Be brief.");
  const auto& parts = req.messages[1].content;
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0].text, "What is ");
  ASSERT_EQ(parts[1].type, ContentPart::Type::kImage);
  EXPECT_EQ(parts[1].image.data, kPngBytes);
  EXPECT_EQ(parts[1].image.mime_type, "image/png");
  EXPECT_EQ(parts[1].image.detail, "low");
  EXPECT_FALSE(parts[1].image.is_remote());
  ASSERT_EQ(parts[3].type, ContentPart::Type::kImage);
  EXPECT_TRUE(parts[3].image.is_remote());
  EXPECT_EQ(parts[3].image.url, "https://example.com/cat.jpg");
  EXPECT_TRUE(parts[3].image.data.empty());
  EXPECT_EQ(req.messages[1].text(), "What is this?");
  EXPECT_EQ(req.messages[2].role, Role::kAssistant);
  EXPECT_EQ(req.messages[3].name, "bob");
  EXPECT_EQ(req.image_count(), 2u);
  EXPECT_TRUE(req.has_remote_images());
  EXPECT_TRUE(req.stream);
  EXPECT_TRUE(req.include_usage);
  EXPECT_EQ(req.sampling.max_tokens, 64);
  EXPECT_DOUBLE_EQ(*req.sampling.temperature, 0.7);
  EXPECT_DOUBLE_EQ(*req.sampling.top_p, 0.9);
  EXPECT_EQ(req.sampling.seed, -5);
  EXPECT_EQ(req.sampling.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_DOUBLE_EQ(req.sampling.presence_penalty, 0.5);
  EXPECT_DOUBLE_EQ(req.sampling.frequency_penalty, -0.5);
  EXPECT_EQ(req.user, "u-1");
}

TEST(ChatRequestTest, DefaultsStayUnset) {
  auto r = parse_chat_completion_request(minimal_chat().dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->include_usage);
  EXPECT_FALSE(r->sampling.max_tokens);
  EXPECT_FALSE(r->sampling.temperature);
  EXPECT_FALSE(r->sampling.top_p);
  EXPECT_FALSE(r->sampling.seed);
  EXPECT_TRUE(r->sampling.stop.empty());
  EXPECT_FALSE(r->has_remote_images());
}

TEST(ChatRequestTest, NullMeansNotGiven) {
  json body = minimal_chat();
  for (const char* f : {"temperature", "top_p", "max_tokens", "seed", "stop", "stream", "n", "stream_options",
                        "logprobs", "user", "tools", "response_format"}) {
    body[f] = nullptr;
  }
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_FALSE(r->sampling.temperature);
}

TEST(ChatRequestTest, StopAsStringOrArray) {
  json body = minimal_chat();
  body["stop"] = "###";
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"###"});
  body["stop"] = json::array({"a", "b", "c", "d"});
  r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->sampling.stop.size(), 4u);

  body["stop"] = json::array({"a", "b", "c", "d", "e"});
  EXPECT_EQ(chat_error(body).param, "stop");
  body["stop"] = json::array({"a", 7});
  EXPECT_EQ(chat_error(body).param, "stop[1]");
  body["stop"] = json::array({"a", ""});
  EXPECT_EQ(chat_error(body).param, "stop[1]");
  body["stop"] = 3;
  EXPECT_EQ(chat_error(body).param, "stop");
}

TEST(ChatRequestTest, MaxCompletionTokensWinsOverMaxTokens) {
  json body = minimal_chat();
  body["max_tokens"] = 10;
  body["max_completion_tokens"] = 20;
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->sampling.max_tokens, 20);
}

// Each invalid field is refused with an error naming it.
TEST(ChatRequestTest, EveryInvalidFieldIsNamed) {
  struct Case {
    std::string field;
    json value;
    std::string param;
  };
  std::vector<Case> cases = {
      {"model", 5, "model"},
      {"model", "", "model"},
      {"messages", "hi", "messages"},
      {"messages", json::array(), "messages"},
      {"stream", "yes", "stream"},
      {"stream_options", {{"include_usage", true}}, "stream_options"},  // without stream
      {"max_tokens", 0, "max_tokens"},
      {"max_tokens", -3, "max_tokens"},
      {"max_tokens", 2.5, "max_tokens"},
      {"max_tokens", "100", "max_tokens"},
      {"max_tokens", 1e12, "max_tokens"},
      {"max_completion_tokens", 0, "max_completion_tokens"},
      {"temperature", 2.5, "temperature"},
      {"temperature", -0.1, "temperature"},
      {"temperature", "hot", "temperature"},
      {"top_p", 0, "top_p"},
      {"top_p", 1.01, "top_p"},
      {"seed", 1.5, "seed"},
      {"seed", "42", "seed"},
      {"seed", json(18446744073709551615ull), "seed"},
      {"presence_penalty", 2.1, "presence_penalty"},
      {"frequency_penalty", -2.1, "frequency_penalty"},
      {"n", 9, "n"},
      {"n", 0, "n"},
      {"logprobs", "no", "logprobs"},
      {"top_logprobs", 21, "top_logprobs"},
      {"top_logprobs", 3, "top_logprobs"},
      {"logit_bias", {{"abc", -100}}, "logit_bias"},
      {"logit_bias", {{"5", 101}}, "logit_bias.5"},
      {"logit_bias", {{"5", "x"}}, "logit_bias.5"},
      {"user", 12, "user"},
      {"tools", json::array({{{"type", "function"}}}), "tools[0].function"},
      {"tools", json::array({{{"type", "retrieval"}}}), "tools[0].type"},
      {"tools", "all", "tools"},
      {"tool_choice", "auto", "tool_choice"},
      {"response_format", {{"type", "xml"}}, "response_format.type"},
      {"response_format", {{"type", "json_schema"}}, "response_format.json_schema"},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", json::object()}}}},
       "response_format.json_schema.name"},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "bad name!"}}}},
       "response_format.json_schema.name"},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "n"}, {"schema", 3}}}},
       "response_format.json_schema.schema"},
      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "n"}, {"strict", "yes"}}}},
       "response_format.json_schema.strict"},
      {"grammar", 3, "grammar"},
      {"top_k", -1, "top_k"},
      {"min_p", 1.5, "min_p"},
      {"repetition_penalty", 0, "repetition_penalty"},
  };
  for (const auto& c : cases) {
    json body = minimal_chat();
    body[c.field] = c.value;
    ApiError err = chat_error(body);
    EXPECT_EQ(err.param, c.param) << c.field << "=" << c.value.dump() << ": " << err.message;
    EXPECT_EQ(err.type(), "invalid_request_error");
    EXPECT_EQ(err.http_status(), 400);
    EXPECT_FALSE(err.message.empty());
    EXPECT_FALSE(err.code.empty());
    // The message itself names the field, for clients that only show the message.
    std::string top = c.param.substr(0, c.param.find('.'));
    EXPECT_NE(err.message.find(top), std::string::npos) << err.message;
  }
}

TEST(ChatRequestTest, MissingRequiredFieldsAreNamed) {
  json body = minimal_chat();
  body.erase("model");
  ApiError err = chat_error(body);
  EXPECT_EQ(err.param, "model");
  EXPECT_EQ(err.code, "missing_required_parameter");
  body = minimal_chat();
  body.erase("messages");
  EXPECT_EQ(chat_error(body).param, "messages");
}

TEST(ChatRequestTest, InvalidMessagesAreNamedByPath) {
  struct Case {
    json message;
    std::string param;
  };
  std::vector<Case> cases = {
      {"hello", "messages[1]"},
      {{{"content", "x"}}, "messages[1].role"},
      {{{"role", "robot"}, {"content", "x"}}, "messages[1].role"},
      {{{"role", "user"}}, "messages[1].content"},
      {{{"role", "user"}, {"content", 5}}, "messages[1].content"},
      {{{"role", "user"}, {"content", json::array()}}, "messages[1].content"},
      {{{"role", "user"}, {"content", json::array({"text"})}}, "messages[1].content[0]"},
      {{{"role", "user"}, {"content", json::array({{{"text", "x"}}})}}, "messages[1].content[0].type"},
      {{{"role", "user"}, {"content", json::array({{{"type", "text"}}})}}, "messages[1].content[0].text"},
      {{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", 3}}})}},
       "messages[1].content[0].text"},
      {{{"role", "user"}, {"content", json::array({{{"type", "input_audio"}}})}}, "messages[1].content[0].type"},
      {{{"role", "user"}, {"content", json::array({{{"type", "image_url"}}})}},
       "messages[1].content[0].image_url"},
      {{{"role", "user"}, {"content", json::array({{{"type", "image_url"}, {"image_url", {{"detail", "low"}}}}})}},
       "messages[1].content[0].image_url.url"},
      {{{"role", "user"},
        {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "ftp://x/y.png"}}}}})}},
       "messages[1].content[0].image_url.url"},
      {{{"role", "user"},
        {"content", json::array({{{"type", "image_url"},
                                  {"image_url", {{"url", "https://x/y.png"}, {"detail", "ultra"}}}}})}},
       "messages[1].content[0].image_url.detail"},
      {{{"role", "assistant"},
        {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "https://x/y.png"}}}}})}},
       "messages[1].content[0].type"},
      {{{"role", "user"}, {"content", "x"}, {"name", 3}}, "messages[1].name"},
      {{{"role", "assistant"}, {"tool_calls", json::array({{{"id", "1"}}})}}, "messages[1].tool_calls[0].function"},
      {{{"role", "user"}, {"content", "x"}, {"tool_calls", json::array()}}, "messages[1].tool_calls"},
      {{{"role", "tool"}, {"content", "x"}}, "messages[1].tool_call_id"},
      {{{"role", "function"}, {"content", "x"}}, "messages[1].role"},
  };
  for (const auto& c : cases) {
    json body = minimal_chat();
    body["messages"].push_back(c.message);
    ApiError err = chat_error(body);
    EXPECT_EQ(err.param, c.param) << c.message.dump() << ": " << err.message;
  }
}

TEST(ChatRequestTest, AssistantContentMayBeNull) {
  json body = minimal_chat();
  body["messages"].push_back({{"role", "assistant"}, {"content", nullptr}});
  body["messages"].push_back({{"role", "developer"}, {"content", "rules"}});
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_TRUE(r->messages[1].content.empty());
  EXPECT_EQ(r->messages[2].role, Role::kSystem);
}

json with_image(const std::string& url) {
  json body = minimal_chat();
  body["messages"][0]["content"] = json::array({{{"type", "image_url"}, {"image_url", {{"url", url}}}}});
  return body;
}

TEST(ChatRequestTest, DataUrlsAreDecoded) {
  std::string jpeg = "\xff\xd8\xff\xe0 some jpeg bytes \x00\x01\x02";
  auto r = parse_chat_completion_request(with_image("data:image/jpeg;base64," + base64_encode(jpeg)).dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const ImageInput& img = r->messages[0].content[0].image;
  EXPECT_EQ(img.data, jpeg);
  EXPECT_EQ(img.mime_type, "image/jpeg");
  EXPECT_EQ(img.detail, "auto");
  // Parameters before ;base64 are allowed; the URL may also be given as a bare string.
  json body = minimal_chat();
  body["messages"][0]["content"] =
      json::array({{{"type", "image_url"}, {"image_url", "data:image/PNG;name=a.png;base64," + base64_encode("xyz")}}});
  r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->messages[0].content[0].image.data, "xyz");
  EXPECT_EQ(r->messages[0].content[0].image.mime_type, "image/png");
}

TEST(ChatRequestTest, BadDataUrlsAreRefusedWithTheReason) {
  struct Case {
    std::string url;
    std::string says;
  };
  std::vector<Case> cases = {
      {"data:image/png;base64,iVBOR$w0K", "'$' at offset 5"},
      {"data:image/png;base64,", "no image bytes"},
      {"data:image/png,rawbytes", "base64"},
      {"data:text/plain;base64,aGVsbG8=", "image/"},
      {"data:image/png;base64", "','"},
      {"data:image/png;base64,aGVsbG8=x", "offset"},
  };
  for (const auto& c : cases) {
    ApiError err = chat_error(with_image(c.url));
    EXPECT_EQ(err.param, "messages[0].content[0].image_url.url") << c.url;
    EXPECT_NE(err.message.find(c.says), std::string::npos) << c.url << ": " << err.message;
    EXPECT_EQ(err.code, "invalid_image_url");
  }
}

TEST(ChatRequestTest, ImageLimitsAreEnforced) {
  Limits limits;
  limits.max_image_bytes = 10;
  ApiError err = chat_error(with_image("data:image/png;base64," + base64_encode(std::string(11, 'a'))), limits);
  EXPECT_NE(err.message.find("exceeds the limit"), std::string::npos) << err.message;
  EXPECT_TRUE(parse_chat_completion_request(
                  with_image("data:image/png;base64," + base64_encode(std::string(10, 'a'))).dump(), limits)
                  .is_ok());
  // A huge payload is refused before decoding.
  err = chat_error(with_image("data:image/png;base64," + std::string(4000, 'A')), limits);
  EXPECT_NE(err.message.find("exceeds the limit"), std::string::npos) << err.message;

  limits = Limits{};
  limits.max_images = 2;
  json body = minimal_chat();
  json parts = json::array();
  for (int i = 0; i < 3; ++i) parts.push_back({{"type", "image_url"}, {"image_url", {{"url", "https://x/" + std::to_string(i)}}}});
  body["messages"][0]["content"] = parts;
  err = chat_error(body, limits);
  EXPECT_EQ(err.param, "messages[0].content[2]");
  EXPECT_EQ(err.code, "too_many_images");
}

TEST(ChatRequestTest, RemoteUrlsAreFlaggedForTheWorkerToRefuse) {
  json body = minimal_chat();
  body["messages"].push_back(
      {{"role", "user"},
       {"content", json::array({{{"type", "text"}, {"text", "look"}},
                                {{"type", "image_url"}, {"image_url", {{"url", "http://example.com/a.png"}}}}})}});
  auto r = parse_chat_completion_request(body.dump());
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->has_remote_images());
  auto err = remote_image_error(r.value());
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->param, "messages[1].content[1].image_url.url");
  EXPECT_NE(err->message.find(kRemoteImageRefused), std::string::npos);
  auto j = json::parse(err->to_json());
  EXPECT_EQ(j["error"]["param"], "messages[1].content[1].image_url.url");

  auto local = parse_chat_completion_request(with_image("data:image/png;base64,eHl6").dump());
  ASSERT_TRUE(local.is_ok());
  EXPECT_FALSE(remote_image_error(local.value()).has_value());
}

TEST(ChatRequestTest, MalformedJsonSaysWhere) {
  ApiError err;
  auto r = parse_chat_completion_request(R"({"model": "m", "messages": [}")", {}, &err);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(err.message.find("not valid JSON"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("byte offset 28"), std::string::npos) << err.message;
  EXPECT_NE(err.message.find("column 29"), std::string::npos) << err.message;
  EXPECT_EQ(err.code, "invalid_json");

  for (const std::string& body : {std::string(""), std::string("[]"), std::string("42"), std::string("\"x\""),
                                  std::string("{\"model\":\"m\"} trailing"), std::string("{\"a\":\"\xff\"}")}) {
    EXPECT_FALSE(parse_chat_completion_request(body).is_ok()) << body;
  }
  // Absurd nesting is refused before parsing.
  std::string deep = "{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  r = parse_chat_completion_request(deep, {}, &err);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(err.message.find("deeper"), std::string::npos);
}

TEST(CompletionRequestTest, PromptAsStringOrArrayOfOne) {
  auto r = parse_completion_request(R"({"model":"m","prompt":"Once upon","max_tokens":5,"stop":"\n"})");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->prompt, "Once upon");
  EXPECT_EQ(r->sampling.max_tokens, 5);
  EXPECT_EQ(r->sampling.stop, std::vector<std::string>{"\n"});
  r = parse_completion_request(R"({"model":"m","prompt":["a time"],"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->prompt, "a time");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);

  EXPECT_EQ(completion_error(json{{"model", "m"}}).param, "prompt");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", json::array({"a", "b"})}}).param, "prompt");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", json::array({1})}}).param, "prompt[0]");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", 5}}).param, "prompt");
  EXPECT_EQ(completion_error(json{{"prompt", "x"}}).param, "model");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"temperature", 3}}).param, "temperature");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"echo", true}}).param, "echo");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"logprobs", 21}}).param, "logprobs");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"logprobs", true}}).param, "logprobs");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"best_of", 3}}).param, "best_of");
  EXPECT_EQ(completion_error(json{{"model", "m"}, {"prompt", "x"}, {"suffix", "y"}}).param, "suffix");
}

TEST(OpenAiErrorTest, JsonShape) {
  auto j = json::parse(openai_error_json("bad temperature", "invalid_request_error", "temperature", "invalid_value"));
  EXPECT_EQ(j["error"]["message"], "bad temperature");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_EQ(j["error"]["code"], "invalid_value");
  j = json::parse(openai_error_json("oops"));
  EXPECT_TRUE(j["error"]["param"].is_null());
  EXPECT_TRUE(j["error"]["code"].is_null());
  // Invalid UTF-8 from a client echoed in a message does not break the JSON.
  j = json::parse(openai_error_json("bad \xff byte"));
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
}

// Random mutations of valid requests (byte flips, truncation, splicing, type swaps) never
// crash the parser: each gives a request or a clean error.
TEST(ChatRequestFuzzTest, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(12345);
  std::vector<std::string> seeds = {
      minimal_chat().dump(),
      with_image("data:image/png;base64," + base64_encode(kPngBytes)).dump(),
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x/y","detail":"high"}}]}],"stream":true,"stream_options":{"include_usage":true},"stop":["a","b"],"temperature":1,"top_p":0.5,"seed":3,"max_tokens":9})",
      R"({"model":"m","prompt":["x"],"max_tokens":3})",
  };
  const std::vector<std::string> fragments = {"null", "[]", "{}", "\"\"", "-1", "1e999", "true", "\"\\u0000\"",
                                              "[[[[", "\"data:image/png;base64,====\"", "0.5", "\xff"};
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = rng() % s.size();
      switch (rng() % 5) {
        case 0: s[pos] = static_cast<char>(rng() & 0xff); break;
        case 1: s.resize(pos); break;
        case 2: s.erase(pos, 1 + rng() % 8); break;
        case 3: s.insert(pos, fragments[rng() % fragments.size()]); break;
        case 4: {  // replace a JSON value after a ':' with a fragment
          size_t colon = s.find(':', pos);
          if (colon != std::string::npos) {
            size_t end = s.find_first_of(",}]", colon + 1);
            if (end != std::string::npos) s.replace(colon + 1, end - colon - 1, fragments[rng() % fragments.size()]);
          }
          break;
        }
      }
    }
    ApiError err;
    auto chat = parse_chat_completion_request(s, {}, &err);
    if (chat.is_ok()) {
      ++parsed;
    } else {
      EXPECT_FALSE(err.message.empty());
    }
    auto completion = parse_completion_request(s, {}, &err);
    if (!completion.is_ok()) {
      EXPECT_FALSE(err.message.empty());
    }
  }
  EXPECT_GT(parsed, 0);  // the mutations are not all fatal, so deeper code ran too
}

}  // namespace
}  // namespace zs::gateway::openai

namespace zs::gateway::openai {
namespace {

// The body of a chat request with `field` set to the literal JSON text `value`.
std::string chat_with(const std::string& field, const std::string& value) {
  return R"({"model":"m","messages":[{"role":"user","content":"Hi"}],")" + field + "\":" + value + "}";
}

TEST(SamplingEdgeTest, EveryOutOfRangeNumberIsA400NamingItsField) {
  const std::vector<std::string> fields = {"temperature", "top_p",   "min_p",     "repeat_penalty", "repetition_penalty",
                                           "top_k",       "seed",    "max_tokens", "presence_penalty",
                                           "frequency_penalty", "max_completion_tokens"};
  // Values no field accepts: denormals and numbers that are 0 as a float only matter for the
  // fields whose 0 is invalid, so they are tested separately below.
  const std::vector<std::string> bad_everywhere = {"1e308", "-1e308", "1e999", "-1e999",
                                                   "99999999999999999999999", "-99999999999999999999999",
                                                   "\"NaN\"", "\"inf\"", "null", "true", "[1]"};
  for (const auto& f : fields) {
    for (const auto& v : bad_everywhere) {
      if (f == "seed" && (v == "99999999999999999999999" || v == "-99999999999999999999999")) continue;
      ApiError err;
      auto r = parse_chat_completion_request(chat_with(f, v), {}, &err);
      if (f == "seed" && v == "null") continue;  // covered by null handling below
      if (v == "null" && r.is_ok()) continue;    // null means "absent", as in OpenAI's SDKs
      ASSERT_FALSE(r.is_ok()) << f << "=" << v;
      EXPECT_EQ(err.http_status(), 400) << f << "=" << v;
      EXPECT_EQ(err.param, f) << f << "=" << v << ": " << err.message;
    }
  }
}

TEST(SamplingEdgeTest, HugeIntegerSeedsAreA400NamingSeed) {
  for (const std::string v : {"99999999999999999999999", "-99999999999999999999999", "1e300"}) {
    ApiError err;
    ASSERT_FALSE(parse_chat_completion_request(chat_with("seed", v), {}, &err).is_ok()) << v;
    EXPECT_EQ(err.http_status(), 400);
    EXPECT_EQ(err.param, "seed");
  }
}

TEST(SamplingEdgeTest, ValuesThatAreZeroAsAFloatAreRefusedWhereZeroIsInvalid) {
  for (const std::string f : {"top_p", "repeat_penalty", "repetition_penalty"}) {
    for (const std::string v : {"4.9e-324", "1e-46", "2.2250738585072014e-308", "0", "-0.0", "-1e-46", "-1"}) {
      ApiError err;
      auto r = parse_chat_completion_request(chat_with(f, v), {}, &err);
      ASSERT_FALSE(r.is_ok()) << f << "=" << v;
      EXPECT_EQ(err.http_status(), 400) << f << "=" << v;
      EXPECT_EQ(err.param, f) << f << "=" << v << ": " << err.message;
      EXPECT_EQ(err.type(), "invalid_request_error");
    }
  }
}

TEST(SamplingEdgeTest, TinyValuesAreAcceptedWhereZeroIsValid) {
  for (const std::string f : {"temperature", "min_p", "presence_penalty", "frequency_penalty"}) {
    for (const std::string v : {"4.9e-324", "1e-46", "0", "-0.0"}) {
      ApiError err;
      auto r = parse_chat_completion_request(chat_with(f, v), {}, &err);
      EXPECT_TRUE(r.is_ok()) << f << "=" << v << ": " << err.message;
    }
  }
}

TEST(SamplingEdgeTest, EveryParsedRequestPassesTheEnginesRule) {
  for (const std::string f : {"top_p", "repeat_penalty", "temperature", "min_p"}) {
    for (const std::string v : {"1e-38", "1.2e-38", "1e-40", "1", "0.5"}) {
      ApiError err;
      auto r = parse_chat_completion_request(chat_with(f, v), {}, &err);
      if (r.is_ok()) EXPECT_FALSE(r->sampling.to_params().invalid_field()) << f << "=" << v;
      else EXPECT_EQ(err.http_status(), 400) << f << "=" << v;
    }
  }
}

TEST(SamplingEdgeTest, CompletionsApplyTheSameRule) {
  ApiError err;
  auto r = parse_completion_request(R"({"model":"m","prompt":"a","top_p":4.9e-324})", {}, &err);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(err.http_status(), 400);
  EXPECT_EQ(err.param, "top_p");
}

}  // namespace
}  // namespace zs::gateway::openai

namespace zs::gateway::openai {
namespace {

TEST(ChatRequestTest, GrammarIsTakenAloneForChatAndCompletions) {
  auto chat = parse_chat_completion_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"grammar":"root ::= \"a\""})");
  ASSERT_TRUE(chat.is_ok()) << chat.status().message();
  EXPECT_EQ(chat->response_format.type, OutputFormat::Type::kGrammar);
  EXPECT_EQ(chat->response_format.grammar, "root ::= \"a\"");
  auto completion = parse_completion_request(R"({"model":"m","prompt":"x","grammar":"root ::= [0-9]+"})");
  ASSERT_TRUE(completion.is_ok()) << completion.status().message();
  EXPECT_EQ(completion->output.type, OutputFormat::Type::kGrammar);
  // Empty and null mean none.
  EXPECT_EQ(parse_completion_request(R"({"model":"m","prompt":"x","grammar":""})")->output.type, OutputFormat::Type::kText);
  EXPECT_EQ(parse_completion_request(R"({"model":"m","prompt":"x","grammar":null})")->output.type, OutputFormat::Type::kText);
  // Not with another constraint.
  ApiError err;
  EXPECT_FALSE(parse_chat_completion_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"grammar":"r",
      "response_format":{"type":"json_object"}})", {}, &err).is_ok());
  EXPECT_EQ(err.param, "grammar");
  EXPECT_FALSE(parse_chat_completion_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"grammar":"r",
      "tools":[{"type":"function","function":{"name":"f"}}]})", {}, &err).is_ok());
  EXPECT_EQ(err.param, "grammar");
  EXPECT_TRUE(parse_chat_completion_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"grammar":"r",
      "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"})").is_ok());
}

TEST(ChatRequestTest, ResponseFormatKeepsTheSchemaKeyOrder) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "response_format":{"type":"json_schema","json_schema":{"name":"invoice","strict":true,
    "schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}}}}})";
  auto r = parse_chat_completion_request(body);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->response_format.type, OutputFormat::Type::kJsonSchema);
  EXPECT_EQ(r->response_format.schema_name, "invoice");
  EXPECT_TRUE(r->response_format.strict);
  EXPECT_LT(r->response_format.schema.find("zeta"), r->response_format.schema.find("alpha"));

  auto o = parse_chat_completion_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})");
  ASSERT_TRUE(o.is_ok());
  EXPECT_EQ(o->response_format.type, OutputFormat::Type::kJsonObject);
}

TEST(ChatRequestTest, LogitBias) {
  auto r = parse_chat_completion_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"logit_bias":{"17":-100,"4":2.5}})");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->sampling.logit_bias.size(), 2u);
}

TEST(ChatRequestTest, Logprobs) {
  auto none = parse_chat_completion_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(none.is_ok());
  EXPECT_FALSE(none->logprobs.wanted());
  auto some = parse_chat_completion_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":5})");
  ASSERT_TRUE(some.is_ok()) << some.status().message();
  EXPECT_EQ(some->logprobs.top, 5);
  auto c = parse_completion_request(R"({"model":"m","prompt":"x","logprobs":3})");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->logprobs.top, 3);
}

}  // namespace
}  // namespace zs::gateway::openai

namespace zs::gateway::openai {
namespace {

TEST(ChatRequestTest, ToolsAndToolChoice) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"42"}],
    "tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{"z":{},"a":{}}}}}],
    "tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false})";
  auto r = parse_chat_completion_request(body);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->tools.size(), 1u);
  EXPECT_EQ(r->tools[0].name, "f");
  EXPECT_LT(r->tools[0].parameters.find("\"z\""), r->tools[0].parameters.find("\"a\""));  // the client's order
  EXPECT_EQ(r->tool_choice.mode, ToolChoice::Mode::kFunction);
  EXPECT_EQ(r->tool_choice.function, "f");
  EXPECT_FALSE(r->parallel_tool_calls);
  ASSERT_EQ(r->messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(r->messages[1].tool_calls[0].arguments, "{\"a\":1}");
  EXPECT_EQ(r->messages[2].role, Role::kTool);
  EXPECT_EQ(r->messages[2].tool_call_id, "c1");

  json auto_body = json::parse(body);
  auto_body.erase("tool_choice");
  auto a = parse_chat_completion_request(auto_body.dump());
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->tool_choice.mode, ToolChoice::Mode::kAuto);
}

}  // namespace
}  // namespace zs::gateway::openai
