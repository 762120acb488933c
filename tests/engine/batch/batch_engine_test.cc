// Continuous batching against the single-sequence path on a real trained model: batching,
// paging, prefix sharing and preemption must never change what greedy decoding produces.
#include "engine/batch/batch_engine.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

#include "batch_test_util.h"
#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

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

// The order in which the engine produced events, across requests: one entry per event, the
// request's name, with "!" appended for its final event.
struct Timeline {
  std::mutex mutex;
  std::vector<std::string> entries;

  std::vector<std::string> take() {
    std::lock_guard<std::mutex> lock(mutex);
    return entries;
  }
};

// The names of consecutive runs of text events ("B", "I", "B": B was set aside while I ran).
std::vector<std::string> runs(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    if (e.back() == '!') continue;
    if (out.empty() || out.back() != e) out.push_back(e);
  }
  return out;
}

std::vector<std::string> finishes(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries)
    if (e.back() == '!') out.push_back(e.substr(0, e.size() - 1));
  return out;
}

// Submits a greedy request of a priority class; `hook` runs on the engine thread after each of
// its events is recorded, so a test can submit more work at an exact point of this one.
std::future<Collected> submit_as(BatchEngine& engine, RequestPriority priority, const std::string& name,
                                 const std::string& prompt, int max_tokens, std::shared_ptr<Timeline> timeline,
                                 std::function<void(const GenerationEvent&)> hook = {}) {
  auto promise = std::make_shared<std::promise<Collected>>();
  auto acc = std::make_shared<Collected>();
  GenerationRequest r;
  r.prompt = text_prompt(prompt);
  r.sampling.temperature = 0;
  r.max_tokens = max_tokens;
  r.priority = priority;
  r.on_event = [promise, acc, name, timeline, hook](const GenerationEvent& e) {
    {
      std::lock_guard<std::mutex> lock(timeline->mutex);
      timeline->entries.push_back(e.finished ? name + "!" : name);
    }
    acc->text += e.text;
    if (hook) hook(e);
    if (e.finished) {
      acc->last = e;
      promise->set_value(*acc);
    }
  };
  auto id = engine.submit(std::move(r));
  EXPECT_TRUE(id.is_ok()) << id.status().message();
  return promise->get_future();
}

TEST(BatchEngine, PriorityNamesRoundTrip) {
  EXPECT_EQ(parse_request_priority("interactive"), RequestPriority::kInteractive);
  EXPECT_EQ(parse_request_priority("batch"), RequestPriority::kBatch);
  EXPECT_EQ(parse_request_priority("Batch"), std::nullopt);
  EXPECT_EQ(parse_request_priority(""), std::nullopt);
  EXPECT_EQ(request_priority_name(RequestPriority::kBatch), "batch");
  EXPECT_EQ(request_priority_name(RequestPriority::kInteractive), "interactive");
  EXPECT_EQ(GenerationRequest{}.priority, RequestPriority::kInteractive);
}

TEST(BatchEngine, InteractiveRequestPausesABatchOneInTheOnlySlot) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(stories(), *backend, {.slots = 1, .ctx_tokens = 1024, .block_size = 16, .step_token_budget = 64});
  auto timeline = std::make_shared<Timeline>();
  std::future<Collected> interactive;
  bool submitted = false;
  // The interactive request arrives right after the batch one's first piece of text, while it
  // holds the only slot.
  auto batch = submit_as(engine, RequestPriority::kBatch, "B", kPrompts[0], 60, timeline, [&](const GenerationEvent&) {
    if (submitted) return;
    submitted = true;
    interactive = submit_as(engine, RequestPriority::kInteractive, "I", kPrompts[1], 30, timeline);
  });
  Collected b = batch.get();
  ASSERT_TRUE(interactive.valid());
  Collected i = interactive.get();

  // B got one piece out, then nothing while I ran from its start to its end, then the rest.
  const auto entries = timeline->take();
  EXPECT_EQ(runs(entries), (std::vector<std::string>{"B", "I", "B"}));
  EXPECT_EQ(finishes(entries), (std::vector<std::string>{"I", "B"}));
  EXPECT_EQ(std::find(entries.begin(), entries.end(), "I") - entries.begin(), 1);

  EXPECT_EQ(b.last.reason, FinishReason::kLength);
  EXPECT_EQ(i.last.reason, FinishReason::kLength);
  EXPECT_EQ(b.last.completion_tokens, 60);
  EXPECT_EQ(i.last.completion_tokens, 30);
  EXPECT_EQ(b.text, greedy_reference(kPrompts[0], 60));
  EXPECT_EQ(i.text, greedy_reference(kPrompts[1], 30));
  // Paused with its cache kept: resumed without a recompute.
  EXPECT_EQ(b.last.pauses, 1);
  EXPECT_EQ(b.last.preemptions, 0);
  EXPECT_EQ(i.last.pauses, 0);
  EXPECT_EQ(i.last.preemptions, 0);
  const auto stats = engine.stats();
  EXPECT_EQ(stats.pauses, 1u);
  EXPECT_EQ(stats.preemptions, 0u);
}

