// The Embeddings API end to end: a real `zeroserve worker` serving tiny-bert, and a real
// `zeroserve serve` routing /v1/embeddings (cold start from zero, wrong-kind refusals,
// Matryoshka deployments, metering, quotas, batch jobs).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/http/http_client.h"
#include "gateway/openai/base64.h"
#include "serve_fixture.h"
#include "test_util/process.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::ChildProcess;
using zs::testing::Serve;
using zs::testing::wait_for;
using namespace std::chrono_literals;

const std::string kBertFile = "tiny-bert-f32.gguf";
std::string bert_model() { return zs::testing::shared_dir() + "/golden/families/models/" + kBertFile; }
constexpr int kDim = 32;
constexpr int kContext = 512;
constexpr double kTol = 1e-5;

class EmbedWorker {
 public:
  explicit EmbedWorker(std::vector<std::string> extra = {}, const std::string& model = bert_model()) {
    std::vector<std::string> argv = {ZS_BINARY,  "worker",      "--model",   model,
                                     "--listen", "127.0.0.1:0", "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>(argv);
    auto addr = process_->wait_ready();
    if (addr) address_ = *addr;
  }
  const std::string& address() const { return address_; }

  gateway::HttpResponse post(const std::string& path, const json& body, const gateway::HttpHeaders& headers = {}) {
    auto r = gateway::http_request("POST", address_, path, body.dump(), headers);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : gateway::HttpResponse{};
  }
  gateway::HttpResponse get(const std::string& path) {
    auto r = gateway::http_request("GET", address_, path);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : gateway::HttpResponse{};
  }
  // The vectors of a successful request (a test failure otherwise).
  std::vector<std::vector<float>> embed(const json& input, json extra = json::object()) {
    extra["model"] = "tiny-bert";
    extra["input"] = input;
    auto r = post("/v1/embeddings", extra);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    return vectors_of(json::parse(r.body));
  }
  double metric(const std::string& series) {
    std::istringstream in(get("/metrics").body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return 0;
  }

  static std::vector<std::vector<float>> vectors_of(const json& response) {
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < response["data"].size(); ++i) {
      EXPECT_EQ(response["data"][i]["index"], i);
      EXPECT_EQ(response["data"][i]["object"], "embedding");
      out.push_back(response["data"][i]["embedding"].get<std::vector<float>>());
    }
    return out;
  }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
};

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

void expect_near(const std::vector<float>& a, const std::vector<float>& b, double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << what << " [" << i << "]";
}

// The tiny-bert lines of the reference file: prompt, token ids and the first 8 values of the
// L2-normalised pooled vector.
std::vector<json> golden_bert_cases() {
  std::ifstream in(zs::testing::shared_dir() + "/golden/families/golden.jsonl");
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("model", "") == kBertFile && j.contains("embedding_norm_first8")) out.push_back(j);
  }
  return out;
}

std::string words(int n, int seed) {
  static const char* kWords[] = {"serverless", "embedding", "vector", "cold",  "start",   "quick", "brown", "fox",
                                 "scale",      "zero",      "model",  "token", "gateway", "queue", "batch", "priority"};
  std::string s;
  for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + kWords[(seed * 7 + i * 3) % 16];
  return s;
}

// --- the worker on its own ---

TEST(EmbeddingsWorker, AStringAndAnArrayOfStringsGiveUnitNormVectorsOfTheModelsDimension) {
  EmbedWorker w;
  ASSERT_FALSE(w.address().empty());
  auto one = w.embed("The quick brown fox jumps over the lazy dog.");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].size(), static_cast<size_t>(kDim));
  EXPECT_NEAR(norm(one[0]), 1.0, 1e-5);
  auto many = w.embed({"first text", "a second, longer text about serverless GPUs", "third"});
  ASSERT_EQ(many.size(), 3u);
  for (const auto& v : many) {
    EXPECT_EQ(v.size(), static_cast<size_t>(kDim));
    EXPECT_NEAR(norm(v), 1.0, 1e-5);
  }
  EXPECT_GT(std::abs(many[0][0] - many[2][0]) + std::abs(many[0][1] - many[2][1]), 1e-4);  // not all the same
}

