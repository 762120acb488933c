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

// Quantizes n values (a multiple of the type's block size) into dst. Weight types use the
// reference quantizers of ggml (K-quants with a least-squares scale/min search); the
// activation types Q8_0, Q8_1 and Q8_K round exactly as ggml's x86 CPU backend does, since
// matmul quantizes activations with them. Block layouts: engine/quant/block_types.h.
core::Status quantize_row(GgmlType type, const float* src, void* dst, int64_t n);
// Expands n values of a row of `type` into f32.
core::Status dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

}  // namespace zs::engine
