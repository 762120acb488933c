// Qwen2.5-VL's vision side against values worked out by hand and plain references written
// here: the resize rule (nearest multiple of 28, 8..4096 tokens, a budget shrinks), the
// aspect-fit bilinear resize, the window order of the merged cells and its inverse, window
// attention on a grid of several windows against full attention restricted to each window done
// naively, and the generated Qwen2.5-VL-3B pair run end to end on an image of several windows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/image/test_images.h"
#include "engine/model/llm.h"
#include "engine/model/model_preset.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/multimodal_prompt.h"
#include "engine/vision/qwen25vl.h"
#include "engine/vision/vision_loader.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

int cells(const ImageSize& s) { return (s.width / 28) * (s.height / 28); }

TEST(Qwen25VlImageSize, SidesRoundToTheNearestMultipleOf28) {
  EXPECT_EQ(qwen25vl_image_size(1024, 768, 0), (ImageSize{1036, 756}));  // 36.6 -> 37, 27.4 -> 27 cells
  EXPECT_EQ(qwen25vl_image_size(300, 200, 0), (ImageSize{308, 196}));    // 10.7 -> 11, 7.1 -> 7
  EXPECT_EQ(qwen25vl_image_size(98, 322, 0), (ImageSize{112, 336}));     // 3.5 -> 4 (half away from zero)
}

TEST(Qwen25VlImageSize, SmallImagesAreScaledUpToAtLeastEightTokensRoundingUp) {
  // 64x48 rounds to 56x56 (4 tokens); scaled by sqrt(8 * 784 / 3072) = 1.429: 91.4 x 68.6 -> 112 x 84.
  EXPECT_EQ(qwen25vl_image_size(64, 48, 0), (ImageSize{112, 84}));
  EXPECT_EQ(qwen25vl_image_size(1, 1, 0), (ImageSize{84, 84}));  // scale 79.2: each side 3 cells
  EXPECT_GE(cells(qwen25vl_image_size(30, 30, 0)), 8);
}

TEST(Qwen25VlImageSize, LargeImagesAreScaledDownToAtMost4096TokensRoundingDown) {
  const ImageSize s = qwen25vl_image_size(4000, 3000, 0);
  // sqrt(12e6 / (4096 * 784)) = 1.934: 2068 x 1551 -> 2044 x 1540 (73 x 55 = 4015 tokens).
  EXPECT_EQ(s, (ImageSize{2044, 1540}));
  EXPECT_LE(cells(s), 4096);
}

TEST(Qwen25VlImageSize, ABudgetOnlyShrinksKeepingTheAspectAndAtLeastOneCellPerSide) {
  const ImageSize low = qwen25vl_image_size(1024, 768, 256);
  EXPECT_LE(cells(low), 256);
  EXPECT_GE(cells(low), 200);
  EXPECT_NEAR(static_cast<double>(low.width) / low.height, 1024.0 / 768, 0.15);
  EXPECT_EQ(qwen25vl_image_size(64, 48, 12), (ImageSize{112, 84}));  // already within
  EXPECT_LE(cells(qwen25vl_image_size(64, 48, 8)), 8);                // under the minimum: the budget wins
  EXPECT_EQ(cells(qwen25vl_image_size(5000, 20, 1)), 1);
  for (auto [w, h] : {std::pair{20000, 1000}, std::pair{1000, 20000}}) {
    const ImageSize s = qwen25vl_image_size(w, h, 64);
    EXPECT_LE(cells(s), 64);
    EXPECT_GE(std::min(s.width, s.height), 28);
  }
}

TEST(Qwen25VlResize, SameAspectFillsTheCanvasAndCornersLandOnCorners) {
  Image src;
  src.width = 3;
  src.height = 2;
  src.rgb = {0, 0, 0, 100, 0, 0, 200, 0, 0,  //
             0, 90, 0, 100, 90, 0, 200, 90, 0};
  // scale = min(5/3, 3/2) = 1.5: 4.5 -> 5 wide (ceil), 3 high; align-corners over 5 x 3.
  const Image out = qwen25vl_resize(src, 5, 3);
  ASSERT_EQ(out.width, 5);
  ASSERT_EQ(out.height, 3);
  EXPECT_EQ(out.rgb[out.pixel_index(0, 0)], 0);
  EXPECT_EQ(out.rgb[out.pixel_index(4, 0)], 200);     // the last column samples the last source column
  EXPECT_EQ(out.rgb[out.pixel_index(1, 0)], 50);      // x 0.5: halfway between 0 and 100
  EXPECT_EQ(out.rgb[out.pixel_index(0, 1) + 1], 45);  // y 0.5: halfway between 0 and 90
  EXPECT_EQ(out.rgb[out.pixel_index(3, 2)], 150);
}

