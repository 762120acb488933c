// The CPU attention kernel (cpu_attention.h): the AVX2 path against the scalar path, and the
// scalar path against a plain double-precision softmax, on paged caches with shuffled pages,
// windows, soft-capping, groups of 1, 3 and 4 query heads, and head sizes that take every
// register-count specialisation and the generic path with a tail; blocks of queries against
// single queries, bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/backend/cpu_attention.h"
#include "engine/backend/f16_table.h"
#include "engine/quant/quantize.h"

namespace zs::engine::cpu {
namespace {

struct Cache {
  int n_head_kv = 2, head_dim = 0, block_size = 16;
  int64_t kv_dim = 0;
  std::vector<uint16_t> k, v;
  std::vector<int32_t> table;  // shuffled pages
};

Cache make_cache(int head_dim, int64_t positions, std::mt19937& rng, float key_scale) {
  Cache c;
  c.head_dim = head_dim;
  c.kv_dim = static_cast<int64_t>(c.n_head_kv) * head_dim;
  const int64_t pages = (positions + c.block_size - 1) / c.block_size + 3;  // spare pages stay unused
  c.table.resize(static_cast<size_t>(pages));
  std::iota(c.table.begin(), c.table.end(), 0);
  std::shuffle(c.table.begin(), c.table.end(), rng);
  std::normal_distribution<float> d(0.f, 1.f);
  c.k.resize(static_cast<size_t>(pages * c.block_size * c.kv_dim));
  c.v.resize(c.k.size());
  for (auto& x : c.k) x = f32_to_f16(d(rng) * key_scale);
  for (auto& x : c.v) x = f32_to_f16(d(rng));
  return c;
}

// n_q query heads of one key/value head over the cache, scaled by 1 / sqrt(head_dim).
KvHeadGroup heads(const Cache& c, int kv_head, int n_q) {
  KvHeadGroup h;
  h.n_q = n_q;
  h.k = c.k.data() + kv_head * c.head_dim;
  h.v = c.v.data() + kv_head * c.head_dim;
  h.row_stride = c.kv_dim;
  h.head_dim = c.head_dim;
  h.table = c.table.data();
  h.block_size = c.block_size;
  h.scale = 1.f / std::sqrt(static_cast<float>(c.head_dim));
  return h;
}

// n_q query heads (q: n_q x head_dim) of one key/value head.
GroupAttention group(const Cache& c, int kv_head, const std::vector<float>& q, int n_q, int64_t first, int64_t end,
                     std::vector<float>& scores, std::vector<float>& out) {
  GroupAttention a;
  static_cast<KvHeadGroup&>(a) = heads(c, kv_head, n_q);
  a.q = q.data();
  a.first = first;
  a.end = end;
  scores.assign(static_cast<size_t>(n_q * (end - first)), -1.f);
  out.assign(static_cast<size_t>(n_q * c.head_dim), -7.f);
  a.scores = scores.data();
  a.out = out.data();
  return a;
}

// Softmax attention in double, with the probabilities rounded to f16 as the kernel's contract says.
std::vector<double> plain(const Cache& c, int kv_head, const std::vector<float>& q, int64_t first, int64_t end,
                          float scale, float softcap) {
  auto row = [&](int64_t p) { return (static_cast<int64_t>(c.table[p / c.block_size]) * c.block_size + p % c.block_size) * c.kv_dim + kv_head * c.head_dim; };
  std::vector<double> s;
  for (int64_t p = first; p < end; ++p) {
    double d = 0;
    for (int i = 0; i < c.head_dim; ++i) d += double(q[i]) * f16_to_f32(c.k[row(p) + i]);
    d *= scale;
    if (softcap > 0) d = softcap * std::tanh(d / softcap);
    s.push_back(d);
  }
  const double mx = *std::max_element(s.begin(), s.end());
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  std::vector<double> out(static_cast<size_t>(c.head_dim), 0.0);
  for (int64_t p = first; p < end; ++p) {
    const double pr = f16_to_f32(f32_to_f16(static_cast<float>(s[p - first] / sum)));
    for (int i = 0; i < c.head_dim; ++i) out[i] += pr * f16_to_f32(c.v[row(p) + i]);
  }
  return out;
}

struct Shape {
  int64_t first, end;
  float softcap;
};

TEST(CpuAttention, TheSimdPathAgreesWithTheScalarPathAndBothWithAPlainSoftmax) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.f, 1.f);
  int checked = 0;
  for (int head_dim : {8, 12, 16, 32, 64, 80, 128, 256}) {
    for (float key_scale : {1.f, 8.f}) {  // 8: peaked softmaxes
      const Cache c = make_cache(head_dim, 300, rng, key_scale);
      // One key; one page exactly; a run that starts and ends mid-page; a window; soft-capping.
      for (const Shape sh : {Shape{0, 1, 0.f}, Shape{0, 16, 0.f}, Shape{5, 37, 0.f}, Shape{0, 300, 0.f},
                             Shape{200, 300, 0.f}, Shape{3, 290, 30.f}}) {
        for (int n_q : {1, 3, 4}) {
          const int kv_head = n_q % c.n_head_kv;
          std::vector<float> q(static_cast<size_t>(n_q * head_dim));
          for (auto& x : q) x = f16_to_f32(f32_to_f16(d(rng)));
          std::vector<float> s1, o1, s2, o2;
          GroupAttention a = group(c, kv_head, q, n_q, sh.first, sh.end, s1, o1);
          a.softcap = sh.softcap;
          attend_group_scalar(a);
          GroupAttention b = group(c, kv_head, q, n_q, sh.first, sh.end, s2, o2);
          b.softcap = sh.softcap;
          attend_group(b);
          for (int g = 0; g < n_q; ++g) {
            const std::vector<float> qg(q.begin() + g * head_dim, q.begin() + (g + 1) * head_dim);
            const auto want = plain(c, kv_head, qg, sh.first, sh.end, a.scale, sh.softcap);
            // The same head alone gives the same bits: a head's result does not depend on n_q.
            std::vector<float> s3, o3;
            GroupAttention one = group(c, kv_head, qg, 1, sh.first, sh.end, s3, o3);
            one.softcap = sh.softcap;
            attend_group(one);
            for (int i = 0; i < head_dim; ++i) {
              const size_t k = static_cast<size_t>(g * head_dim + i);
              // The f16 rounding of a probability may flip with the last bit of its score.
              const double tol = 2e-3 * (1.0 + std::fabs(want[i]));
              ASSERT_NEAR(o1[k], want[i], tol) << "scalar, head_dim " << head_dim << " head " << g << " i " << i;
              ASSERT_NEAR(o2[k], o1[k], tol) << "fast path, head_dim " << head_dim << " head " << g << " i " << i;
              ASSERT_EQ(o3[i], o2[k]) << "alone vs in a group of " << n_q << ", head_dim " << head_dim << " i " << i;
            }
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 8 * 2 * 6 * (1 + 3 + 4));
}

TEST(CpuAttention, OneVisibleKeyReturnsItsValueRoundedAsTheCacheHoldsIt) {
  std::mt19937 rng(9);
  const Cache c = make_cache(64, 40, rng, 1.f);
  std::vector<float> q(2 * 64, 0.5f), s, o;
  GroupAttention a = group(c, 1, q, 2, 20, 21, s, o);
  attend_group(a);
  const int64_t row = (static_cast<int64_t>(c.table[1]) * c.block_size + 4) * c.kv_dim + 64;
  for (int g = 0; g < 2; ++g)
    for (int i = 0; i < 64; ++i) ASSERT_EQ(o[g * 64 + i], f16_to_f32(c.v[row + i])) << g << " " << i;
}

// A block of n_tok queries at consecutive positions (a prompt's rows): token i sits at position
// pos0 + i and sees [first, end) as the backend gives them: causal, windowed, or image rows that
// all see the image's end.
struct BlockShape {
  int64_t pos0;
  int n_tok;
  int window;       // 0: none
  int64_t image_end;  // 0: causal
  float softcap;
};

TEST(CpuAttention, ABlockOfQueriesGivesEveryHeadTheBitsItGetsAlone) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.f, 1.f);
  int checked = 0;
  for (int head_dim : {8, 12, 16, 32, 64, 80, 128, 256}) {
    const Cache c = make_cache(head_dim, 300, rng, 4.f);
    for (const BlockShape sh : {BlockShape{0, 2, 0, 0, 0.f}, BlockShape{0, 16, 0, 0, 0.f}, BlockShape{37, 5, 0, 0, 0.f},
                                BlockShape{270, 16, 0, 0, 0.f}, BlockShape{100, 13, 24, 0, 0.f},
                                BlockShape{60, 9, 0, 72, 0.f}, BlockShape{131, 7, 0, 0, 30.f}}) {
      for (int n_q : {1, 4}) {
        for (bool avx512 : {false, true}) {
          const int kv_head = n_q % c.n_head_kv;
          std::vector<float> q(static_cast<size_t>(sh.n_tok * n_q * head_dim));
          for (auto& x : q) x = f16_to_f32(f32_to_f16(d(rng)));
          std::vector<int64_t> first(static_cast<size_t>(sh.n_tok)), end(first.size());
          for (int i = 0; i < sh.n_tok; ++i) {
            const int64_t pos = sh.pos0 + i;
            end[i] = sh.image_end > 0 ? sh.image_end : pos + 1;
            first[i] = sh.window > 0 ? std::max<int64_t>(0, pos + 1 - sh.window) : 0;
          }
          // Outputs of token i at i * out_stride, with a gap between tokens that must stay untouched.
          const int64_t out_stride = static_cast<int64_t>(n_q) * head_dim + 5;
          std::vector<float> out(static_cast<size_t>(sh.n_tok * out_stride), -7.f);
          BlockAttention b;
          static_cast<KvHeadGroup&>(b) = heads(c, kv_head, n_q);
          b.softcap = sh.softcap;
          b.q = q.data();
          b.n_tok = sh.n_tok;
          b.first = first.data();
          b.end = end.data();
          b.out = out.data();
          b.out_stride = out_stride;
          std::vector<float> scratch(static_cast<size_t>(block_attention_scratch(b)), NAN);
          b.scratch = scratch.data();
          attend_block(b, avx512);
          for (int i = 0; i < sh.n_tok; ++i) {
            const std::vector<float> qi(q.begin() + i * n_q * head_dim, q.begin() + (i + 1) * n_q * head_dim);
            std::vector<float> s1, o1;
            GroupAttention one = group(c, kv_head, qi, n_q, first[i], end[i], s1, o1);
            one.softcap = sh.softcap;
            attend_group(one);
            for (int j = 0; j < n_q * head_dim; ++j)
              ASSERT_EQ(out[i * out_stride + j], o1[j]) << "head_dim " << head_dim << " token " << i << " of "
                                                       << sh.n_tok << " at " << sh.pos0 << ", value " << j
                                                       << (avx512 ? " (avx512)" : "");
            for (int j = n_q * head_dim; j < out_stride && i + 1 < sh.n_tok; ++j) ASSERT_EQ(out[i * out_stride + j], -7.f);
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 8 * (2 + 16 + 5 + 16 + 13 + 9 + 7) * 2 * 2);
}

// Backend::attention groups a call's tokens into blocks by sequence (the block table they
// share): two sequences' prompts in one call, as continuous batching passes them, give every
// token the bits it gets alone, with and without windows and soft-capping.
TEST(CpuAttention, TheBackendGivesEveryTokenOfABatchOfPromptsTheBitsItGetsAlone) {
  std::mt19937 rng(13);
  std::normal_distribution<float> d(0.f, 1.f);
  const int n_head = 8, n_head_kv = 2, head_dim = 64;
  Cache c = make_cache(head_dim, 160, rng, 4.f);
  std::vector<int32_t> table_b = c.table;
  std::shuffle(table_b.begin(), table_b.end(), rng);
  // Sequence A: positions 0..39; sequence B: 110..150 (a later chunk of its prompt).
  std::vector<int32_t> pos;
  std::vector<const int32_t*> tables;
  for (int p = 0; p < 40; ++p) pos.push_back(p), tables.push_back(c.table.data());
  for (int p = 110; p < 151; ++p) pos.push_back(p), tables.push_back(table_b.data());
  const int64_t n = static_cast<int64_t>(pos.size()), width = static_cast<int64_t>(n_head) * head_dim;
  std::vector<float> q(static_cast<size_t>(n * width));
  for (auto& x : q) x = d(rng);
  auto backend = make_cpu_backend(2);
  for (const auto& [window, softcap] : {std::pair{0, 0.f}, std::pair{24, 0.f}, std::pair{0, 30.f}}) {
    AttentionArgs a;
    a.q = q.data();
    a.n_tokens = n;
    a.positions = pos.data();
    a.block_tables = tables.data();
    a.block_size = c.block_size;
    a.k_cache = c.k.data();
    a.v_cache = c.v.data();
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.scale = 0.125f;
    a.window = window;
    a.softcap = softcap;
    std::vector<float> together(q.size(), -7.f), alone(q.size(), -7.f);
    a.out = together.data();
    backend->attention(a);
    for (int64_t t = 0; t < n; ++t) {
      AttentionArgs one = a;
      one.q = q.data() + t * width;
      one.n_tokens = 1;
      one.positions = pos.data() + t;
      one.block_tables = tables.data() + t;
      one.out = alone.data() + t * width;
      backend->attention(one);
    }
    for (size_t i = 0; i < q.size(); ++i)
      ASSERT_EQ(together[i], alone[i]) << "token " << i / width << ", value " << i % width << ", window " << window
                                       << ", softcap " << softcap;
  }
}

// Distance in units in the last place between two positive floats.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(static_cast<int64_t>(ia) - ib);
}

TEST(CpuAttention, ExpIsWithinTwoUlpOfStdExpAndUnderflowsToZero) {
  std::vector<float> x;
  for (float v = 0.f; v > -87.3f; v -= 0.000731f) x.push_back(v);
  for (float v : {-0.f, -1e-30f, -1e-7f, -0.34657359f, -0.34657360f, -0.693147f, -87.29f}) x.push_back(v);
  const size_t normal = x.size();
  for (float v : {-87.4f, -100.f, -1e30f, -INFINITY}) x.push_back(v);
  std::vector<float> y(x.size());
  exp_nonpositive(x.data(), y.data(), static_cast<int64_t>(x.size()));
  int64_t worst = 0;
  for (size_t i = 0; i < normal; ++i) {
    const float want = std::exp(x[i]);
    worst = std::max(worst, ulps(y[i], want));
    ASSERT_LE(ulps(y[i], want), 2) << "x = " << x[i] << ": " << y[i] << " vs " << want;
  }
  // Below the smallest normal result: 0 (or std::exp's subnormal on the scalar path).
  for (size_t i = normal; i < x.size(); ++i) ASSERT_LE(y[i], 1e-37f) << "x = " << x[i];
  EXPECT_GE(x.size(), 100000u);
  RecordProperty("worst_ulps", static_cast<int>(worst));
}

TEST(CpuAttention, StoreF16RoundsAsTheScalarConversion) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 100.f);
  std::vector<float> src(77);
  for (auto& x : src) x = d(rng);
  src[3] = 65504.f;
  src[4] = 1e-6f;
  std::vector<uint16_t> dst(src.size());
  store_f16(src.data(), dst.data(), static_cast<int>(src.size()));
  for (size_t i = 0; i < src.size(); ++i) ASSERT_EQ(dst[i], f32_to_f16(src[i])) << i;
}

}  // namespace
}  // namespace zs::engine::cpu
