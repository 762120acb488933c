#include "engine/backend/cpu_attention.h"

#include <immintrin.h>

#include "engine/backend/f16_table.h"
#include "engine/quant/quantize.h"

namespace zs::engine::cpu {
namespace {

__attribute__((target("avx2,fma,f16c"))) float dot_avx2(const float* q, const uint16_t* k, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, acc);
  }
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += q[i] * f16_to_f32(k[i]);
  return r;
}

__attribute__((target("avx2,fma,f16c"))) void axpy_avx2(float p, const uint16_t* v, float* acc, int n) {
  __m256 pv = _mm256_set1_ps(p);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(pv, vv, _mm256_loadu_ps(acc + i)));
  }
  for (; i < n; ++i) acc[i] += p * f16_to_f32(v[i]);
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

float dot_f32_f16(const float* q, const uint16_t* k, int n) {
  if (has_avx2_fma()) return dot_avx2(q, k, n);
  float r = 0;
  for (int i = 0; i < n; ++i) r += q[i] * f16_to_f32(k[i]);
  return r;
}

void axpy_f16(float p, const uint16_t* v, float* acc, int n) {
  if (has_avx2_fma()) return axpy_avx2(p, v, acc, n);
  for (int i = 0; i < n; ++i) acc[i] += p * f16_to_f32(v[i]);
}

void store_f16(const float* src, uint16_t* dst, int n) {
  if (has_avx2_fma()) return store_avx2(src, dst, n);
  for (int i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

}  // namespace zs::engine::cpu
