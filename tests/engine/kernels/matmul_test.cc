#include "engine/kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/quant/block_types.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

// Restores the machine's best instruction set when a test ends.
class IsaGuard {
 public:
  IsaGuard() : best_(force_best()) {}
  ~IsaGuard() { force_best(); }

 private:
  static std::string force_best() {
    for (const char* isa : {"avx512", "avx2", "scalar"}) {
      if (force_kernel_isa(isa)) return isa;
    }
    return "scalar";
  }
  std::string best_;
};

std::vector<std::string> available_isas() {
  IsaGuard guard;
  std::vector<std::string> out;
  for (const char* isa : {"scalar", "avx2", "avx512"}) {
    if (force_kernel_isa(isa)) out.push_back(isa);
  }
  return out;
}

struct Case {
  GgmlType type;
  int64_t n_in;
  double tol;  // allowed |error| relative to sum |w_i x_i|
};

// The reference: W dequantized to f32, x quantized to the vec-dot type and back, f64 dot.
std::vector<double> reference(GgmlType type, const std::vector<uint8_t>& wq, size_t row_bytes, int64_t n_in,
                              int64_t n_out, const std::vector<float>& x, int64_t n_tokens,
                              std::vector<double>* abs_sum) {
  std::vector<float> wf(static_cast<size_t>(n_in * n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    EXPECT_TRUE(dequantize_row(type, wq.data() + r * row_bytes, wf.data() + r * n_in, n_in).is_ok());
  }
  const GgmlType vt = vec_dot_type(type);
  std::vector<float> xq(x.size());
  std::vector<uint8_t> tmp(ggml_row_size(vt, n_in) + 64);
  for (int64_t t = 0; t < n_tokens; ++t) {
    EXPECT_TRUE(quantize_row(vt, x.data() + t * n_in, tmp.data(), n_in).is_ok());
    EXPECT_TRUE(dequantize_row(vt, tmp.data(), xq.data() + t * n_in, n_in).is_ok());
  }
  std::vector<double> out(static_cast<size_t>(n_out * n_tokens));
  abs_sum->assign(out.size(), 0.0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t r = 0; r < n_out; ++r) {
      double s = 0, a = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        const double p = double(wf[r * n_in + i]) * xq[t * n_in + i];
        s += p;
        a += std::fabs(p);
      }
      out[t * n_out + r] = s;
      (*abs_sum)[t * n_out + r] = a;
    }
  }
  return out;
}

class MatmulTest : public ::testing::TestWithParam<Case> {};

TEST_P(MatmulTest, AgreesWithReferenceOnEveryIsa) {
  const Case c = GetParam();
  const int64_t n_out = 37;
  const int64_t max_tokens = 64;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(c.n_in * n_out));
  for (auto& v : wf) v = dist(rng);
  for (int64_t i = 0; i < c.n_in; ++i) wf[5 * c.n_in + i] = 0.0f;                                  // an all-zero row
  for (int64_t i = 0; i < c.n_in; ++i) wf[6 * c.n_in + i] = std::fabs(wf[6 * c.n_in + i]) + 2.0f;  // offset row
  // Rows get padding past their end to check that row_stride is honoured.
  const size_t row_bytes = ggml_row_size(c.type, c.n_in);
  const size_t stride = row_bytes + 64;
  std::vector<uint8_t> wq(stride * n_out, 0xAB);
  for (int64_t r = 0; r < n_out; ++r) {
    ASSERT_TRUE(quantize_row(c.type, wf.data() + r * c.n_in, wq.data() + r * stride, c.n_in).is_ok());
  }
  std::vector<float> x(static_cast<size_t>(c.n_in * max_tokens));
  for (auto& v : x) v = dist(rng);
  for (int64_t i = 0; i < c.n_in; ++i) x[2 * c.n_in + i] = 0.0f;  // an all-zero token

  std::vector<uint8_t> wq_dense(row_bytes * n_out);
  for (int64_t r = 0; r < n_out; ++r) std::copy_n(wq.data() + r * stride, row_bytes, wq_dense.data() + r * row_bytes);
  std::vector<double> abs_sum;
  const auto ref = reference(c.type, wq_dense, row_bytes, c.n_in, n_out, x, max_tokens, &abs_sum);

  WeightView w{c.type, wq.data(), c.n_in, n_out, stride};
  ASSERT_TRUE(validate_weight(w).is_ok());
  IsaGuard guard;
  for (const auto& isa : available_isas()) {
    ASSERT_TRUE(force_kernel_isa(isa));
    std::map<int64_t, std::vector<float>> single_thread;
    for (int threads : {1, 2}) {
      core::ThreadPool pool(threads);
      for (int64_t n_tokens : {1, 3, 7, 13, 64}) {
        std::vector<float> y(static_cast<size_t>(n_out * n_tokens), -1.0f);
        matmul(w, x.data(), n_tokens, y.data(), pool);
        // Each row is computed whole by one thread, so the thread count changes nothing.
        if (threads == 1) {
          single_thread[n_tokens] = y;
        } else {
          ASSERT_EQ(y, single_thread[n_tokens]) << ggml_type_name(c.type) << " isa=" << isa << " tokens=" << n_tokens;
        }
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < n_out; ++r) {
            const size_t i = t * n_out + r;
            ASSERT_NEAR(y[i], ref[i], c.tol * abs_sum[i] + 1e-6)
                << ggml_type_name(c.type) << " isa=" << isa << " threads=" << threads << " tokens=" << n_tokens
                << " t=" << t << " r=" << r;
          }
        }
      }
    }
  }
}