TEST(Qwen25VlResize, AnotherAspectIsCentredOnBlackAndValuesTruncate) {
  Image src;
  src.width = 2;
  src.height = 2;
  src.rgb = {10, 10, 10, 13, 13, 13, 10, 10, 10, 13, 13, 13};
  const Image out = qwen25vl_resize(src, 6, 3);  // fits 3 x 3, centred: columns 1..3 of 6
  ASSERT_EQ(out.width, 6);
  EXPECT_EQ(out.rgb[out.pixel_index(0, 1)], 0);
  EXPECT_EQ(out.rgb[out.pixel_index(5, 1)], 0);
  EXPECT_EQ(out.rgb[out.pixel_index(4, 1)], 0);
  EXPECT_EQ(out.rgb[out.pixel_index(1, 1)], 10);
  EXPECT_EQ(out.rgb[out.pixel_index(2, 1)], 11);  // 11.5 truncates to 11
  EXPECT_EQ(out.rgb[out.pixel_index(3, 1)], 13);
}

TEST(Qwen25VlWindows, CellsGoWindowByWindowThenRowMajorInsideEach) {
  // 5 rows x 6 columns of cells, windows of 4: [0..3]x[0..3], [0..3]x[4..5], [4]x[0..3], [4]x[4..5].
  const VisionWindows w = qwen25vl_windows(5, 6);
  const std::vector<int32_t> order = {0,  1,  2,  3,  6,  7,  8,  9,  12, 13, 14, 15, 18, 19, 20, 21,  //
                                      4,  5,  10, 11, 16, 17, 22, 23,                                  //
                                      24, 25, 26, 27,                                                  //
                                      28, 29};
  EXPECT_EQ(w.cell_order, order);
  EXPECT_EQ(w.cell_bounds, (std::vector<int32_t>{0, 16, 24, 28, 30}));
  // A grid inside one window keeps raster order.
  const VisionWindows one = qwen25vl_windows(3, 4);
  EXPECT_EQ(one.cell_order, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(one.cell_bounds, (std::vector<int32_t>{0, 12}));
}

TEST(Qwen25VlWindows, RowsInWindowOrderGoBackToRasterOrder) {
  const VisionWindows w = qwen25vl_windows(2, 6, 4);  // windows [0..1]x[0..3], [0..1]x[4..5]
  EXPECT_EQ(w.cell_order, (std::vector<int32_t>{0, 1, 2, 3, 6, 7, 8, 9, 4, 5, 10, 11}));
  std::vector<float> in;  // row i holds (i, -i) in window order
  for (int i = 0; i < 12; ++i) in.insert(in.end(), {static_cast<float>(i), -static_cast<float>(i)});
  std::vector<float> out(in.size());
  rows_to_raster(in.data(), w.cell_order, 2, out.data());
  // Raster cell c came from window position: 0 1 2 3 8 9 4 5 6 7 10 11.
  const std::vector<float> from = {0, 1, 2, 3, 8, 9, 4, 5, 6, 7, 10, 11};
  for (int c = 0; c < 12; ++c) {
    EXPECT_EQ(out[2 * c], from[c]) << c;
    EXPECT_EQ(out[2 * c + 1], -from[c]) << c;
  }
}

// Full attention restricted to [begin, end), one query and head at a time, in double.
void naive_window(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int begin,
                  int end, int n_head, int hd, float scale, std::vector<float>& out) {
  const int width = n_head * hd;
  for (int t = begin; t < end; ++t)
    for (int h = 0; h < n_head; ++h) {
      std::vector<double> s;
      double mx = -1e300;
      for (int u = begin; u < end; ++u) {
        double dot = 0;
        for (int i = 0; i < hd; ++i) dot += double(q[t * width + h * hd + i]) * k[u * width + h * hd + i];
        s.push_back(dot * scale);
        mx = std::max(mx, s.back());
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (int i = 0; i < hd; ++i) {
        double acc = 0;
        for (int u = begin; u < end; ++u) acc += s[u - begin] / z * v[u * width + h * hd + i];
        out[t * width + h * hd + i] = static_cast<float>(acc);
      }
    }
}

TEST(Qwen25VlWindowAttention, EachRowAttendsOnlyInsideItsWindowAsANaiveMaskedAttention) {
  // A 6 x 5 cell grid: 4 windows of 16, 4, 8 and 2 cells; 4 patch rows per cell.
  const VisionWindows w = qwen25vl_windows(6, 5);
  std::vector<int32_t> bounds;
  for (int32_t b : w.cell_bounds) bounds.push_back(4 * b);
  ASSERT_EQ(bounds, (std::vector<int32_t>{0, 64, 80, 112, 120}));
  const int n = 120, n_head = 2, hd = 16, width = n_head * hd;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> q(n * width), k(n * width), v(n * width);
  for (auto* x : {&q, &k, &v})
    for (float& e : *x) e = dist(rng);
  const float scale = 0.25f;
  auto backend = make_cpu_backend(2);
  std::vector<float> got(n * width), want(n * width), full(n * width);
  window_attention(*backend, q.data(), k.data(), v.data(), bounds, n_head, hd, scale, got.data());
  for (size_t i = 0; i + 1 < bounds.size(); ++i) naive_window(q, k, v, bounds[i], bounds[i + 1], n_head, hd, scale, want);
  for (int i = 0; i < n * width; ++i) ASSERT_NEAR(got[i], want[i], 2e-3f) << i;
  // And it is not full attention: rows of the first window differ once the others are visible.
  naive_window(q, k, v, 0, n, n_head, hd, scale, full);
  double diff = 0;
  for (int i = 0; i < 64 * width; ++i) diff = std::max(diff, double(std::abs(full[i] - got[i])));
  EXPECT_GT(diff, 1e-2);
}

TEST(Qwen25VlPresets, TheGeneratedPairHasTheRealShapesAndRunsAnImageOfSeveralWindows) {
  auto vision = find_mmproj_preset("qwen2.5-vl-3b");
  ASSERT_TRUE(vision.is_ok());
  EXPECT_EQ(vision->projector_type, "qwen2.5vl_merger");
  EXPECT_EQ(vision->n_embd, 1280);
  EXPECT_EQ(vision->n_layer, 32);
  EXPECT_EQ(vision->n_head, 16);
  EXPECT_EQ(vision->n_ff, 3420);
  EXPECT_EQ(vision->n_wa_pattern, 8);
  EXPECT_EQ(vision->mlp_hidden, 4 * 1280);
  auto text = find_model_preset("qwen2.5-vl-3b");
  ASSERT_TRUE(text.is_ok());
  EXPECT_EQ(vision->projection_dim, text->n_embd);
  EXPECT_EQ(text->rope_sections, (std::vector<int>{16, 24, 24, 0}));

  // A narrow copy of both (same keys, tensor names and layout) through the whole path.
  MmprojPreset v = vision.value();
  v.n_embd = 64;
  v.n_layer = 2;
  v.n_wa_pattern = 2;
  v.n_head = 4;
  v.n_ff = 96;
  v.mlp_hidden = 256;
  ModelPreset t = with_layers(text.value(), 1).value();
  t.n_ff = 256;
  t.n_vocab = 1024;
  zs::testing::TempDir dir;
  ASSERT_TRUE(write_random_model(t, FileType::kF16, dir.file("text.gguf")).is_ok());
  ASSERT_TRUE(write_random_mmproj(v, GgmlType::kF16, dir.file("mmproj.gguf")).is_ok());
  auto llm = Llm::load(dir.file("text.gguf"));
  ASSERT_TRUE(llm.is_ok()) << llm.status().message();
  auto clip = load_vision_for(*llm->model, dir.file("mmproj.gguf"));
  ASSERT_TRUE(clip.is_ok()) << clip.status().message();
  const ClipConfig& c = clip.value()->config();
  EXPECT_EQ(c.projector, ProjectorType::kQwen25VlMerger);
  EXPECT_FALSE(c.full_attention_block(0));
  EXPECT_TRUE(c.full_attention_block(1));
  EXPECT_EQ(clip.value()->layers[0].ln1_b, nullptr);  // RMSNorm
  EXPECT_NE(clip.value()->layers[0].ffn_gate.data, nullptr);
  auto backend = make_cpu_backend(1);
  ImageEmbedder embedder(**clip, *backend);
  // 170 x 140 -> 168 x 140 = 6 x 5 cells: two windows across.
  test::Bytes pixels(170 * 140 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  const test::Bytes png = test::png_stb(170, 140, 3, pixels);
  EXPECT_EQ(embedder.image_tokens(170, 140), 30);
  EXPECT_EQ(embedder.image_tokens(170, 140, {12}), cells(qwen25vl_image_size(170, 140, 12)));
  auto img = embedder.embed(png.data(), png.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  EXPECT_EQ(img->pos_rows, 5);
  EXPECT_EQ(img->pos_cols, 6);
  EXPECT_EQ(img->n_tokens(), 30);
  for (float e : *img->data) ASSERT_TRUE(std::isfinite(e));
  auto prompt = build_multimodal_prompt(*llm->tokenizer, "look: now", {6}, {img.value()},
                                        ProjectorType::kQwen25VlMerger, false);
  ASSERT_TRUE(prompt.is_ok());
  Session s(*llm->model, *backend, prompt->n_positions() + 1);
  ASSERT_TRUE(eval_prompt(s, prompt.value()).is_ok());
  for (int i = 0; i < s.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(s.logits()[i]));
}

}  // namespace
}  // namespace zs::engine
