#pragma once
// The arithmetic of the 2026 reference build (../shared/golden/2026) where it differs from
// the 2025 one the engine first matched, for the vision encoders held to it (Gemma 3 and
// SmolVLM projectors; Backend::RefBuild::k2026). Bit-for-bit matters there: the encoders
// round activations to f16 before every f16 product and look GELU up in an f16 table, so a
// one-ulp difference in f32 occasionally lands on the other side of an f16 rounding and
// moves the image embeddings by ~1e-3 (docs/engine.md, "Gemma 3 vision and SmolVLM").
// Established against the reference's own embeddings (its MTMD_DEBUG_EMBEDDINGS output) on
// synthetic images, one operation at a time:
//   - LayerNorm: the mean is the f32 of a double sum, divided in f32; the variance sums the
//     squares of (x - mean) 16 at a time (each group of 16 reduced as a halving tree in f32,
//     the group sums added in double), then 1 / sqrtf(var + eps) scales, then * w, then + b,
//     each rounded to f32.
//   - Attention scores for head dims below 16 (too short for the 16-wide matrix kernel): 8
//     products at a time, rounded to f32 and added in order, the rest as fused
//     multiply-adds (dot_short). Head dims that are multiples of 16 go through the matrix
//     kernel the engine already reproduces.
//   - Softmax: exp is the reference's vector exp (ARM optimized-routines' expf: n = x/ln2
//     rounded by the 1.5*2^23 shift, r = x - n*ln2 in two parts, a degree-5 polynomial in
//     fused multiply-adds, scaled by 2^n); the row sum adds 16-value halving-tree sums in
//     double; the row is multiplied by the f32 of 1/sum.
//   - GELU: the f16 table is built with the compiler's contraction of 1 + 0.044715*x*x into
//     one fused multiply-add (one entry of the 65536 differs: x = -1.9990234); inputs at or
//     below -10 give 0 and inputs at or above 10 pass through.
#include <cstdint>

namespace zs::engine::ref2026 {

// One row of dim values; out may alias x.
void layer_norm_row(const float* x, const float* weight, const float* bias, int64_t dim, float eps, float* out);

// The GELU table, indexed by the f16 bits of the input.
const float* gelu_f16_table();
void gelu(float* x, int64_t n);

// In place: row = softmax(row * scale).
void softmax_row(float* row, int64_t n, float scale);

// The reference's vector exp for one value (for tests; softmax_row uses the vector form).
float expf(float x);

// Dot product of n < 16 values as the reference sums them.
float dot_short(const float* a, const float* b, int64_t n);

}  // namespace zs::engine::ref2026
