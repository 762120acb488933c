// The prompt-only kernels (AVX-512 Q8_0, Q4_K and Q6_K 16-row panels, AVX2 Q8_0 and Q4_K 8-row panels)
// against the scalar kernels, on shapes that exercise every tail: rows not a multiple of the
// panel height (partial panels, odd panel
// counts), token counts not a multiple of the tile, rows with padding past their end, blocks
// with the extreme quant values (and extreme K-quant scales and mins), and the
// switch-over token count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/matmul.h"
#include "engine/quant/block_types.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

class Restore {
 public:
  ~Restore() {
    set_wide_kernels(true);
    for (const char* isa : {"avx512", "avx2", "scalar"})
      if (force_kernel_isa(isa)) break;
  }
};

struct Matrix {
  std::vector<uint8_t> data;
  size_t stride = 0;
  std::vector<float> deq;  // dequantized, n_out x n_in
};

Matrix make_matrix(GgmlType type, int64_t n_in, int64_t n_out, size_t pad, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Matrix m;
  const size_t row = ggml_row_size(type, n_in);
  m.stride = row + pad;
  m.data.assign(m.stride * n_out, 0xCD);
  std::vector<float> f(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : f) v = dist(rng);
    if (r % 7 == 3) std::fill(f.begin(), f.end(), 0.0f);  // an all-zero row
    EXPECT_TRUE(quantize_row(type, f.data(), m.data.data() + r * m.stride, n_in).is_ok());
  }
  if (n_out > 1 && type == GgmlType::kQ8_0) {
    // Extreme quants (a file may hold -128; quantizing gives -127..127): block 0 of row 1.
    auto* b = reinterpret_cast<BlockQ8_0*>(m.data.data() + m.stride);
    for (int j = 0; j < 32; ++j) b->qs[j] = j % 3 == 0 ? -128 : 127;
  }
  if (n_out > 1 && type == GgmlType::kQ4_K) {
    // Super-block 0 of row 1: nibbles 0 and 15, every 6-bit scale and min at 63 (all 12
    // scale bytes 0xFF), so the panel's unpacked values and f32 scales hit their extremes.
    auto* b = reinterpret_cast<BlockQ4K*>(m.data.data() + m.stride);
    std::memset(b->scales, 0xFF, sizeof b->scales);
    for (int j = 0; j < kQKK / 2; ++j) b->qs[j] = j % 3 == 0 ? 0x0F : (j % 3 == 1 ? 0xF0 : 0x00);
  }
  if (n_out > 1 && type == GgmlType::kQ6_K) {
    // Super-block 0 of row 1: values 0 and 63 (all 6 bits clear or set), scales -128 and 127.
    auto* b = reinterpret_cast<BlockQ6K*>(m.data.data() + m.stride);
    for (int j = 0; j < kQKK / 2; ++j) b->ql[j] = j % 2 ? 0xFF : 0x00;
    for (int j = 0; j < kQKK / 4; ++j) b->qh[j] = j % 3 ? 0xFF : 0x00;
    for (int j = 0; j < kQKK / 16; ++j) b->scales[j] = static_cast<int8_t>(j % 2 ? -128 : 127);
  }
  m.deq.resize(static_cast<size_t>(n_in * n_out));
  for (int64_t r = 0; r < n_out; ++r)
    EXPECT_TRUE(dequantize_row(type, m.data.data() + r * m.stride, m.deq.data() + r * n_in, n_in).is_ok());
  return m;
}

Matrix make_q8_0(int64_t n_in, int64_t n_out, size_t pad, std::mt19937& rng) {
  return make_matrix(GgmlType::kQ8_0, n_in, n_out, pad, rng);
}

std::vector<float> run(GgmlType type, const Matrix& m, int64_t n_in, int64_t n_out, const std::vector<float>& x,
                       int64_t n_tokens, int threads) {
  core::ThreadPool pool(threads);
  std::vector<float> y(static_cast<size_t>(n_out * n_tokens), -7.0f);
  matmul(WeightView{type, m.data.data(), n_in, n_out, m.stride}, x.data(), n_tokens, y.data(), pool);
  return y;
}

struct PanelCase {
  GgmlType type;
  const char* isa;
  std::vector<int64_t> n_in;
  std::vector<size_t> pads;
};

void PrintTo(const PanelCase& c, std::ostream* os) { *os << ggml_type_name(c.type) << " " << c.isa; }

class MatmulPanels : public ::testing::TestWithParam<PanelCase> {};