TEST(EmbeddingsWorker, ATextsVectorIsTheNormalisedPooledVectorOfTheReference) {
  const auto cases = golden_bert_cases();
  ASSERT_FALSE(cases.empty()) << "no tiny-bert lines with embedding_norm_first8 in golden.jsonl";
  EmbedWorker w;
  for (const auto& c : cases) {
    auto r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", c["prompt"]}});
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    const auto v = EmbedWorker::vectors_of(j)[0];
    const auto want = c["embedding_norm_first8"].get<std::vector<float>>();
    expect_near(std::vector<float>(v.begin(), v.begin() + 8), want, kTol, c["prompt"]);
    EXPECT_EQ(j["usage"]["prompt_tokens"], c["prompt_tokens"].size()) << c["prompt"];
    // The same ids given as tokens give the same vector.
    const auto by_ids = w.embed(c["prompt_tokens"]);
    ASSERT_EQ(by_ids.size(), 1u);
    expect_near(by_ids[0], v, kTol, "token ids of " + c["prompt"].get<std::string>());
  }
}

TEST(EmbeddingsWorker, ATextsVectorEqualsWhatTheGoldenCommandComputes) {
  EmbedWorker w;
  for (const std::string text : {"Matryoshka dolls nest.", "Scale to zero, then back: 3 cold starts in 9 seconds!"}) {
    const auto r = zs::testing::run_command(zs::testing::shell_quote(ZS_BINARY) + " golden --model " +
                                            zs::testing::shell_quote(bert_model()) + " --prompt " +
                                            zs::testing::shell_quote(text) + " --n 0 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const json g = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(g.is_object() && g.contains("embedding_norm_first8")) << r.out;
    auto resp = w.post("/v1/embeddings", json{{"model", "m"}, {"input", text}});
    ASSERT_EQ(resp.status, 200) << resp.body;
    const json j = json::parse(resp.body);
    const auto v = EmbedWorker::vectors_of(j)[0];
    expect_near(std::vector<float>(v.begin(), v.begin() + 8), g["embedding_norm_first8"].get<std::vector<float>>(),
                kTol, text);
    EXPECT_EQ(j["usage"]["prompt_tokens"], g["prompt_tokens"].size());
  }
}

TEST(EmbeddingsWorker, ManyInputsInOneRequestEqualEachSentAloneAndRunInOnePass) {
  EmbedWorker w;
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(words(20 + i % 9, i));
  const double passes_before = w.metric("zs_worker_embedding_passes_total");
  const auto together = w.embed(texts);
  EXPECT_EQ(w.metric("zs_worker_embedding_passes_total") - passes_before, 1);
  ASSERT_EQ(together.size(), texts.size());
  for (size_t i = 0; i < texts.size(); i += 9) {
    const auto alone = w.embed(texts[i]);
    ASSERT_EQ(alone.size(), 1u);
    expect_near(together[i], alone[0], kTol, "input " + std::to_string(i));
  }
  // Arrays of token ids: one input each, as given.
  const auto ids = w.embed(json::array({json::array({101, 7592, 102}), json::array({101, 2088, 102})}));
  ASSERT_EQ(ids.size(), 2u);
  expect_near(ids[0], w.embed(json::array({101, 7592, 102}))[0], kTol, "token ids");
}

TEST(EmbeddingsWorker, ConcurrentRequestsEachGetTheirOwnVectors) {
  EmbedWorker w;
  std::vector<std::vector<std::string>> requests;
  for (int r = 0; r < 8; ++r) requests.push_back({words(6 + r, r), words(12, r + 40), words(3, r + 80)});
  std::vector<std::vector<std::vector<float>>> alone;
  for (const auto& texts : requests) alone.push_back(w.embed(texts));
  std::vector<std::future<gateway::HttpResponse>> futures;
  for (size_t r = 0; r < requests.size(); ++r) {
    // Half of them as batch class: the worker orders classes, the answers must not change.
    gateway::HttpHeaders headers{{"X-Priority", r % 2 ? "batch" : "interactive"}};
    futures.push_back(std::async(std::launch::async, [&, r, headers] {
      auto resp = gateway::http_request("POST", w.address(), "/v1/embeddings",
                                        json{{"model", "m"}, {"input", requests[r]}}.dump(), headers);
      return resp.is_ok() ? resp.value() : gateway::HttpResponse{};
    }));
  }
  for (size_t r = 0; r < futures.size(); ++r) {
    auto resp = futures[r].get();
    ASSERT_EQ(resp.status, 200) << resp.body;
    const auto got = EmbedWorker::vectors_of(json::parse(resp.body));
    ASSERT_EQ(got.size(), alone[r].size());
    for (size_t i = 0; i < got.size(); ++i)
      expect_near(got[i], alone[r][i], kTol, "request " + std::to_string(r) + " input " + std::to_string(i));
  }
}

TEST(EmbeddingsWorker, Base64DecodesToTheSameFloats) {
  EmbedWorker w;
  const std::vector<std::string> texts = {"hello world", "the lazy dog"};
  const auto floats = w.embed(texts);
  auto r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", texts}, {"encoding_format", "base64"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  ASSERT_EQ(j["data"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    auto bytes = gateway::openai::base64_decode(j["data"][i]["embedding"].get<std::string>());
    ASSERT_TRUE(bytes.is_ok());
    ASSERT_EQ(bytes->size(), static_cast<size_t>(kDim) * 4);
    std::vector<float> v(kDim);
    for (int k = 0; k < kDim; ++k) {
      const auto* b = reinterpret_cast<const unsigned char*>(bytes->data() + 4 * k);
      const uint32_t bits = uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
      std::memcpy(&v[k], &bits, 4);
    }
    EXPECT_EQ(v, floats[i]);  // the float text is exact, so both are the same bits
  }
}

