#include "engine/quant/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "engine/quant/block_types.h"

namespace zs::engine {
namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round half to even, as ggml's nearest_int (valid for |v| < 2^22, which all callers keep).
inline int nearest_int(float v) {
  float t = v + 12582912.f;  // 1.5 * 2^23: the sum's mantissa holds the rounded integer
  return static_cast<int>(float_bits(t) & 0x007fffff) - 0x00400000;
}

inline float h2f(uint16_t h) { return f16_to_f32(h); }
inline uint16_t f2h(float f) { return f32_to_f16(f); }

// ---------------------------------------------------------------- 32-blocks

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    // The signed extreme maps to -8 so the full [-8, 7] range is used.
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    for (int j = 0; j < kQK / 2; ++j) {
      int a = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      int b = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
    }
  }
}

void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = ((x[i].qs[j] & 0xF) - 8) * d;
      y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize_q4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    for (int j = 0; j < kQK / 2; ++j) {
      int a = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      int b = std::min(15, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(a | (b << 4));
    }
  }
}

void dequantize_q4_1(const BlockQ4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = (x[i].qs[j] & 0xF) * d + m;
      y[j + 16] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

void quantize_q5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      int a = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      int b = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
      qh |= static_cast<uint32_t>((a >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((b >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void dequantize_q5_0(const BlockQ5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      int a = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      int b = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = (a - 16) * d;
      y[j + 16] = (b - 16) * d;
    }
  }
}

void quantize_q5_1(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = f2h(d);
    y[i].m = f2h(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      int a = std::min(31, static_cast<int>((x[j] - min) * id + 0.5f));
      int b = std::min(31, static_cast<int>((x[j + 16] - min) * id + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>((a & 0xF) | ((b & 0xF) << 4));
      qh |= static_cast<uint32_t>((a >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((b >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void dequantize_q5_1(const BlockQ5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d), m = h2f(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      int a = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      int b = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = a * d + m;
      y[j + 16] = b * d + m;
    }
  }
}

// Q8_0 and Q8_1 follow ggml's x86 activation quantizer (scale 127/amax, round half to
// even) rather than its portable one, because our results are compared with llama.cpp
// running on x86 and the activations are quantized with this function.
template <typename Block>
float quantize_q8_block(const float* x, Block& b) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.f;
  const float id = amax != 0 ? 127.f / amax : 0.0f;
  b.d = f2h(d);
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    b.qs[j] = static_cast<int8_t>(nearest_int(x[j] * id));
    sum += b.qs[j];
  }
  return d * static_cast<float>(sum);
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) quantize_q8_block(x + i * kQK, y[i]);
}

void quantize_q8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) y[i].s = f2h(quantize_q8_block(x + i * kQK, y[i]));
}

template <typename Block>
void dequantize_q8(const Block* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ---------------------------------------------------------------- K-quants

// Fits x ≈ scale * L - min with L in [0, nmax] minimising the weighted squared error:
// starts from the plain min/max grid, then tries nstep slightly different grid spacings
// and solves the 2x2 least-squares problem for each. Returns scale; *the_min gets min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                    float rdelta, int nstep) {
  float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;  // the offset may only lower values; a positive block keeps 0 exact
  if (max == min) {
    std::fill(L, L + n, 0);
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
    L[i] = static_cast<uint8_t>(l);
    float diff = scale * l + min - x[i];
    best_err += w[i] * diff * diff;
  }
  uint8_t aux[32];
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
      aux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < n; ++i) {
      float diff = this_scale * aux[i] + this_min - x[i];
      err += w[i] * diff * diff;
    }
    if (err < best_err) {
      std::copy(aux, aux + n, L);
      best_err = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric fit x ≈ scale * L, L in [-nmax, nmax-1], weights x^2; searches the grid spacing
// around -nmax/max. Returns the scale (negative when the extreme value is positive).
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) {
    std::fill(L, L + n, 0);
    return 0.f;
  }
  float best_scale = 0, best = -1;
  for (int is = -9; is <= 9; ++is) {
    float iscale = -(nmax + 0.1f * is) / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      best = sumlx * sumlx / suml2;
      best_scale = sumlx / suml2;
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    }
  }
  return best_scale;
}

// Q4_K and Q5_K share the 6-bit scale/min encoding; nmax is 15 or 31.
void quantize_k_scales(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out, uint16_t* dmin_out,
                       uint8_t* scales_out, uint8_t* L) {
  float sum_x2 = 0;
  for (int l = 0; l < kQKK; ++l) sum_x2 += x[l] * x[l];
  const float av_x = std::sqrt(sum_x2 / kQKK);
  float scales[8], mins[8], w[32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    for (int l = 0; l < 32; ++l) w[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = fit_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(scales_out, 0, 12);
  for (int j = 0; j < 8; ++j) {
    uint8_t ls = static_cast<uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    uint8_t lm = static_cast<uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      scales_out[j] = ls;
      scales_out[j + 4] = lm;
    } else {
      scales_out[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales_out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales_out[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = f2h(max_scale / 63.f);
  *dmin_out = f2h(max_min / 63.f);
  // Re-quantize against the scales as actually stored (6-bit, f16) to avoid drift.
  uint8_t sc[8], m[8];
  unpack_scales_k4(scales_out, sc, m);
  const float d = h2f(*d_out), dmin = h2f(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    const float dj = d * sc[j];
    if (dj == 0) continue;
    const float dm = dmin * m[j];
    for (int l = 0; l < 32; ++l) {
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + l] + dm) / dj), 0, nmax));
    }
  }
}

void quantize_q4_k(const float* x, BlockQ4K* y, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_k_scales(x, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    for (int j = 0; j < kQKK; j += 64) {
      for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
    }
  }
}

void dequantize_q4_k(const BlockQ4K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    uint8_t sc[8], m[8];
    unpack_scales_k4(x[i].scales, sc, m);
    const uint8_t* q = x[i].qs;
    for (int j = 0; j < 4; ++j, q += 32) {
      const float d1 = d * sc[2 * j], m1 = dmin * m[2 * j];
      const float d2 = d * sc[2 * j + 1], m2 = dmin * m[2 * j + 1];
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void quantize_q5_k(const float* x, BlockQ5K* y, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_k_scales(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof y[i].qh);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < kQKK; n += 64, m1 <<= 2, m2 <<= 2) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j], l2 = L[n + j + 32];
        if (l1 > 15) {
          l1 -= 16;
          y[i].qh[j] |= m1;
        }
        if (l2 > 15) {
          l2 -= 16;
          y[i].qh[j] |= m2;
        }
        y[i].qs[n / 2 + j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void dequantize_q5_k(const BlockQ5K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d), dmin = h2f(x[i].dmin);
    uint8_t sc[8], m[8];
    unpack_scales_k4(x[i].scales, sc, m);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 4; ++j, ql += 32, u1 <<= 2, u2 <<= 2) {
      const float d1 = d * sc[2 * j], m1 = dmin * m[2 * j];
      const float d2 = d * sc[2 * j + 1], m2 = dmin * m[2 * j + 1];
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6K* y, int64_t nb) {
  int8_t L[kQKK];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 16; ++ib) {
      scales[ib] = fit_scale_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
      if (std::fabs(scales[ib]) > max_abs) {
        max_abs = std::fabs(scales[ib]);
        max_scale = scales[ib];
      }
    }
    if (max_abs == 0) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = f2h(1 / iscale);
    for (int ib = 0; ib < 16; ++ib)
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    const float d = h2f(y[i].d);
    uint8_t U[kQKK];
    for (int ib = 0; ib < 16; ++ib) {
      const float dj = d * y[i].scales[ib];
      for (int l = 0; l < 16; ++l) {
        int q = dj != 0 ? std::clamp(nearest_int(x[16 * ib + l] / dj), -32, 31) : 0;
        U[16 * ib + l] = static_cast<uint8_t>(q + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = U[j + l], q2 = U[j + l + 32], q3 = U[j + l + 64], q4 = U[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void dequantize_q6_k(const BlockQ6K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = h2f(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQKK; n += 128, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void quantize_q8_k(const float* x, BlockQ8K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float amax = 0, max = 0;
    for (int j = 0; j < kQKK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0) {
      std::memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    // -127 (not -128) keeps the codes symmetric, as ggml does.
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_q8_k(const BlockQ8K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    for (int j = 0; j < kQKK; ++j) y[j] = x[i].d * x[i].qs[j];
  }
}

core::Status check(GgmlType type, int64_t n, bool for_quantize) {
  auto traits = ggml_type_traits(static_cast<uint32_t>(type));
  if (!traits) return core::Status::error("unknown tensor type " + std::to_string(static_cast<uint32_t>(type)));
  const bool supported = traits->computable || type == GgmlType::kQ8_1;
  if (!supported) {
    return core::Status::error("tensor type " + std::string(traits->name) +
                               (for_quantize ? " cannot be quantized" : " cannot be dequantized") + " by this build");
  }
  if (n < 0 || n % traits->block_size != 0) {
    return core::Status::error("row of " + std::to_string(n) + " values is not a multiple of the " +
                               std::string(traits->name) + " block size " + std::to_string(traits->block_size));
  }
  return core::Status::ok();
}

}  // namespace

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return bits_float(sign | 0x7F800000 | (mant << 13));  // inf / nan (payload kept)
  if (exp != 0) return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_float(sign);
  // Subnormal: value = mant * 2^-24, exact in f32.
  float v = static_cast<float>(mant) * 0x1p-24f;
  return sign ? -v : v;
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7FFFFFFF;
  if (abs > 0x7F800000) return static_cast<uint16_t>(sign | 0x7E00 | ((abs >> 13) & 0x1FF));  // quiet nan
  if (abs >= 0x477FF000) return static_cast<uint16_t>(sign | 0x7C00);                         // rounds to >= 65520: inf
  if (abs < 0x38800000) {
    // Result is subnormal (or zero): round abs * 2^24 to an integer, half to even.
    if (abs < 0x33000000) return sign;  // below half of the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7FFFFF) | 0x800000;
    const int shift = 126 - static_cast<int>(exp);  // 14..24 bits dropped
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias and round the 13 dropped bits half to even; a carry into the exponent is
  // the correct result.
  uint32_t r = abs - 0x38000000;  // exponent bias 127 -> 15
  r += 0xFFF + ((r >> 13) & 1);
  return static_cast<uint16_t>(sign | (r >> 13));
}

float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t f32_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet nan
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

core::Status quantize_row(GgmlType type, const float* src, void* dst, int64_t n) {
  ZS_RETURN_IF_ERROR(check(type, n, true));
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;
    case GgmlType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      break;
    }
    case GgmlType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      break;
    }
    case GgmlType::kQ4_0: quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n / kQK); break;
    case GgmlType::kQ4_1: quantize_q4_1(src, static_cast<BlockQ4_1*>(dst), n / kQK); break;
    case GgmlType::kQ5_0: quantize_q5_0(src, static_cast<BlockQ5_0*>(dst), n / kQK); break;
    case GgmlType::kQ5_1: quantize_q5_1(src, static_cast<BlockQ5_1*>(dst), n / kQK); break;
    case GgmlType::kQ8_0: quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n / kQK); break;
    case GgmlType::kQ8_1: quantize_q8_1(src, static_cast<BlockQ8_1*>(dst), n / kQK); break;
    case GgmlType::kQ4_K: quantize_q4_k(src, static_cast<BlockQ4K*>(dst), n / kQKK); break;
    case GgmlType::kQ5_K: quantize_q5_k(src, static_cast<BlockQ5K*>(dst), n / kQKK); break;
    case GgmlType::kQ6_K: quantize_q6_k(src, static_cast<BlockQ6K*>(dst), n / kQKK); break;
    case GgmlType::kQ8_K: quantize_q8_k(src, static_cast<BlockQ8K*>(dst), n / kQKK); break;
    default: return core::Status::error("tensor type " + std::string(ggml_type_name(type)) + " cannot be quantized");
  }
  return core::Status::ok();
}

core::Status dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  ZS_RETURN_IF_ERROR(check(type, n, false));
  switch (type) {
    case GgmlType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;
    case GgmlType::kF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      break;
    }
    case GgmlType::kBF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      break;
    }
    case GgmlType::kQ4_0: dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, n / kQK); break;
    case GgmlType::kQ4_1: dequantize_q4_1(static_cast<const BlockQ4_1*>(src), dst, n / kQK); break;
    case GgmlType::kQ5_0: dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, n / kQK); break;
    case GgmlType::kQ5_1: dequantize_q5_1(static_cast<const BlockQ5_1*>(src), dst, n / kQK); break;
    case GgmlType::kQ8_0: dequantize_q8(static_cast<const BlockQ8_0*>(src), dst, n / kQK); break;
    case GgmlType::kQ8_1: dequantize_q8(static_cast<const BlockQ8_1*>(src), dst, n / kQK); break;
    case GgmlType::kQ4_K: dequantize_q4_k(static_cast<const BlockQ4K*>(src), dst, n / kQKK); break;
    case GgmlType::kQ5_K: dequantize_q5_k(static_cast<const BlockQ5K*>(src), dst, n / kQKK); break;
    case GgmlType::kQ6_K: dequantize_q6_k(static_cast<const BlockQ6K*>(src), dst, n / kQKK); break;
    case GgmlType::kQ8_K: dequantize_q8_k(static_cast<const BlockQ8K*>(src), dst, n / kQKK); break;
    default: return core::Status::error("tensor type " + std::string(ggml_type_name(type)) + " cannot be dequantized");
  }
  return core::Status::ok();
}

}  // namespace zs::engine
