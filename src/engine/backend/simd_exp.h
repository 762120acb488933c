#pragma once
// The AVX2 exp the CPU backend's softmaxes share (attention, the vision encoders' full-attention
// softmax, soft-capping), and the attention kernels' softmax. x86-64 only; callers check
// has_avx2_fma() first. Pure functions.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/quant/quantize.h"

namespace zs::engine::cpu {

// e^x for x <= 0 to within 1 ulp of std::exp (Cephes' polynomial after splitting off a power of
// two: n = round(x / ln 2), ln 2 in two parts so that the remainder is exact); 0 below the f32
// range, where std::exp underflows too.
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive_avx2(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  const __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(y, _mm256_castsi256_ps(pow2)));
}

// In place: x[i] = e^(x[i] - max) for every i < n (max >= every x[i]), 8 at a time; returns
// their sum, summed in double like the scalar softmaxes.
__attribute__((target("avx2,fma"))) inline double exp_shifted_sum_avx2(float* x, int64_t n, float max) {
  const __m256 vm = _mm256_set1_ps(max);
  __m256d sum4 = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
    _mm256_storeu_ps(x + j, e);
    sum4 = _mm256_add_pd(sum4, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                                             _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, sum4);
  double sum = parts[0] + parts[1] + parts[2] + parts[3];
  for (; j < n; ++j) sum += (x[j] = std::exp(x[j] - max));
  return sum;
}

// In place: s[j] = softmax(s)[j] over n scores (n >= 1), each rounded to f16 and back, as the
// attention kernels' probabilities are: 8 at a time (F16C rounds to nearest even, as f32_to_f16
// does).
__attribute__((target("avx2,fma,f16c"))) inline void softmax_f16_avx2(float* s, int64_t n) {
  __m256 mv = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(s + i));
  alignas(32) float m8[8];
  _mm256_store_ps(m8, mv);
  float max_s = -INFINITY;
  for (float m : m8) max_s = std::max(max_s, m);
  for (; i < n; ++i) max_s = std::max(max_s, s[i]);
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / exp_shifted_sum_avx2(s, n, max_s)));
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(s + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + i), inv),
                                                            _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) s[i] = f16_to_f32(f32_to_f16(s[i] * _mm256_cvtss_f32(inv)));
}

}  // namespace zs::engine::cpu
#endif
