#pragma once
// GLM-Edge-V's projector (`clip.projector_type = adapter`, `clip.has_glm_projector`): the
// vision encoder's g x g patch rows (after post_ln) are arranged as an image of `hidden`
// channels, a 2x2 stride-2 convolution (+ bias) maps them to (g/2)^2 tokens of the text
// model's width (row-major), then `linear` (no bias) -> LayerNorm `norm1` -> GELU ->
// dense_4h_to_h(silu(gate(x)) * dense_h_to_4h(x)); the learned `adapter.boi` row goes
// before them and `adapter.eoi` after, so an image becomes (g/2)^2 + 2 rows.
// The convolution is an im2col followed by a matrix product with the kernel as a
// [2*2*hidden] -> n_embd matrix, so an F16 kernel rounds its inputs to f16 as the
// reference's F16 im2col does.
#include <cstdint>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/kernels/matmul.h"

namespace zs::engine {

struct GlmAdapterWeights {
  WeightView conv;  // [2*2*hidden] -> n_embd; row inputs ordered [channel][ky][kx]
  const float* conv_b = nullptr;
  WeightView linear;  // n_embd -> n_embd, no bias
  const float *norm_w = nullptr, *norm_b = nullptr;
  WeightView h_to_4h, gate;  // n_embd -> n_ff
  WeightView four_h_to_h;    // n_ff -> n_embd
  const float *boi = nullptr, *eoi = nullptr;
  int n_embd = 0;  // the text model's width (the conv's output channels)
  int n_ff = 0;

  bool loaded() const { return conv.data != nullptr; }
};

// Rows an image becomes: the adapter's (side/2)^2 tokens plus boi and eoi.
inline int glm_adapter_tokens(int patches_per_side) {
  return (patches_per_side / 2) * (patches_per_side / 2) + 2;
}

// Binds the adapter's tensors (names as the GLM-Edge converter writes them); `hidden` is the
// vision encoder's width. Errors name the missing or misshapen tensor.
core::Status bind_glm_adapter(TensorBinder& binder, int hidden, GlmAdapterWeights& out);

// im2col of the 2x2 stride-2 convolution: `in` holds side x side rows of d values (patch
// (y, x) at row y * side + x, channel c at column c); output row oy * (side/2) + ox holds, at
// column (c * 2 + ky) * 2 + kx, channel c of patch (2*oy + ky, 2*ox + kx). side must be even.
void glm_adapter_im2col(const float* in, int side, int d, float* out);

// Multiply-adds (x2) of the adapter for one image of side x side patches of width `hidden`.
double glm_adapter_flops(const GlmAdapterWeights& w, int side);

// Runs the adapter on one image's post_ln patch rows; writes glm_adapter_tokens(side) rows of
// w.n_embd values to `out` (boi first, eoi last). Scratch buffers come from the backend.
class GlmAdapter {
 public:
  GlmAdapter(const GlmAdapterWeights& w, Backend& backend, int side, int hidden, float eps);
  void run(const float* patch_rows, float* out);

 private:
  const GlmAdapterWeights& w_;
  Backend& backend_;
  int side_, hidden_, n_tok_;
  float eps_;
  float *cols_, *conv_out_, *h_, *gate_, *up_;
};

}  // namespace zs::engine