TEST(EmbeddingsWorker, DimensionsAreRefusedWithoutMatryoshkaAndHonouredWithIt) {
  EmbedWorker plain;
  auto refused = plain.post("/v1/embeddings", json{{"model", "m"}, {"input", "hi"}, {"dimensions", 8}});
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(json::parse(refused.body)["error"]["param"], "dimensions");

  EmbedWorker mat({"--matryoshka"});
  const auto full = mat.embed("a matryoshka doll");
  const auto short8 = mat.embed("a matryoshka doll", json{{"dimensions", 8}});
  ASSERT_EQ(short8.size(), 1u);
  ASSERT_EQ(short8[0].size(), 8u);
  EXPECT_NEAR(norm(short8[0]), 1.0, 1e-5);
  std::vector<float> want(full[0].begin(), full[0].begin() + 8);
  const double n = norm(want);
  for (float& x : want) x = static_cast<float>(x / n);
  expect_near(short8[0], want, kTol, "first 8, renormalised");
  EXPECT_EQ(mat.embed("x", json{{"dimensions", kDim}})[0].size(), static_cast<size_t>(kDim));
  for (int bad : {0, kDim + 1, 100000}) {
    auto r = mat.post("/v1/embeddings", json{{"model", "m"}, {"input", "hi"}, {"dimensions", bad}});
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "dimensions") << r.body;
  }
}

