// Continuous batching must not change what any family computes: for every text model of
// ../shared/golden/families/, greedy outputs of concurrent requests — with prompts chunked
// under a small step budget, a prefix shared through the KV cache, and a pool too small for
// all of them at once so that sequences are preempted and recomputed — equal the outputs of
// each prompt run alone. Gemma2's sliding window (4 positions) is much shorter than the
// prompts, so windows cross block boundaries and shared blocks.
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "engine/batch/batch_engine.h"
#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

std::string family_model(const std::string& name) {
  return zs::testing::shared_dir() + "/golden/families/models/" + name;
}

// A model file under ../shared/golden/: "families/..." or "2026/..." (the models folder implied).
std::string golden_file(const std::string& path) {
  const size_t slash = path.find('/');
  return zs::testing::shared_dir() + "/golden/" + path.substr(0, slash) + "/models" + path.substr(slash);
}

constexpr int kTokens = 10;

std::string greedy_alone(const Llm& llm, const std::vector<int32_t>& ids) {
  auto backend = make_cpu_backend(1);
  Session s(*llm.model, *backend, static_cast<int>(ids.size()) + kTokens + 1);
  EXPECT_TRUE(s.eval(ids).is_ok());
  std::string out;
  for (int i = 0; i < kTokens; ++i) {
    const auto next = static_cast<int32_t>(std::max_element(s.logits(), s.logits() + s.n_vocab()) - s.logits());
    if (llm.tokenizer->is_end_of_generation(next)) break;
    out += llm.tokenizer->token_to_piece(next);
    EXPECT_TRUE(s.eval(&next, 1).is_ok());
  }
  return out;
}

class FamilyBatching : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyBatching, ConcurrentChunkedSharedAndPreemptedRequestsMatchEachPromptAlone) {
  auto loaded = Llm::load(golden_file(GetParam()));
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  const Llm& llm = loaded.value();
  const std::string shared = "The quick brown fox jumps over the lazy dog, and then the quick brown fox ";
  const std::vector<std::string> prompts = {shared + "sleeps.", shared + "runs home to its den in the woods.",
                                            "Serverless GPUs scale to zero at night.", "Once upon a time"};
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> want;
  for (const auto& p : prompts) {
    ids.push_back(llm.tokenizer->encode(p, llm.tokenizer->add_bos_by_default(), true));
    want.push_back(greedy_alone(llm, ids.back()));
  }

  auto backend = make_cpu_backend(2);
  // 6 blocks of 8 positions: fewer than the four sequences need together.
  BatchEngine engine(llm, *backend, {.slots = 4, .ctx_tokens = 48, .block_size = 8, .step_token_budget = 8});
  std::vector<std::future<std::string>> got;
  for (const auto& p : ids) {
    auto promise = std::make_shared<std::promise<std::string>>();
    auto text = std::make_shared<std::string>();
    GenerationRequest r;
    PromptPiece piece;
    piece.tokens = p;
    r.prompt.pieces.push_back(std::move(piece));
    r.sampling.temperature = 0;
    r.max_tokens = kTokens;
    r.on_event = [promise, text](const GenerationEvent& e) {
      *text += e.text;
      if (e.finished) promise->set_value(e.reason == FinishReason::kError ? "error: " + e.error : *text);
    };
    ASSERT_TRUE(engine.submit(std::move(r)).is_ok());
    got.push_back(promise->get_future());
  }
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].get(), want[i]) << "prompt " << i;
  const BatchEngineStats stats = engine.stats();
  EXPECT_GT(stats.preemptions, 0u) << "the pool was meant to be too small for all four at once";
  EXPECT_GT(stats.prefix_cache_hits, 0u) << "the shared prefix was meant to be reused";
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyBatching,
                         ::testing::Values("families/tiny-gemma2-f16.gguf", "families/tiny-gemma2-q8_0.gguf",
                                           "families/tiny-phi3-f16.gguf", "families/tiny-phi3-q8_0.gguf",
                                           "families/tiny-chatglm-f16.gguf", "families/tiny-qwen2moe-f16.gguf",
                                           "families/tiny-llama-moe-q8_0.gguf", "families/tiny-llama3-f16.gguf",
                                           "2026/tiny-qwen3-f16.gguf", "2026/tiny-qwen3moe-f16.gguf",
                                           "2026/tiny-gemma3-f16.gguf", "2026/tiny-gemma3-q8_0.gguf"),
                         [](const auto& info) {
                           const std::string file = info.param.substr(info.param.find('/') + 1);
                           std::string n = file.substr(5, file.size() - 10);
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace zs::engine

// ---- Qwen2-VL ----------------------------------------------------------------------------
// An image's rows share one temporal position and see each other, so a step must take all of
// them: with a step budget smaller than the image, batching still equals the single run, whose
// greedy tokens the reference line fixes.
#include "engine/vision/image_embedder.h"
#include "engine/vision/vision_loader.h"

namespace zs::engine {
namespace {

TEST(Qwen2VlBatching, AnImageLargerThanTheStepBudgetStaysWholeAndMatchesTheSingleRun) {
  auto loaded = Llm::load(family_model("tiny-qwen2vl-f16.gguf"));
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().message();
  const Llm& llm = loaded.value();
  auto clip = load_vision_for(*llm.model, family_model("tiny-qwen2vl-mmproj-f16.gguf"));
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  auto vision_backend = make_cpu_backend(1);
  ImageEmbedder embedder(**clip, *vision_backend);
  std::ifstream in(zs::testing::shared_dir() + "/golden/families/images/gradient-64x48.png", std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto img = embedder.embed(png.data(), png.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  ASSERT_EQ(img->n_tokens(), 6);  // 64x48 -> 84x56 -> 3 x 2 cells
  const std::string prefix = "<|im_start|>user\n", text = "Describe the image.<|im_end|>\n<|im_start|>assistant\n";
  auto prompt = build_multimodal_prompt(*llm.tokenizer, prefix + text, {prefix.size()}, {img.value()},
                                        ProjectorType::kQwen2VlMerger, false);
  ASSERT_TRUE(prompt.is_ok());

  auto backend = make_cpu_backend(1);
  Session session(*llm.model, *backend, prompt->n_positions() + kTokens + 1, /*max_batch=*/4);
  ASSERT_TRUE(eval_prompt(session, prompt.value()).is_ok());
  std::string want;
  for (int i = 0; i < kTokens; ++i) {
    const auto next =
        static_cast<int32_t>(std::max_element(session.logits(), session.logits() + session.n_vocab()) - session.logits());
    want += llm.tokenizer->token_to_piece(next);
    ASSERT_TRUE(session.eval(&next, 1).is_ok());
  }

  BatchEngine engine(llm, *backend, {.slots = 2, .ctx_tokens = 256, .block_size = 4, .step_token_budget = 4});
  std::vector<std::future<std::string>> got;
  for (int copy = 0; copy < 2; ++copy) {  // the second shares the first's blocks, image included
    auto promise = std::make_shared<std::promise<std::string>>();
    auto acc = std::make_shared<std::string>();
    GenerationRequest r;
    r.prompt = prompt.value();
    r.sampling.temperature = 0;
    r.max_tokens = kTokens;
    r.on_event = [promise, acc](const GenerationEvent& e) {
      *acc += e.text;
      if (e.finished) promise->set_value(e.reason == FinishReason::kError ? "error: " + e.error : *acc);
    };
    ASSERT_TRUE(engine.submit(std::move(r)).is_ok());
    got.push_back(promise->get_future());
  }
  for (auto& f : got) EXPECT_EQ(f.get(), want);
}

}  // namespace
}  // namespace zs::engine
