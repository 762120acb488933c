// Qwen2-VL's image geometry and positions against values worked out by hand: the resize rule
// (each side rounded up to a multiple of 28; with a token budget scaled down, aspect kept,
// whole cells, at least one), the M-RoPE positions of prompts with text and images, and the
// rotary-pair assignment of the vision tower's 2-D rope.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/image/test_images.h"
#include "engine/model/llm.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/multimodal_prompt.h"
#include "engine/vision/vision_loader.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

int cells(const ImageSize& s) { return (s.width / 28) * (s.height / 28); }

TEST(Qwen2VlImageSize, WithoutABudgetEachSideRoundsUpToAMultipleOf28) {
  EXPECT_EQ(qwen2vl_image_size(64, 48, 0), (ImageSize{84, 56}));
  EXPECT_EQ(qwen2vl_image_size(1024, 768, 0), (ImageSize{1036, 784}));  // 37 x 28 = 1036 tokens
  EXPECT_EQ(cells(qwen2vl_image_size(1024, 768, 0)), 1036);
  EXPECT_EQ(qwen2vl_image_size(28, 28, 0), (ImageSize{28, 28}));
  EXPECT_EQ(qwen2vl_image_size(1, 1, 0), (ImageSize{28, 28}));
}

TEST(Qwen2VlImageSize, ABudgetShrinksToAtMostThatManyCellsKeepingTheAspect) {
  const ImageSize low = qwen2vl_image_size(1024, 768, 256);
  EXPECT_LE(cells(low), 256);
  EXPECT_GE(cells(low), 200);  // not needlessly small
  EXPECT_EQ(low.width % 28, 0);
  EXPECT_EQ(low.height % 28, 0);
  EXPECT_NEAR(static_cast<double>(low.width) / low.height, 1024.0 / 768, 0.15);
  // A budget the image already meets changes nothing.
  EXPECT_EQ(qwen2vl_image_size(64, 48, 256), (ImageSize{84, 56}));
}

TEST(Qwen2VlImageSize, ExtremeAspectRatiosKeepAtLeastOneCellPerSide) {
  for (auto [w, h] : {std::pair{20000, 1000}, std::pair{1000, 20000}, std::pair{2000, 100}, std::pair{100, 2000}}) {
    const ImageSize s = qwen2vl_image_size(w, h, 64);
    EXPECT_LE(cells(s), 64) << w << "x" << h;
    EXPECT_GE(s.width, 28);
    EXPECT_GE(s.height, 28);
    if (w > h) EXPECT_GT(s.width, s.height);
    else EXPECT_GT(s.height, s.width);
  }
  EXPECT_EQ(qwen2vl_image_size(1, 1, 1), (ImageSize{28, 28}));
  // Even a budget of one cell is met by a very long image: one cell.
  EXPECT_EQ(cells(qwen2vl_image_size(5000, 20, 1)), 1);
}

// A prompt of text runs and grid images, without a model: token pieces and embedding pieces.
MultimodalPrompt prompt_of(const std::vector<std::pair<int, std::pair<int, int>>>& runs) {
  static const std::vector<float> storage(1024, 0.f);
  MultimodalPrompt p;
  for (const auto& [n_text, grid] : runs) {
    if (n_text > 0) {
      PromptPiece t;
      t.tokens.assign(n_text, 7);
      p.pieces.push_back(t);
    } else {
      PromptPiece img;
      img.embeddings = storage.data();
      img.grid_rows = grid.first;
      img.grid_cols = grid.second;
      img.n_embeddings = grid.first * grid.second;
      p.pieces.push_back(img);
    }
  }
  return p;
}

TEST(Qwen2VlPositions, TextImageTextFollowsTheGridThenJumpsByItsLongerSide) {
  // 3 tokens, a 2 x 3 image, 2 tokens: text 0..2; image (3, 3+r, 3+c); text at 3 + 3 + i.
  int32_t next = 0;
  auto pos = prompt_of({{3, {}}, {0, {2, 3}}, {2, {}}}).rope_positions(&next);
  ASSERT_EQ(pos.size(), 11u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(pos[i].t, i);
    EXPECT_EQ(pos[i].h, i);
    EXPECT_EQ(pos[i].w, i);
  }
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(pos[3 + k].t, 3);
    EXPECT_EQ(pos[3 + k].h, 3 + k / 3);
    EXPECT_EQ(pos[3 + k].w, 3 + k % 3);
  }
  EXPECT_EQ(pos[9].t, 6);
  EXPECT_EQ(pos[10].w, 7);
  EXPECT_EQ(next, 8);
}

