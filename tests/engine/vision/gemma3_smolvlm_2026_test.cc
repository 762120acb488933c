// Gemma 3's vision projector and SmolVLM's reference tiling (../shared/golden/2026): the
// align-corners bilinear resize and the aspect-fit on black against hand-computed pixels, the
// refined-size rule, 4x4 average pooling, the image embeddings of both tiny projectors against
// the reference's sums, the token layouts, and bidirectional image pieces: an image is never
// split across BatchEngine steps, batching equals the single run, and a sliding window still
// hides keys earlier than the window.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <future>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/batch/batch_engine.h"
#include "engine/image/resize_aligned.h"
#include "engine/model/llm.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/session.h"
#include "engine/vision/gemma3_projector.h"
#include "engine/vision/idefics3_reference.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/multimodal_prompt.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

std::string dir_2026() { return zs::testing::shared_dir() + "/golden/2026"; }

Image gray(int w, int h, std::vector<uint8_t> values) {
  Image img;
  img.width = w;
  img.height = h;
  for (uint8_t v : values) img.rgb.insert(img.rgb.end(), {v, v, v});
  return img;
}

// ---- resizes ------------------------------------------------------------------------------

TEST(AlignCornersBilinear, TwoPixelsBecomeThreeWithTheMiddleTruncated) {
  const Image out = resize_bilinear_align_corners(gray(2, 1, {0, 255}), 3, 1);
  ASSERT_EQ(out.width, 3);
  EXPECT_EQ(out.rgb[0], 0);
  EXPECT_EQ(out.rgb[3], 127);  // 127.5 truncated, not rounded
  EXPECT_EQ(out.rgb[6], 255);
}

TEST(AlignCornersBilinear, TwoByTwoToFourByFourMatchesHandComputedPixels) {
  // Source corners 0, 90 / 30, 120; x and y step by 1/3 of the source.
  const Image out = resize_bilinear_align_corners(gray(2, 2, {0, 90, 30, 120}), 4, 4);
  // Row 1 (y = 1/3): left 10, right 100; pixel (1, 1) = 10 + 90/3 = 40; (2, 1) = 10 + 60 = 70.
  EXPECT_EQ(out.rgb[out.pixel_index(0, 1)], 10);
  EXPECT_EQ(out.rgb[out.pixel_index(1, 1)], 40);
  EXPECT_EQ(out.rgb[out.pixel_index(2, 1)], 70);
  EXPECT_EQ(out.rgb[out.pixel_index(3, 3)], 120);
  EXPECT_EQ(out.rgb[out.pixel_index(1, 0)], 30);
}

TEST(AlignCornersBilinear, SameSizeCopiesTheImage) {
  const Image src = gray(3, 2, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(resize_bilinear_align_corners(src, 3, 2).rgb, src.rgb);
}

TEST(FitCentered, GradientSixtyFourByFortyEightSitsOnRowsEightToFiftyFive) {
  Image src;
  src.width = 64;
  src.height = 48;
  src.rgb.assign(64 * 48 * 3, 200);
  EXPECT_EQ(fit_size(64, 48, 64, 64), (ImageSize{64, 48}));
  const Image out = resize_fit_centered(src, 64, 64, ResizeFilter::kBilinearAlignCorners);
  EXPECT_EQ(out.rgb[out.pixel_index(10, 7)], 0);
  EXPECT_EQ(out.rgb[out.pixel_index(10, 8)], 200);
  EXPECT_EQ(out.rgb[out.pixel_index(10, 55)], 200);
  EXPECT_EQ(out.rgb[out.pixel_index(10, 56)], 0);
  EXPECT_EQ(fit_size(64, 48, 128, 128), (ImageSize{128, 96}));
  EXPECT_EQ(fit_size(1, 1000, 64, 64), (ImageSize{1, 64}));  // ceil(0.064) = 1
}

// ---- SmolVLM reference geometry -------------------------------------------------------------

TEST(Idefics3Reference, RefinedSizeRoundsTheAspectFitUpToWholeTiles) {
  EXPECT_EQ(idefics3_refined_size(64, 48, 128, 64), (ImageSize{128, 128}));     // s = 2: 128 x 96
  EXPECT_EQ(idefics3_refined_size(1024, 400, 128, 64), (ImageSize{128, 64}));   // s = 1/8: 128 x 50
  EXPECT_EQ(idefics3_refined_size(4000, 3000, 128, 64), (ImageSize{128, 128}));  // 128 x 96
  EXPECT_EQ(idefics3_refined_size(300, 1200, 2048, 512), (ImageSize{512, 2048}));
}

TEST(Idefics3Reference, GradientSplitsIntoTwoByTwoTilesOfTheCentredBicubicCanvas) {
  Image src;
  src.width = 64;
  src.height = 48;
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) src.rgb.insert(src.rgb.end(), {uint8_t(4 * x), uint8_t(5 * y), 100});
  const SplitImage s = split_image_reference(src, 128, 64);
  ASSERT_EQ(s.rows, 2);
  ASSERT_EQ(s.cols, 2);
  ASSERT_EQ(s.tiles.size(), 4u);
  // Canvas rows 0..15 are black: tile (0, 0) row 15 black, row 16 not.
  EXPECT_EQ(s.tiles[0].rgb[s.tiles[0].pixel_index(5, 15) + 2], 0);
  EXPECT_EQ(s.tiles[0].rgb[s.tiles[0].pixel_index(5, 16) + 2], 100);
  // Canvas rows 112..127 black: tile (1, 1) row 47 (canvas 111) blue, row 48 black.
  EXPECT_EQ(s.tiles[3].rgb[s.tiles[3].pixel_index(5, 47) + 2], 100);
  EXPECT_EQ(s.tiles[3].rgb[s.tiles[3].pixel_index(5, 48) + 2], 0);
  // The global view is the whole image stretched (no bars): its corners are the source's
  // (within the truncation of float sampling positions).
  EXPECT_EQ(s.global.rgb[s.global.pixel_index(0, 0) + 1], 0);
  EXPECT_NEAR(s.global.rgb[s.global.pixel_index(63, 63)], 4 * 63, 1);
  EXPECT_NEAR(s.global.rgb[s.global.pixel_index(63, 63) + 1], 5 * 47, 1);
}

