// Gemma 3's vision projector and SmolVLM's reference tiling (../shared/golden/2026): the
// align-corners bilinear resize and the aspect-fit on black against hand-computed pixels, the
// refined-size rule, 4x4 average pooling, the image embeddings of both tiny projectors against
// the reference's sums, the token layouts, and bidirectional image pieces: an image is never
// split across BatchEngine steps, batching equals the single run, and a sliding window still
// hides keys earlier than the window.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <future>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/ref2026.h"
#include "engine/batch/batch_engine.h"
#include "engine/image/resize_aligned.h"
#include "engine/model/llm.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/session.h"
#include "engine/quant/quantize.h"
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

// A simpler reference: the refined canvas written straight from ../shared/golden/2026/README.md
// ("SmolVLM", step 2), one scalar loop, no code shared with the production path.
Image readme_refined_canvas(const Image& src, int box_w, int box_h) {
  // Aspect fit: s = min(box_w / W, box_h / H); new side = min(ceil(side * s), box); centred on
  // black at offset (box - new) / 2.
  const float s = std::min(static_cast<float>(box_w) / static_cast<float>(src.width),
                           static_cast<float>(box_h) / static_cast<float>(src.height));
  const int w = std::min(static_cast<int>(std::ceil(static_cast<float>(src.width) * s)), box_w);
  const int h = std::min(static_cast<int>(std::ceil(static_cast<float>(src.height) * s)), box_h);
  const int ox = (box_w - w) / 2, oy = (box_h - h) / 2;
  Image out;
  out.width = box_w;
  out.height = box_h;
  out.rgb.assign(static_cast<size_t>(box_w) * box_h * 3, 0);
  // The reference's cubic: its scale factors, fractions and row values are f32; the
  // coefficients are evaluated in double (double constants) and stored to f32.
  const float tx = static_cast<float>(src.width) / static_cast<float>(w);
  const float ty = static_cast<float>(src.height) / static_cast<float>(h);
  auto pixel = [&](int x, int y, int c) {
    x = std::max(0, std::min(x, src.width - 1));
    y = std::max(0, std::min(y, src.height - 1));
    return src.rgb[(static_cast<size_t>(y) * src.width + x) * 3 + c];
  };
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      const int x = static_cast<int>(tx * j), y = static_cast<int>(ty * i);
      const float dx = tx * j - x, dy = ty * i - y;
      for (int c = 0; c < 3; ++c) {
        float C[4];
        for (int r = 0; r < 4; ++r) {  // rows y-1 .. y+2, each along x
          const float p0 = pixel(x, y - 1 + r, c);
          const float d0 = static_cast<float>(pixel(x - 1, y - 1 + r, c) - pixel(x, y - 1 + r, c));
          const float d2 = static_cast<float>(pixel(x + 1, y - 1 + r, c) - pixel(x, y - 1 + r, c));
          const float d3 = static_cast<float>(pixel(x + 2, y - 1 + r, c) - pixel(x, y - 1 + r, c));
          const float a1 = -1.0 / 3 * d0 + d2 - 1.0 / 6 * d3;
          const float a2 = 1.0 / 2 * d0 + 1.0 / 2 * d2;
          const float a3 = -1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3;
          C[r] = p0 + a1 * dx + a2 * dx * dx + a3 * dx * dx * dx;
        }
        const float d0 = C[0] - C[1], d2 = C[2] - C[1], d3 = C[3] - C[1];  // then along y
        const float a1 = -1.0 / 3 * d0 + d2 - 1.0 / 6 * d3;
        const float a2 = 1.0 / 2 * d0 + 1.0 / 2 * d2;
        const float a3 = -1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3;
        const float v = C[1] + a1 * dy + a2 * dy * dy + a3 * dy * dy * dy;
        const float rounded = std::min(std::max(std::round(v), 0.0f), 255.0f);
        out.rgb[(static_cast<size_t>(oy + i) * box_w + ox + j) * 3 + c] = static_cast<uint8_t>(rounded);
      }
    }
  return out;
}

