#include "engine/backend/cpu_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/backend/f16_table.h"
#include "engine/backend/simd_exp.h"
#include "engine/quant/quantize.h"

namespace zs::engine::cpu {
namespace {

// The run of consecutive cache rows that holds positions [p, min(end, page end)).
struct Run {
  int64_t row, n;
};
inline Run run_at(const GroupAttention& a, int64_t p) {
  const int64_t off = p % a.block_size;
  return {static_cast<int64_t>(a.table[p / a.block_size]) * a.block_size + off,
          std::min<int64_t>(a.end - p, a.block_size - off)};
}

// Walks the visible positions as runs: fn(first cache row of the run, run length, index of the
// run's first score).
template <class Fn>
inline void for_each_run(const GroupAttention& a, Fn&& fn) {
  for (int64_t p = a.first; p < a.end;) {
    const Run run = run_at(a, p);
    fn(run.row, run.n, p - a.first);
    p += run.n;
  }
}

// scores[j] = exp(scores[j] - max) and returns 1 / their sum (summed in double).
inline float exp_and_normalizer(float* s, int64_t n, float max_s) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - max_s);
    sum += s[j];
  }
  return static_cast<float>(1.0 / sum);
}

inline float cap(float s, float softcap, float inv_cap) {
  return softcap > 0 ? std::tanh(s * inv_cap) * softcap : s;
}

// ---------------------------------------------------------------- AVX2 + F16C + FMA

// Prefetches n rows of `bytes` each, row_stride values apart, into L1.
inline void prefetch_rows(const uint16_t* p, int64_t n, int64_t row_stride, int bytes) {
  for (int64_t r = 0; r < n; ++r, p += row_stride)
    for (int b = 0; b < bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + b, _MM_HINT_T0);
}

// The run at position p, having prefetched from `base` (the keys or the values) the run after
// it, and the run itself when it is the first.
inline Run run_prefetching_next(const GroupAttention& a, int64_t p, const uint16_t* base, int row_bytes) {
  const Run run = run_at(a, p);
  if (p == a.first) prefetch_rows(base + run.row * a.row_stride, run.n, a.row_stride, row_bytes);
  if (p + run.n < a.end) {
    const Run next = run_at(a, p + run.n);
    prefetch_rows(base + next.row * a.row_stride, next.n, a.row_stride, row_bytes);
  }
  return run;
}

// C: 8-value chunks of head_dim held in registers (0: any head_dim, accumulated in memory).
// Each page of keys (then of values) is used by every head of the group before the next,
// whose rows are prefetched meanwhile: strided rows on shuffled pages defeat the hardware
// prefetchers. No lambdas here: they would not inherit the target attribute.
template <int C>
__attribute__((target("avx2,fma,f16c"))) void attend_avx2(const GroupAttention& a) {
  const int hd = C > 0 ? 8 * C : a.head_dim;  // the dispatch passes C = head_dim / 8
  const int nc = C > 0 ? C : hd / 8;
  const int tail = 8 * nc;
  const int row_bytes = 2 * hd;
  const int64_t n_keys = a.end - a.first;
  const float inv_cap = a.softcap > 0 ? 1.0f / a.softcap : 0.f;

  // Scores.
  Run run{};
  for (int64_t p = a.first, j = 0; p < a.end; p += run.n, j += run.n) {
    run = run_prefetching_next(a, p, a.k, row_bytes);
    for (int g = 0; g < a.n_q; ++g) {
      const float* q = a.q + static_cast<int64_t>(g) * hd;
      float* s = a.scores + g * n_keys + j;
      const uint16_t* k = a.k + run.row * a.row_stride;
      for (int64_t r = 0; r < run.n; ++r, k += a.row_stride) {
        __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 16
        for (int c = 0; c < nc; ++c)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * c),
                                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 8 * c))), acc);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_hadd_ps(h, h);
        h = _mm_hadd_ps(h, h);
        float d = _mm_cvtss_f32(h);
        for (int i = tail; i < hd; ++i) d += q[i] * f16_to_f32(k[i]);
        s[r] = cap(d * a.scale, a.softcap, inv_cap);
      }
    }
  }

  // Probabilities, per head.
  for (int g = 0; g < a.n_q; ++g) {
    softmax_f16_avx2(a.scores + g * n_keys, n_keys);
    float* out = a.out + static_cast<int64_t>(g) * hd;
    for (int t = 0; t < hd; ++t) out[t] = 0.f;
  }

  // Values.
  for (int64_t p = a.first, j = 0; p < a.end; p += run.n, j += run.n) {
    run = run_prefetching_next(a, p, a.v, row_bytes);
    for (int g = 0; g < a.n_q; ++g) {
      const float* s = a.scores + g * n_keys + j;
      float* out = a.out + static_cast<int64_t>(g) * hd;
      __m256 acc[C > 0 ? C : 1];
      if constexpr (C > 0) {
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[c] = _mm256_loadu_ps(out + 8 * c);
      }
      const uint16_t* v = a.v + run.row * a.row_stride;
      for (int64_t r = 0; r < run.n; ++r, v += a.row_stride) {
        const float pj = s[r];
        const __m256 pv = _mm256_set1_ps(pj);
#pragma GCC unroll 16
        for (int c = 0; c < nc; ++c) {
          const __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 8 * c)));
          if constexpr (C > 0) {
            acc[c] = _mm256_fmadd_ps(pv, vv, acc[c]);
          } else {
            _mm256_storeu_ps(out + 8 * c, _mm256_fmadd_ps(pv, vv, _mm256_loadu_ps(out + 8 * c)));
          }
        }
        for (int t = tail; t < hd; ++t) out[t] += pj * f16_to_f32(v[t]);
      }
      if constexpr (C > 0) {
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
      }
    }
  }
}

