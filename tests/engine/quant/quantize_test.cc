#include "engine/quant/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/quant/block_types.h"

namespace zs::engine {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(F16Test, ExactValuesAndSpecials) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7C00)));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);
}

TEST(F16Test, OverflowAndRounding) {
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);  // below the halfway point to 65536
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // halfway rounds to even: infinity
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3C00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 and 1 + 2^-9: even is 1 + 2^-9.
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);  // just above half rounds up
  // Rounding carries into the exponent.
  EXPECT_EQ(f32_to_f16(2.0f - 0x1p-12f), 0x4000);
}

TEST(F16Test, Subnormals) {
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x8001), -0x1p-24f);
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);      // tie between 0 and 1 ulp: even is 0
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);  // tie between 1 and 2 ulp: even is 2
  EXPECT_EQ(f32_to_f16(0x1p-26f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0x1p-30f), 0x8000);
  EXPECT_EQ(f32_to_f16(1023.5f * 0x1p-24f), 0x0400);  // rounds up to the smallest normal
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);
}

TEST(F16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Bf16Test, ConversionEdges) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A signalling nan whose payload sits only in the dropped bits must stay a nan.
  float snan;
  uint32_t sbits = 0x7F800001;
  std::memcpy(&snan, &sbits, 4);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(snan))));
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3F80);                     // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3F82);                 // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);          // above half
  EXPECT_EQ(f32_to_bf16(3.3895314e38f), 0x7F7F);                      // the largest bf16
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past it: inf
  EXPECT_EQ(bf16_to_f32(0x0001), 0x1p-133f);                          // subnormal kept
}

struct RoundTripCase {
  GgmlType type;
  double max_rel_rms;  // RMS error / RMS of the data
};

class RoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTripTest, ErrorIsSmall) {
  const auto [type, bound] = GetParam();
  const int64_t n = 4096;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n), y(n);
  for (auto& v : x) v = dist(rng);
  // A few blocks of a different magnitude and one of zeros exercise the scale choices.
  for (int i = 0; i < 256; ++i) x[i] *= 100.0f;
  for (int i = 256; i < 512; ++i) x[i] = 0.0f;
  for (int i = 512; i < 768; ++i) x[i] = 0.01f * std::fabs(x[i]);
  std::vector<uint8_t> q(ggml_row_size(type, n));
  ASSERT_TRUE(quantize_row(type, x.data(), q.data(), n).is_ok());
  ASSERT_TRUE(dequantize_row(type, q.data(), y.data(), n).is_ok());
  // Measured per 256-value chunk so that the large chunk does not hide the small ones.
  for (int64_t c = 0; c < n; c += 256) {
    double err = 0, ref = 0;
    for (int64_t i = c; i < c + 256; ++i) {
      err += (x[i] - y[i]) * double(x[i] - y[i]);
      ref += double(x[i]) * x[i];
    }
    if (ref == 0) {
      EXPECT_EQ(err, 0) << "chunk " << c;
    } else {
      EXPECT_LE(std::sqrt(err / ref), bound) << ggml_type_name(type) << " chunk " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTripTest,
                         ::testing::Values(RoundTripCase{GgmlType::kF32, 0.0}, RoundTripCase{GgmlType::kF16, 5e-4},
                                           RoundTripCase{GgmlType::kBF16, 4e-3}, RoundTripCase{GgmlType::kQ8_0, 0.012},
                                           RoundTripCase{GgmlType::kQ8_1, 0.012}, RoundTripCase{GgmlType::kQ8_K, 0.012},
                                           RoundTripCase{GgmlType::kQ4_0, 0.13}, RoundTripCase{GgmlType::kQ4_1, 0.12},
                                           RoundTripCase{GgmlType::kQ5_0, 0.065}, RoundTripCase{GgmlType::kQ5_1, 0.06},
                                           RoundTripCase{GgmlType::kQ4_K, 0.12}, RoundTripCase{GgmlType::kQ5_K, 0.06},
                                           RoundTripCase{GgmlType::kQ6_K, 0.035}),
                         [](const auto& info) { return std::string(ggml_type_name(info.param.type)); });

TEST(LayoutTest, Q4_0KnownBlock) {
  BlockQ4_0 b;
  b.d = 0x4000;  // 2.0
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  ASSERT_TRUE(dequantize_row(GgmlType::kQ4_0, &b, y, 32).is_ok());
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[15], 14.0f);
  EXPECT_EQ(y[16], 14.0f);
  EXPECT_EQ(y[31], -16.0f);
  EXPECT_EQ(y[20], (15 - 4 - 8) * 2.0f);
}