TEST(EmbeddingsWorker, AnOverLongOrEmptyInputIsRefusedNamingItsIndex) {
  EmbedWorker w;
  std::vector<int> too_long(kContext + 1, 1000);
  too_long.front() = 101;
  auto r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", json::array({json::array({101, 102}), too_long})}});
  ASSERT_EQ(r.status, 400) << r.body;
  json e = json::parse(r.body)["error"];
  EXPECT_EQ(e["param"], "input[1]");
  EXPECT_EQ(e["code"], "context_length_exceeded");
  EXPECT_NE(e["message"].get<std::string>().find("513"), std::string::npos) << e["message"];

  r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", {"short", words(600, 1)}}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "input[1]");

  r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", {"a", ""}}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "input[1]");

  r = w.post("/v1/embeddings", json{{"model", "m"}, {"input", {101, 30522}}});  // one past the vocabulary
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "input");

  // Exactly the context fits.
  std::vector<int> fits(kContext, 1000);
  EXPECT_EQ(w.embed(fits).size(), 1u);
}

TEST(EmbeddingsWorker, BadBodiesAre400NamingTheField) {
  EmbedWorker w;
  auto r = gateway::http_request("POST", w.address(), "/v1/embeddings", "{not json");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400);
  r = gateway::http_request("POST", w.address(), "/v1/embeddings",
                            R"({"model":"m","input":"x","encoding_format":"hex"})");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "encoding_format");
  r = gateway::http_request("POST", w.address(), "/v1/embeddings", R"({"model":"m","input":"x"})",
                            {{"X-Priority", "urgent"}});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400);
}

