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


// With fewer tokens than threads, each token's packing is split between the threads and
// formats that differ (Q4_K and Q6_K) are packed side by side in one dispatch: the results
// must not depend on the thread count.
TEST(MatmulGroup, SplitPackingAndMixedFormatsDoNotDependOnThreads) {
  std::mt19937 rng(9);
  const int64_t n_in = 2048;
  std::vector<Matrix> ms;
  ms.push_back(random_matrix(GgmlType::kQ4_K, n_in, 96, rng));
  ms.push_back(random_matrix(GgmlType::kQ6_K, n_in, 40, rng));
  ms.push_back(random_matrix(GgmlType::kQ4_K, n_in, 64, rng));
  std::vector<WeightView> views;
  for (const auto& m : ms) views.push_back(m.view());
  std::normal_distribution<float> d(0, 1);
  for (int64_t tokens : {1, 2}) {
    std::vector<float> x(n_in * tokens);
    for (auto& v : x) v = d(rng);
    auto run = [&](int threads) {
      core::ThreadPool pool(threads);
      std::vector<std::vector<float>> ys;
      std::vector<float*> outs;
      for (const auto& m : ms) ys.emplace_back(m.n_out * tokens, -1.f);
      for (auto& y : ys) outs.push_back(y.data());
      matmul_group(views.data(), outs.data(), static_cast<int>(views.size()), x.data(), tokens, pool);
      return ys;
    };
    const auto one = run(1);
    for (int threads : {2, 3, 4}) EXPECT_EQ(run(threads), one) << threads << " threads, " << tokens << " tokens";
  }
}

// Many back-to-back dispatches, each short enough that workers often arrive after the
// caller has finished (they then skip the job): every result must still be complete.
TEST(MatmulGroup, ManyShortDispatchesAreComplete) {
  std::mt19937 rng(3);
  const Matrix m = random_matrix(GgmlType::kQ4_K, 256, 8, rng);
  std::vector<float> x(256);
  std::normal_distribution<float> d(0, 1);
  for (auto& v : x) v = d(rng);
  core::ThreadPool single(1), pool(3);
  std::vector<float> want(8), got(8);
  matmul(m.view(), x.data(), 1, want.data(), single);
  for (int i = 0; i < 3000; ++i) {
    std::fill(got.begin(), got.end(), -1.f);
    matmul(m.view(), x.data(), 1, got.data(), pool);
    ASSERT_EQ(got, want) << "dispatch " << i;
  }
}

// matmul_multi: each matrix on its own input (the experts of one token); more matrices than
// one dispatch takes, mixed formats, some inputs shared.
TEST(MatmulMulti, EqualsSeparateProductsWithOwnInputs) {
  std::mt19937 rng(9);
  const int64_t n_in = 512;
  const std::vector<GgmlType> types = {GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0,
                                       GgmlType::kF16,  GgmlType::kQ4_K, GgmlType::kQ5_0, GgmlType::kQ8_0,
                                       GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ6_K, GgmlType::kQ4_K,
                                       GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ4_K,
                                       GgmlType::kQ8_0, GgmlType::kQ4_K};
  for (int threads : {1, 2})
    for (int64_t tokens : {1, 3}) {
      std::vector<Matrix> ms;
      std::vector<std::vector<float>> inputs(types.size() - 3, std::vector<float>(n_in * tokens));
      std::normal_distribution<float> d(0, 1);
      for (auto& in : inputs)
        for (auto& v : in) v = d(rng);
      core::ThreadPool pool(threads);
      std::vector<WeightView> views;
      std::vector<const float*> xs;
      std::vector<std::vector<float>> separate, multi;
      std::vector<float*> outs;
      for (size_t i = 0; i < types.size(); ++i) {
        ms.push_back(random_matrix(types[i], n_in, 32 + 4 * static_cast<int64_t>(i), rng));
        xs.push_back(inputs[i % inputs.size()].data());
      }
      for (size_t i = 0; i < ms.size(); ++i) {
        views.push_back(ms[i].view());
        separate.emplace_back(ms[i].n_out * tokens);
        multi.emplace_back(ms[i].n_out * tokens, -1.f);
        matmul(ms[i].view(), xs[i], tokens, separate.back().data(), pool);
      }
      for (auto& m : multi) outs.push_back(m.data());
      matmul_multi(views.data(), outs.data(), xs.data(), static_cast<int>(views.size()), tokens, pool);
      for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(multi[i], separate[i]) << "matrix " << i;
    }
}

}  // namespace
}  // namespace zs::engine