// K-quants use 3 super-blocks and the 32-block types 9 blocks (odd counts exercise the
// kernels' tails); float types use a length that is not a multiple of any vector width.
INSTANTIATE_TEST_SUITE_P(
    AllTypes, MatmulTest,
    ::testing::Values(Case{GgmlType::kF32, 77, 1e-5}, Case{GgmlType::kF16, 77, 1e-5}, Case{GgmlType::kBF16, 77, 1e-5},
                      Case{GgmlType::kF32, 1024, 1e-5}, Case{GgmlType::kF16, 1024, 1e-5},
                      Case{GgmlType::kBF16, 1024, 1e-5}, Case{GgmlType::kQ8_0, 288, 1e-5},
                      Case{GgmlType::kQ4_0, 288, 1e-5}, Case{GgmlType::kQ5_0, 288, 1e-5},
                      // The *_1 types use the f16-rounded block sum of the activations, as ggml does.
                      Case{GgmlType::kQ4_1, 288, 2e-3}, Case{GgmlType::kQ5_1, 288, 2e-3},
                      Case{GgmlType::kQ8_0, 1024, 1e-5}, Case{GgmlType::kQ4_0, 1024, 1e-5},
                      Case{GgmlType::kQ4_K, 768, 1e-5}, Case{GgmlType::kQ5_K, 768, 1e-5},
                      Case{GgmlType::kQ6_K, 768, 1e-5}, Case{GgmlType::kQ8_K, 768, 1e-5},
                      Case{GgmlType::kQ4_K, 2048, 1e-5}, Case{GgmlType::kQ6_K, 2048, 1e-5}),
    [](const auto& info) {
      return std::string(ggml_type_name(info.param.type)) + "_" + std::to_string(info.param.n_in);
    });

// The K-quant kernels quantize activations to Q8_K themselves (AVX-512: vectorized and fused
// with the register layout). At the edges of that quantization (tied maxima of opposite sign,
// codes exactly halfway between two integers, an outlier that rounds everything else to zero,
// subnormals, an all-zero super-block next to a live one) every instruction set must give
// what the scalar quantizer gives: one code off by one moves a result by ~1e-3 of its scale,
// a hundred times the tolerance here.
TEST(MatmulKQuantActivations, EdgeValuesQuantizeAsTheScalarQuantizerDoes) {
  const int64_t n_in = 512, n_out = 9;
  std::vector<std::vector<float>> tokens;
  std::vector<float> t(n_in, 0.5f);
  t[7] = -3.0f;  // tie with t[100]: the first one sets the scale's sign
  t[100] = 3.0f;
  tokens.push_back(t);
  for (int64_t i = 0; i < n_in; ++i) t[i] = static_cast<float>(i % 100) - 49.5f;  // scale 1: all midpoints
  t[0] = t[256] = -127.0f;
  tokens.push_back(t);
  for (int64_t i = 0; i < n_in; ++i) t[i] = 1e-3f * static_cast<float>(i % 7);
  t[300] = 30.0f;  // only the outlier survives in its super-block
  tokens.push_back(t);
  for (int64_t i = 0; i < n_in; ++i) t[i] = 1e-40f * static_cast<float>(i % 5);  // subnormal
  t[3] = 1e-38f;
  tokens.push_back(t);
  std::fill(t.begin(), t.end(), 0.0f);
  t[400] = -2.0f;  // first super-block all zero
  tokens.push_back(t);
  std::vector<float> x;
  for (const auto& v : tokens) x.insert(x.end(), v.begin(), v.end());
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());

  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(n_in * n_out));
  for (auto& v : wf) v = dist(rng);
  IsaGuard guard;
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    const size_t row = ggml_row_size(type, n_in);
    std::vector<uint8_t> wq(row * n_out);
    for (int64_t r = 0; r < n_out; ++r) {
      ASSERT_TRUE(quantize_row(type, wf.data() + r * n_in, wq.data() + r * row, n_in).is_ok());
    }
    std::vector<double> abs_sum;
    const auto ref = reference(type, wq, row, n_in, n_out, x, n_tokens, &abs_sum);
    for (const auto& isa : available_isas()) {
      ASSERT_TRUE(force_kernel_isa(isa));
      core::ThreadPool pool(1);
      // One token at a time (decoding tiles) and all at once (prompt tiles).
      for (int64_t batch : {int64_t{1}, n_tokens}) {
        std::vector<float> y(static_cast<size_t>(n_out * n_tokens));
        for (int64_t t0 = 0; t0 < n_tokens; t0 += batch) {
          matmul(WeightView{type, wq.data(), n_in, n_out, row}, x.data() + t0 * n_in, batch, y.data() + t0 * n_out,
                 pool);
        }
        for (int64_t i = 0; i < n_out * n_tokens; ++i) {
          ASSERT_NEAR(y[i], ref[i], 1e-5 * abs_sum[i] + 1e-30)
              << ggml_type_name(type) << " isa=" << isa << " batch=" << batch << " token=" << i / n_out;
        }
      }
    }
  }
}

