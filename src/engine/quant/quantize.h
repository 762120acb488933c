#pragma once
// Scalar reference conversions between f32 and every computable tensor type.
// These define the formats; the SIMD kernels in engine/kernels/ must agree with them.
#include <cstdint>

#include "core/status.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even

// Quantizes n values (a multiple of the type's block size) into dst.
core::Status quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// Expands n values of a row of `type` into f32.
core::Status dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace zs::engine
