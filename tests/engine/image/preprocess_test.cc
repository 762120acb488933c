// Preprocessing against pixels computed by hand, and SmolVLM/Idefics3 splitting geometry against
// sizes worked out from Hugging Face's SmolVLMImageProcessor formulas.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/image/preprocess.h"
#include "test_images.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

Image gray_image(int w, int h, std::vector<uint8_t> values) {
  Image img;
  img.width = w;
  img.height = h;
  for (uint8_t v : values) img.rgb.insert(img.rgb.end(), {v, v, v});
  return img;
}

std::vector<uint8_t> red_channel(const Image& img) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < img.rgb.size(); i += 3) out.push_back(img.rgb[i]);
  return out;
}

TEST(ResizeBilinear, UpscaleTwoByTwoToFourByFour) {
  // Source   0  64      half-pixel centres: output x samples (x + 0.5) / 2 - 0.5
  //        128 255      = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to pixel 1).
  Image out = resize_bilinear(gray_image(2, 2, {0, 64, 128, 255}), 4, 4);
  ASSERT_EQ(out.width, 4);
  ASSERT_EQ(out.height, 4);
  // Row 0 (sy clamped to 0): 0, 16, 48, 64.
  // Row 1 (sy = 0.25): top row values blended 3:1 with bottom row (128, 159.75, 223.25, 255):
  //   0.75*0 + 0.25*128 = 32; 0.75*16 + 0.25*159.75 = 51.94 -> 52;
  //   0.75*48 + 0.25*223.25 = 91.81 -> 92; 0.75*64 + 0.25*255 = 111.75 -> 112.
  // Row 2 (sy = 0.75): 96, 123.8125 -> 124, 179.4375 -> 179, 207.25 -> 207.
  // Row 3: 128, 159.75 -> 160, 223.25 -> 223, 255.
  const std::vector<uint8_t> want = {0,  16,  48,  64,  32,  52,  92,  112,
                                     96, 124, 179, 207, 128, 160, 223, 255};
  EXPECT_EQ(red_channel(out), want);
}

TEST(ResizeBilinear, UpscaleToThreeByThree) {
  // scale 2/3: samples at -1/6 (clamped), 0.5, 7/6 (clamped to pixel 1).
  Image out = resize_bilinear(gray_image(2, 2, {0, 200, 100, 40}), 3, 3);
  // Row 0: 0, 100, 200. Row 2 (bottom): 100, 70, 40. Row 1 (midway): 50, 85, 120.
  const std::vector<uint8_t> want = {0, 100, 200, 50, 85, 120, 100, 70, 40};
  EXPECT_EQ(red_channel(out), want);
}

TEST(ResizeBilinear, DownscaleAveragesPairs) {
  // 4x1 -> 2x1: samples at 0.5 and 2.5, the mean of each pair.
  Image out = resize_bilinear(gray_image(4, 1, {10, 20, 100, 201}), 2, 1);
  EXPECT_EQ(red_channel(out), (std::vector<uint8_t>{15, 151}));  // 150.5 rounds half away from 0
}

TEST(ResizeBilinear, SameSizeIsIdentityAndChannelsStaySeparate) {
  Image img;
  img.width = 3;
  img.height = 2;
  for (int i = 0; i < 18; ++i) img.rgb.push_back(static_cast<uint8_t>(i * 13));
  EXPECT_EQ(resize_bilinear(img, 3, 2).rgb, img.rgb);
  EXPECT_TRUE(resize_bilinear(img, 0, 5).rgb.empty());
}

TEST(ResizeBicubic, SameSizeIsIdentity) {
  Image img = gray_image(3, 2, {0, 50, 100, 150, 200, 250});
  EXPECT_EQ(resize_bicubic(img, 3, 2).rgb, img.rgb);
  EXPECT_TRUE(resize_bicubic(img, 0, 2).rgb.empty());
}

TEST(ResizeBicubic, SamplesAtTheLeftEdgeOfEachSourceStepWithTheCubic) {
  // 4 -> 8 along x: output j samples x = j/2 with dx 0 or 0.5. With d0 = p[-1] - p[0],
  // d2 = p[1] - p[0], d3 = p[2] - p[0]: a1 = -d0/3 + d2 - d3/6, a2 = (d0 + d2)/2,
  // a3 = -d0/6 - d2/2 + d3/6. Inside the ramp 0, 30, 60, 90 the cubic is the line (j = 3: 45);
  // clamped borders bend it: j = 1 gives 0 + 20/2 + 15/4 - 5/8 = 13.1, j = 5 gives
  // 60 + 35/2 - 5/8 = 76.9, j = 7 gives 90 + 10/2 - 15/4 + 5/8 = 91.9.
  Image out = resize_bicubic(gray_image(4, 1, {0, 30, 60, 90}), 8, 1);
  const std::vector<int> want = {0, 13, 30, 45, 60, 77, 90, 92};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(out.rgb[j * 3], want[j]) << j;
}