Image load_gradient() {
  std::ifstream in(dir_2026() + "/images/gradient-64x48.png", std::ios::binary);
  std::vector<uint8_t> png((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto img = decode_image(png.data(), png.size());
  return img.is_ok() ? img.value() : Image{};
}

void expect_tiles_equal_canvas(const SplitImage& split, const Image& canvas, int tile) {
  ASSERT_EQ(split.tiles.size(), static_cast<size_t>(split.rows) * split.cols);
  int differing = 0;
  for (int r = 0; r < split.rows; ++r)
    for (int c = 0; c < split.cols; ++c) {
      const Image& t = split.tiles[static_cast<size_t>(r) * split.cols + c];  // row-major
      for (int y = 0; y < tile; ++y)
        for (int x = 0; x < tile * 3; ++x)
          differing += t.rgb[t.pixel_index(0, y) + x] != canvas.rgb[canvas.pixel_index(c * tile, r * tile + y) + x];
    }
  EXPECT_EQ(differing, 0) << "bytes of the tiles that differ from the README's canvas";
}

TEST(SmolVlmReference, TheTilesArePixelForPixelTheCanvasOfAScalarBicubicWrittenFromTheReadme) {
  const Image gradient = load_gradient();
  ASSERT_EQ(gradient.width, 64);
  const SplitImage split = split_image_reference(gradient, 128, 64);
  ASSERT_EQ(split.rows, 2);
  ASSERT_EQ(split.cols, 2);
  expect_tiles_equal_canvas(split, readme_refined_canvas(gradient, 128, 128), 64);
}

TEST(SmolVlmReference, ANoisyImageWithOvershootAndTiesAlsoMatchesTheScalarBicubicPixelForPixel) {
  // Random bytes: overshoot past 0 and 255, clamped borders, and exact .5 ties in every row.
  std::mt19937 rng(7);
  Image img;
  img.width = 45;
  img.height = 31;
  for (int i = 0; i < 45 * 31 * 3; ++i) img.rgb.push_back(static_cast<uint8_t>(rng() & 0xFF));
  const SplitImage split = split_image_reference(img, 256, 64);  // s = 256/45: 256 x 177 -> 4 x 3 tiles
  const ImageSize refined = idefics3_refined_size(45, 31, 256, 64);
  ASSERT_EQ(split.cols, refined.width / 64);
  ASSERT_EQ(split.rows, refined.height / 64);
  expect_tiles_equal_canvas(split, readme_refined_canvas(img, refined.width, refined.height), 64);
}

// ---- the 2026 reference's arithmetic (engine/backend/ref2026.h) -------------------------------

TEST(Ref2026Arithmetic, TheGeluTableDiffersFromTheUnfusedOneOnlyAtMinusOnePointNineNineNine) {
  const float* fused = ref2026::gelu_f16_table();
  std::vector<int> differing;
  for (uint32_t h = 0; h < (1u << 16); ++h) {
    const float v = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(v)) continue;
    const float g = 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * v * (1.0f + 0.044715f * v * v)));
    const float unfused = f16_to_f32(f32_to_f16(g));
    if (std::isnan(unfused) && std::isnan(fused[h])) continue;  // -inf: inf * 0 in both
    if (unfused != fused[h]) differing.push_back(static_cast<int>(h));
  }
  ASSERT_EQ(differing.size(), 1u);
  EXPECT_FLOAT_EQ(f16_to_f32(static_cast<uint16_t>(differing[0])), -1.9990234f);
}

TEST(Ref2026Arithmetic, GeluPassesLargeInputsThroughAndZeroesVeryNegativeOnes) {
  std::vector<float> x = {-12.f, -10.f, 0.f, 1.f, 10.f, 12.345678f};
  ref2026::gelu(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(x[0], 0.f);
  EXPECT_EQ(x[1], 0.f);
  EXPECT_EQ(x[2], 0.f);
  EXPECT_NEAR(x[3], 0.8412, 1e-3);
  EXPECT_EQ(x[4], 10.f);
  EXPECT_EQ(x[5], 12.345678f);
}

// The vector path (8 at a time) against the scalar rule, over every f16 value, the edges at
// -10 and 10, and values between f16 steps.
TEST(Ref2026Arithmetic, VectorGeluEqualsTheScalarRuleForEveryInput) {
  std::vector<float> x;
  for (uint32_t h = 0; h < (1u << 16); ++h) {
    const float v = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isfinite(v)) x.push_back(v);
  }
  for (float v : {-10.f, 10.f, std::nextafter(-10.f, 0.f), std::nextafter(10.f, 0.f), -10.001f, 9.999f})
    x.push_back(v);
  for (int i = 0; i < 10000; ++i) x.push_back(std::sin(0.37f * static_cast<float>(i)) * 13.f);
  std::vector<float> got = x;
  ref2026::gelu(got.data(), static_cast<int64_t>(got.size()));
  const float* table = ref2026::gelu_f16_table();
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = x[i] <= -10.f ? 0.f : x[i] < 10.f ? table[f32_to_f16(x[i])] : x[i];
    ASSERT_EQ(got[i], want) << "x = " << x[i];
  }
}

