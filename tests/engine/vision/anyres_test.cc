// LLaVA-1.6 anyres: the best-resolution rule of the families README on hand-computed cases
// (ties, extreme aspect ratios, a 1x1 image, the real model's pinpoints), the aspect-kept fit
// inside the chosen grid, where the resized image lands on the black canvas, the row-major
// tile order, and the order in which the rows are fed to the text model.
#include <gtest/gtest.h>

#include <vector>

#include "engine/vision/anyres.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

// The tiny golden file's pinpoints, and LLaVA-1.6's (336-pixel tiles).
const std::vector<ImageSize> kTiny = {{112, 56}, {56, 112}, {112, 112}, {168, 56}, {56, 168}};
const std::vector<ImageSize> kLlava16 = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = r;
    img.rgb[i + 1] = g;
    img.rgb[i + 2] = b;
  }
  return img;
}

TEST(AnyresBestResolution, GradientTiesOnEffectiveResolutionAndTheLeastWastedWins) {
  // 64x48: 112x56, 112x112 and 168x56 all reach the whole 3072 pixels; 112x56 wastes 3200.
  EXPECT_EQ(anyres_best_resolution(64, 48, kTiny), (ImageSize{112, 56}));
}

TEST(AnyresBestResolution, OnePixelImageTakesTheFirstOfTheEquallyWastefulGrids) {
  // Every grid keeps the 1 pixel; 112x56 and 56x112 both waste 6271: the first wins.
  EXPECT_EQ(anyres_best_resolution(1, 1, kTiny), (ImageSize{112, 56}));
}

TEST(AnyresBestResolution, OneToTwentyPicksTheTallestGrid) {
  // 14x280: 56x168 scales by 0.6 to 8x168 = 1344 pixels; 56x112 and 112x112 only 5x112.
  EXPECT_EQ(anyres_best_resolution(14, 280, kTiny), (ImageSize{56, 168}));
}

TEST(AnyresBestResolution, TwentyToOnePicksTheWidestGrid) {
  EXPECT_EQ(anyres_best_resolution(280, 14, kTiny), (ImageSize{168, 56}));
}

TEST(AnyresBestResolution, SquareImageLargerThanEveryGridTakesTheSquareGrid) {
  // 100x100: 112x112 keeps all 10000 pixels; the others at most 56x56.
  EXPECT_EQ(anyres_best_resolution(100, 100, kTiny), (ImageSize{112, 112}));
}

TEST(AnyresBestResolution, FourByThreePhotoTakesTwoByTwoTilesOfLlava16) {
  // 1024x768: 672x672 scales by 0.65625 to 672x504; the wide grids only by 0.4375.
  EXPECT_EQ(anyres_best_resolution(1024, 768, kLlava16), (ImageSize{672, 672}));
  EXPECT_EQ(anyres_image_tokens(1024, 768, kLlava16, 336, 576), 5 * 576);
}

TEST(AnyresBestResolution, NoPinpointsOrNoPixelsGiveNoResolution) {
  EXPECT_EQ(anyres_best_resolution(64, 48, {}), (ImageSize{0, 0}));
  EXPECT_EQ(anyres_best_resolution(0, 48, kTiny), (ImageSize{0, 0}));
}

TEST(AnyresFitSize, KeepsTheAspectRatioWithTheScaledSideRoundedUp) {
  EXPECT_EQ(anyres_fit_size(64, 48, {112, 56}), (ImageSize{75, 56}));  // ceil(64 * 56/48 = 74.67)
  EXPECT_EQ(anyres_fit_size(14, 280, {56, 168}), (ImageSize{9, 168}));   // ceil(8.4)
  EXPECT_EQ(anyres_fit_size(280, 14, {168, 56}), (ImageSize{168, 9}));
  EXPECT_EQ(anyres_fit_size(112, 56, {112, 56}), (ImageSize{112, 56}));
}

TEST(AnyresSplit, TallImageIsCentredOnBlackInAColumnOfThreeTiles) {
  const AnyresTiles t = anyres_split(solid(14, 280, 255, 255, 255), kTiny, 56);
  ASSERT_EQ(t.rows, 3);
  ASSERT_EQ(t.cols, 1);
  ASSERT_EQ(t.grid.size(), 3u);
  // 9 columns wide at x = (56 - 9) / 2 = 23 .. 31, every row of every tile.
  for (const Image& tile : t.grid) {
    ASSERT_EQ(tile.width, 56);
    for (int y : {0, 27, 55}) {
      EXPECT_EQ(tile.rgb[tile.pixel_index(22, y)], 0);
      EXPECT_EQ(tile.rgb[tile.pixel_index(23, y)], 255);
      EXPECT_EQ(tile.rgb[tile.pixel_index(31, y)], 255);
      EXPECT_EQ(tile.rgb[tile.pixel_index(32, y)], 0);
    }
  }
  EXPECT_EQ(t.base.width, 56);
  EXPECT_EQ(t.base.height, 56);
  EXPECT_EQ(t.base.rgb[t.base.pixel_index(0, 0)], 255);  // the base tile is not padded
}