TEST(PadToSquare, WideImageOriginalAtTopLeft) {
  Image img = test::solid(2, 1, 1, 2, 3);
  img.rgb[3] = 4;  // second pixel (4, 2, 3)
  Image sq = pad_to_square(img, kLlavaPadColour);
  ASSERT_EQ(sq.width, 2);
  ASSERT_EQ(sq.height, 2);
  EXPECT_EQ(sq.rgb, (std::vector<uint8_t>{1, 2, 3, 4, 2, 3, 122, 116, 104, 122, 116, 104}));
}

TEST(PadToSquare, TallImageOriginalAtTopLeft) {
  Image img = gray_image(1, 2, {7, 9});
  Image sq = pad_to_square(img, {0, 0, 255});
  ASSERT_EQ(sq.width, 2);
  EXPECT_EQ(sq.rgb, (std::vector<uint8_t>{7, 7, 7, 0, 0, 255, 9, 9, 9, 0, 0, 255}));
}

TEST(Normalize, ChannelPlanarWithMeanAndStd) {
  Image img;
  img.width = 2;
  img.height = 1;
  img.rgb = {255, 0, 51, 0, 255, 102};
  const ChannelStats mean = {0.5f, 0.25f, 0.0f};
  const ChannelStats std = {0.5f, 0.25f, 2.0f};
  const std::vector<float> out = normalize(img, mean, std);
  ASSERT_EQ(out.size(), 6u);
  // [R of px0, R of px1, G of px0, G of px1, B of px0, B of px1]
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], -1.0f);
  EXPECT_FLOAT_EQ(out[2], -1.0f);
  EXPECT_FLOAT_EQ(out[3], 3.0f);
  EXPECT_FLOAT_EQ(out[4], 0.1f);
  EXPECT_FLOAT_EQ(out[5], 0.2f);
}

TEST(PreprocessLlava, PadsResizesAndNormalizes) {
  // 2x1 white image: the square is white on top, pad colour below; resized to 2x2 it is unchanged.
  const std::vector<float> out =
      preprocess_llava(test::solid(2, 1, 255, 255, 255), 2, {0, 0, 0}, {1, 1, 1});
  ASSERT_EQ(out.size(), 12u);
  EXPECT_FLOAT_EQ(out[0], 1.0f);                 // R, top-left
  EXPECT_FLOAT_EQ(out[2], 122.0f / 255.0f);      // R, bottom-left
  EXPECT_FLOAT_EQ(out[4 + 2], 116.0f / 255.0f);  // G, bottom-left
  EXPECT_FLOAT_EQ(out[8 + 3], 104.0f / 255.0f);  // B, bottom-right
}

TEST(PreprocessLlava, SameAsPadThenResize) {
  Image img;
  img.width = 7;
  img.height = 3;
  for (int i = 0; i < 63; ++i) img.rgb.push_back(static_cast<uint8_t>(i * 37 + 11));
  const ChannelStats mean = {0.48145466f, 0.4578275f, 0.40821073f};
  const ChannelStats std = {0.26862954f, 0.26130258f, 0.27577711f};
  for (int size : {3, 5, 7, 11}) {
    EXPECT_EQ(preprocess_llava(img, size, mean, std),
              normalize(resize_bilinear(pad_to_square(img, kLlavaPadColour), size, size), mean, std))
        << size;
  }
}

TEST(PreprocessLlava, ExtremeAspectRatioNeedsNoSquareBuffer) {
  // 10^7 x 1 would be a 3 * 10^14 byte square if padding were materialized.
  const std::vector<float> out =
      preprocess_llava(test::solid(10'000'000, 1, 255, 0, 0), 4, {0, 0, 0}, {1, 1, 1});
  ASSERT_EQ(out.size(), 48u);
  EXPECT_FLOAT_EQ(out[15], 122.0f / 255.0f);  // R, bottom-right: all padding
}

