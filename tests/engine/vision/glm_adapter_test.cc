// GLM-Edge-V's adapter: the im2col of its 2x2 stride-2 convolution against the convolution
// written out directly, the shapes the tiny golden file binds to, and a generated file whose
// encoder output is boi, (g/2)^2 adapter rows, eoi.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/random_mmproj.h"
#include "engine/vision/clip_encoder.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/glm_adapter.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

TEST(GlmAdapterIm2col, MatchesTheTwoByTwoStrideTwoConvolutionWrittenOut) {
  const int side = 4, d = 3, oc = 5;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> in(side * side * d), kernel(oc * d * 2 * 2);  // kernel[o][c][ky][kx]
  for (auto& v : in) v = u(rng);
  for (auto& v : kernel) v = u(rng);
  std::vector<float> cols((side / 2) * (side / 2) * 4 * d);
  glm_adapter_im2col(in.data(), side, d, cols.data());
  for (int oy = 0; oy < side / 2; ++oy)
    for (int ox = 0; ox < side / 2; ++ox)
      for (int o = 0; o < oc; ++o) {
        double direct = 0, via_cols = 0;
        for (int c = 0; c < d; ++c)
          for (int ky = 0; ky < 2; ++ky)
            for (int kx = 0; kx < 2; ++kx)
              direct += kernel[((o * d + c) * 2 + ky) * 2 + kx] * in[((2 * oy + ky) * side + 2 * ox + kx) * d + c];
        const float* row = cols.data() + (oy * (side / 2) + ox) * 4 * d;
        for (int i = 0; i < 4 * d; ++i) via_cols += kernel[o * 4 * d + i] * row[i];
        EXPECT_NEAR(via_cols, direct, 1e-5) << oy << "," << ox << " out " << o;
      }
}

TEST(GlmAdapterIm2col, PlacesChannelsOutermostAndKernelColumnsInnermost) {
  // side 2, d 2: patch (y, x) channel c = 10 * (2y + x) + c.
  const std::vector<float> in = {0, 1, 10, 11, 20, 21, 30, 31};
  std::vector<float> cols(8);
  glm_adapter_im2col(in.data(), 2, 2, cols.data());
  const std::vector<float> want = {0, 10, 20, 30, 1, 11, 21, 31};  // [c][ky][kx]
  EXPECT_EQ(cols, want);
}

TEST(GlmAdapterFile, TinyGoldenFileBindsTheAdapterShapes) {
  auto m = ClipModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-glmedge-mmproj-f16.gguf");
  ASSERT_TRUE(m) << m.status().message();
  const ClipModel& model = *m.value();
  const ClipConfig& c = model.config();
  EXPECT_EQ(c.projector, ProjectorType::kAdapter);
  EXPECT_FALSE(c.has_class_token);
  EXPECT_EQ(c.n_layer_run, 2);  // all blocks
  EXPECT_EQ(c.patches_per_side(), 4);
  EXPECT_EQ(c.tokens_per_image(), 4 + 2);  // 2x2 adapter rows, boi, eoi
  EXPECT_EQ(c.projection_dim, 32);
  EXPECT_EQ(model.glm.conv.n_in, 2 * 2 * 32);
  EXPECT_EQ(model.glm.conv.n_out, 32);
  EXPECT_EQ(model.glm.conv.type, GgmlType::kF16);
  EXPECT_EQ(model.glm.n_ff, 64);
  EXPECT_EQ(model.glm.gate.n_out, 64);
  EXPECT_EQ(model.glm.four_h_to_h.n_in, 64);
  EXPECT_NE(model.glm.boi, nullptr);
  EXPECT_NE(model.glm.eoi, nullptr);
}

TEST(GlmAdapterFile, GeneratedFileEncodesToBoiAdapterRowsEoi) {
  zs::testing::TempDir dir;
  auto preset = find_mmproj_preset("tiny-glmedge");
  ASSERT_TRUE(preset);
  ASSERT_TRUE(write_random_mmproj(preset.value(), GgmlType::kF32, dir.file("glm.gguf")));
  auto m = ClipModel::load(dir.file("glm.gguf"));
  ASSERT_TRUE(m) << m.status().message();
  const ClipConfig& c = m.value()->config();
  auto backend = make_cpu_backend(1);
  ClipEncoder encoder(*m.value(), *backend);
  std::vector<float> pixels(3 * c.image_size * c.image_size, 0.25f);
  auto out = encoder.encode(pixels.data());
  ASSERT_TRUE(out) << out.status().message();
  const int e = c.projection_dim, rows = c.tokens_per_image();
  ASSERT_EQ(rows, 4 * 4 / 4 + 2);
  ASSERT_EQ(out->size(), static_cast<size_t>(rows) * e);
  for (int i = 0; i < e; ++i) {
    EXPECT_EQ((*out)[i], m.value()->glm.boi[i]);
    EXPECT_EQ((*out)[(rows - 1) * e + i], m.value()->glm.eoi[i]);
  }
  EXPECT_GT(encoder.flops_per_image(), glm_adapter_flops(m.value()->glm, c.patches_per_side()));
}

TEST(GlmAdapterFile, OddPatchGridIsRefused) {
  auto preset = find_mmproj_preset("tiny-glmedge");
  ASSERT_TRUE(preset);
  MmprojPreset p = preset.value();
  p.image_size = 42;  // 3 patches per side
  zs::testing::TempDir dir;
  auto st = write_random_mmproj(p, GgmlType::kF32, dir.file("odd.gguf"));
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("even number of patches"), std::string::npos) << st.message();
}

TEST(MmprojPresets, LlavaNextAndGlmEdgeHaveTheirRealShapes) {
  auto llava = find_mmproj_preset("llava-1.6-mistral-7b");
  ASSERT_TRUE(llava);
  EXPECT_EQ(llava->image_size, 336);
  EXPECT_EQ(llava->grid_pinpoints.size(), 5u);
  EXPECT_EQ(llava->projection_dim, 4096);
  auto glm = find_mmproj_preset("glm-edge-v-2b");
  ASSERT_TRUE(glm);
  EXPECT_EQ(glm->projector_type, "adapter");
  EXPECT_EQ(glm->image_size / glm->patch_size % 2, 0);
}

}  // namespace
}  // namespace zs::engine
