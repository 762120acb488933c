// matmul_group must give exactly what separate matmul calls give, whether its matrices can
// share packed activations (same format) or not (it then falls back to separate calls).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "engine/kernels/matmul.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

struct Matrix {
  GgmlType type;
  int64_t n_in, n_out;
  std::vector<uint8_t> bytes;
  WeightView view() const { return {type, bytes.data(), n_in, n_out, ggml_row_size(type, n_in)}; }
};

Matrix random_matrix(GgmlType type, int64_t n_in, int64_t n_out, std::mt19937& rng) {
  Matrix m{type, n_in, n_out, std::vector<uint8_t>(ggml_row_size(type, n_in) * n_out)};
  std::normal_distribution<float> d(0, 1);
  std::vector<float> row(n_in);
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : row) v = d(rng);
    EXPECT_TRUE(quantize_row(type, row.data(), m.bytes.data() + r * ggml_row_size(type, n_in), n_in).is_ok());
  }
  return m;
}

void check_group(const std::vector<GgmlType>& types, int64_t n_tokens, int threads) {
  std::mt19937 rng(5);
  const int64_t n_in = 512;
  const std::vector<int64_t> n_outs = {37, 128, 64, 256};
  std::vector<Matrix> ms;
  for (size_t i = 0; i < types.size(); ++i) ms.push_back(random_matrix(types[i], n_in, n_outs[i % n_outs.size()], rng));
  std::vector<float> x(n_in * n_tokens);
  std::normal_distribution<float> d(0, 1);
  for (auto& v : x) v = d(rng);
  core::ThreadPool pool(threads);
  std::vector<std::vector<float>> separate, grouped;
  std::vector<WeightView> views;
  std::vector<float*> outs;
  for (const auto& m : ms) {
    separate.emplace_back(m.n_out * n_tokens);
    grouped.emplace_back(m.n_out * n_tokens, -1.f);
    matmul(m.view(), x.data(), n_tokens, separate.back().data(), pool);
    views.push_back(m.view());
  }
  for (auto& g : grouped) outs.push_back(g.data());
  matmul_group(views.data(), outs.data(), static_cast<int>(views.size()), x.data(), n_tokens, pool);
  for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(grouped[i], separate[i]) << "matrix " << i;
}

TEST(MatmulGroup, EqualsSeparateProductsForSharedFormats) {
  for (int threads : {1, 2, 3})
    for (int64_t tokens : {1, 5})
      check_group({GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ4_K}, tokens, threads);
  check_group({GgmlType::kQ8_0, GgmlType::kQ4_0}, 3, 2);
  check_group({GgmlType::kF16, GgmlType::kF16}, 2, 2);
}

TEST(MatmulGroup, FallsBackForMixedFormatsAndLargeGroups) {
  check_group({GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0}, 2, 2);
  check_group({GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ4_K, GgmlType::kQ4_K},
              3, 2);
}

}  // namespace
}  // namespace zs::engine
