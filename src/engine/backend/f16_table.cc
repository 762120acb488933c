#include "engine/backend/f16_table.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

void apply_scalar(const float* table, float* x, int64_t n, bool clamp) {
  for (int64_t i = 0; i < n; ++i) {
    if (clamp && x[i] <= -10.0f)
      x[i] = 0.0f;
    else if (!clamp || x[i] < 10.0f)
      x[i] = table[f32_to_f16(x[i])];
  }
}

#if defined(__x86_64__)
// 8 values at a time; returns how many were done (a multiple of 8).
__attribute__((target("avx2,fma,f16c"))) int64_t apply_avx2(const float* table, float* x, int64_t n, bool clamp) {
  const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    __m256 g = _mm256_i32gather_ps(table, _mm256_cvtepu16_epi32(h), 4);
    if (clamp) {
      g = _mm256_blendv_ps(g, _mm256_setzero_ps(), _mm256_cmp_ps(v, lo, _CMP_LE_OQ));
      g = _mm256_blendv_ps(g, v, _mm256_cmp_ps(v, hi, _CMP_GE_OQ));
    }
    _mm256_storeu_ps(x + i, g);
  }
  return i;
}
#endif

}  // namespace

bool has_avx2_fma() {
#if defined(__x86_64__)
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return yes;
#else
  return false;
#endif
}

std::vector<float> f16_function_table(float (*f)(float)) {
  std::vector<float> t(1 << 16);
  for (uint32_t h = 0; h < t.size(); ++h) t[h] = f16_to_f32(f32_to_f16(f(f16_to_f32(static_cast<uint16_t>(h)))));
  return t;
}

void apply_f16_table(const float* table, float* x, int64_t n, bool clamp_beyond_10) {
  int64_t done = 0;
#if defined(__x86_64__)
  if (has_avx2_fma()) done = apply_avx2(table, x, n, clamp_beyond_10);
#endif
  apply_scalar(table, x + done, n - done, clamp_beyond_10);
}

}  // namespace zs::engine