TEST(LayoutTest, Q5_0AndQ5_1HighBits) {
  BlockQ5_0 b;
  b.d = 0x3C00;  // 1.0
  std::memset(b.qs, 0, 16);
  b.qs[0] = 0x53;   // value 0: 3, value 16: 5
  b.qs[15] = 0xF0;  // value 15: 0, value 31: 15
  const uint32_t qh = (1u << 0) | (1u << 31);
  std::memcpy(b.qh, &qh, 4);
  float y[32];
  ASSERT_TRUE(dequantize_row(GgmlType::kQ5_0, &b, y, 32).is_ok());
  EXPECT_EQ(y[0], 3.0f);           // 3 + 16 - 16
  EXPECT_EQ(y[16], 5.0f - 16.0f);  // no high bit
  EXPECT_EQ(y[15], -16.0f);
  EXPECT_EQ(y[31], 15.0f);  // 15 + 16 - 16
  BlockQ5_1 c;
  c.d = 0x3800;  // 0.5
  c.m = 0xBC00;  // -1.0
  std::memcpy(c.qs, b.qs, 16);
  std::memcpy(c.qh, b.qh, 4);
  ASSERT_TRUE(dequantize_row(GgmlType::kQ5_1, &c, y, 32).is_ok());
  EXPECT_EQ(y[0], 19 * 0.5f - 1.0f);
  EXPECT_EQ(y[31], 31 * 0.5f - 1.0f);
  EXPECT_EQ(y[1], -1.0f);
}

TEST(LayoutTest, Q4_KKnownBlock) {
  // Scales {1,2,3,4,17,18,33,63} and mins {0,1,2,3,16,5,40,63}, encoded by hand: the low 6
  // bits of sub-blocks 0-3 sit in bytes 0-7, the upper two bits of sub-blocks 4-7 in bits 6-7
  // of those bytes, and their low four bits in the nibbles of bytes 8-11.
  BlockQ4K b;
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  const uint8_t scales[12] = {65, 66, 131, 196, 64, 1, 130, 195, 1, 82, 129, 255};
  std::memcpy(b.scales, scales, 12);
  for (int j = 0; j < 4; ++j) {
    for (int l = 0; l < 32; ++l) b.qs[32 * j + l] = static_cast<uint8_t>((l % 16) | ((15 - l % 16) << 4));
  }
  const int sc[8] = {1, 2, 3, 4, 17, 18, 33, 63};
  const int mn[8] = {0, 1, 2, 3, 16, 5, 40, 63};
  float y[256];
  ASSERT_TRUE(dequantize_row(GgmlType::kQ4_K, &b, y, 256).is_ok());
  for (int j = 0; j < 4; ++j) {
    for (int l = 0; l < 32; ++l) {
      ASSERT_EQ(y[64 * j + l], sc[2 * j] * (l % 16) - 0.5f * mn[2 * j]) << j << " " << l;
      ASSERT_EQ(y[64 * j + 32 + l], sc[2 * j + 1] * (15 - l % 16) - 0.5f * mn[2 * j + 1]) << j << " " << l;
    }
  }
  EXPECT_EQ(y[255], 63 * 0 - 31.5f);
  EXPECT_EQ(y[192 + 5], 33 * 5 - 20.0f);
}

TEST(LayoutTest, Q5_KKnownBlock) {
  BlockQ5K b{};
  b.d = 0x3C00;
  b.dmin = 0x0000;
  const uint8_t scales[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};  // all scales 1, mins 0
  std::memcpy(b.scales, scales, 12);
  b.qs[0] = 0x21;   // value 0: 1, value 32: 2
  b.qh[0] = 0x03;   // value 0 and value 32 get +16
  b.qs[96] = 0x0F;  // value 192: 15
  b.qh[0] |= 0x40;  // value 192 (sub-block 6) gets +16
  float y[256];
  ASSERT_TRUE(dequantize_row(GgmlType::kQ5_K, &b, y, 256).is_ok());
  EXPECT_EQ(y[0], 17.0f);
  EXPECT_EQ(y[32], 18.0f);
  EXPECT_EQ(y[192], 31.0f);
  EXPECT_EQ(y[64], 0.0f);
}

