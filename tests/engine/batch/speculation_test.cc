// Speculative decoding by prompt lookup: drafts found as a simpler search finds them, and
// output that does not depend on speculation, greedy or sampled, alone or batched, under
// preemption; the drafts are really taken (the tests check that some were kept).
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>

#include "batch_test_util.h"
#include "engine/batch/prompt_lookup.h"

namespace zs::engine {
namespace {

// The simpler search: every (n, start) whose n tokens equal the last n, the longest n first,
// then the latest start.
std::vector<int32_t> reference_draft(const std::vector<int32_t>& ids, int max_tokens, PromptLookup o) {
  const int len = static_cast<int>(ids.size());
  int best_n = 0, best_start = -1;
  for (int n = std::max(1, o.min_ngram); n <= o.max_ngram && n < len; ++n) {
    bool key_ok = true;
    for (int k = len - n; k < len; ++k) key_ok &= ids[k] >= 0;
    if (!key_ok) continue;
    for (int start = 0; start + n < len; ++start) {
      bool same = true;
      for (int k = 0; k < n; ++k) same &= ids[start + k] == ids[len - n + k];
      // Only matches that a token follows count.
      if (same && ids[start + n] >= 0 && (n > best_n || (n == best_n && start > best_start))) {
        best_n = n;
        best_start = start;
      }
    }
  }
  std::vector<int32_t> out;
  if (best_n == 0) return out;
  for (int p = best_start + best_n; p < len && static_cast<int>(out.size()) < max_tokens && ids[p] >= 0; ++p)
    out.push_back(ids[p]);
  return out;
}

TEST(PromptLookup, DraftsAreWhatASimplerSearchFinds) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<int32_t> ids(1 + rng() % 40);
    for (auto& t : ids) t = rng() % 13 == 0 ? -1 : static_cast<int32_t>(rng() % 4);
    PromptLookup o{1 + static_cast<int>(rng() % 4), 1 + static_cast<int>(rng() % 2)};
    const int k = static_cast<int>(rng() % 6);
    EXPECT_EQ(prompt_lookup_draft(ids, k, o), reference_draft(ids, k, o)) << trial;
  }
  EXPECT_EQ(prompt_lookup_draft({5, 6, 7, 8, 5, 6}, 4), (std::vector<int32_t>{7, 8, 5, 6}));
  EXPECT_TRUE(prompt_lookup_draft({1, 2, 3}, 4).empty());
}

struct Run {
  std::string text;
  GenerationEvent last;
};

std::vector<Run> run_all(const Llm& llm, const std::vector<std::string>& prompts, BatchEngineOptions o,
                         float temperature, uint64_t seed, int max_tokens, BatchEngineStats* stats = nullptr) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(llm, *backend, o);
  std::vector<std::future<Run>> futures;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto promise = std::make_shared<std::promise<Run>>();
    auto acc = std::make_shared<Run>();
    GenerationRequest r;
    PromptPiece piece;
    piece.tokens = llm.tokenizer->encode(prompts[i], true, true);
    r.prompt.pieces.push_back(std::move(piece));
    r.sampling.temperature = temperature;
    r.sampling.top_p = temperature > 0 ? 0.95f : 1.0f;
    r.sampling.seed = seed + i;
    r.max_tokens = max_tokens;
    r.on_event = [promise, acc](const GenerationEvent& e) {
      acc->text += e.text;
      if (e.finished) {
        acc->last = e;
        promise->set_value(*acc);
      }
    };
    futures.push_back(promise->get_future());
    EXPECT_TRUE(engine.submit(std::move(r)).is_ok());
  }
  std::vector<Run> out;
  for (auto& f : futures) out.push_back(f.get());
  if (stats) *stats = engine.stats();
  return out;
}

// Prompts that repeat themselves, as documents to quote from do.
const std::vector<std::string> kCopyPrompts = {
    "Lily had a red ball. Tom had a blue kite. Lily had a red ball. Tom had a blue kite. Lily had a red",
    "The cat sat on the mat and the dog sat on the log. The cat sat on the mat and the dog",
    "Once upon a time there was a little girl. Once upon a time there was a little",
};