// ---- Gemma 3 pooling --------------------------------------------------------------------------

TEST(Gemma3Pooling, FourByFourGridPooledTwoByTwoAveragesEachBlock) {
  // side 4, d 1, values 0..15 row-major: blocks {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
  std::vector<float> in(16), out(4);
  for (int i = 0; i < 16; ++i) in[i] = static_cast<float>(i);
  avg_pool_patches(in.data(), 4, 1, 2, out.data());
  EXPECT_FLOAT_EQ(out[0], 2.5f);
  EXPECT_FLOAT_EQ(out[1], 4.5f);
  EXPECT_FLOAT_EQ(out[2], 10.5f);
  EXPECT_FLOAT_EQ(out[3], 12.5f);
}

TEST(Gemma3Pooling, FeaturesArePooledIndependently) {
  // side 2, d 2, k 2: one output row, the mean of each feature.
  const std::vector<float> in = {1, 10, 2, 20, 3, 30, 4, 40};
  std::vector<float> out(2);
  avg_pool_patches(in.data(), 2, 2, 2, out.data());
  EXPECT_FLOAT_EQ(out[0], 2.5f);
  EXPECT_FLOAT_EQ(out[1], 25.0f);
}

// ---- the tiny projectors against the reference's embedding sums --------------------------------

nlohmann::json vision_line(const std::string& mmproj) {
  std::ifstream in(dir_2026() + "/golden.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.value("mmproj", "") == mmproj) return j;
  }
  return {};
}