__attribute__((target("avx2,fma,f16c"))) void store_avx2(const float* src, uint16_t* dst, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), h);
  }
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

}  // namespace

// ---------------------------------------------------------------- Dispatch and scalar path

void attend_group(const GroupAttention& a) {
  if (!has_avx2_fma()) return attend_group_scalar(a);
  with_head_chunks(a.head_dim, [&](auto c) { attend_avx2<decltype(c)::value>(a); });
}

namespace {
bool has_avx512vl() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
  return yes;
}
}  // namespace

int64_t block_attention_scratch(const BlockAttention& a) {
  int64_t n = 0;
  for (int t = 0; t < a.n_tok; ++t) n += a.n_q * (a.end[t] - a.first[t]);
  return n + 2 * static_cast<int64_t>(kBlockTileKeys) * a.head_dim;
}

void attend_block(const BlockAttention& a, bool avx512) {
  if (a.n_tok == 1 || !has_avx2_fma() || a.head_dim % 8 != 0) {
    for (int t = 0; t < a.n_tok; ++t) {
      GroupAttention g;
      static_cast<KvHeadGroup&>(g) = a;
      g.q = a.q + static_cast<int64_t>(t) * a.n_q * a.head_dim;
      g.first = a.first[t];
      g.end = a.end[t];
      g.scores = a.scratch;
      g.out = a.out + t * a.out_stride;
      attend_group(g);
    }
    return;
  }
  if (avx512 && has_avx512vl()) return attend_block_avx512(a);
  attend_block_avx2(a);
}

void attend_group_scalar(const GroupAttention& a) {
  const float inv_cap = a.softcap > 0 ? 1.0f / a.softcap : 0.f;
  const int64_t n_keys = a.end - a.first;
  for (int g = 0; g < a.n_q; ++g) {
    const float* q = a.q + static_cast<int64_t>(g) * a.head_dim;
    float* s = a.scores + g * n_keys;
    float* out = a.out + static_cast<int64_t>(g) * a.head_dim;
    float max_s = -INFINITY;
    for_each_run(a, [&](int64_t row, int64_t n, int64_t j) {
      for (int64_t r = 0; r < n; ++r) {
        const uint16_t* k = a.k + (row + r) * a.row_stride;
        float d = 0;
        for (int i = 0; i < a.head_dim; ++i) d += q[i] * f16_to_f32(k[i]);
        s[j + r] = cap(d * a.scale, a.softcap, inv_cap);
        max_s = std::max(max_s, s[j + r]);
      }
    });
    const float inv = exp_and_normalizer(s, n_keys, max_s);
    std::fill(out, out + a.head_dim, 0.f);
    for_each_run(a, [&](int64_t row, int64_t n, int64_t j) {
      for (int64_t r = 0; r < n; ++r) {
        const float p = f16_to_f32(f32_to_f16(s[j + r] * inv));
        const uint16_t* v = a.v + (row + r) * a.row_stride;
        for (int i = 0; i < a.head_dim; ++i) out[i] += p * f16_to_f32(v[i]);
      }
    });
  }
}

namespace {
__attribute__((target("avx2,fma,f16c"))) void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_nonpositive_avx2(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = std::exp(x[i]);
}

}  // namespace

void exp_nonpositive(const float* x, float* y, int64_t n) {
  if (has_avx2_fma()) return exp_avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void store_f16(const float* src, uint16_t* dst, int n) {
  if (has_avx2_fma()) return store_avx2(src, dst, n);
  for (int i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

}  // namespace zs::engine::cpu