TEST(Speculation, GreedyOutputIsIdenticalAloneAndBatched) {
  BatchEngineOptions plain{.slots = 4, .ctx_tokens = 2048, .block_size = 16, .step_token_budget = 64};
  BatchEngineOptions spec = plain;
  spec.draft_tokens = 4;
  BatchEngineStats stats;
  const auto with = run_all(stories(), kCopyPrompts, spec, 0, 1, 48, &stats);
  const auto without = run_all(stories(), kCopyPrompts, plain, 0, 1, 48);
  for (size_t i = 0; i < kCopyPrompts.size(); ++i) {
    EXPECT_EQ(with[i].text, without[i].text) << kCopyPrompts[i];
    EXPECT_EQ(with[i].text, greedy_reference(kCopyPrompts[i], 48)) << kCopyPrompts[i];
    EXPECT_EQ(with[i].last.completion_tokens, without[i].last.completion_tokens);
    EXPECT_EQ(with[i].last.reason, without[i].last.reason);
  }
  EXPECT_GT(stats.spec_accepted, 0u);
  EXPECT_GT(stats.decode_tokens, stats.decode_steps);  // more than one token per step on average
  // One at a time too.
  const auto alone = run_all(stories(), {kCopyPrompts[0]}, spec, 0, 1, 48);
  EXPECT_EQ(alone[0].text, without[0].text);
}

TEST(Speculation, GreedyOutputIsIdenticalUnderPreemption) {
  // A pool too small for all of them at once: sequences are preempted and recomputed.
  BatchEngineOptions plain{.slots = 3, .ctx_tokens = 112, .block_size = 8, .step_token_budget = 32};
  BatchEngineOptions spec = plain;
  spec.draft_tokens = 6;
  BatchEngineStats stats;
  const auto with = run_all(stories(), kCopyPrompts, spec, 0, 1, 40, &stats);
  for (size_t i = 0; i < kCopyPrompts.size(); ++i)
    EXPECT_EQ(with[i].text, greedy_reference(kCopyPrompts[i], 40)) << kCopyPrompts[i];
  EXPECT_GT(stats.preemptions, 0u);
  EXPECT_GT(stats.spec_accepted, 0u);
}

// Each generated token is one draw from the target's distribution, in the same order with or
// without drafts (a kept draft is exactly a draw that came out equal to it), so the same seed
// gives the same text: the sampled output keeps the target distribution draw for draw.
TEST(Speculation, SampledOutputIsTheSameForTheSameSeed) {
  BatchEngineOptions plain{.slots = 4, .ctx_tokens = 2048, .block_size = 16, .step_token_budget = 64};
  BatchEngineOptions spec = plain;
  spec.draft_tokens = 4;
  uint64_t kept = 0;
  for (uint64_t seed : {1u, 7u, 42u, 1234u}) {
    BatchEngineStats stats;
    const auto with = run_all(stories(), kCopyPrompts, spec, 0.8f, seed, 40, &stats);
    const auto without = run_all(stories(), kCopyPrompts, plain, 0.8f, seed, 40);
    for (size_t i = 0; i < kCopyPrompts.size(); ++i) EXPECT_EQ(with[i].text, without[i].text) << seed << " " << i;
    kept += stats.spec_accepted;
  }
  EXPECT_GT(kept, 0u);
}

