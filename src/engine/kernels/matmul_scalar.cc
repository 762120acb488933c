// Portable kernels: the definition of every dot product, written as ggml's reference
// vec_dot functions compute them (integer sums per block, then the block scales).
#include <cstring>

#include "engine/kernels/gemm_kernel.h"
#include "engine/quant/block_types.h"
#include "engine/quant/quantize.h"

namespace zs::engine::kernels {
namespace {

inline float h2f(uint16_t h) { return f16_to_f32(h); }

float dot_q4_0(const BlockQ4_0* x, const BlockQ8_0* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      s += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    sum += s * h2f(x[i].d) * h2f(y[i].d);
  }
  return sum;
}

float dot_q4_1(const BlockQ4_1* x, const BlockQ8_1* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    sum += s * h2f(x[i].d) * h2f(y[i].d) + h2f(x[i].m) * h2f(y[i].s);
  }
  return sum;
}

float dot_q5_0(const BlockQ5_0* x, const BlockQ8_0* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int a = ((x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int b = ((x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      s += a * y[i].qs[j] + b * y[i].qs[j + 16];
    }
    sum += s * h2f(x[i].d) * h2f(y[i].d);
  }
  return sum;
}

float dot_q5_1(const BlockQ5_1* x, const BlockQ8_1* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int a = (x[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int b = (x[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      s += a * y[i].qs[j] + b * y[i].qs[j + 16];
    }
    sum += s * h2f(x[i].d) * h2f(y[i].d) + h2f(x[i].m) * h2f(y[i].s);
  }
  return sum;
}

float dot_q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += x[i].qs[j] * y[i].qs[j];
    sum += s * h2f(x[i].d) * h2f(y[i].d);
  }
  return sum;
}

float dot_q4_k(const BlockQ4K* x, const BlockQ8K* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t sc[8], m[8];
    unpack_scales_k4(x[i].scales, sc, m);
    int main = 0, mins = 0;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* q = x[i].qs + 32 * j;
      const int8_t* a = y[i].qs + 64 * j;
      int s_lo = 0, s_hi = 0;
      for (int l = 0; l < 32; ++l) {
        s_lo += (q[l] & 0xF) * a[l];
        s_hi += (q[l] >> 4) * a[l + 32];
      }
      main += sc[2 * j] * s_lo + sc[2 * j + 1] * s_hi;
    }
    for (int j = 0; j < 8; ++j) mins += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    sum += h2f(x[i].d) * y[i].d * main - h2f(x[i].dmin) * y[i].d * mins;
  }
  return sum;
}

float dot_q5_k(const BlockQ5K* x, const BlockQ8K* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t sc[8], m[8];
    unpack_scales_k4(x[i].scales, sc, m);
    int main = 0, mins = 0;
    for (int j = 0; j < 4; ++j) {
      const uint8_t* q = x[i].qs + 32 * j;
      const int8_t* a = y[i].qs + 64 * j;
      int s_lo = 0, s_hi = 0;
      for (int l = 0; l < 32; ++l) {
        s_lo += ((q[l] & 0xF) | (((x[i].qh[l] >> (2 * j)) & 1) << 4)) * a[l];
        s_hi += ((q[l] >> 4) | (((x[i].qh[l] >> (2 * j + 1)) & 1) << 4)) * a[l + 32];
      }
      main += sc[2 * j] * s_lo + sc[2 * j + 1] * s_hi;
    }
    for (int j = 0; j < 8; ++j) mins += m[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    sum += h2f(x[i].d) * y[i].d * main - h2f(x[i].dmin) * y[i].d * mins;
  }
  return sum;
}

float dot_q6_k(const BlockQ6K* x, const BlockQ8K* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int8_t q[256];
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    for (int n = 0; n < 256; n += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        q[n + l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[n + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[n + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[n + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int total = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * j + l] * y[i].qs[16 * j + l];
      total += x[i].scales[j] * s;
    }
    sum += h2f(x[i].d) * y[i].d * total;
  }
  return sum;
}

float dot_q8_k(const BlockQ8K* x, const BlockQ8K* y, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 256; ++j) s += x[i].qs[j] * y[i].qs[j];
    sum += x[i].d * y[i].d * s;
  }
  return sum;
}

// ggml's scalar f32/f16/bf16 dot products accumulate in double.
float dot_f32(const float* x, const float* y, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * y[i]);
  return static_cast<float>(sum);
}

float dot_f16(const uint16_t* x, const uint16_t* y, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(h2f(x[i]) * h2f(y[i]));
  return static_cast<float>(sum);
}

