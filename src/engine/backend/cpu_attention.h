#pragma once
// f16 cache helpers for the CPU backend's attention, with an F16C/AVX2 path chosen at run time.
#include <cstdint>

namespace zs::engine::cpu {

// sum_i q[i] * f16(k[i]); q is already rounded to f16 precision by the caller.
float dot_f32_f16(const float* q, const uint16_t* k, int n);
// acc[i] += p * f16(v[i])
void axpy_f16(float p, const uint16_t* v, float* acc, int n);
// dst[i] = f16(src[i])
void store_f16(const float* src, uint16_t* dst, int n);

}  // namespace zs::engine::cpu