TEST(BatchEngine, InteractiveRequestsGoFirstAndPausedBatchResumesBeforeNewBatch) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(stories(), *backend, {.slots = 1, .ctx_tokens = 1024, .block_size = 16, .step_token_budget = 64});
  auto timeline = std::make_shared<Timeline>();
  std::future<Collected> b2, i1, i2;
  bool submitted = false;
  std::optional<BatchEngineStats> seen;
  int i1_events = 0;
  auto b1 = submit_as(engine, RequestPriority::kBatch, "B1", kPrompts[0], 40, timeline, [&](const GenerationEvent&) {
    if (submitted) return;
    submitted = true;
    // Arrival order B2, I1, I2: both interactive ones still run before B2, and in their order.
    b2 = submit_as(engine, RequestPriority::kBatch, "B2", kPrompts[3], 20, timeline);
    i1 = submit_as(engine, RequestPriority::kInteractive, "I1", kPrompts[1], 20, timeline, [&](const GenerationEvent&) {
      // From its second event on, the stats show the step where I1 runs and B1 is paused.
      if (++i1_events == 2) seen = engine.stats();
    });
    i2 = submit_as(engine, RequestPriority::kInteractive, "I2", kPrompts[2], 20, timeline);
  });
  std::vector<Collected> got = {b1.get(), b2.get(), i1.get(), i2.get()};
  const auto entries = timeline->take();
  EXPECT_EQ(runs(entries), (std::vector<std::string>{"B1", "I1", "I2", "B1", "B2"}));
  EXPECT_EQ(finishes(entries), (std::vector<std::string>{"I1", "I2", "B1", "B2"}));
  EXPECT_EQ(got[0].text, greedy_reference(kPrompts[0], 40));
  EXPECT_EQ(got[1].text, greedy_reference(kPrompts[3], 20));
  EXPECT_EQ(got[2].text, greedy_reference(kPrompts[1], 20));
  EXPECT_EQ(got[3].text, greedy_reference(kPrompts[2], 20));
  EXPECT_EQ(got[0].last.pauses, 1);  // paused once, for I1 and I2 together
  EXPECT_EQ(got[1].last.pauses, 0);  // never started before the interactive ones were done
  EXPECT_EQ(engine.stats().pauses, 1u);
  EXPECT_EQ(engine.stats().preemptions, 0u);

  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->running, 1);
  EXPECT_EQ(seen->running_interactive, 1);
  EXPECT_EQ(seen->running_batch, 0);
  EXPECT_EQ(seen->paused, 1);
  EXPECT_EQ(seen->waiting, 3);  // I2, B2 and the paused B1
  EXPECT_EQ(seen->waiting_interactive, 1);
  EXPECT_EQ(seen->waiting_batch, 2);
  EXPECT_EQ(seen->pauses, 1u);
}

TEST(BatchEngine, UnderMemoryPressureBatchIsPreemptedBeforeInteractive) {
  auto backend = make_cpu_backend(2);
  // 6 blocks of 16 positions; each request needs 5 of them by its end, so both cannot finish
  // together. The batch one is older: preempting the newest would pick the interactive one.
  BatchEngine engine(stories(), *backend, {.slots = 2, .ctx_tokens = 96, .block_size = 16, .step_token_budget = 32});
  auto timeline = std::make_shared<Timeline>();
  std::future<Collected> interactive;
  bool submitted = false;
  auto batch = submit_as(engine, RequestPriority::kBatch, "B", kPrompts[0], 60, timeline, [&](const GenerationEvent&) {
    if (submitted) return;
    submitted = true;
    interactive = submit_as(engine, RequestPriority::kInteractive, "I", kPrompts[1], 60, timeline);
  });
  Collected b = batch.get();
  Collected i = interactive.get();
  EXPECT_EQ(b.last.reason, FinishReason::kLength) << b.last.error;
  EXPECT_EQ(i.last.reason, FinishReason::kLength) << i.last.error;
  EXPECT_EQ(b.text, greedy_reference(kPrompts[0], 60));
  EXPECT_EQ(i.text, greedy_reference(kPrompts[1], 60));
  EXPECT_EQ(i.last.preemptions, 0);
  EXPECT_GE(b.last.preemptions, 1);
  EXPECT_EQ(b.last.pauses, 0);  // a free slot: nothing to pause
  EXPECT_EQ(finishes(timeline->take()), (std::vector<std::string>{"I", "B"}));
  EXPECT_EQ(engine.stats().preemptions, static_cast<uint64_t>(b.last.preemptions));
}

TEST(BatchEngine, PausedBatchGivesUpItsBlocksWhenInteractiveWorkNeedsThem) {
  auto backend = make_cpu_backend(2);
  // 6 blocks of 16: the batch request holds 3 when it is paused, the interactive one needs 5.
  BatchEngine engine(stories(), *backend, {.slots = 1, .ctx_tokens = 96, .block_size = 16, .step_token_budget = 32});
  auto timeline = std::make_shared<Timeline>();
  std::future<Collected> interactive;
  bool submitted = false;
  auto batch = submit_as(engine, RequestPriority::kBatch, "B", kPrompts[0], 60, timeline, [&](const GenerationEvent& e) {
    if (submitted || e.completion_tokens < 40) return;
    submitted = true;
    interactive = submit_as(engine, RequestPriority::kInteractive, "I", kPrompts[1], 60, timeline);
  });
  Collected b = batch.get();
  ASSERT_TRUE(interactive.valid());
  Collected i = interactive.get();
  EXPECT_EQ(b.last.reason, FinishReason::kLength) << b.last.error;
  EXPECT_EQ(i.last.reason, FinishReason::kLength) << i.last.error;
  EXPECT_EQ(b.text, greedy_reference(kPrompts[0], 60));
  EXPECT_EQ(i.text, greedy_reference(kPrompts[1], 60));
  EXPECT_EQ(b.last.pauses, 1);
  EXPECT_EQ(b.last.preemptions, 1);  // its paused blocks were taken, so it recomputed
  EXPECT_EQ(i.last.preemptions, 0);
  const auto entries = timeline->take();
  EXPECT_EQ(runs(entries), (std::vector<std::string>{"B", "I", "B"}));
  EXPECT_EQ(finishes(entries), (std::vector<std::string>{"I", "B"}));
  EXPECT_EQ(engine.stats().pauses, 1u);
  EXPECT_EQ(engine.stats().preemptions, 1u);
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
