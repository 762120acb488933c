#include "engine/backend/ref2026.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/f16_table.h"
#include "engine/quant/quantize.h"

namespace zs::engine::ref2026 {
namespace {

// Sum of 16 values as a halving tree (lanes i and i + 8, then i and i + 4, ...), the order of
// a 512-bit horizontal add.
float tree_sum16(const float* v) {
  float a8[8], a4[4];
  for (int k = 0; k < 8; ++k) a8[k] = v[k] + v[k + 8];
  for (int k = 0; k < 4; ++k) a4[k] = a8[k] + a8[k + 4];
  const float a0 = a4[0] + a4[2], a1 = a4[1] + a4[3];
  return a0 + a1;
}

// Constants of the vector exp (ARM optimized-routines' expf).
constexpr float kShift = 0x1.8p23f;
constexpr float kInvLn2 = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
constexpr float kC0 = 0x1.ffffecp-1f, kC1 = 0x1.fffdb6p-2f, kC2 = 0x1.555e66p-3f, kC3 = 0x1.573e2ep-5f,
                kC4 = 0x1.0e4020p-7f;

#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip -Wuninitialized inside _mm512_scalef_ps and
// _mm512_reduce_add_ps (their masked builtins take an undefined pass-through operand).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
bool has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return yes;
}

__attribute__((target("avx512f,avx512dq"))) __m512 exp16(__m512 x) {
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(kInvLn2), _mm512_set1_ps(kShift));
  const __m512 n = _mm512_sub_ps(z, _mm512_set1_ps(kShift));
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 hi = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(kC4), r, _mm512_set1_ps(kC3)), r2,
                                    _mm512_fmadd_ps(_mm512_set1_ps(kC2), r, _mm512_set1_ps(kC1)));
  const __m512 p = _mm512_fmadd_ps(hi, r2, _mm512_fmadd_ps(_mm512_set1_ps(kC0), r, _mm512_set1_ps(1.0f)));
  const __m512 res = _mm512_scalef_ps(p, n);
  const __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
  if (!big) return res;
  const __mmask16 neg = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
  const __m512 alt = _mm512_mask_blend_ps(neg, _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(big, res, alt);
}

// row *= scale, and the largest value (max is exact in any order).
__attribute__((target("avx512f,avx512dq"))) float scale_max16(float* row, int64_t n, float scale, int64_t* done) {
  const __m512 vs = _mm512_set1_ps(scale);
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(row + j), vs);
    _mm512_storeu_ps(row + j, v);
    vmax = _mm512_max_ps(vmax, v);
  }
  *done = j;
  return _mm512_reduce_max_ps(vmax);
}

__attribute__((target("avx512f,avx512dq"))) double exp_block16(float* v, float max) {
  const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(v), _mm512_set1_ps(max)));
  _mm512_storeu_ps(v, e);
  return static_cast<double>(_mm512_reduce_add_ps(e));
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void layer_norm_row(const float* x, const float* weight, const float* bias, int64_t dim, float eps, float* out) {
  double total = 0;
  for (int64_t i = 0; i < dim; ++i) total += static_cast<double>(x[i]);
  const float mean = static_cast<float>(total) / static_cast<float>(dim);
  thread_local std::vector<float> y;
  y.resize(static_cast<size_t>(dim));
  double squares = 0;
  int64_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    float sq[16];
    for (int k = 0; k < 16; ++k) {
      y[i + k] = x[i + k] - mean;
      sq[k] = y[i + k] * y[i + k];
    }
    squares += static_cast<double>(tree_sum16(sq));
  }
  for (; i < dim; ++i) {
    y[i] = x[i] - mean;
    squares += static_cast<double>(y[i] * y[i]);
  }
  const float variance = static_cast<float>(squares / static_cast<double>(dim));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (int64_t k = 0; k < dim; ++k) {
    float v = y[k] * scale;
    if (weight) v = v * weight[k];
    if (bias) v = v + bias[k];
    out[k] = v;
  }
}

const float* gelu_f16_table() {
  // As the CPU backend's GELU table, with the inner polynomial as one fused multiply-add.
  static const std::vector<float> table = f16_function_table([](float v) {
    const float inner = std::fma(0.044715f * v, v, 1.0f);
    return 0.5f * v * (1.0f + std::tanh(0.79788456080286535588f * v * inner));
  });
  return table.data();
}

void gelu(float* x, int64_t n) { apply_f16_table(gelu_f16_table(), x, n, /*clamp_beyond_10=*/true); }

float expf(float x) {
  const float z = std::fma(x, kInvLn2, kShift);
  const float n = z - kShift;
  const float r = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  if (std::fabs(n) > 192.f) return n <= 0 ? 0.f : INFINITY;
  const float r2 = r * r;
  const float hi = std::fma(std::fma(kC4, r, kC3), r2, std::fma(kC2, r, kC1));
  const float p = std::fma(hi, r2, std::fma(kC0, r, 1.0f));
  return std::ldexp(p, static_cast<int>(n));
}

void softmax_row(float* row, int64_t n, float scale) {
  float max = -INFINITY;
  int64_t j = 0;
#if defined(__x86_64__)
  if (has_avx512()) max = scale_max16(row, n, scale, &j);
#endif
  for (; j < n; ++j) {
    row[j] *= scale;
    max = std::max(max, row[j]);
  }
  double sum = 0;
  int64_t i = 0;
#if defined(__x86_64__)
  if (has_avx512())
    for (; i + 16 <= n; i += 16) sum += exp_block16(row + i, max);
#endif
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; ++k) row[i + k] = expf(row[i + k] - max);
    sum += static_cast<double>(tree_sum16(row + i));
  }
  // The reference takes the C library's expf for a row's last n % 16 values.
  for (; i < n; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += static_cast<double>(row[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

float dot_short(const float* a, const float* b, int64_t n) {
  // The reference's compiler vectorised the tail loop of its dot product: 8 products at a
  // time (rounded, then added in order), the last n % 8 as fused multiply-adds.
  float sum = 0.f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) {
      const float p = a[i + k] * b[i + k];
      sum = sum + p;
    }
  for (; i < n; ++i) sum = std::fma(a[i], b[i], sum);
  return sum;
}

}  // namespace zs::engine::ref2026
