#include "engine/vision/glm_adapter.h"

#include <cstring>
#include <string>

namespace zs::engine {

using core::Status;

// GLM-Edge adapter

Status bind_glm_adapter(TensorBinder& b, int hidden, GlmAdapterWeights& w) {
  const GgufTensorInfo* conv = b.info("adapter.conv.weight");
  if (!conv) return Status::error("the adapter projector (GLM-Edge-V) needs tensor 'adapter.conv.weight'");
  if (conv->n_dims != 4 || conv->ne[0] != 2 || conv->ne[1] != 2 || conv->ne[2] != hidden)
    return Status::error("tensor 'adapter.conv.weight' must be a 2x2 kernel over the " + std::to_string(hidden) +
                         " vision channels, [2, 2, " + std::to_string(hidden) + ", n_embd]");
  const int64_t e = conv->ne[3];
  const GgufTensorInfo* up = b.info("adapter.linear.dense_h_to_4h.weight");
  if (!up) return Status::error("the adapter projector (GLM-Edge-V) needs tensor 'adapter.linear.dense_h_to_4h.weight'");
  const int64_t ff = up->ne[1];
  w.n_embd = static_cast<int>(e);
  w.n_ff = static_cast<int>(ff);
  auto conv_view = b.matrix_flat("adapter.conv.weight", 4LL * hidden, e);
  if (!conv_view) return conv_view.status();
  w.conv = conv_view.value();
  ZS_RETURN_IF_ERROR(b.bind(w.conv_b, "adapter.conv.bias", e, true));
  ZS_RETURN_IF_ERROR(b.bind(w.linear, "adapter.linear.linear.weight", e, e));
  ZS_RETURN_IF_ERROR(b.bind(w.norm_w, "adapter.linear.norm1.weight", e, true));
  ZS_RETURN_IF_ERROR(b.bind(w.norm_b, "adapter.linear.norm1.bias", e, true));
  ZS_RETURN_IF_ERROR(b.bind(w.h_to_4h, "adapter.linear.dense_h_to_4h.weight", e, ff));
  ZS_RETURN_IF_ERROR(b.bind(w.gate, "adapter.linear.gate.weight", e, ff));
  ZS_RETURN_IF_ERROR(b.bind(w.four_h_to_h, "adapter.linear.dense_4h_to_h.weight", ff, e));
  ZS_RETURN_IF_ERROR(b.bind(w.boi, "adapter.boi", e, true));
  ZS_RETURN_IF_ERROR(b.bind(w.eoi, "adapter.eoi", e, true));
  return Status::ok();
}

void glm_adapter_im2col(const float* in, int side, int d, float* out) {
  const int half = side / 2;
  for (int oy = 0; oy < half; ++oy)
    for (int ox = 0; ox < half; ++ox) {
      float* row = out + (static_cast<int64_t>(oy) * half + ox) * 4 * d;
      for (int ky = 0; ky < 2; ++ky)
        for (int kx = 0; kx < 2; ++kx) {
          const float* src = in + (static_cast<int64_t>(2 * oy + ky) * side + (2 * ox + kx)) * d;
          for (int c = 0; c < d; ++c) row[(c * 2 + ky) * 2 + kx] = src[c];
        }
    }
}

double glm_adapter_flops(const GlmAdapterWeights& w, int side) {
  const double t = static_cast<double>(side / 2) * (side / 2);
  auto mm = [&](const WeightView& m) { return 2.0 * static_cast<double>(m.n_in) * static_cast<double>(m.n_out) * t; };
  return mm(w.conv) + mm(w.linear) + mm(w.h_to_4h) + mm(w.gate) + mm(w.four_h_to_h);
}

GlmAdapter::GlmAdapter(const GlmAdapterWeights& w, Backend& backend, int side, int hidden, float eps)
    : w_(w), backend_(backend), side_(side), hidden_(hidden), n_tok_((side / 2) * (side / 2)), eps_(eps) {
  cols_ = backend.alloc(static_cast<int64_t>(n_tok_) * 4 * hidden);
  conv_out_ = backend.alloc(static_cast<int64_t>(n_tok_) * w.n_embd);
  h_ = backend.alloc(static_cast<int64_t>(n_tok_) * w.n_embd);
  gate_ = backend.alloc(static_cast<int64_t>(n_tok_) * w.n_ff);
  up_ = backend.alloc(static_cast<int64_t>(n_tok_) * w.n_ff);
}

void GlmAdapter::run(const float* patch_rows, float* out) {
  const int64_t e = w_.n_embd, t = n_tok_;
  glm_adapter_im2col(patch_rows, side_, hidden_, cols_);
  backend_.matmul(w_.conv, cols_, t, conv_out_);
  backend_.add_bias(conv_out_, w_.conv_b, t, e);
  backend_.matmul(w_.linear, conv_out_, t, h_);
  backend_.layer_norm(h_, w_.norm_w, w_.norm_b, t, e, eps_, h_);
  backend_.gelu(h_, t * e);
  const WeightView ws[2] = {w_.gate, w_.h_to_4h};
  float* const ys[2] = {gate_, up_};
  backend_.matmul_group(ws, ys, 2, h_, t);
  backend_.silu_mul(gate_, up_, t * w_.n_ff);
  float* rows = out + e;  // after boi
  backend_.matmul(w_.four_h_to_h, gate_, t, rows);
  std::memcpy(out, w_.boi, sizeof(float) * e);
  std::memcpy(out + (t + 1) * e, w_.eoi, sizeof(float) * e);
}

}  // namespace zs::engine