TEST(MatmulValidation, RejectsBadWeights) {
  std::vector<uint8_t> buf(4096);
  EXPECT_FALSE(validate_weight(WeightView{GgmlType::kQ2_K, buf.data(), 256, 4, 84}).is_ok());
  EXPECT_FALSE(validate_weight(WeightView{GgmlType::kQ4_K, buf.data(), 100, 4, 144}).is_ok());
  EXPECT_FALSE(validate_weight(WeightView{GgmlType::kQ4_K, nullptr, 256, 4, 144}).is_ok());
  EXPECT_FALSE(validate_weight(WeightView{GgmlType::kQ4_K, buf.data(), 256, 4, 100}).is_ok());
  EXPECT_FALSE(validate_weight(WeightView{GgmlType::kQ4_K, buf.data(), 0, 4, 144}).is_ok());
  EXPECT_FALSE(validate_weight(WeightView{static_cast<GgmlType>(77), buf.data(), 256, 4, 144}).is_ok());
  EXPECT_TRUE(validate_weight(WeightView{GgmlType::kQ4_K, buf.data(), 256, 4, 144}).is_ok());
  // matmul with an invalid weight writes NaN instead of reading out of bounds.
  core::ThreadPool pool(1);
  std::vector<float> x(100, 1.0f), y(4, 0.0f);
  matmul(WeightView{GgmlType::kQ4_K, buf.data(), 100, 4, 144}, x.data(), 1, y.data(), pool);
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

// Puts the prefetch reach back to the default when a test ends.
class ReachGuard {
 public:
  ~ReachGuard() { set_far_prefetch(FarPrefetch::kAuto); }
};

// Rows of 8192 values make 4-row tiles long (>= kernels::kLongTileBytes) for every quantized
// type, so decoding takes the reach the driver sets. The reach only changes when memory is
// fetched: results are bit-identical, and agree with the reference.
TEST(MatmulPrefetchReach, FarAndNearGiveIdenticalResultsOnLongRows) {
  const int64_t n_in = 8192, n_out = 37, max_tokens = 3;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> wf(static_cast<size_t>(n_in * n_out));
  for (auto& v : wf) v = dist(rng);
  std::vector<float> x(static_cast<size_t>(n_in * max_tokens));
  for (auto& v : x) v = dist(rng);
  IsaGuard isa_guard;
  ReachGuard reach_guard;
  core::ThreadPool pool(2);
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_0, GgmlType::kQ4_0,
                        GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    const size_t row = ggml_row_size(type, n_in);
    const size_t stride = row + 64;  // padded, as in AgreesWithReferenceOnEveryIsa
    std::vector<uint8_t> wq(stride * n_out, 0xAB), dense(row * n_out);
    for (int64_t r = 0; r < n_out; ++r) {
      ASSERT_TRUE(quantize_row(type, wf.data() + r * n_in, wq.data() + r * stride, n_in).is_ok());
      std::copy_n(wq.data() + r * stride, row, dense.data() + r * row);
    }
    std::vector<double> abs_sum;
    const auto ref = reference(type, dense, row, n_in, n_out, x, max_tokens, &abs_sum);
    const double tol = (type == GgmlType::kQ4_1 || type == GgmlType::kQ5_1) ? 2e-3 : 1e-5;
    for (const auto& isa : available_isas()) {
      ASSERT_TRUE(force_kernel_isa(isa));
      for (int64_t n_tokens : {1, 2, 3}) {
        std::vector<float> y[2];
        for (int far = 0; far < 2; ++far) {
          set_far_prefetch(far ? FarPrefetch::kOn : FarPrefetch::kOff);
          y[far].assign(static_cast<size_t>(n_out * n_tokens), -1.0f);
          matmul(WeightView{type, wq.data(), n_in, n_out, stride}, x.data(), n_tokens, y[far].data(), pool);
        }
        ASSERT_EQ(y[0], y[1]) << ggml_type_name(type) << " isa=" << isa << " tokens=" << n_tokens;
        for (size_t i = 0; i < y[1].size(); ++i) {
          ASSERT_NEAR(y[1][i], ref[i], tol * abs_sum[i] + 1e-6)
              << ggml_type_name(type) << " isa=" << isa << " tokens=" << n_tokens << " i=" << i;
        }
      }
    }
  }
}