TEST(LayoutTest, Q6_KKnownBlock) {
  BlockQ6K b;
  std::memset(b.ql, 0x21, sizeof b.ql);  // low nibble 1, high nibble 2
  std::memset(b.qh, 0xE4, sizeof b.qh);  // 2-bit fields 0, 1, 2, 3
  for (int i = 0; i < 16; ++i) b.scales[i] = static_cast<int8_t>(i - 8);
  b.d = 0x3800;  // 0.5
  float y[256];
  ASSERT_TRUE(dequantize_row(GgmlType::kQ6_K, &b, y, 256).is_ok());
  // Within each 128 half: values 0-31 use ql low | field 0 = 1 - 32; 32-63: 1 | 16 = 17 - 32;
  // 64-95: 2 | 32 = 34 - 32; 96-127: 2 | 48 = 50 - 32.
  const int q[4] = {-31, -15, 2, 18};
  for (int v = 0; v < 256; ++v) {
    ASSERT_EQ(y[v], 0.5f * (v / 16 - 8) * q[(v % 128) / 32]) << v;
  }
}

TEST(LayoutTest, Q8QuantizersKnownValues) {
  float x[256];
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>(i % 32) - 16.0f;
  BlockQ8_0 q8[8];
  ASSERT_TRUE(quantize_row(GgmlType::kQ8_0, x, q8, 256).is_ok());
  EXPECT_EQ(f16_to_f32(q8[0].d), f16_to_f32(f32_to_f16(16.0f / 127)));
  EXPECT_EQ(q8[0].qs[0], -127);
  EXPECT_EQ(q8[0].qs[16], 0);
  EXPECT_EQ(q8[0].qs[24], 64);  // 8 * 127 / 16 = 63.5: ties round to even
  BlockQ8_1 q81[8];
  ASSERT_TRUE(quantize_row(GgmlType::kQ8_1, x, q81, 256).is_ok());
  int sum = 0;
  for (int j = 0; j < 32; ++j) sum += q81[0].qs[j];
  EXPECT_EQ(q81[0].s, f32_to_f16(16.0f / 127 * sum));
  BlockQ8K q8k;
  ASSERT_TRUE(quantize_row(GgmlType::kQ8_K, x, &q8k, 256).is_ok());
  // The signed extreme is -16, so the scale is 16/127 and -16 maps to -127.
  EXPECT_FLOAT_EQ(q8k.d, 16.0f / 127);
  EXPECT_EQ(q8k.qs[0], -127);
  EXPECT_EQ(q8k.qs[31], 119);  // 15 * 127 / 16 = 119.06
  int bs = 0;
  for (int j = 16; j < 32; ++j) bs += q8k.qs[j];
  EXPECT_EQ(q8k.bsums[1], bs);
}

TEST(QuantizeErrors, BadInputs) {
  float x[300] = {};
  uint8_t buf[2048];
  EXPECT_FALSE(quantize_row(GgmlType::kQ4_K, x, buf, 100).is_ok());
  EXPECT_FALSE(quantize_row(GgmlType::kQ4_0, x, buf, 33).is_ok());
  EXPECT_FALSE(dequantize_row(GgmlType::kQ8_0, buf, x, 31).is_ok());
  EXPECT_FALSE(quantize_row(GgmlType::kQ2_K, x, buf, 256).is_ok());
  EXPECT_FALSE(dequantize_row(GgmlType::kIQ2_XXS, buf, x, 256).is_ok());
  EXPECT_FALSE(quantize_row(static_cast<GgmlType>(99), x, buf, 32).is_ok());
  auto st = quantize_row(GgmlType::kQ6_K, x, buf, 255);
  EXPECT_NE(st.message().find("Q6_K"), std::string::npos) << st.message();
  EXPECT_TRUE(quantize_row(GgmlType::kF16, x, buf, 7).is_ok());
}

}  // namespace
}  // namespace zs::engine
