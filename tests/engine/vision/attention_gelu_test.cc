// The backend's vision operations against their plain definitions: attention_full (matrix
// products per head) against the scalar triple loop, gelu (table lookup, SIMD or scalar)
// against the f16-rounded tanh formula.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/quant/quantize.h"
#include "engine/vision/attention_reference.h"

namespace zs::engine {
namespace {

std::vector<float> random_values(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

struct AttnShape {
  int64_t n_tokens;
  int n_head;
  int head_dim;
  int threads;
};

class AttentionFull : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionFull, MatchesNaiveReference) {
  const AttnShape s = GetParam();
  const size_t n = static_cast<size_t>(s.n_tokens) * s.n_head * s.head_dim;
  // Scale 2 gives peaked softmax rows as well as flat ones.
  const auto q = random_values(n, 2.f, 1), k = random_values(n, 2.f, 2), v = random_values(n, 1.f, 3);
  const float scale = 1.f / std::sqrt(static_cast<float>(s.head_dim));
  std::vector<float> want(n), got(n, NAN);
  core::ThreadPool pool(s.threads);
  attention_full_reference(q.data(), k.data(), v.data(), s.n_tokens, s.n_head, s.head_dim, scale, want.data(), pool);
  auto backend = make_cpu_backend(s.threads);
  backend->attention_full(q.data(), k.data(), v.data(), s.n_tokens, s.n_head, s.head_dim, scale, got.data());
  double max_err = 0;
  for (size_t i = 0; i < n; ++i) max_err = std::max(max_err, static_cast<double>(std::abs(got[i] - want[i])));
  EXPECT_LT(max_err, 2e-5) << "tokens " << s.n_tokens << " heads " << s.n_head << " head_dim " << s.head_dim;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionFull,
                         ::testing::Values(AttnShape{1, 1, 8, 1},     // one token attends to itself
                                           AttnShape{17, 4, 8, 2},    // tiny-siglip-like
                                           AttnShape{17, 4, 8, 3},    // more query blocks than heads need
                                           AttnShape{65, 2, 16, 5},   // fewer heads than threads
                                           AttnShape{257, 12, 64, 2},  // SigLIP head size, odd length
                                           AttnShape{100, 3, 24, 1}));  // head_dim not a multiple of 16

TEST(AttentionFull, OutputIsAConvexCombinationOfValues) {
  // Equal keys: every query averages all values exactly.
  const int64_t t = 33;
  const int h = 2, hd = 16;
  std::vector<float> q = random_values(t * h * hd, 1.f, 4), k(t * h * hd, 0.5f), v = random_values(t * h * hd, 1.f, 5);
  std::vector<float> out(t * h * hd);
  auto backend = make_cpu_backend(2);
  backend->attention_full(q.data(), k.data(), v.data(), t, h, hd, 0.25f, out.data());
  for (int c = 0; c < h * hd; ++c) {
    double mean = 0;
    for (int64_t j = 0; j < t; ++j) mean += v[j * h * hd + c];
    mean /= t;
    for (int64_t i = 0; i < t; ++i) EXPECT_NEAR(out[i * h * hd + c], mean, 1e-5);
  }
}

// The definition the reference's f16 table encodes.
float gelu_f16_reference(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  const float v = f16_to_f32(f32_to_f16(x));
  return f16_to_f32(f32_to_f16(0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + 0.044715f * v * v)))));
}

TEST(Gelu, EqualsF16RoundedFormulaBitForBit) {
  // Normal values, tails, tiny (f16 subnormal) values, exact halfway points, odd lengths so
  // the scalar tail runs too.
  std::vector<float> x = random_values(10007, 3.f, 6);
  for (float e : {0.f, -0.f, 1e-7f, -3e-6f, 5.9604645e-8f, 65504.f, -65504.f, 70000.f, 10.f, -10.f, 1.00048828125f})
    x.push_back(e);
  for (int h = 0; h < 65536; h += 7) x.push_back(f16_to_f32(static_cast<uint16_t>(h)));
  std::vector<float> y = x;
  auto backend = make_cpu_backend(3);
  backend->gelu(y.data(), static_cast<int64_t>(y.size()));
  int mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = gelu_f16_reference(x[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(y[i])) << x[i];
    } else if (y[i] != want) {
      ++mismatches;
      ADD_FAILURE() << "gelu(" << x[i] << ") = " << y[i] << ", want " << want;
      if (mismatches > 10) break;
    }
  }
}

TEST(GeluQuick, EqualsF16RoundedFormulaLikeTheReferenceTable) {
  // The reference evaluates quick GELU through an f16 table: f16(x * sigmoid(1.702 x)) at f16(x).
  std::vector<float> x = random_values(4099, 4.f, 9);
  for (float e : {0.f, -0.f, 1e-7f, 10.f, -10.f, 30.f, -30.f}) x.push_back(e);
  std::vector<float> y = x;
  auto backend = make_cpu_backend(2);
  backend->gelu_quick(y.data(), static_cast<int64_t>(y.size()));
  int mismatches = 0;
  for (size_t i = 0; i < x.size() && mismatches <= 10; ++i) {
    const float h = f16_to_f32(f32_to_f16(x[i]));
    const float want = f16_to_f32(f32_to_f16(h * (1.0f / (1.0f + std::exp(-1.702f * h)))));
    if (y[i] != want) {
      ++mismatches;
      ADD_FAILURE() << "gelu_quick(" << x[i] << ") = " << y[i] << ", want " << want;
    }
  }
}

TEST(Gelu, ShortInputs) {
  auto backend = make_cpu_backend(2);
  for (int n = 0; n < 20; ++n) {
    std::vector<float> x = random_values(n, 1.f, 7 + n), y = x;
    backend->gelu(y.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(y[i], gelu_f16_reference(x[i]));
  }
}

}  // namespace
}  // namespace zs::engine