// The run-time choice: only decode products on long rows are measured (nothing else
// depends on the reach), and once enough were, the choice is made and reported.
TEST(MatmulPrefetchReach, AutoMeasuresOnlyLongDecodeProductsThenChooses) {
  IsaGuard isa_guard;
  ReachGuard reach_guard;
  EXPECT_EQ(set_far_prefetch(FarPrefetch::kOn), FarPrefetch::kAuto);
  EXPECT_EQ(far_prefetch_report(), "far (forced)");
  EXPECT_EQ(set_far_prefetch(FarPrefetch::kOff), FarPrefetch::kOn);
  EXPECT_EQ(far_prefetch_report(), "near (forced)");
  set_far_prefetch(FarPrefetch::kAuto);
  EXPECT_EQ(far_prefetch_report(), "auto, measuring");
  if (kernel_isa() != "avx512-vnni") GTEST_SKIP() << "only the AVX-512 kernels read the reach (" << kernel_isa() << ")";

  core::ThreadPool pool(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto weights = [&](int64_t n_in, int64_t n_out) {
    std::vector<float> wf(static_cast<size_t>(n_in * n_out));
    for (auto& v : wf) v = dist(rng);
    const size_t row = ggml_row_size(GgmlType::kQ8_0, n_in);
    std::vector<uint8_t> wq(row * n_out);
    for (int64_t r = 0; r < n_out; ++r) EXPECT_TRUE(quantize_row(GgmlType::kQ8_0, wf.data() + r * n_in, wq.data() + r * row, n_in).is_ok());
    return wq;
  };
  const int64_t n_out = 64;
  const auto short_rows = weights(1024, n_out), long_rows = weights(8192, n_out);
  std::vector<float> x(8192 * 16, 0.5f), y(n_out * 16);
  for (int i = 0; i < 400; ++i) {
    matmul(WeightView{GgmlType::kQ8_0, short_rows.data(), 1024, n_out, ggml_row_size(GgmlType::kQ8_0, 1024)}, x.data(), 1,
           y.data(), pool);
    matmul(WeightView{GgmlType::kQ8_0, long_rows.data(), 8192, n_out, ggml_row_size(GgmlType::kQ8_0, 8192)}, x.data(), 16,
           y.data(), pool);
  }
  EXPECT_EQ(far_prefetch_report(), "auto, measuring") << "short rows and prompts are not measured";
  int calls = 0;
  while (far_prefetch_report() == "auto, measuring" && calls < 1000) {
    matmul(WeightView{GgmlType::kQ8_0, long_rows.data(), 8192, n_out, ggml_row_size(GgmlType::kQ8_0, 8192)}, x.data(), 1,
           y.data(), pool);
    ++calls;
  }
  const std::string report = far_prefetch_report();
  EXPECT_TRUE(report.rfind("auto: far (", 0) == 0 || report.rfind("auto: near (", 0) == 0) << report;
  EXPECT_NE(report.find("medians of 32 decode products each"), std::string::npos) << report;
  EXPECT_EQ(calls, 16 + 2 * 32) << "the warm-up, then 32 products with each reach";
  // A new "auto" measures anew.
  set_far_prefetch(FarPrefetch::kAuto);
  EXPECT_EQ(far_prefetch_report(), "auto, measuring");
}

TEST(MatmulIsa, ForcingWorks) {
  IsaGuard guard;
  EXPECT_TRUE(force_kernel_isa("scalar"));
  EXPECT_EQ(kernel_isa(), "scalar");
  EXPECT_FALSE(force_kernel_isa("sse9"));
  EXPECT_EQ(kernel_isa(), "scalar");
}

}  // namespace
}  // namespace zs::engine