float dot_bf16(const uint16_t* x, const uint16_t* y, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_f32(x[i]) * bf16_to_f32(y[i]));
  return static_cast<float>(sum);
}

template <GgmlType kType>
size_t act_bytes(int64_t n_in) {
  return round_up_64(ggml_row_size(vec_dot_type(kType), n_in));
}

template <GgmlType kType>
void pack(const float* x, int64_t n_in, void* dst) {
  (void)quantize_row(vec_dot_type(kType), x, dst, n_in);  // n_in was validated by the driver
}

template <GgmlType kType>
float dot(const uint8_t* w, const uint8_t* a, int64_t n) {
  if constexpr (kType == GgmlType::kF32)
    return dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(a), n);
  if constexpr (kType == GgmlType::kF16)
    return dot_f16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(a), n);
  if constexpr (kType == GgmlType::kBF16)
    return dot_bf16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(a), n);
  if constexpr (kType == GgmlType::kQ4_0)
    return dot_q4_0(reinterpret_cast<const BlockQ4_0*>(w), reinterpret_cast<const BlockQ8_0*>(a), n / 32);
  if constexpr (kType == GgmlType::kQ4_1)
    return dot_q4_1(reinterpret_cast<const BlockQ4_1*>(w), reinterpret_cast<const BlockQ8_1*>(a), n / 32);
  if constexpr (kType == GgmlType::kQ5_0)
    return dot_q5_0(reinterpret_cast<const BlockQ5_0*>(w), reinterpret_cast<const BlockQ8_0*>(a), n / 32);
  if constexpr (kType == GgmlType::kQ5_1)
    return dot_q5_1(reinterpret_cast<const BlockQ5_1*>(w), reinterpret_cast<const BlockQ8_1*>(a), n / 32);
  if constexpr (kType == GgmlType::kQ8_0)
    return dot_q8_0(reinterpret_cast<const BlockQ8_0*>(w), reinterpret_cast<const BlockQ8_0*>(a), n / 32);
  if constexpr (kType == GgmlType::kQ4_K)
    return dot_q4_k(reinterpret_cast<const BlockQ4K*>(w), reinterpret_cast<const BlockQ8K*>(a), n / 256);
  if constexpr (kType == GgmlType::kQ5_K)
    return dot_q5_k(reinterpret_cast<const BlockQ5K*>(w), reinterpret_cast<const BlockQ8K*>(a), n / 256);
  if constexpr (kType == GgmlType::kQ6_K)
    return dot_q6_k(reinterpret_cast<const BlockQ6K*>(w), reinterpret_cast<const BlockQ8K*>(a), n / 256);
  if constexpr (kType == GgmlType::kQ8_K)
    return dot_q8_k(reinterpret_cast<const BlockQ8K*>(w), reinterpret_cast<const BlockQ8K*>(a), n / 256);
  return 0.f;
}

template <GgmlType kType>
void gemm(const GemmArgs& g, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = g.w + static_cast<size_t>(r) * g.row_stride;
    for (int64_t t = 0; t < g.n_tokens; ++t) {
      g.y[t * g.y_stride + r] = dot<kType>(w, g.act + static_cast<size_t>(t) * g.act_stride, g.n_in);
    }
  }
}

template <GgmlType kType>
constexpr GemmKernel kKernel{&act_bytes<kType>, &pack<kType>, &gemm<kType>};

}  // namespace

const GemmKernel* scalar_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return &kKernel<GgmlType::kF32>;
    case GgmlType::kF16: return &kKernel<GgmlType::kF16>;
    case GgmlType::kBF16: return &kKernel<GgmlType::kBF16>;
    case GgmlType::kQ4_0: return &kKernel<GgmlType::kQ4_0>;
    case GgmlType::kQ4_1: return &kKernel<GgmlType::kQ4_1>;
    case GgmlType::kQ5_0: return &kKernel<GgmlType::kQ5_0>;
    case GgmlType::kQ5_1: return &kKernel<GgmlType::kQ5_1>;
    case GgmlType::kQ8_0: return &kKernel<GgmlType::kQ8_0>;
    case GgmlType::kQ4_K: return &kKernel<GgmlType::kQ4_K>;
    case GgmlType::kQ5_K: return &kKernel<GgmlType::kQ5_K>;
    case GgmlType::kQ6_K: return &kKernel<GgmlType::kQ6_K>;
    case GgmlType::kQ8_K: return &kKernel<GgmlType::kQ8_K>;
    default: return nullptr;
  }
}

}  // namespace zs::engine::kernels
