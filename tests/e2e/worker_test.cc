// The worker as a user runs it: a real `zeroserve worker` process on loopback, real HTTP.
#include <gtest/gtest.h>

#include <filesystem>

#include <tuple>

#include <atomic>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "gateway/http/http_client.h"
#include "gateway/http/sse.h"
#include "serve_fixture.h"
#include "test_util/process.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::ChildProcess;

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = (uint8_t)in[i] << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += "=";
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using Worker = zs::testing::WorkerProcess;
using zs::testing::metric_in;

json chat_body(const std::string& text, int max_tokens, bool stream = false) {
  return {{"model", "anything"},
          {"messages", json::array({{{"role", "user"}, {"content", text}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", stream}};
}

TEST(Worker, ServesModelsHealthAndChat) {
  Worker w;
  ASSERT_FALSE(w.address().empty());
  EXPECT_EQ(w.get("/health").status, 200);
  json models = json::parse(w.get("/v1/models").body);
  EXPECT_EQ(models["data"][0]["id"], "stories260K");

  auto r = w.post("/v1/chat/completions", chat_body("Once upon a time", 8).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "stories260K");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_FALSE(j["choices"][0]["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 8);

  auto c = w.post("/v1/completions", json{{"model", "x"}, {"prompt", "Once upon a time"}, {"max_tokens", 5}, {"temperature", 0}}.dump());
  ASSERT_EQ(c.status, 200) << c.body;
  json cj = json::parse(c.body);
  EXPECT_EQ(cj["object"], "text_completion");
  EXPECT_EQ(cj["usage"]["completion_tokens"], 5);
}

TEST(Worker, StreamsChunksWithUsageAndDone) {
  Worker w;
  json body = chat_body("Once upon a time", 10, true);
  body["stream_options"] = {{"include_usage", true}};
  auto events = w.stream("/v1/chat/completions", body.dump());
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  json first = json::parse(events.front());
  const auto id = first["id"];
  const auto created = first["created"];
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    json e = json::parse(events[i]);
    EXPECT_EQ(e["id"], id);
    EXPECT_EQ(e["created"], created);
    EXPECT_TRUE(e.contains("usage") && e["usage"].is_null());
    if (e["choices"][0]["delta"].contains("content")) text += e["choices"][0]["delta"]["content"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(finish, "length");
  json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);
  // The same request without streaming gives the same text.
  json plain = json::parse(w.post("/v1/chat/completions", chat_body("Once upon a time", 10).dump()).body);
  EXPECT_EQ(plain["choices"][0]["message"]["content"], text);
}

TEST(Worker, ConcurrentRequestsAreBatchedAndMatchSequentialOnes) {
  Worker w({"--slots", "4"});
  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Tom", "The dog was", "One day a bird"};
  std::vector<std::string> sequential;
  for (const auto& p : prompts)
    sequential.push_back(json::parse(w.post("/v1/chat/completions", chat_body(p, 24).dump()).body)["choices"][0]["message"]["content"]);
  std::vector<std::future<std::string>> futures;
  for (const auto& p : prompts)
    futures.push_back(std::async(std::launch::async, [&w, p] {
      auto r = gateway::http_request("POST", w.address(), "/v1/chat/completions", chat_body(p, 24).dump());
      return r.is_ok() ? json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>() : std::string("?");
    }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(futures[i].get(), sequential[i]) << prompts[i];
  const std::string metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("zs_worker_batch_size_bucket"), std::string::npos);
}

TEST(Worker, ThirtyTwoConcurrentClientsOfDifferentLengthsGetTheirAloneResults) {
  Worker w({"--slots", "8", "--ctx", "4096"});
  const std::vector<std::string> starts = {"Once upon a time", "Lily and Tom", "The dog", "One day, a bird",
                                           "Tim had a red ball", "The sun was", "A little girl", "Mom said"};
  struct Case {
    std::string prompt;
    int max_tokens;
    bool stream;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 32; ++i) cases.push_back({starts[i % starts.size()], 4 + (i * 7) % 45, i % 2 == 0});
  auto run = [&](const Case& c) -> std::string {
    if (!c.stream) {
      auto r = gateway::http_request("POST", w.address(), "/v1/chat/completions", chat_body(c.prompt, c.max_tokens).dump(),
                                     {}, std::chrono::seconds(120));
      return r.is_ok() && r->status == 200 ? json::parse(r->body)["choices"][0]["message"]["content"].get<std::string>()
                                           : "<error>";
    }
    gateway::SseParser parser;
    auto r = gateway::http_stream("POST", w.address(), "/v1/chat/completions", chat_body(c.prompt, c.max_tokens, true).dump(),
                                  {}, [&](std::string_view chunk) {
                                    parser.feed(chunk);
                                    return true;
                                  }, std::chrono::seconds(120));
    if (!r.is_ok()) return "<error>";
    std::string text;
    for (const auto& e : parser.take_events()) {
      if (e == "[DONE]") continue;
      json j = json::parse(e);
      if (!j["choices"].empty() && j["choices"][0]["delta"].contains("content"))
        text += j["choices"][0]["delta"]["content"].get<std::string>();
    }
    return text;
  };
  std::vector<std::string> alone;
  for (const auto& c : cases) alone.push_back(run(c));
  std::vector<std::future<std::string>> together;
  for (const auto& c : cases) together.push_back(std::async(std::launch::async, run, c));
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_NE(alone[i], "<error>");
    EXPECT_EQ(together[i].get(), alone[i]) << "case " << i << ": " << cases[i].prompt << " / " << cases[i].max_tokens;
  }
}

TEST(Worker, RefusesHugeBodiesAndWrongTypes) {
  Worker w;
  auto huge = gateway::http_request("POST", w.address(), "/v1/chat/completions", std::string(40u << 20, ' '));
  ASSERT_TRUE(huge.is_ok()) << huge.status().message();
  EXPECT_EQ(huge->status, 413);
  EXPECT_TRUE(json::parse(huge->body).contains("error"));
  json wrong = chat_body("hi", 4);
  wrong["max_tokens"] = "many";
  auto r = w.post("/v1/chat/completions", wrong.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "max_tokens");
  wrong = chat_body("hi", 4);
  wrong["messages"] = "not a list";
  r = w.post("/v1/chat/completions", wrong.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "messages");
}

TEST(Worker, SigtermDuringStreamingFinishesTheStream) {
  Worker w;
  std::string raw;
  auto f = std::async(std::launch::async, [&] {
    return gateway::http_stream("POST", w.address(), "/v1/chat/completions", chat_body("Once upon a time", 300, true).dump(), {},
                                [&](std::string_view chunk) {
                                  raw += chunk;
                                  return true;
                                });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  w.process().signal(SIGTERM);
  auto r = f.get();
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_NE(raw.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(raw.find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_EQ(w.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Worker, SpeculativeDecodingGivesTheSameAnswerAndCountsItsDrafts) {
  Worker plain;
  Worker spec({"--speculative", "prompt-lookup", "--draft-tokens", "6"});
  json body = {{"model", "m"},
               {"prompt", "Lily had a red ball. Tom had a blue kite. Lily had a red ball. Tom had a blue kite. Lily"},
               {"max_tokens", 48},
               {"temperature", 0}};
  const json a = json::parse(plain.post("/v1/completions", body.dump()).body);
  const json b = json::parse(spec.post("/v1/completions", body.dump()).body);
  EXPECT_EQ(a["choices"][0]["text"], b["choices"][0]["text"]);
  EXPECT_EQ(a["usage"], b["usage"]);
  const std::string m = spec.get("/metrics").body;
  EXPECT_GT(metric_in(m, "zs_worker_spec_accepted_tokens"), 0) << m;
  EXPECT_GT(metric_in(m, "zs_worker_decode_tokens_per_step"), 1.0) << m;
  EXPECT_EQ(metric_in(plain.get("/metrics").body, "zs_worker_spec_draft_tokens"), 0);
}

TEST(Worker, ADraftModelGivesTheSameAnswerAndAForeignVocabularyIsRefused) {
  Worker plain;
  Worker spec({"--speculative", "draft-model", "--draft-model", zs::testing::golden_model("stories260K.gguf")});
  json body = {{"model", "m"}, {"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0}};
  const json a = json::parse(plain.post("/v1/completions", body.dump()).body);
  const json b = json::parse(spec.post("/v1/completions", body.dump()).body);
  EXPECT_EQ(a["choices"][0]["text"], b["choices"][0]["text"]);
  EXPECT_GT(metric_in(spec.get("/metrics").body, "zs_worker_spec_acceptance_ratio"), 0.9);

  auto r = zs::testing::run_command(std::string(ZS_BINARY) + " worker --listen 127.0.0.1:0 --model " +
                                    zs::testing::golden_model("stories260K.gguf") +
                                    " --speculative draft-model --draft-model " +
                                    zs::testing::golden_model("TinyStories-656K-Q8_0.gguf") + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("--draft-model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vocabulary"), std::string::npos) << r.out;
}

TEST(Worker, ReusesASharedPrefix) {
  Worker w;
  json body = chat_body("Lily and Tom went to the park. They played with a ball and a kite all day long.", 4);
  w.post("/v1/chat/completions", body.dump());
  json second = json::parse(w.post("/v1/chat/completions", body.dump()).body);
  EXPECT_GT(second["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
}

TEST(Worker, RefusesBadRequestsWithOpenAiErrors) {
  Worker w({"--ctx", "64"});
  auto bad_json = w.post("/v1/chat/completions", "{\"messages\": [");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(json::parse(bad_json.body).contains("error"));

  json t = chat_body("hi", 4);
  t["temperature"] = 7;
  auto bad_temp = w.post("/v1/chat/completions", t.dump());
  EXPECT_EQ(bad_temp.status, 400);
  EXPECT_EQ(json::parse(bad_temp.body)["error"]["param"], "temperature");

  json remote = chat_body("hi", 4);
  remote["messages"][0]["content"] = json::array(
      {{{"type", "image_url"}, {"image_url", {{"url", "https://example.com/cat.png"}}}}, {{"type", "text"}, {"text", "hi"}}});
  auto r = w.post("/v1/chat/completions", remote.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("remote image URLs"), std::string::npos) << r.body;

  auto too_long = w.post("/v1/chat/completions", chat_body(std::string(2000, 'a'), 4).dump());
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(json::parse(too_long.body)["error"]["code"], "context_length_exceeded") << too_long.body;

  json img = chat_body("hi", 4);
  img["messages"][0]["content"] = json::array(
      {{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + base64("not a png")}}}}});
  auto no_vision = w.post("/v1/chat/completions", img.dump());
  EXPECT_EQ(no_vision.status, 400);
  EXPECT_NE(no_vision.body.find("vision"), std::string::npos) << no_vision.body;

  EXPECT_EQ(w.get("/nope").status, 404);
  const std::string metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("zs_worker_requests_total{endpoint=\"chat\",status=\"400\"}"), std::string::npos);
}

// A chat asking to describe `image` (bytes of `mime`) sent as a data URL, with `detail`
// when given.
json image_chat(const std::string& image, const std::string& detail = "", const std::string& mime = "image/bmp",
                int max_tokens = 2) {
  json body = chat_body("", max_tokens);
  json url = {{"url", "data:" + mime + ";base64," + base64(image)}};
  if (!detail.empty()) url["detail"] = detail;
  body["messages"][0]["content"] =
      json::array({{{"type", "image_url"}, {"image_url", url}}, {{"type", "text"}, {"text", "Describe the image."}}});
  return body;
}

TEST(Worker, TakesImagesAsDataUrls) {
  Worker w({"--mmproj", zs::testing::golden_model("tiny-llava-mmproj-f32.gguf")}, "tiny-llama-f16.gguf");
  ASSERT_FALSE(w.address().empty());
  const std::string png = read_file(zs::testing::shared_dir() + "/golden/images/checker-100x100.png");
  json body = image_chat(png, "", "image/png", 4);
  auto r = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["image_tokens"], 16);
  // A corrupt image is a clear 400.
  body["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64," + base64(png.substr(0, 40));
  auto bad = w.post("/v1/chat/completions", body.dump());
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("PNG"), std::string::npos) << bad.body;
}

// Threads of a process, from /proc.
int thread_count(pid_t pid) {
  int n = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

// Asleep, a vision worker gives back its encoder's compute threads as well as the text model's
// (2 threads each: one worker thread per pool), and wakes for the next image with the same
// answer.
TEST(Worker, AsleepAVisionWorkerParksItsEncoderThreadsToo) {
  Worker w({"--mmproj", zs::testing::golden_model("tiny-llava-mmproj-f32.gguf")}, "tiny-llama-f16.gguf");  // 2 threads
  ASSERT_FALSE(w.address().empty());
  const std::string png = read_file(zs::testing::shared_dir() + "/golden/images/checker-100x100.png");
  json body = image_chat(png, "", "image/png", 4);
  auto first = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(first.status, 200) << first.body;
  const int awake = thread_count(w.process().pid());
  ASSERT_EQ(w.post("/internal/sleep", "").status, 200);
  // The encoder's pool parks on its own thread, just after the answer.
  EXPECT_TRUE(zs::testing::wait_for([&] { return thread_count(w.process().pid()) <= awake - 2; }, std::chrono::seconds(10)))
      << awake << " threads awake, " << thread_count(w.process().pid()) << " asleep";
  auto woke = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(woke.status, 200) << woke.body;
  EXPECT_FALSE(woke.header("X-Zeroserve-Wake-Ms").empty());
  EXPECT_EQ(json::parse(woke.body)["choices"][0]["message"]["content"],
            json::parse(first.body)["choices"][0]["message"]["content"]);
}

// The current generation's vision families through the chat API (the golden lines go through
// `zeroserve golden`): the image's rows as the 2026 reference lays them out (Gemma 3: 16 pooled
// rows; SmolVLM: 4 tiles and the global view of 4 rows each), and an answer.
TEST(Worker, ServesGemma3AndSmolVlmImagesThroughTheChatApi) {
  const std::string dir = zs::testing::shared_dir() + "/golden/2026";
  const std::string png = read_file(dir + "/images/gradient-64x48.png");
  ASSERT_FALSE(png.empty());
  for (const auto& [model, mmproj, rows] : std::vector<std::tuple<std::string, std::string, int>>{
           {"tiny-gemma3-f16.gguf", "tiny-gemma3-mmproj-f16.gguf", 16},
           {"tiny-smolvlm-f16.gguf", "tiny-smolvlm-mmproj-f16.gguf", 20}}) {
    SCOPED_TRACE(model);
    Worker w({"--mmproj", dir + "/models/" + mmproj}, dir + "/models/" + model);
    ASSERT_FALSE(w.address().empty());
    const json body = image_chat(png, "", "image/png", 4);
    auto r = w.post("/v1/chat/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["usage"]["prompt_tokens_details"]["image_tokens"], rows);
    EXPECT_EQ(j["usage"]["completion_tokens"], 4);
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), rows) << "the image's rows, its wrapping tokens and the text";
  }
}

// An uncompressed 24-bit BMP of a colour gradient.
std::string bmp_image(int w, int h) {
  const int row = (w * 3 + 3) / 4 * 4;
  std::string out(54 + static_cast<size_t>(row) * h, '\0');
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(v >> (8 * i));
  };
  out[0] = 'B';
  out[1] = 'M';
  put32(2, static_cast<uint32_t>(out.size()));
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  out[26] = 1;
  out[28] = 24;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      char* p = &out[54 + static_cast<size_t>(y) * row + x * 3];
      p[0] = static_cast<char>(x * 255 / w);
      p[1] = static_cast<char>(y * 255 / h);
      p[2] = static_cast<char>((x + y) & 255);
    }
  return out;
}

// Qwen2-VL: a 1024x768 photo is 37 x 28 = 1036 image tokens at the reference's resize.
TEST(Worker, ImageBudgetsShrinkQwen2VlImagesAndOverLargeImagesAreRefusedBeforeEncoding) {
  const std::vector<std::string> vision = {"--mmproj", zs::testing::shared_dir() +
                                                           "/golden/families/models/tiny-qwen2vl-mmproj-f16.gguf",
                                           "--ctx", "512"};
  const std::string model = "../families/models/tiny-qwen2vl-f16.gguf";
  const std::string photo = bmp_image(1024, 768);
  {
    Worker w(vision, model);
    ASSERT_FALSE(w.address().empty());
    auto low = w.post("/v1/chat/completions", image_chat(photo, "low").dump());
    ASSERT_EQ(low.status, 200) << low.body;
    const int low_tokens = json::parse(low.body)["usage"]["prompt_tokens_details"]["image_tokens"];
    EXPECT_LE(low_tokens, 256);
    EXPECT_GE(low_tokens, 200);
    // At full size it needs 1036 positions: refused, naming the image, before any encoding.
    auto high = w.post("/v1/chat/completions", image_chat(photo, "high").dump());
    ASSERT_EQ(high.status, 400) << high.body;
    EXPECT_NE(high.body.find("image 1 (1024x768) takes 1036 image tokens"), std::string::npos) << high.body;
    EXPECT_NE(high.body.find("context holds 512"), std::string::npos) << high.body;
  }
  std::vector<std::string> capped = vision;
  capped.insert(capped.end(), {"--max-image-tokens", "64"});
  Worker w(capped, model);
  ASSERT_FALSE(w.address().empty());
  for (const char* detail : {"", "auto", "high"}) {
    auto r = w.post("/v1/chat/completions", image_chat(photo, detail).dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const int tokens = json::parse(r.body)["usage"]["prompt_tokens_details"]["image_tokens"];
    EXPECT_LE(tokens, 64) << detail;
    EXPECT_GE(tokens, 40) << detail;
  }
}

TEST(Worker, AFixedSizeProjectorRefusesAnImageOverTheDeploymentsImageBudget) {
  Worker w({"--mmproj", zs::testing::golden_model("tiny-llava-mmproj-f32.gguf"), "--max-image-tokens", "8"},
           "tiny-llama-f16.gguf");
  ASSERT_FALSE(w.address().empty());
  auto r = w.post("/v1/chat/completions", image_chat(bmp_image(64, 48), "").dump());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("takes 16 image tokens with this model, over its limit of 8"), std::string::npos) << r.body;
}

TEST(Worker, ClientDisconnectCancelsItsSequence) {
  Worker w({"--slots", "1"});
  int chunks = 0;
  auto abandoned = gateway::http_stream("POST", w.address(), "/v1/chat/completions",
                                        chat_body("Once upon a time", 100000, true).dump(), {},
                                        [&](std::string_view) { return ++chunks < 3; });
  EXPECT_EQ(chunks, 3);  // the client hung up after its third chunk
  // With one slot, the next request only runs once the abandoned one was cancelled.
  auto r = w.post("/v1/chat/completions", chat_body("Lily", 4).dump());
  EXPECT_EQ(r.status, 200);
  const std::string metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("status=\"499\""), std::string::npos) << metrics;
}

TEST(Worker, DrainsOnSigtermAndExitsCleanly) {
  Worker w({"--slots", "2"});
  auto inflight = std::async(std::launch::async, [&] {
    return gateway::http_request("POST", w.address(), "/v1/chat/completions", chat_body("Once upon a time", 300).dump());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  w.process().signal(SIGTERM);
  auto r = inflight.get();
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(w.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(Worker, ListensOnAUnixSocket) {
  zs::testing::TempDir dir;
  const std::string sock = dir.file("w.sock");
  ChildProcess p({ZS_BINARY, "worker", "--model", zs::testing::golden_model("stories260K.gguf"), "--listen", "unix:" + sock});
  auto addr = p.wait_ready();
  ASSERT_TRUE(addr.has_value());
  EXPECT_EQ(*addr, "unix:" + sock);
  auto r = gateway::http_request("GET", *addr, "/health");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
}

TEST(Worker, TakesAPriorityHeaderAndRefusesUnknownClasses) {
  Worker w;
  const json body = chat_body("Once upon a time", 6);
  auto plain = w.post("/v1/chat/completions", body.dump());
  ASSERT_EQ(plain.status, 200) << plain.body;
  const std::string text = json::parse(plain.body)["choices"][0]["message"]["content"];
  for (const std::string priority : {"interactive", "batch"}) {
    auto r = w.post("/v1/chat/completions", body.dump(), {{"X-Priority", priority}});
    ASSERT_EQ(r.status, 200) << priority << ": " << r.body;
    EXPECT_EQ(json::parse(r.body)["choices"][0]["message"]["content"], text) << priority;
    auto c = w.post("/v1/completions", json{{"model", "x"}, {"prompt", "Once"}, {"max_tokens", 3}}.dump(),
                    {{"x-priority", priority}});
    ASSERT_EQ(c.status, 200) << priority << ": " << c.body;
    EXPECT_EQ(json::parse(c.body)["usage"]["completion_tokens"], 3);
  }
  auto bad = w.post("/v1/chat/completions", body.dump(), {{"X-Priority", "urgent"}});
  ASSERT_EQ(bad.status, 400) << bad.body;
  json err = json::parse(bad.body)["error"];
  EXPECT_EQ(err["param"], "X-Priority");
  EXPECT_EQ(err["type"], "invalid_request_error");
  EXPECT_EQ(err["message"], "header X-Priority must be 'interactive' or 'batch', got 'urgent'");
  auto bad_completion = w.post("/v1/completions", json{{"model", "x"}, {"prompt", "Once"}}.dump(), {{"X-Priority", "BATCH"}});
  ASSERT_EQ(bad_completion.status, 400) << bad_completion.body;
  EXPECT_EQ(json::parse(bad_completion.body)["error"]["param"], "X-Priority");
  const std::string metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("zs_worker_requests_total{endpoint=\"chat\",status=\"400\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("zs_worker_requests_total{endpoint=\"completions\",status=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("zs_worker_batch_pauses 0\n"), std::string::npos) << metrics;
}

// A streamed /v1/completions request in the batch class, read on its own thread.
class BatchStream {
 public:
  BatchStream(const std::string& address, const std::string& prompt, int max_tokens) {
    const std::string body =
        json{{"model", "x"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", true}}.dump();
    started_ = started_promise_.get_future();
    result_ = std::async(std::launch::async, [this, address, body] {
      gateway::SseParser parser;
      auto r = gateway::http_stream("POST", address, "/v1/completions", body, {{"X-Priority", "batch"}},
                                    [&](std::string_view chunk) {
                                      parser.feed(chunk);
                                      for (const auto& e : parser.take_events()) {
                                        if (e == "[DONE]") {
                                          done_ = true;
                                          continue;
                                        }
                                        json j = json::parse(e);
                                        if (j["choices"].empty()) continue;
                                        text_ += j["choices"][0]["text"].get<std::string>();
                                        if (!j["choices"][0]["finish_reason"].is_null()) finish_ = j["choices"][0]["finish_reason"];
                                        if (!text_.empty() && !started_set_) {
                                          started_set_ = true;
                                          started_promise_.set_value();
                                        }
                                      }
                                      return true;
                                    });
      if (!started_set_) started_promise_.set_value();  // let a waiting test fail instead of hanging
      return r.is_ok() && r->status == 200;
    });
  }
  // Blocks until the first text arrived: the sequence is running.
  void wait_started() { started_.wait(); }
  bool done() const { return done_; }
  // Blocks until the stream ended; its text and finish reason.
  std::pair<std::string, std::string> get() {
    EXPECT_TRUE(result_.get());
    return {text_, finish_};
  }

 private:
  std::promise<void> started_promise_;
  std::shared_future<void> started_;
  bool started_set_ = false;
  std::atomic<bool> done_{false};
  std::string text_, finish_;
  std::future<bool> result_;
};

TEST(Worker, InteractiveRequestCompletesWhileBatchStreamsHoldEverySlot) {
  Worker w({"--slots", "2"});
  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Tom"};
  const int batch_tokens = 400;
  // What each request gives alone (streamed and whole responses carry the same text).
  std::vector<std::pair<std::string, std::string>> alone;
  for (const auto& p : prompts) {
    auto r = w.post("/v1/completions",
                    json{{"model", "x"}, {"prompt", p}, {"max_tokens", batch_tokens}, {"temperature", 0}}.dump(),
                    {{"X-Priority", "batch"}});
    ASSERT_EQ(r.status, 200) << r.body;
    json j = json::parse(r.body);
    alone.emplace_back(j["choices"][0]["text"], j["choices"][0]["finish_reason"]);
  }
  auto solo = w.post("/v1/chat/completions", chat_body("The dog was", 16).dump());
  ASSERT_EQ(solo.status, 200) << solo.body;

  std::vector<std::unique_ptr<BatchStream>> streams;
  for (const auto& p : prompts) streams.push_back(std::make_unique<BatchStream>(w.address(), p, batch_tokens));
  for (auto& s : streams) s->wait_started();  // both slots now decode batch work
  auto r = w.post("/v1/chat/completions", chat_body("The dog was", 16).dump(), {{"X-Priority", "interactive"}});
  ASSERT_EQ(r.status, 200) << r.body;
  // The batch streams have most of their tokens still to come: the interactive request did not
  // wait for a slot to free up.
  for (auto& s : streams) EXPECT_FALSE(s->done());
  EXPECT_EQ(json::parse(r.body)["choices"][0]["message"]["content"], json::parse(solo.body)["choices"][0]["message"]["content"]);
  EXPECT_EQ(json::parse(r.body)["usage"]["completion_tokens"], 16);

  // Paused, never failed: each batch stream ends as it would have alone.
  for (size_t i = 0; i < streams.size(); ++i) {
    auto [text, finish] = streams[i]->get();
    EXPECT_EQ(finish, "length") << prompts[i];
    EXPECT_EQ(finish, alone[i].second) << prompts[i];
    EXPECT_EQ(text, alone[i].first) << prompts[i];
  }
  const std::string metrics = w.get("/metrics").body;
  EXPECT_NE(metrics.find("zs_worker_batch_pauses 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("zs_worker_preemptions 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("zs_worker_running_sequences_by_priority{priority=\"batch\"}"), std::string::npos);
  EXPECT_NE(metrics.find("zs_worker_waiting_sequences_by_priority{priority=\"interactive\"}"), std::string::npos);
}

TEST(Worker, UnloadableModelExitsWithAClearError) {
  ChildProcess p({ZS_BINARY, "worker", "--model", "/nonexistent.gguf"});
  EXPECT_EQ(p.wait_exit(std::chrono::seconds(20)), 1);
}

}  // namespace
}  // namespace zs