TEST(Ref2026Arithmetic, TheVectorExpStaysWithinTwoUlpsOfTheLibraryExp) {
  for (float x = -87.f; x <= 0.f; x += 0.0137f) {
    const float want = std::exp(x), got = ref2026::expf(x);
    EXPECT_LE(std::abs(got - want), 2 * (std::nextafter(want, INFINITY) - want)) << x;
  }
  EXPECT_EQ(ref2026::expf(-200.f), 0.f);
}

TEST(Ref2026Arithmetic, SoftmaxRowsOfAnyLengthSumToOneAndKeepTheirOrder) {
  for (int n : {5, 16, 37, 64}) {
    std::vector<float> row(n);
    for (int i = 0; i < n; ++i) row[i] = std::sin(0.7f * i) * 3;
    std::vector<float> p = row;
    ref2026::softmax_row(p.data(), n, 0.5f);
    double sum = 0;
    for (float v : p) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-6) << n;
    for (int i = 1; i < n; ++i) EXPECT_EQ(row[i] > row[0], p[i] > p[0]) << n << " " << i;
  }
}

TEST(Ref2026Arithmetic, ShortDotProductsAddRoundedProductsInOrder) {
  // 1e8 + 1 + ... : the order decides what survives rounding.
  const float a[8] = {1e8f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, -1e8f};
  const float b[8] = {1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f, 1.f};
  EXPECT_EQ(ref2026::dot_short(a, b, 8), 0.f);  // each +1 is lost against 1e8, then 1e8 - 1e8
  const float c[3] = {2.f, 3.f, 4.f};
  EXPECT_EQ(ref2026::dot_short(c, c, 3), 29.f);
}

TEST(Ref2026Arithmetic, LayerNormAgreesWithItsDefinitionToRounding) {
  std::vector<float> x(40), w(40), b(40), out(40);
  for (int i = 0; i < 40; ++i) {
    x[i] = std::cos(0.3f * i) * 5 + 1;
    w[i] = 1 + 0.01f * i;
    b[i] = -0.02f * i;
  }
  ref2026::layer_norm_row(x.data(), w.data(), b.data(), 40, 1e-6f, out.data());
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= 40;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= 40;
  for (int i = 0; i < 40; ++i) EXPECT_NEAR(out[i], (x[i] - mean) / std::sqrt(var + 1e-6) * w[i] + b[i], 1e-5) << i;
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
  // Both projectors reproduce the reference bit for bit (f16 patch convolution and the 2026
  // arithmetic of engine/backend/ref2026.h): the first values agree to the 6 printed decimals.
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(e[i], ref["image_embed_first8"][i].get<double>(), 2e-6) << i;
  EXPECT_NEAR(sum, want_sum, 1e-5 * std::sqrt(want_sumsq));
}

TEST(Gemma3Vision, TinyProjectorMatchesTheReferenceEmbeddings) {
  expect_embeddings_match("tiny-gemma3-mmproj-f16.gguf");
}

TEST(SmolVlmReference, TinyProjectorMatchesTheReferenceEmbeddings) {
  expect_embeddings_match("tiny-smolvlm-mmproj-f16.gguf");
}

TEST(SmolVlmReference, The2026ProjectorsRunTheirPatchKernelInF16AndTheOthersKeepF32) {
  for (const char* name : {"tiny-smolvlm-mmproj-f16.gguf", "tiny-gemma3-mmproj-f16.gguf"}) {
    auto clip = ClipModel::load(dir_2026() + "/models/" + name);
    ASSERT_TRUE(clip.is_ok()) << clip.status().message();
    EXPECT_EQ((*clip)->config().ref_build, RefBuild::k2026) << name;
    EXPECT_EQ((*clip)->patch_embd.type, GgmlType::kF16) << name << ": stored in f32, used in f16";
  }
  auto llava = ClipModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-llava16-mmproj-f32.gguf");
  ASSERT_TRUE(llava.is_ok()) << llava.status().message();
  EXPECT_EQ((*llava)->config().ref_build, RefBuild::k2025);
  EXPECT_EQ((*llava)->patch_embd.type, GgmlType::kF32);
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
