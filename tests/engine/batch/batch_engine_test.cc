// Continuous batching against the single-sequence path on a real trained model: batching,
// paging, prefix sharing and preemption must never change what greedy decoding produces.
#include "engine/batch/batch_engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

const Llm& stories() {
  static Llm llm = std::move(Llm::load(zs::testing::golden_model("stories260K.gguf")).value());
  return llm;
}

MultimodalPrompt text_prompt(const std::string& text) {
  MultimodalPrompt p;
  p.pieces.push_back(PromptPiece{stories().tokenizer->encode(text, true, true)});
  return p;
}

std::string greedy_reference(const std::string& text, int n) {
  auto backend = make_cpu_backend(1);
  auto ids = stories().tokenizer->encode(text, true, true);
  Session s(*stories().model, *backend, static_cast<int>(ids.size()) + n + 1);
  EXPECT_TRUE(s.eval(ids).is_ok());
  std::string out;
  for (int i = 0; i < n; ++i) {
    int32_t next = static_cast<int32_t>(std::max_element(s.logits(), s.logits() + s.n_vocab()) - s.logits());
    if (stories().tokenizer->is_end_of_generation(next)) break;
    out += stories().tokenizer->token_to_piece(next);
    EXPECT_TRUE(s.eval(&next, 1).is_ok());
  }
  return out;
}

struct Collected {
  std::string text;
  GenerationEvent last;
};

// Submits a request and returns a future with its text and final event.
std::future<Collected> submit(BatchEngine& engine, const std::string& prompt, int max_tokens,
                              std::vector<std::string> stop = {}, uint64_t* id_out = nullptr) {
  auto promise = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  GenerationRequest r;
  r.prompt = text_prompt(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.stop = std::move(stop);
  r.on_event = [promise, acc](const GenerationEvent& e) {
    acc->text += e.text;
    if (e.finished) {
      acc->last = e;
      promise->set_value(*acc);
    }
  };
  auto id = engine.submit(std::move(r));
  EXPECT_TRUE(id.is_ok()) << id.status().message();
  if (id_out && id.is_ok()) *id_out = id.value();
  return promise->get_future();
}

const std::vector<std::string> kPrompts = {"Once upon a time", "Lily and Tom went to the park",
                                           "The big dog was sad because", "One day, a little bird"};

TEST(BatchEngine, ConcurrentGreedyMatchesSingleSequence) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(stories(), *backend, {.slots = 4, .ctx_tokens = 1024, .block_size = 16, .step_token_budget = 64});
  std::vector<std::future<Collected>> futures;
  for (const auto& p : kPrompts) futures.push_back(submit(engine, p, 40));
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    Collected c = futures[i].get();
    EXPECT_EQ(c.text, greedy_reference(kPrompts[i], 40)) << kPrompts[i];
    EXPECT_EQ(c.last.reason, FinishReason::kLength);
    EXPECT_EQ(c.last.completion_tokens, 40);
  }
  EXPECT_GT(engine.stats().steps, 0u);
}

TEST(BatchEngine, SharedPrefixIsReusedAndGivesTheSameText) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(stories(), *backend, {.slots = 2, .ctx_tokens = 1024, .block_size = 4, .step_token_budget = 64});
  const std::string prompt = "Lily and Tom went to the park. They played with a ball and";
  Collected first = submit(engine, prompt, 12).get();
  Collected second = submit(engine, prompt, 12).get();
  EXPECT_EQ(first.last.cached_tokens, 0);
  EXPECT_GT(second.last.cached_tokens, 0);
  EXPECT_EQ(first.text, second.text);
  EXPECT_GT(engine.stats().prefix_cache_hits, 0u);
}

TEST(BatchEngine, PreemptsWhenTheCacheRunsOutAndStillFinishesEverything) {
  auto backend = make_cpu_backend(2);
  // 6 blocks of 16 positions: too few for four sequences of ~70 positions at once.
  BatchEngine engine(stories(), *backend, {.slots = 4, .ctx_tokens = 96, .block_size = 16, .step_token_budget = 32});
  std::vector<std::future<Collected>> futures;
  for (const auto& p : kPrompts) futures.push_back(submit(engine, p, 60));
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    Collected c = futures[i].get();
    EXPECT_EQ(c.last.reason, FinishReason::kLength) << c.last.error;
    EXPECT_EQ(c.text, greedy_reference(kPrompts[i], 60)) << kPrompts[i];
  }
  EXPECT_GT(engine.stats().preemptions, 0u);
}

TEST(BatchEngine, StopSequencesEndGenerationAndAreNotReturned) {
  auto backend = make_cpu_backend(1);
  BatchEngine engine(stories(), *backend, {});
  const std::string full = greedy_reference("Once upon a time", 40);
  const std::string stop = full.substr(10, 5);
  Collected c = submit(engine, "Once upon a time", 40, {stop}).get();
  EXPECT_EQ(c.last.reason, FinishReason::kStop);
  EXPECT_EQ(c.text, full.substr(0, full.find(stop)));
}

TEST(BatchEngine, CancelEndsARequestEarly) {
  auto backend = make_cpu_backend(1);
  BatchEngine engine(stories(), *backend, {.slots = 1});
  uint64_t id = 0;
  auto f = submit(engine, "Once upon a time", 100000, {}, &id);
  engine.cancel(id);
  Collected c = f.get();
  EXPECT_EQ(c.last.reason, FinishReason::kCancelled);
}

TEST(BatchEngine, RefusesPromptsLongerThanTheContext) {
  auto backend = make_cpu_backend(1);
  BatchEngine engine(stories(), *backend, {.ctx_tokens = 32, .block_size = 16});
  GenerationRequest r;
  r.prompt = text_prompt(std::string(400, 'a') + " once upon a time there was a long prompt");
  auto id = engine.submit(std::move(r));
  ASSERT_FALSE(id.is_ok());
  EXPECT_NE(id.status().message().find("context holds 32"), std::string::npos) << id.status().message();
}

TEST(BatchEngine, ShutdownFinishesPendingRequests) {
  auto backend = make_cpu_backend(1);
  auto engine = std::make_unique<BatchEngine>(stories(), *backend, BatchEngineOptions{.slots = 1});
  auto a = submit(*engine, "Once upon a time", 100000);
  auto b = submit(*engine, "Lily and Tom", 100000);
  engine->shutdown();
  EXPECT_EQ(a.get().last.reason, FinishReason::kCancelled);
  EXPECT_EQ(b.get().last.reason, FinishReason::kCancelled);
}

}  // namespace
}  // namespace zs::engine
