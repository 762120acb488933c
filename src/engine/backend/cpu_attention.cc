#include "engine/backend/cpu_attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "engine/backend/f16_table.h"
#include "engine/quant/quantize.h"

namespace zs::engine::cpu {
namespace {

// Walks the visible positions as runs of consecutive cache rows (one per page of the table):
// fn(first cache row of the run, run length, index of the run's first score).
template <class Fn>
inline void for_each_run(const HeadAttention& a, Fn&& fn) {
  int64_t j = 0;
  for (int64_t p = a.first; p < a.end;) {
    const int64_t off = p % a.block_size;
    const int64_t n = std::min<int64_t>(a.end - p, a.block_size - off);
    fn(static_cast<int64_t>(a.table[p / a.block_size]) * a.block_size + off, n, j);
    p += n;
    j += n;
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

// exp(x) for x <= 0 (scores minus their maximum), within 2 ulp of std::exp where the result
// is a normal float; below -87.3 it gives 0 (std::exp: a subnormal, which the f16 rounding of
// the probability flushes to 0 anyway). 2^n * e^r with n = round(x / ln 2), |r| <= ln 2 / 2,
// ln 2 split in two parts so that r is exact, and e^r = 1 + r + r^2 P(r) with the degree-5
// minimax polynomial of the Cephes library's expf.
__attribute__((target("avx2,fma,f16c"))) inline __m256 exp_nonpositive(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(e, _mm256_castsi256_ps(bits)));
}

// scores[j] = exp(scores[j] - max), 8 at a time, and returns 1 / their sum (summed in double).
__attribute__((target("avx2,fma,f16c"))) float exp_and_normalizer_avx2(float* s, int64_t n, float max_s) {
  const __m256 m = _mm256_set1_ps(max_s);
  __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e);
    sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(sum_lo, sum_hi));
  double sum = (parts[0] + parts[1]) + (parts[2] + parts[3]);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - max_s);
    sum += s[j];
  }
  return static_cast<float>(1.0 / sum);
}

// C: 8-value chunks of head_dim held in registers (0: any head_dim, accumulated in memory).
// No lambdas here: they would not inherit the target attribute.
template <int C>
__attribute__((target("avx2,fma,f16c"))) void attend_avx2(const HeadAttention& a) {
  const int hd = a.head_dim;
  const int nc = C > 0 ? C : hd / 8;
  const int tail = 8 * nc;
  const int64_t n_keys = a.end - a.first;
  const float inv_cap = a.softcap > 0 ? 1.0f / a.softcap : 0.f;
  float* s = a.scores;
  float max_s = -INFINITY;
  int64_t j = 0;
  for (int64_t p = a.first; p < a.end;) {
    const int64_t off = p % a.block_size;
    const int64_t n = std::min<int64_t>(a.end - p, a.block_size - off);
    const uint16_t* k = a.k + (static_cast<int64_t>(a.table[p / a.block_size]) * a.block_size + off) * a.row_stride;
    for (int64_t r = 0; r < n; ++r, k += a.row_stride) {
      __m256 acc = _mm256_setzero_ps();
      for (int c = 0; c < nc; ++c)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a.q + 8 * c),
                              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 8 * c))), acc);
      __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
      h = _mm_hadd_ps(h, h);
      h = _mm_hadd_ps(h, h);
      float d = _mm_cvtss_f32(h);
      for (int i = tail; i < hd; ++i) d += a.q[i] * f16_to_f32(k[i]);
      const float sc = cap(d * a.scale, a.softcap, inv_cap);
      s[j++] = sc;
      max_s = std::max(max_s, sc);
    }
    p += n;
  }
  const __m256 inv = _mm256_set1_ps(exp_and_normalizer_avx2(s, n_keys, max_s));
  // Probabilities rounded to f16 and back, 8 at a time (F16C rounds to nearest even, as
  // f32_to_f16 does).
  int64_t i = 0;
  for (; i + 8 <= n_keys; i += 8)
    _mm256_storeu_ps(s + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + i), inv),
                                                            _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n_keys; ++i) s[i] = f16_to_f32(f32_to_f16(s[i] * _mm256_cvtss_f32(inv)));

  __m256 acc[C > 0 ? C : 1];
  float* out = a.out;
  if constexpr (C > 0) {
    for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  } else {
    for (int c = 0; c < nc; ++c) _mm256_storeu_ps(out + 8 * c, _mm256_setzero_ps());
  }
  for (int t = tail; t < hd; ++t) out[t] = 0.f;
  j = 0;
  for (int64_t p = a.first; p < a.end;) {
    const int64_t off = p % a.block_size;
    const int64_t n = std::min<int64_t>(a.end - p, a.block_size - off);
    const uint16_t* v = a.v + (static_cast<int64_t>(a.table[p / a.block_size]) * a.block_size + off) * a.row_stride;
    for (int64_t r = 0; r < n; ++r, v += a.row_stride, ++j) {
      const float pj = s[j];
      const __m256 pv = _mm256_set1_ps(pj);
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
    p += n;
  }
  if constexpr (C > 0)
    for (int c = 0; c < C; ++c) _mm256_storeu_ps(out + 8 * c, acc[c]);
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

void attend_head(const HeadAttention& a) {
  if (!has_avx2_fma()) return attend_head_scalar(a);
  switch (a.head_dim) {
    case 8: return attend_avx2<1>(a);
    case 16: return attend_avx2<2>(a);
    case 32: return attend_avx2<4>(a);
    case 64: return attend_avx2<8>(a);
    case 128: return attend_avx2<16>(a);
    default: return attend_avx2<0>(a);
  }
}

void attend_head_scalar(const HeadAttention& a) {
  const float inv_cap = a.softcap > 0 ? 1.0f / a.softcap : 0.f;
  float max_s = -INFINITY;
  for_each_run(a, [&](int64_t row, int64_t n, int64_t j) {
    for (int64_t r = 0; r < n; ++r) {
      const uint16_t* k = a.k + (row + r) * a.row_stride;
      float d = 0;
      for (int i = 0; i < a.head_dim; ++i) d += a.q[i] * f16_to_f32(k[i]);
      a.scores[j + r] = cap(d * a.scale, a.softcap, inv_cap);
      max_s = std::max(max_s, a.scores[j + r]);
    }
  });
  const float inv = exp_and_normalizer(a.scores, a.end - a.first, max_s);
  std::fill(a.out, a.out + a.head_dim, 0.f);
  for_each_run(a, [&](int64_t row, int64_t n, int64_t j) {
    for (int64_t r = 0; r < n; ++r) {
      const float p = f16_to_f32(f32_to_f16(a.scores[j + r] * inv));
      const uint16_t* v = a.v + (row + r) * a.row_stride;
      for (int i = 0; i < a.head_dim; ++i) a.out[i] += p * f16_to_f32(v[i]);
    }
  });
}

namespace {
__attribute__((target("avx2,fma,f16c"))) void exp_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_nonpositive(_mm256_loadu_ps(x + i)));
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