TEST(AnyresSplit, WideImageIsCentredVerticallyInARowOfThreeTiles) {
  const AnyresTiles t = anyres_split(solid(280, 14, 255, 255, 255), kTiny, 56);
  ASSERT_EQ(t.rows, 1);
  ASSERT_EQ(t.cols, 3);
  for (const Image& tile : t.grid) {
    for (int x : {0, 55}) {
      EXPECT_EQ(tile.rgb[tile.pixel_index(x, 22)], 0);
      EXPECT_EQ(tile.rgb[tile.pixel_index(x, 23)], 255);
      EXPECT_EQ(tile.rgb[tile.pixel_index(x, 31)], 255);
      EXPECT_EQ(tile.rgb[tile.pixel_index(x, 32)], 0);
    }
  }
}

TEST(AnyresSplit, TilesAreCutRowMajor) {
  // 112x112 exactly fits its grid (scale 1: the resize is the identity): quadrants coloured
  // red, green / blue, white come out as tiles 0, 1 / 2, 3.
  Image img = solid(112, 112, 0, 0, 0);
  const uint8_t colours[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
  for (int y = 0; y < 112; ++y)
    for (int x = 0; x < 112; ++x) {
      const int q = (y / 56) * 2 + x / 56;
      for (int c = 0; c < 3; ++c) img.rgb[img.pixel_index(x, y) + c] = colours[q][c];
    }
  const AnyresTiles t = anyres_split(img, {{112, 112}}, 56);
  ASSERT_EQ(t.grid.size(), 4u);
  for (int q = 0; q < 4; ++q)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(t.grid[q].rgb[t.grid[q].pixel_index(28, 28) + c], colours[q][c]) << q;
}

TEST(AnyresFeedOrder, BaseRowsThenGridRowsInterleavedByPatchRow) {
  // 2 x 2 tiles of 2 x 2 patches, one value per row: value = 10 * view + patch.
  std::vector<float> tiles;
  for (int view = 0; view < 5; ++view)
    for (int p = 0; p < 4; ++p) tiles.push_back(static_cast<float>(10 * view + p));
  std::vector<float> out(tiles.size());
  anyres_feed_order(tiles.data(), 2, 2, 2, 1, out.data());
  const std::vector<float> want = {0,  1,  2,  3,                    // base
                                   10, 11, 20, 21, 12, 13, 22, 23,   // tile-row 0: patch-row 0, then 1
                                   30, 31, 40, 41, 32, 33, 42, 43};  // tile-row 1
  EXPECT_EQ(out, want);
}

TEST(AnyresFeedOrder, WidePatchRowsMoveWhole) {
  // 1 x 2 tiles (the golden gradient's grid), 2 x 2 patches of 2 values.
  std::vector<float> tiles;
  for (int view = 0; view < 3; ++view)
    for (int p = 0; p < 4; ++p)
      for (int e = 0; e < 2; ++e) tiles.push_back(static_cast<float>(100 * view + 10 * p + e));
  std::vector<float> out(tiles.size());
  anyres_feed_order(tiles.data(), 1, 2, 2, 2, out.data());
  const std::vector<float> want = {0,   1,   10,  11,  20,  21,  30,  31,    // base
                                   100, 101, 110, 111, 200, 201, 210, 211,   // patch-row 0 of tiles 1, 2
                                   120, 121, 130, 131, 220, 221, 230, 231};  // patch-row 1
  EXPECT_EQ(out, want);
}

TEST(Llava16File, LoadsPinpointsAndRunsAllBlocksButTheLast) {
  auto m = ClipModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-llava16-mmproj-f32.gguf");
  ASSERT_TRUE(m) << m.status().message();
  const ClipConfig& c = m.value()->config();
  EXPECT_TRUE(c.is_anyres());
  EXPECT_EQ(c.grid_pinpoints, kTiny);
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.n_layer_run, 2);
  EXPECT_FALSE(c.use_gelu);
  EXPECT_NE(m.value()->image_newline, nullptr);
  const ImageTokenCount n = image_token_count(c, 64, 48);
  EXPECT_EQ(n.views, 3);
  EXPECT_EQ(n.tokens, 48);
}

}  // namespace
}  // namespace zs::engine
