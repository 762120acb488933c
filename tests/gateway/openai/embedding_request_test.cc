// /v1/embeddings request parsing (every input shape, types, encoding_format, dimensions,
// hostile values) and the embeddings response, including base64's byte layout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "gateway/openai/base64.h"
#include "gateway/openai/openai_request.h"
#include "gateway/openai/openai_response.h"

namespace zs::gateway::openai {
namespace {

using nlohmann::json;

EmbeddingRequest parse_body_ok(const std::string& body) {
  ApiError err;
  auto r = parse_embedding_request(body, {}, &err);
  EXPECT_TRUE(r.is_ok()) << body << ": " << err.message;
  return r.is_ok() ? r.value() : EmbeddingRequest{};
}

EmbeddingRequest parse_ok(const json& body) { return parse_body_ok(body.dump()); }

ApiError body_error(const std::string& body, const Limits& limits = {}) {
  ApiError err;
  auto r = parse_embedding_request(body, limits, &err);
  EXPECT_FALSE(r.is_ok()) << body;
  if (!r.is_ok()) {
    EXPECT_EQ(r.status().message(), err.message);
  }
  EXPECT_EQ(err.http_status(), 400);
  return err;
}

ApiError error_of(const json& body, const Limits& limits = {}) { return body_error(body.dump(), limits); }

json with_input(const json& input) { return json{{"model", "bge"}, {"input", input}}; }

TEST(EmbeddingRequestTest, OneStringIsOneTextInput) {
  auto r = parse_ok(with_input("hello world"));
  EXPECT_EQ(r.model, "bge");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_FALSE(r.inputs[0].is_tokens);
  EXPECT_EQ(r.inputs[0].text, "hello world");
  EXPECT_TRUE(r.single);
  EXPECT_EQ(r.encoding_format, EncodingFormat::kFloat);
  EXPECT_FALSE(r.dimensions.has_value());
}

TEST(EmbeddingRequestTest, AnArrayOfStringsIsOneInputEach) {
  auto r = parse_ok(with_input({"a", "b b", "c"}));
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_FALSE(r.single);
  EXPECT_EQ(r.inputs[1].text, "b b");
  for (const auto& in : r.inputs) EXPECT_FALSE(in.is_tokens);
}

TEST(EmbeddingRequestTest, AnArrayOfTokenIdsIsOneInputUsedAsGiven) {
  auto r = parse_ok(with_input({101, 7592, 102}));
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_TRUE(r.single);
  EXPECT_TRUE(r.inputs[0].is_tokens);
  EXPECT_EQ(r.inputs[0].tokens, (std::vector<int32_t>{101, 7592, 102}));
}

TEST(EmbeddingRequestTest, AnArrayOfTokenArraysIsOneInputEach) {
  auto r = parse_ok(with_input(json::array({json::array({101, 102}), json::array({0}), json::array({5, 6, 7})})));
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_FALSE(r.single);
  EXPECT_EQ(r.inputs[0].tokens, (std::vector<int32_t>{101, 102}));
  EXPECT_EQ(r.inputs[1].tokens, (std::vector<int32_t>{0}));
  EXPECT_EQ(r.inputs[2].tokens, (std::vector<int32_t>{5, 6, 7}));
}

TEST(EmbeddingRequestTest, TokenIdsWrittenAsWholeFloatsAreIntegers) {
  auto r = parse_body_ok(R"({"model":"m","input":[1.0, 2e3]})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].tokens, (std::vector<int32_t>{1, 2000}));
}

TEST(EmbeddingRequestTest, EncodingFormatFloatOrBase64AndNothingElse) {
  json body = with_input("x");
  body["encoding_format"] = "base64";
  EXPECT_EQ(parse_ok(body).encoding_format, EncodingFormat::kBase64);
  body["encoding_format"] = "float";
  EXPECT_EQ(parse_ok(body).encoding_format, EncodingFormat::kFloat);
  body["encoding_format"] = nullptr;  // null means "not given"
  EXPECT_EQ(parse_ok(body).encoding_format, EncodingFormat::kFloat);
  body["encoding_format"] = "int8";
  ApiError e = error_of(body);
  EXPECT_EQ(e.param, "encoding_format");
  EXPECT_NE(e.message.find("\"int8\""), std::string::npos) << e.message;
  body["encoding_format"] = 1;
  EXPECT_EQ(error_of(body).param, "encoding_format");
  EXPECT_EQ(error_of(body).code, "invalid_type");
}

TEST(EmbeddingRequestTest, DimensionsMustBeAPositiveInteger) {
  json body = with_input("x");
  body["dimensions"] = 8;
  EXPECT_EQ(parse_ok(body).dimensions, 8);
  for (const json& bad :
       {json(0), json(-3), json(2.5), json("8"), json(true), json(1e300), json(std::numeric_limits<uint64_t>::max())}) {
    body["dimensions"] = bad;
    ApiError e = error_of(body);
    EXPECT_EQ(e.param, "dimensions") << bad.dump();
  }
}

TEST(EmbeddingRequestTest, UserIsAcceptedAsAStringAndUnknownFieldsAreIgnored) {
  json body = with_input("x");
  body["user"] = "u-42";
  body["something_new"] = {{"a", 1}};
  EXPECT_EQ(parse_ok(body).user, "u-42");
  body["user"] = 42;
  EXPECT_EQ(error_of(body).param, "user");
}

TEST(EmbeddingRequestTest, ModelAndInputAreRequired) {
  EXPECT_EQ(error_of(json{{"input", "x"}}).param, "model");
  EXPECT_EQ(error_of(json{{"model", ""}, {"input", "x"}}).param, "model");
  EXPECT_EQ(error_of(json{{"model", 7}, {"input", "x"}}).param, "model");
  ApiError e = error_of(json{{"model", "m"}});
  EXPECT_EQ(e.param, "input");
  EXPECT_EQ(e.code, "missing_required_parameter");
  EXPECT_EQ(error_of(json{{"model", "m"}, {"input", nullptr}}).param, "input");
}

TEST(EmbeddingRequestTest, EmptyInputsAreRefusedNamingTheirIndex) {
  EXPECT_EQ(error_of(with_input("")).param, "input");
  EXPECT_EQ(error_of(with_input(json::array())).param, "input");
  EXPECT_EQ(error_of(with_input({"a", "", "c"})).param, "input[1]");
  EXPECT_EQ(error_of(with_input(json::array({json::array({1}), json::array({3}), json::array()}))).param, "input[2]");
}

TEST(EmbeddingRequestTest, WrongTypesAreRefusedNamingTheField) {
  EXPECT_EQ(error_of(with_input(5)).param, "input");
  EXPECT_EQ(error_of(with_input(true)).param, "input");
  EXPECT_EQ(error_of(with_input(json::object())).param, "input");
  EXPECT_EQ(error_of(with_input(json::array({json::object()}))).param, "input[0]");
  EXPECT_EQ(error_of(with_input(json::array({nullptr}))).param, "input[0]");
  // Mixed kinds: the first element decides what the others must be.
  EXPECT_EQ(error_of(with_input(json::array({"a", 1}))).param, "input[1]");
  EXPECT_EQ(error_of(with_input(json::array({1, "a"}))).param, "input[1]");
  EXPECT_EQ(error_of(with_input(json::array({json::array({1}), "a"}))).param, "input[1]");
  EXPECT_EQ(error_of(with_input(json::array({"a", json::array({1})}))).param, "input[1]");
  EXPECT_EQ(error_of(with_input(json::array({json::array({1, json::array({2})})}))).param, "input[0][1]");
  EXPECT_EQ(error_of(with_input(json::array({json::array({1, "2"})}))).param, "input[0][1]");
}

TEST(EmbeddingRequestTest, TokenIdsOutsideInt32OrNotIntegersAreRefusedNamingTheElement) {
  EXPECT_EQ(error_of(with_input({1, -1})).param, "input[1]");
  EXPECT_EQ(error_of(with_input({2147483648ull})).param, "input[0]");
  EXPECT_EQ(body_error(R"({"model":"m","input":[99999999999999999999999]})").param, "input[0]");
  EXPECT_EQ(body_error(R"({"model":"m","input":[1e308]})").param, "input[0]");
  EXPECT_EQ(body_error(R"({"model":"m","input":[[1,2],[3,-9223372036854775808]]})").param, "input[1][1]");
  EXPECT_EQ(body_error(R"({"model":"m","input":[0.5]})").param, "input[0]");
  EXPECT_EQ(body_error(R"({"model":"m","input":[[-0.0001]]})").param, "input[0][0]");
  // The largest id that fits is accepted here; the vocabulary check is the worker's.
  EXPECT_EQ(parse_ok(with_input({2147483647})).inputs[0].tokens[0], 2147483647);
}

TEST(EmbeddingRequestTest, NaNAndInfinityAreNotJson) {
  for (const char* body : {R"({"model":"m","input":[NaN]})", R"({"model":"m","input":[Infinity]})",
                           R"({"model":"m","input":"x","dimensions":NaN})"}) {
    ApiError e = body_error(body);
    EXPECT_EQ(e.code, "invalid_json") << body;
  }
}

TEST(EmbeddingRequestTest, BadBodiesAreInvalidJson) {
  EXPECT_EQ(body_error("").code, "invalid_json");
  EXPECT_EQ(body_error("[]").code, "invalid_json");
  EXPECT_EQ(body_error("{\"model\":").code, "invalid_json");
  EXPECT_EQ(body_error(std::string(100, '[') + std::string(100, ']')).code, "invalid_json");
}

TEST(EmbeddingRequestTest, MoreInputsThanTheLimitAreRefused) {
  Limits limits;
  limits.max_embedding_inputs = 3;
  EXPECT_EQ(error_of(with_input({"a", "b", "c", "d"}), limits).param, "input");
  ApiError err;
  EXPECT_TRUE(parse_embedding_request(with_input({"a", "b", "c"}).dump(), limits, &err).is_ok());
  // One long token array is one input, whatever its length.
  EXPECT_TRUE(parse_embedding_request(with_input({1, 2, 3, 4, 5}).dump(), limits, &err).is_ok());
}

TEST(EmbeddingRequestTest, RandomBodiesNeverCrashAndRefusalsAlwaysCarryAMessage) {
  std::mt19937 rng(1234);
  const std::vector<json> pieces = {json("x"),
                                    json(""),
                                    json(1),
                                    json(-1),
                                    json(1e40),
                                    json(0.5),
                                    json(nullptr),
                                    json(true),
                                    json::array(),
                                    json::object(),
                                    json::array({1, 2}),
                                    json::array({"a"}),
                                    json::array({json::array({3})})};
  auto pick = [&] { return pieces[rng() % pieces.size()]; };
  for (int i = 0; i < 2000; ++i) {
    json body = json::object();
    if (rng() % 4) body["model"] = rng() % 5 ? json("m") : pick();
    if (rng() % 8) {
      json input = pick();
      if (input.is_array() && rng() % 2) input.push_back(pick());
      body["input"] = input;
    }
    if (rng() % 3 == 0) body["encoding_format"] = rng() % 2 ? json("base64") : pick();
    if (rng() % 3 == 0) body["dimensions"] = pick();
    ApiError err;
    auto r = parse_embedding_request(body.dump(), {}, &err);
    if (!r.is_ok()) {
      EXPECT_FALSE(err.message.empty()) << body.dump();
    } else {
      EXPECT_FALSE(r->inputs.empty()) << body.dump();
      for (const auto& in : r->inputs) EXPECT_TRUE(in.is_tokens ? !in.tokens.empty() : !in.text.empty());
    }
  }
}

TEST(ModelKindTest, EachKindServesOnlyItsOwnEndpoints) {
  EXPECT_FALSE(wrong_model_kind_error(ModelKind::kChat, "/v1/chat/completions", "m"));
  EXPECT_FALSE(wrong_model_kind_error(ModelKind::kChat, "/v1/completions", "m"));
  EXPECT_FALSE(wrong_model_kind_error(ModelKind::kEmbedding, "/v1/embeddings", "m"));
  auto chat_to_embedder = wrong_model_kind_error(ModelKind::kEmbedding, "/v1/chat/completions", "bge");
  ASSERT_TRUE(chat_to_embedder);
  EXPECT_EQ(chat_to_embedder->http_status(), 400);
  EXPECT_EQ(chat_to_embedder->param, "model");
  EXPECT_NE(chat_to_embedder->message.find("serves /v1/embeddings"), std::string::npos);
  auto embed_to_chat = wrong_model_kind_error(ModelKind::kChat, "/v1/embeddings", "llama");
  ASSERT_TRUE(embed_to_chat);
  EXPECT_NE(embed_to_chat->message.find("chat/completions"), std::string::npos);
  EXPECT_STREQ(model_kind_name(ModelKind::kEmbedding), "embedding");
  EXPECT_STREQ(model_kind_name(ModelKind::kChat), "chat");
}

TEST(EmbeddingsResponseTest, FloatsAreWrittenSoThatTheyReadBackExactly) {
  const std::vector<std::vector<float>> vectors = {{0.1f, -0.25f, 1e-8f, 0.333333343f}, {1.0f, 0.0f, -0.0f, 7.5f}};
  json j = json::parse(embeddings_response(vectors, false, "bge", 9));
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "bge");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 9);
  EXPECT_EQ(j["usage"]["total_tokens"], 9);
  ASSERT_EQ(j["data"].size(), 2u);
  for (size_t i = 0; i < vectors.size(); ++i) {
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    EXPECT_EQ(j["data"][i]["index"], i);
    ASSERT_EQ(j["data"][i]["embedding"].size(), vectors[i].size());
    for (size_t k = 0; k < vectors[i].size(); ++k)
      EXPECT_EQ(static_cast<float>(j["data"][i]["embedding"][k].get<double>()), vectors[i][k]);
  }
}

TEST(EmbeddingsResponseTest, Base64HoldsLittleEndianFloat32Bytes) {
  const std::vector<float> v = {1.0f, -2.5f, 0.1f};
  json j = json::parse(embeddings_response({v}, true, "bge", 3));
  ASSERT_TRUE(j["data"][0]["embedding"].is_string());
  auto bytes = base64_decode(j["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes.is_ok());
  ASSERT_EQ(bytes->size(), 12u);
  // 1.0f is 0x3f800000: little-endian bytes 00 00 80 3f.
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[2]), 0x80);
  EXPECT_EQ(static_cast<unsigned char>((*bytes)[3]), 0x3f);
  for (size_t k = 0; k < v.size(); ++k) {
    float x;
    std::memcpy(&x, bytes->data() + 4 * k, 4);
    EXPECT_EQ(x, v[k]);
  }
}

TEST(EmbeddingsResponseTest, NonFiniteValuesNeverBreakTheJson) {
  json j = json::parse(embeddings_response({{std::nanf(""), INFINITY, 1.0f}}, false, "m", 1));
  EXPECT_EQ(j["data"][0]["embedding"].size(), 3u);
}

TEST(EmbeddingsResponseTest, ModelsListShowsTypeAndDimensionsWhenKnown) {
  ModelInfo chat;
  chat.id = "llama";
  chat.type = "chat";
  ModelInfo embed;
  embed.id = "bge";
  embed.type = "embedding";
  embed.dimensions = 384;
  ModelInfo unknown;
  unknown.id = "loading";
  json j = json::parse(models_list({chat, embed, unknown}));
  EXPECT_EQ(j["data"][0]["type"], "chat");
  EXPECT_FALSE(j["data"][0].contains("dimensions"));
  EXPECT_EQ(j["data"][1]["type"], "embedding");
  EXPECT_EQ(j["data"][1]["dimensions"], 384);
  EXPECT_FALSE(j["data"][2].contains("type"));
}

}  // namespace
}  // namespace zs::gateway::openai