TEST(Qwen2VlPositions, TwoImagesEachStartWhereTheCounterIs) {
  int32_t next = 0;
  auto pos = prompt_of({{1, {}}, {0, {3, 1}}, {0, {1, 2}}, {1, {}}}).rope_positions(&next);
  ASSERT_EQ(pos.size(), 7u);
  EXPECT_EQ(pos[1].t, 1);  // first image at 1, 3 rows x 1 col: h 1..3, w 1
  EXPECT_EQ(pos[3].h, 3);
  EXPECT_EQ(pos[4].t, 4);  // second image at 1 + max(3, 1) = 4: h 4, w 4..5
  EXPECT_EQ(pos[5].w, 5);
  EXPECT_EQ(pos[6].t, 6);  // text after 4 + max(1, 2)
  EXPECT_EQ(next, 7);
}

TEST(Qwen2VlRope2d, RowsTurnTheFirstQuarterOfPairsAndColumnsTheRest) {
  auto backend = make_cpu_backend(1);
  // Head dim 8: pairs (0,4), (1,5) follow the row, (2,6), (3,7) the column.
  std::vector<float> x(8, 1.f), y(8, 1.f);
  const int32_t row = 3, col = 0, zero = 0;
  backend->rope_2d(x.data(), 1, &row, &col, 1, 8, 10000.f);
  backend->rope_2d(y.data(), 1, &zero, &zero, 1, 8, 10000.f);
  EXPECT_EQ(y, std::vector<float>(8, 1.f));  // position (0, 0) turns nothing
  // Pair 0 turns by 3 rad: (cos 3 - sin 3, sin 3 + cos 3); pair 1 by 3 * 10000^(-1/2).
  EXPECT_NEAR(x[0], std::cos(3.f) - std::sin(3.f), 1e-5f);
  EXPECT_NEAR(x[4], std::sin(3.f) + std::cos(3.f), 1e-5f);
  EXPECT_NEAR(x[1], std::cos(0.03f) - std::sin(0.03f), 1e-5f);
  EXPECT_FLOAT_EQ(x[2], 1.f);  // column 0: untouched
  EXPECT_FLOAT_EQ(x[7], 1.f);
}

TEST(Qwen2VlPresets, TheGeneratedPairHasTheRealShapesAndRunsAnImage) {
  auto vision = find_mmproj_preset("qwen2-vl-2b");
  ASSERT_TRUE(vision.is_ok());
  EXPECT_EQ(vision->n_embd, 1280);
  EXPECT_EQ(vision->n_layer, 32);
  EXPECT_EQ(vision->mlp_hidden, 4 * 1280);
  auto text = find_model_preset("qwen2-vl-2b");
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(vision->projection_dim, text->n_embd);
  EXPECT_EQ(text->rope_sections, (std::vector<int>{16, 24, 24, 0}));

  // A narrow copy of both (same keys, tensor names and layout) through the whole path.
  MmprojPreset v = vision.value();
  v.n_embd = 64;
  v.n_layer = 1;
  v.n_head = 4;
  v.n_ff = 128;
  v.mlp_hidden = 256;
  ModelPreset t = with_layers(text.value(), 1).value();
  t.n_ff = 256;
  t.n_vocab = 1024;
  zs::testing::TempDir dir;
  ASSERT_TRUE(write_random_model(t, FileType::kF16, dir.file("text.gguf")).is_ok());
  ASSERT_TRUE(write_random_mmproj(v, GgmlType::kF16, dir.file("mmproj.gguf")).is_ok());
  auto llm = Llm::load(dir.file("text.gguf"));
  ASSERT_TRUE(llm.is_ok()) << llm.status().message();
  EXPECT_EQ(llm->model->config().rope_mode, RopeMode::kMrope);
  auto clip = load_vision_for(*llm->model, dir.file("mmproj.gguf"));
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  EXPECT_EQ(clip.value()->config().projector, ProjectorType::kQwen2VlMerger);
  auto backend = make_cpu_backend(1);
  ImageEmbedder embedder(**clip, *backend);
  test::Bytes pixels(100 * 60 * 3, 128);
  const test::Bytes png = test::png_stb(100, 60, 3, pixels);
  auto img = embedder.embed(png.data(), png.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  EXPECT_EQ(img->pos_rows, 3);  // 60 -> 84 = 3 cells, 100 -> 112 = 4 cells
  EXPECT_EQ(img->pos_cols, 4);
  EXPECT_EQ(img->n_tokens(), 12);
  auto prompt = build_multimodal_prompt(*llm->tokenizer, "look: now", {6}, {img.value()},
                                        ProjectorType::kQwen2VlMerger, false);
  ASSERT_TRUE(prompt.is_ok());
  // The vision markers are single special tokens around the image rows.
  const auto ids = prompt->flat_ids();
  const int32_t start = llm->tokenizer->encode("<|vision_start|>", false, true).at(0);
  EXPECT_EQ(llm->tokenizer->encode("<|vision_start|>", false, true).size(), 1u);
  EXPECT_NE(std::find(ids.begin(), ids.end(), start), ids.end());
  Session s(*llm->model, *backend, prompt->n_positions() + 1);
  ASSERT_TRUE(eval_prompt(s, prompt.value()).is_ok());
  for (int i = 0; i < s.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(s.logits()[i]));
}

}  // namespace
}  // namespace zs::engine