TEST_P(MatmulPanels, AgreesWithScalarOnOddShapes) {
  Restore restore;
  const PanelCase c = GetParam();
  if (!force_kernel_isa(c.isa)) GTEST_SKIP() << "this machine cannot run " << c.isa;
  const GgmlType type = c.type;
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  int checked = 0;
  for (int64_t n_in : c.n_in) {
    for (int64_t n_out : {1, 7, 8, 9, 15, 16, 17, 33, 48, 100}) {
      for (size_t pad : c.pads) {
        const Matrix m = make_matrix(type, n_in, n_out, pad, rng);
        for (int64_t n_tokens : {7, 8, 9, 17, 23, 64, 131}) {
          std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
          for (auto& v : x) v = dist(rng);
          for (int64_t i = 0; i < n_in; ++i) x[i] = 0.0f;                         // an all-zero token
          for (int64_t i = 0; i < n_in; ++i) x[n_in + i] = i % 2 ? 1e3f : -1e3f;  // extreme activations

          ASSERT_TRUE(force_kernel_isa("scalar"));
          const auto ref = run(type, m, n_in, n_out, x, n_tokens, 1);
          ASSERT_TRUE(force_kernel_isa(c.isa));
          set_wide_kernels(false);
          const auto narrow = run(type, m, n_in, n_out, x, n_tokens, 2);
          set_wide_kernels(true);
          const auto wide1 = run(type, m, n_in, n_out, x, n_tokens, 1);
          const auto wide2 = run(type, m, n_in, n_out, x, n_tokens, 2);
          // Every row is computed whole by one thread: the thread count changes nothing.
          ASSERT_EQ(wide1, wide2) << "n_in=" << n_in << " n_out=" << n_out << " tokens=" << n_tokens;
          for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t r = 0; r < n_out; ++r) {
              double abs_sum = 0;
              for (int64_t i = 0; i < n_in; ++i) abs_sum += std::fabs(double(m.deq[r * n_in + i]) * x[t * n_in + i]);
              const size_t k = t * n_out + r;
              const double tol = 1e-5 * abs_sum + 1e-6;
              ASSERT_NEAR(wide1[k], ref[k], tol) << "n_in=" << n_in << " n_out=" << n_out << " pad=" << pad
                                                 << " tokens=" << n_tokens << " t=" << t << " r=" << r;
              ASSERT_NEAR(narrow[k], ref[k], tol) << "narrow path, n_in=" << n_in << " t=" << t << " r=" << r;
            }
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(c.n_in.size() * 10 * c.pads.size() * 7));
}

// Q8_0: odd block counts and a 2080-value row; K-quants: 1, 3 and 9 super-blocks. Pads keep
// rows unaligned (5) or aligned to the block (34, 144).
INSTANTIATE_TEST_SUITE_P(Types, MatmulPanels,
                         ::testing::Values(PanelCase{GgmlType::kQ8_0, "avx512", {32, 96, 288, 2080}, {0, 34, 5}},
                                           PanelCase{GgmlType::kQ4_K, "avx512", {256, 768, 2304}, {0, 144, 5}},
                                           PanelCase{GgmlType::kQ6_K, "avx512", {256, 768, 2304}, {0, 210, 5}},
                                           PanelCase{GgmlType::kQ8_0, "avx2", {32, 96, 288, 2080}, {0, 34, 5}},
                                           PanelCase{GgmlType::kQ4_K, "avx2", {256, 768, 2304}, {0, 144, 5}}),
                         [](const auto& info) {
                           return std::string(ggml_type_name(info.param.type)) + "_" + info.param.isa;
                         });

// In a group (Q, K, V style) the panel kernel shares the dispatch with other formats; the
// results equal separate products.
TEST(MatmulPanelGroups, GroupWithOtherFormatsEqualsSeparateProducts) {
  Restore restore;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n_in = 512, n_tokens = 40;
  const Matrix a = make_q8_0(n_in, 70, 0, rng);
  const Matrix b = make_q8_0(n_in, 16, 2, rng);
  // A Q4_K matrix in the same group.
  const int64_t n_k = 24;
  std::vector<float> f(static_cast<size_t>(n_in * n_k));
  for (auto& v : f) v = dist(rng);
  const size_t krow = ggml_row_size(GgmlType::kQ4_K, n_in);
  std::vector<uint8_t> kq(krow * n_k);
  for (int64_t r = 0; r < n_k; ++r)
    ASSERT_TRUE(quantize_row(GgmlType::kQ4_K, f.data() + r * n_in, kq.data() + r * krow, n_in).is_ok());
  std::vector<float> x(static_cast<size_t>(n_in * n_tokens));
  for (auto& v : x) v = dist(rng);

  const WeightView ws[3] = {{GgmlType::kQ8_0, a.data.data(), n_in, 70, a.stride},
                            {GgmlType::kQ4_K, kq.data(), n_in, n_k, krow},
                            {GgmlType::kQ8_0, b.data.data(), n_in, 16, b.stride}};
  core::ThreadPool pool(2);
  std::vector<std::vector<float>> sep(3), grp(3);
  float* ys[3];
  for (int i = 0; i < 3; ++i) {
    sep[i].assign(static_cast<size_t>(ws[i].n_out * n_tokens), 0.0f);
    grp[i].assign(sep[i].size(), 1.0f);
    matmul(ws[i], x.data(), n_tokens, sep[i].data(), pool);
    ys[i] = grp[i].data();
  }
  matmul_group(ws, ys, 3, x.data(), n_tokens, pool);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sep[i], grp[i]) << "matrix " << i;
}

}  // namespace
}  // namespace zs::engine