TEST(PreprocessLlava, GoldenGradientBottomRowsArePadding) {
  // gradient-64x48.png padded to 64x64 and resized to the tiny mmproj's image_size 56: output
  // rows from 43 on sample only source rows >= 48, i.e. pure padding.
  std::ifstream in(testing::shared_dir() + "/golden/images/gradient-64x48.png", std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  auto img = decode_image(bytes.data(), bytes.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  const std::vector<float> out = preprocess_llava(img.value(), 56, {0, 0, 0}, {1, 1, 1});
  ASSERT_EQ(out.size(), 3u * 56 * 56);
  for (int c = 0; c < 3; ++c) {
    for (int y = 43; y < 56; ++y) {
      for (int x = 0; x < 56; ++x) {
        ASSERT_FLOAT_EQ(out[(c * 56 + y) * 56 + x], kLlavaPadColour[c] / 255.0f) << c << "," << x << "," << y;
      }
    }
  }
}

// --- SmolVLM / Idefics3 splitting ---------------------------------------------------------

TEST(Idefics3Geometry, LongestEdgeResize) {
  // Landscape 1000x750 -> width 2048, height int(2048 / 1.333..) = 1536, even.
  EXPECT_EQ(idefics3_resize_size(1000, 750, 2048), (ImageSize{2048, 1536}));
  // 300x200: int(2048 / 1.5) = 1365, odd -> 1366.
  EXPECT_EQ(idefics3_resize_size(300, 200, 2048), (ImageSize{2048, 1366}));
  // Portrait 200x1000: width int(2048 * 0.2) = 409, odd -> 410.
  EXPECT_EQ(idefics3_resize_size(200, 1000, 2048), (ImageSize{410, 2048}));
  // Small images are upscaled too; squares stay square.
  EXPECT_EQ(idefics3_resize_size(64, 64, 1456), (ImageSize{1456, 1456}));
  // Beyond 4096 the upper bound applies.
  EXPECT_EQ(idefics3_resize_size(1000, 500, 5000), (ImageSize{4096, 2048}));
}

TEST(Idefics3Geometry, TileGridRoundsUpToMultiples) {
  EXPECT_EQ(idefics3_tile_grid_size(2048, 1536, 512), (ImageSize{2048, 1536}));
  EXPECT_EQ(idefics3_tile_grid_size(2048, 1366, 512), (ImageSize{2048, 1536}));
  EXPECT_EQ(idefics3_tile_grid_size(410, 2048, 512), (ImageSize{512, 2048}));
  // Idefics3 defaults (tile 364, longest edge 4*364): 640x480 -> 1456x1092 -> 4 cols, 3 rows.
  EXPECT_EQ(idefics3_resize_size(640, 480, 1456), (ImageSize{1456, 1092}));
  EXPECT_EQ(idefics3_tile_grid_size(1456, 1092, 364), (ImageSize{1456, 1092}));
  // Extreme aspect: never a zero-sized side.
  EXPECT_EQ(idefics3_tile_grid_size(2048, 1, 512), (ImageSize{2048, 512}));
}

TEST(SplitImage, LandscapeGridAndTileContents) {
  // 40x20: left half red, right half blue; tile 8, longest edge 16 -> 16x8 -> 2 tiles in a row.
  Image img = test::solid(40, 20, 0, 0, 255);
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 20; ++x) {
      img.rgb[img.pixel_index(x, y)] = 255;
      img.rgb[img.pixel_index(x, y) + 2] = 0;
    }
  }
  SplitImage s = split_image(img, {.tile_size = 8, .longest_edge = 16});
  EXPECT_EQ(s.rows, 1);
  EXPECT_EQ(s.cols, 2);
  ASSERT_EQ(s.tiles.size(), 2u);
  for (const Image& t : s.tiles) {
    EXPECT_EQ(t.width, 8);
    EXPECT_EQ(t.height, 8);
  }
  EXPECT_EQ(s.tiles[0].rgb, test::solid(8, 8, 255, 0, 0).rgb);
  EXPECT_EQ(s.tiles[1].rgb, test::solid(8, 8, 0, 0, 255).rgb);
  EXPECT_EQ(s.global.width, 8);
  EXPECT_EQ(s.global.height, 8);
  EXPECT_EQ(s.global.rgb[s.global.pixel_index(0, 0)], 255);
  EXPECT_EQ(s.global.rgb[s.global.pixel_index(7, 7) + 2], 255);
}

TEST(SplitImage, TilesAreRowMajor) {
  // 4 quadrant colours; tile 4, longest edge 8 -> 2x2 tiles in reading order.
  Image img = test::solid(8, 8, 0, 0, 0);
  const uint8_t colours[4] = {10, 20, 30, 40};
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) img.rgb[img.pixel_index(x, y)] = colours[(y / 4) * 2 + x / 4];
  SplitImage s = split_image(img, {.tile_size = 4, .longest_edge = 8});
  ASSERT_EQ(s.rows, 2);
  ASSERT_EQ(s.cols, 2);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s.tiles[i].rgb[0], colours[i]) << i;
}

TEST(SplitImage, SmolVlmSizes) {
  SplitImage s = split_image(test::solid(1000, 750, 9, 9, 9), {.tile_size = 512, .longest_edge = 2048});
  EXPECT_EQ(s.rows, 3);
  EXPECT_EQ(s.cols, 4);
  EXPECT_EQ(s.tiles.size(), 12u);
  EXPECT_EQ(s.global.width, 512);
  EXPECT_EQ(s.global.height, 512);
  SplitImage tall = split_image(test::solid(200, 1000, 9, 9, 9), {.tile_size = 512, .longest_edge = 2048});
  EXPECT_EQ(tall.rows, 4);
  EXPECT_EQ(tall.cols, 1);
}

TEST(SplitImage, SingleTileHasNoSplits) {
  SplitImage s = split_image(test::solid(300, 200, 1, 2, 3), {.tile_size = 512, .longest_edge = 512});
  EXPECT_EQ(s.rows, 0);
  EXPECT_EQ(s.cols, 0);
  EXPECT_TRUE(s.tiles.empty());
  EXPECT_EQ(s.global.width, 512);
  EXPECT_EQ(s.global.height, 512);
  EXPECT_EQ(s.global.rgb, test::solid(512, 512, 1, 2, 3).rgb);
}

}  // namespace
}  // namespace zs::engine