TEST(EmbeddingsWorker, EachKindOfModelRefusesTheOtherKindsEndpoints) {
  EmbedWorker bert;
  auto r = bert.post("/v1/chat/completions",
                     json{{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "model");
  EXPECT_NE(r.body.find("embedding model"), std::string::npos) << r.body;
  r = bert.post("/v1/completions", json{{"model", "m"}, {"prompt", "hi"}});
  EXPECT_EQ(r.status, 400) << r.body;

  EmbedWorker chat({}, zs::testing::golden_model("stories260K.gguf"));
  r = chat.post("/v1/embeddings", json{{"model", "m"}, {"input", "hi"}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "model");
  EXPECT_NE(r.body.find("chat/completions"), std::string::npos) << r.body;

  // /v1/models tells which is which.
  const json bm = json::parse(bert.get("/v1/models").body)["data"][0];
  EXPECT_EQ(bm["type"], "embedding");
  EXPECT_EQ(bm["dimensions"], kDim);
  EXPECT_EQ(json::parse(chat.get("/v1/models").body)["data"][0]["type"], "chat");
}

TEST(EmbeddingsWorker, UsageCountsEveryInputsTokens) {
  EmbedWorker w;
  auto r = w.post("/v1/embeddings",
                  json{{"model", "m"}, {"input", json::array({json::array({101, 1, 102}), json::array({101, 102})})}});
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
  EXPECT_EQ(w.metric("zs_worker_prompt_tokens_total"), 5);
  EXPECT_EQ(w.metric("zs_worker_embedding_inputs_total"), 2);
  EXPECT_EQ(w.metric("zs_worker_requests_total{endpoint=\"embeddings\",status=\"200\"}"), 1);
}

// --- through `zeroserve serve` ---

std::string bert_deployment(const std::string& name, const std::string& extra = "") {
  return "  - name: " + name + "\n    model: " + bert_model() + "\n    threads: 1\n    keep_alive: 5m\n" + extra;
}

gateway::HttpResponse call(const std::string& method, const std::string& address, const std::string& target,
                           const std::string& body = "", gateway::HttpHeaders headers = {}) {
  auto r = gateway::http_request(method, address, target, body, headers, std::chrono::seconds(60));
  EXPECT_TRUE(r.is_ok()) << method << " " << target << ": " << r.status().message();
  return r.is_ok() ? r.value() : gateway::HttpResponse{};
}

gateway::HttpResponse embed_via(Serve& s, const std::string& model, const json& input, json extra = json::object(),
                                gateway::HttpHeaders headers = {}) {
  extra["model"] = model;
  extra["input"] = input;
  return call("POST", s.address(), "/v1/embeddings", extra.dump(), std::move(headers));
}

double metric(const std::string& address, const std::string& series) {
  auto r = gateway::http_request("GET", address, "/metrics");
  return r.is_ok() ? zs::testing::metric_in(r->body, series) : -1;
}

json model_entry(Serve& s, const std::string& name) {
  const json all = s.models();
  for (const auto& m : all["data"])
    if (m["id"] == name) return m;
  return json();
}

TEST(EmbeddingsServe, EmbeddingsColdStartFromZeroAndAreMetered) {
  Serve s("deployments:\n" + bert_deployment("bge") + zs::testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  EXPECT_EQ(model_entry(s, "bge")["type"], "embedding");
  EXPECT_EQ(model_entry(s, "story")["type"], "chat");
  EXPECT_EQ(s.state_of("bge"), "idle");

  auto r = embed_via(s, "bge", {"The quick brown fox jumps over the lazy dog.", "hello"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(r.header("X-Zeroserve-Cold-Start-Ms").empty());
  const json j = json::parse(r.body);
  ASSERT_EQ(j["data"].size(), 2u);
  const auto v = j["data"][0]["embedding"].get<std::vector<float>>();
  EXPECT_EQ(v.size(), static_cast<size_t>(kDim));
  EXPECT_NEAR(norm(v), 1.0, 1e-5);
  const auto cases = golden_bert_cases();
  if (!cases.empty() && cases[0]["prompt"] == "The quick brown fox jumps over the lazy dog.")
    expect_near(std::vector<float>(v.begin(), v.begin() + 8),
                cases[0]["embedding_norm_first8"].get<std::vector<float>>(), kTol, "through serve");
  const int64_t tokens = j["usage"]["prompt_tokens"];
  EXPECT_GT(tokens, 0);
  EXPECT_EQ(s.state_of("bge"), "ready");

  // Prompt tokens reach /metrics and the cost ledger.
  // (The gateway counts a request once its answer is on the way, so the count may trail it.)
  EXPECT_TRUE(wait_for(
      [&] { return metric(s.address(), "zs_gateway_prompt_tokens_total{deployment=\"bge\"}") == tokens; }, 10s));
  EXPECT_TRUE(wait_for(
      [&] { return metric(s.address(), "zs_gateway_requests_total{deployment=\"bge\",status=\"200\"}") == 1; }, 10s));
  json c;
  ASSERT_TRUE(wait_for(
      [&] {
        auto costs = gateway::http_request("GET", s.address(), "/admin/costs");
        if (!costs.is_ok()) return false;
        c = json::parse(costs->body);
        for (const auto& d : c["deployments"])
          if (d["deployment"] == "bge" && d["requests"] == 1) return true;
        return false;
      },
      10s))
      << c.dump();
  for (const auto& d : c["deployments"])
    if (d["deployment"] == "bge") {
      EXPECT_EQ(d["prompt_tokens"], tokens);
      EXPECT_EQ(d["completion_tokens"], 0);
    }
}

TEST(EmbeddingsServe, TheWrongKindOfRequestIsRefusedWithoutStartingAnInstance) {
  Serve s("deployments:\n" + bert_deployment("bge") + zs::testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty());
  auto r = s.post(zs::testing::chat("bge", 4));
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "model");
  EXPECT_NE(r.body.find("embedding model"), std::string::npos) << r.body;
  r = embed_via(s, "story", "hi");
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("chat/completions"), std::string::npos) << r.body;
  // A malformed embeddings request is refused at the gateway too.
  r = embed_via(s, "bge", json::array());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "input");
  EXPECT_EQ(s.state_of("bge"), "idle");
  EXPECT_EQ(s.state_of("story"), "idle");
  EXPECT_EQ(metric(s.address(), "zs_gateway_requests_total{deployment=\"bge\",status=\"400\"}"), 2);
}

TEST(EmbeddingsServe, DimensionsFollowTheDeploymentsMatryoshkaKey) {
  Serve s("deployments:\n" + bert_deployment("bge") + bert_deployment("bge-mrl", "    matryoshka: true\n"));
  ASSERT_FALSE(s.address().empty());
  auto r = embed_via(s, "bge", "hi", json{{"dimensions", 8}});
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "dimensions");
  r = embed_via(s, "bge-mrl", "hi", json{{"dimensions", 8}, {"encoding_format", "base64"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto bytes = gateway::openai::base64_decode(json::parse(r.body)["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_EQ(bytes->size(), 8u * 4);
}

TEST(EmbeddingsServe, PromptTokensCountAgainstAKeysTokenQuota) {
  Serve s(R"(gateway:
  api_keys:
    - key: sk-embed
      name: embedder
      tokens_per_minute: 10
deployments:
)" + bert_deployment("bge"));
  ASSERT_FALSE(s.address().empty());
  const gateway::HttpHeaders auth{{"Authorization", "Bearer sk-embed"}};
  auto r = embed_via(s, "bge", json::array({json::array({101, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 102})}), {}, auth);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["usage"]["prompt_tokens"], 12);
  r = embed_via(s, "bge", "again", {}, auth);
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_NE(r.body.find("tokens_per_minute"), std::string::npos) << r.body;
}

TEST(EmbeddingsServe, ABatchJobOfEmbeddingsCompletes) {
  Serve s("deployments:\n" + bert_deployment("bge", "    batch_max_instances: 1\n"));
  ASSERT_FALSE(s.address().empty());
  std::string jsonl;
  for (int i = 0; i < 5; ++i)
    jsonl += json{{"custom_id", "e-" + std::to_string(i)},
                  {"method", "POST"},
                  {"url", "/v1/embeddings"},
                  {"body", {{"model", "bge"}, {"input", {words(5, i), words(7, i + 1)}}}}}
                 .dump() +
             "\n";
  auto up = call("POST", s.address(), "/v1/files?purpose=batch&filename=e.jsonl", jsonl,
                 {{"Content-Type", "application/jsonl"}});
  ASSERT_EQ(up.status, 200) << up.body;
  auto created = call("POST", s.address(), "/v1/batches",
                      json{{"input_file_id", json::parse(up.body)["id"]}, {"endpoint", "/v1/embeddings"}}.dump());
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = json::parse(created.body)["id"];
  json b;
  ASSERT_TRUE(wait_for(
      [&] {
        auto r = gateway::http_request("GET", s.address(), "/v1/batches/" + id);
        if (!r.is_ok() || r->status != 200) return false;
        b = json::parse(r->body);
        return b.value("status", "") == "completed";
      },
      120s))
      << b.dump();
  EXPECT_EQ(b["endpoint"], "/v1/embeddings");
  EXPECT_EQ(b["request_counts"]["completed"], 5);
  EXPECT_EQ(b["request_counts"]["failed"], 0);
  auto out = call("GET", s.address(), "/v1/files/" + b["output_file_id"].get<std::string>() + "/content");
  ASSERT_EQ(out.status, 200);
  std::istringstream lines(out.body);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const json item = json::parse(line);
    EXPECT_EQ(item["custom_id"], "e-" + std::to_string(n));
    EXPECT_EQ(item["response"]["status_code"], 200);
    const json& body = item["response"]["body"];
    ASSERT_EQ(body["data"].size(), 2u) << line;
    EXPECT_NEAR(norm(body["data"][1]["embedding"].get<std::vector<float>>()), 1.0, 1e-5);
    ++n;
  }
  EXPECT_EQ(n, 5);
  EXPECT_GT(metric(s.address(), "zs_gateway_prompt_tokens_total{deployment=\"bge\"}"), 0);
}

}  // namespace
}  // namespace zs