// Rejected drafts leave keys and values behind them in the cache; no family's attention (sliding
// windows, M-RoPE, soft-caps, MoE routing...) may see them.
TEST(Speculation, GreedyOutputIsIdenticalForEveryFamily) {
  BatchEngineOptions plain{.slots = 2, .ctx_tokens = 512, .block_size = 16, .step_token_budget = 64};
  BatchEngineOptions spec = plain;
  spec.draft_tokens = 4;
  spec.lookup.min_ngram = 1;  // random weights rarely repeat long n-grams: draft as often as possible
  int families = 0;
  uint64_t drafted = 0;  // some models end at once (end of generation), the others draft
  for (const std::string dir : {"/golden/families/models", "/golden/2026/models"}) {
    for (const auto& entry : std::filesystem::directory_iterator(zs::testing::shared_dir() + dir)) {
      const std::string path = entry.path().string();
      if (path.find("mmproj") != std::string::npos || path.find("bert") != std::string::npos) continue;
      auto llm = Llm::load(path);
      ASSERT_TRUE(llm.is_ok()) << path << ": " << llm.status().message();
      if (llm->model->config().is_encoder()) continue;
      const std::vector<std::string> prompts = {"one two three one two three one two", "a b a b a b a b a"};
      BatchEngineStats stats;
      const auto with = run_all(llm.value(), prompts, spec, 0, 1, 32, &stats);
      const auto without = run_all(llm.value(), prompts, plain, 0, 1, 32);
      for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(with[i].text, without[i].text) << path << " " << i;
      BatchEngineOptions self = spec;  // the model as its own draft model
      self.draft_model = &llm.value();
      const auto by_draft = run_all(llm.value(), prompts, self, 0, 1, 32);
      for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(by_draft[i].text, without[i].text) << path << " " << i;
      drafted += stats.spec_drafted;
      ++families;
    }
  }
  EXPECT_GE(families, 12);
  EXPECT_GT(drafted, 100u);
}

// A draft model that is the target itself proposes what greedy decoding picks: nearly every
// draft is kept, and the output is still the target's own, greedy or sampled, under preemption.
TEST(Speculation, DraftModelOutputIsTheTargetsOwn) {
  BatchEngineOptions plain{.slots = 3, .ctx_tokens = 2048, .block_size = 16, .step_token_budget = 64};
  BatchEngineOptions spec = plain;
  spec.draft_tokens = 4;
  spec.draft_model = &stories();
  ASSERT_TRUE(check_draft_model(stories(), stories()).is_ok());
  BatchEngineStats stats;
  const std::vector<std::string> prompts = {"Once upon a time", "Lily and Tom went to the park", kCopyPrompts[0]};
  const auto with = run_all(stories(), prompts, spec, 0, 1, 48, &stats);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(with[i].text, greedy_reference(prompts[i], 48)) << prompts[i];
  EXPECT_GT(stats.spec_accepted, stats.spec_drafted * 9 / 10) << stats.spec_accepted << " of " << stats.spec_drafted;
  EXPECT_GT(stats.decode_tokens, 2 * stats.decode_steps);

  const auto sampled = run_all(stories(), prompts, spec, 0.8f, 5, 40);
  const auto sampled_plain = run_all(stories(), prompts, plain, 0.8f, 5, 40);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(sampled[i].text, sampled_plain[i].text) << prompts[i];

  BatchEngineOptions tight = spec;  // preempted and recomputed, draft cache included
  tight.ctx_tokens = 112;
  tight.block_size = 8;
  tight.step_token_budget = 32;
  const auto preempted = run_all(stories(), prompts, tight, 0, 1, 40, &stats);
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(preempted[i].text, greedy_reference(prompts[i], 40)) << prompts[i];
  EXPECT_GT(stats.preemptions, 0u);
}

TEST(Speculation, ADraftModelNeedsTheSameVocabulary) {
  static Llm other = std::move(Llm::load(zs::testing::golden_model("TinyStories-656K-Q8_0.gguf")).value());
  const auto st = check_draft_model(stories(), other);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("vocabulary"), std::string::npos) << st.message();
}

TEST(Speculation, LengthLimitHoldsWithDrafts) {
  BatchEngineOptions spec{.slots = 2, .ctx_tokens = 2048, .block_size = 16, .step_token_budget = 64};
  spec.draft_tokens = 8;
  for (int max_tokens : {1, 2, 5, 17}) {
    const auto r = run_all(stories(), {kCopyPrompts[0]}, spec, 0, 1, max_tokens);
    EXPECT_EQ(r[0].last.completion_tokens, max_tokens);
    EXPECT_EQ(r[0].text, greedy_reference(kCopyPrompts[0], max_tokens));
  }
}

}  // namespace
}  // namespace zs::engine
