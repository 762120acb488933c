#include "gateway/openai/openai_response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "gateway/openai/base64.h"

namespace zs::gateway::openai {
namespace {

using nlohmann::json;

Usage sample_usage() {
  Usage u;
  u.prompt_tokens = 100;
  u.completion_tokens = 20;
  u.cached_tokens = 64;
  u.image_tokens = 50;
  return u;
}

void expect_usage(const json& u) {
  EXPECT_EQ(u["prompt_tokens"], 100);
  EXPECT_EQ(u["completion_tokens"], 20);
  EXPECT_EQ(u["total_tokens"], 120);
  EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 64);
  EXPECT_EQ(u["prompt_tokens_details"]["image_tokens"], 50);
}

TEST(OpenAiResponseTest, ChatCompletion) {
  auto j = json::parse(chat_completion_response("chatcmpl-1", 1700000000, "m", "Hello!", "stop", sample_usage()));
  EXPECT_EQ(j["id"], "chatcmpl-1");
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "m");
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello!");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  expect_usage(j["usage"]);
}

TEST(OpenAiResponseTest, ChatChunks) {
  auto first = json::parse(chat_completion_chunk("id", 1, "m", "assistant", "", std::nullopt));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));

  auto mid = json::parse(chat_completion_chunk("id", 1, "m", std::nullopt, "tok", std::nullopt, true));
  EXPECT_FALSE(mid["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(mid["choices"][0]["delta"]["content"], "tok");
  ASSERT_TRUE(mid.contains("usage"));
  EXPECT_TRUE(mid["usage"].is_null());

  auto last = json::parse(chat_completion_chunk("id", 1, "m", std::nullopt, std::nullopt, "length"));
  EXPECT_TRUE(last["choices"][0]["delta"].is_object());
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
}

TEST(OpenAiResponseTest, UsageChunkHasNoChoices) {
  auto j = json::parse(usage_chunk("id", 1, "m", sample_usage()));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  ASSERT_TRUE(j["choices"].is_array());
  EXPECT_TRUE(j["choices"].empty());
  expect_usage(j["usage"]);
  auto c = json::parse(completion_usage_chunk("id", 1, "m", sample_usage()));
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_TRUE(c["choices"].empty());
  expect_usage(c["usage"]);
}

TEST(OpenAiResponseTest, CompletionAndChunk) {
  auto j = json::parse(completion_response("cmpl-1", 2, "m", " there", "length", sample_usage()));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], " there");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  expect_usage(j["usage"]);
  auto c = json::parse(completion_chunk("cmpl-1", 2, "m", "x", std::nullopt, true));
  EXPECT_EQ(c["choices"][0]["text"], "x");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c["usage"].is_null());
}

TEST(OpenAiResponseTest, ModelsList) {
  auto j = json::parse(models_list({{"qwen2-vl", 10, "zeroserve", "", 0}, {"llava", 11, "me", "", 0}}));
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0]["id"], "qwen2-vl");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][1]["owned_by"], "me");
  EXPECT_EQ(json::parse(models_list({}))["data"].size(), 0u);
}

TEST(OpenAiResponseTest, IdsAreRandomHex) {
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::string id = make_response_id("chatcmpl");
    ASSERT_EQ(id.rfind("chatcmpl-", 0), 0u);
    ASSERT_EQ(id.size(), 9u + 24u);
    for (char c : id.substr(9)) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c))) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_GT(unix_time_now(), 1700000000);
}

TEST(OpenAiResponseTest, InvalidUtf8NeverThrows) {
  std::string cut = "caf\xc3";  // "café" cut inside the é
  auto j = json::parse(chat_completion_chunk("id", 1, "m", std::nullopt, cut, std::nullopt));
  EXPECT_EQ(j["choices"][0]["delta"]["content"].get<std::string>().substr(0, 3), "caf");
}

TEST(OpenAiResponseTest, Utf8CompletePrefix) {
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("caf\xc3\xa9"), 5u);
  EXPECT_EQ(utf8_complete_prefix("caf\xc3"), 3u);
  EXPECT_EQ(utf8_complete_prefix("x\xe2\x82"), 1u);      // 3-byte sequence, 2 present
  EXPECT_EQ(utf8_complete_prefix("x\xe2\x82\xac"), 4u);  // €
  EXPECT_EQ(utf8_complete_prefix("x\xf0\x9f\x98"), 1u);  // 4-byte emoji cut
  EXPECT_EQ(utf8_complete_prefix("x\xf0\x9f\x98\x80"), 5u);
}

TEST(Base64Test, RoundTripsAndRefusesGarbage) {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d.is_ok()) << s;
    EXPECT_EQ(d.value(), s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_decode("Zm8").value(), "fo");    // padding may be left out
  EXPECT_EQ(base64_decode("Zm9vYg").value(), "foob");

  struct Bad {
    std::string text;
    std::string says;
  };
  for (const Bad& b : std::vector<Bad>{{"Zm9v YmFy", "offset 4"},
                                       {"Zm9v\nYmFy", "0x0a at offset 4"},
                                       {"Zm9-", "'-' at offset 3"},
                                       {"Zm=v", "'=' at offset 2"},
                                       {"Z", "truncated"},
                                       {"Zm9vY", "truncated"},
                                       {"Zm8==", "padding"},
                                       {"Zm9=", "non-zero padding bits"},
                                       {"=", "padding"}}) {
    auto d = base64_decode(b.text);
    ASSERT_FALSE(d.is_ok()) << b.text;
    EXPECT_NE(d.status().message().find(b.says), std::string::npos) << b.text << ": " << d.status().message();
  }
}

}  // namespace
}  // namespace zs::gateway::openai