void expect_embeddings_match(const std::string& mmproj) {
  const nlohmann::json ref = vision_line(mmproj);
  ASSERT_FALSE(ref.is_null()) << mmproj;
  auto clip = ClipModel::load(dir_2026() + "/models/" + mmproj);
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  auto backend = make_cpu_backend(2);
  ImageEmbedder embedder(**clip, *backend);
  std::ifstream in(dir_2026() + "/images/" + ref["image"].get<std::string>(), std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto img = embedder.embed(png.data(), png.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  ASSERT_EQ(img->n_tokens(), ref["image_tokens"].get<int>());
  EXPECT_EQ(embedder.image_tokens(64, 48), ref["image_tokens"].get<int>());
  const std::vector<float>& e = *img->data;
  double sum = 0, sumsq = 0;
  for (float v : e) {
    sum += v;
    sumsq += static_cast<double>(v) * v;
  }
  const double want_sum = ref["image_embed_sum"], want_sumsq = ref["image_embed_sumsq"];
  EXPECT_NEAR(sumsq, want_sumsq, 1e-3 * std::abs(want_sumsq));
  EXPECT_NEAR(sum, want_sum, 1e-3 * std::sqrt(want_sumsq));
  // As the golden test: 3e-3 (SmolVLM's first tile keeps a residual of up to 2.9e-3).
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(e[i], ref["image_embed_first8"][i].get<double>(), 3e-3) << i;
}

TEST(Gemma3Vision, TinyProjectorMatchesTheReferenceEmbeddings) {
  expect_embeddings_match("tiny-gemma3-mmproj-f16.gguf");
}

TEST(SmolVlmReference, TinyProjectorMatchesTheReferenceEmbeddings) {
  expect_embeddings_match("tiny-smolvlm-mmproj-f16.gguf");
}

TEST(SmolVlmReference, AWideRealSizeImageBecomesTwoTilesAndTheGlobalView) {
  auto clip = ClipModel::load(dir_2026() + "/models/tiny-smolvlm-mmproj-f16.gguf");
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  EXPECT_EQ((*clip)->config().preproc_image_size, 128);
  const ImageTokenCount n = image_token_count((*clip)->config(), 1920, 800);
  EXPECT_EQ(n.views, 3);
  EXPECT_EQ(n.tokens, 12);
  EXPECT_EQ(image_token_count((*clip)->config(), 4032, 3024).tokens, 20);
}

// ---- presets -------------------------------------------------------------------------------------

TEST(MmprojPresets, GemmaThreeFourBLoadsWithItsPublishedShapesAndTwoHundredFiftySixTokens) {
  auto preset = find_mmproj_preset("gemma-3-4b");
  ASSERT_TRUE(preset.is_ok()) << preset.status().message();
  MmprojPreset cut = preset.value();
  cut.n_layer = 1;  // every other shape as published
  zs::testing::TempDir dir;
  const std::string path = dir.file("g3.gguf");
  ASSERT_TRUE(write_random_mmproj(cut, GgmlType::kF16, path).is_ok());
  auto clip = ClipModel::load(path);
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  const ClipConfig& c = (*clip)->config();
  EXPECT_EQ(c.projector, ProjectorType::kGemma3);
  EXPECT_EQ(c.image_size, 896);
  EXPECT_EQ(c.n_embd, 1152);
  EXPECT_EQ(c.scale_factor, 4);
  EXPECT_EQ(c.tokens_per_image(), 256);
  EXPECT_EQ(c.projection_dim, 2560);
  EXPECT_EQ(image_token_count(c, 1024, 768).tokens, 256);
}

TEST(MmprojPresets, SmolVlm256MWritesPreprocImageSizeAndTilesAPhotoAsTheReference) {
  auto preset = find_mmproj_preset("smolvlm-256m");
  ASSERT_TRUE(preset.is_ok()) << preset.status().message();
  MmprojPreset cut = preset.value();
  cut.n_layer = 1;
  zs::testing::TempDir dir;
  const std::string path = dir.file("smol.gguf");
  ASSERT_TRUE(write_random_mmproj(cut, GgmlType::kF16, path).is_ok());
  auto clip = ClipModel::load(path);
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  const ClipConfig& c = (*clip)->config();
  EXPECT_EQ(c.preproc_image_size, 2048);
  // 1024 x 768 -> s = 2 -> 2048 x 1536 -> 4 x 3 tiles of 512 + the global view, 64 tokens each.
  EXPECT_EQ(image_token_count(c, 1024, 768).views, 13);
  EXPECT_EQ(image_token_count(c, 1024, 768).tokens, 13 * 64);
}

// ---- bidirectional image pieces ----------------------------------------------------------------

constexpr int kGreedy = 8;

struct Gemma3Prompt {
  std::unique_ptr<Llm> llm;
  std::unique_ptr<ClipModel> clip;
  MultimodalPrompt prompt;
};

// tiny-gemma3 (5 sliding blocks of window 4, one global) with the 16-row gradient image.
void load_gemma3_prompt(Gemma3Prompt& out) {
  auto llm = Llm::load(dir_2026() + "/models/tiny-gemma3-f16.gguf");
  ASSERT_TRUE(llm.is_ok()) << llm.status().message();
  out.llm = std::make_unique<Llm>(std::move(llm.value()));
  ASSERT_GT(out.llm->model->config().sliding_window, 0);
  auto clip = ClipModel::load(dir_2026() + "/models/tiny-gemma3-mmproj-f16.gguf");
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  out.clip = std::move(clip.value());
  auto backend = make_cpu_backend(1);
  ImageEmbedder embedder(*out.clip, *backend);
  std::ifstream in(dir_2026() + "/images/gradient-64x48.png", std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto img = embedder.embed(png.data(), png.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  const std::string prefix = "<start_of_turn>user\n",
                    text = "Describe the image.<end_of_turn>\n<start_of_turn>model\n";
  auto prompt = build_multimodal_prompt(*out.llm->tokenizer, prefix + text, {prefix.size()}, {img.value()},
                                        ProjectorType::kGemma3, true);
  ASSERT_TRUE(prompt.is_ok()) << prompt.status().message();
  out.prompt = std::move(prompt.value());
}

std::vector<int32_t> greedy_single(const Llm& llm, const MultimodalPrompt& prompt, int max_batch,
                                   std::vector<float>* first_logits = nullptr) {
  auto backend = make_cpu_backend(1);
  Session s(*llm.model, *backend, prompt.n_positions() + kGreedy + 1, max_batch);
  EXPECT_TRUE(eval_prompt(s, prompt).is_ok());
  if (first_logits) first_logits->assign(s.logits(), s.logits() + s.n_vocab());
  std::vector<int32_t> out;
  for (int i = 0; i < kGreedy; ++i) {
    const auto next = static_cast<int32_t>(std::max_element(s.logits(), s.logits() + s.n_vocab()) - s.logits());
    out.push_back(next);
    EXPECT_TRUE(s.eval(&next, 1).is_ok());
  }
  return out;
}

TEST(Gemma3Layout, ImageRowsSitBetweenStartAndEndOfImageAsOneBidirectionalPiece) {
  Gemma3Prompt g;
  ASSERT_NO_FATAL_FAILURE(load_gemma3_prompt(g));
  ASSERT_EQ(g.prompt.pieces.size(), 3u);
  EXPECT_EQ(g.prompt.pieces[0].tokens, (std::vector<int32_t>{1, 32000, 1792, 13, 32002}));
  EXPECT_EQ(g.prompt.pieces[1].n_embeddings, 16);
  EXPECT_TRUE(g.prompt.pieces[1].bidirectional);
  EXPECT_EQ(g.prompt.pieces[2].tokens.front(), 32003);
}

TEST(Gemma3Layout, BidirectionalRowsChangeTheResultAndDoNotDependOnTheSessionBatch) {
  Gemma3Prompt g;
  ASSERT_NO_FATAL_FAILURE(load_gemma3_prompt(g));
  std::vector<float> whole, small_batch, causal;
  const auto want = greedy_single(*g.llm, g.prompt, 256, &whole);
  // A session batch smaller than the image still evaluates the image in one pass.
  EXPECT_EQ(greedy_single(*g.llm, g.prompt, 4, &small_batch), want);
  EXPECT_EQ(small_batch, whole);
  MultimodalPrompt plain = g.prompt;
  plain.pieces[1].bidirectional = false;
  greedy_single(*g.llm, plain, 256, &causal);
  double diff = 0;
  for (size_t i = 0; i < whole.size(); ++i) diff = std::max(diff, static_cast<double>(std::abs(whole[i] - causal[i])));
  EXPECT_GT(diff, 1e-3) << "causal and bidirectional image rows gave the same logits";
}

TEST(Gemma3Batching, AnImageLargerThanTheStepBudgetIsNeverSplitAndBatchingEqualsTheSingleRun) {
  Gemma3Prompt g;
  ASSERT_NO_FATAL_FAILURE(load_gemma3_prompt(g));
  std::string want;
  for (int32_t t : greedy_single(*g.llm, g.prompt, 256)) {
    if (g.llm->tokenizer->is_end_of_generation(t)) break;
    want += g.llm->tokenizer->token_to_piece(t);
  }
  auto backend = make_cpu_backend(1);
  // Budget 3 < 16 image rows, blocks of 4: a split image would read keys not yet written.
  BatchEngine engine(*g.llm, *backend, {.slots = 3, .ctx_tokens = 256, .block_size = 4, .step_token_budget = 3});
  std::vector<std::future<std::string>> got;
  for (int copy = 0; copy < 3; ++copy) {  // later copies share the first's blocks, image included
    auto promise = std::make_shared<std::promise<std::string>>();
    auto acc = std::make_shared<std::string>();
    GenerationRequest r;
    r.prompt = g.prompt;
    r.sampling.temperature = 0;
    r.max_tokens = kGreedy;
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
