#include "engine/vision/vit_block.h"

#include <cmath>
#include <cstring>

namespace zs::engine {

void gather_patch(const float* pixels, int width, int height, int patch, int py, int px, float* row) {
  for (int ch = 0; ch < 3; ++ch)
    for (int ky = 0; ky < patch; ++ky)
      std::memcpy(row + (ch * patch + ky) * patch,
                  pixels + (static_cast<int64_t>(ch) * height + py * patch + ky) * width + px * patch,
                  sizeof(float) * patch);
}

void vit_block(Backend& b, const ClipConfig& c, const ClipLayer& L, int64_t n, float* x, const VitScratch& s,
               const VitBlockOptions& o) {
  const int64_t d = c.n_embd;
  const int head_dim = static_cast<int>(d / c.n_head);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  auto norm = [&](const float* w, const float* bias) {
    if (o.rms_norm) b.rms_norm(x, w, n, d, c.eps, s.h);
    else b.layer_norm(x, w, bias, n, d, c.eps, s.h, c.ref_build);
  };

  norm(L.ln1_w, L.ln1_b);
  const WeightView qkv[3] = {L.wq, L.wk, L.wv};
  float* const qkv_out[3] = {s.q, s.k, s.v};
  b.matmul_group(qkv, qkv_out, 3, s.h, n);
  b.add_bias(s.q, L.bq, n, d);
  b.add_bias(s.k, L.bk, n, d);
  b.add_bias(s.v, L.bv, n, d);
  if (o.rope_ys) {
    b.rope_2d(s.q, n, o.rope_ys, o.rope_xs, c.n_head, head_dim, 10000.f);
    b.rope_2d(s.k, n, o.rope_ys, o.rope_xs, c.n_head, head_dim, 10000.f);
  }
  if (o.attend) o.attend(s.q, s.k, s.v, s.attn);
  else b.attention_full(s.q, s.k, s.v, n, c.n_head, head_dim, scale, s.attn, c.ref_build);
  b.matmul(L.wo, s.attn, n, s.h);
  b.add_bias(s.h, L.bo, n, d);
  b.add(x, s.h, n * d);

  norm(L.ln2_w, L.ln2_b);
  float* act = s.ff;
  if (L.ffn_gate.data) {
    // SwiGLU (Qwen2.5-VL): fc2(silu(gate x) * fc1 x), every product with its bias.
    const WeightView gate_up[2] = {L.ffn_gate, L.fc1};
    float* const gate_up_out[2] = {s.gate, s.ff};
    b.matmul_group(gate_up, gate_up_out, 2, s.h, n);
    b.add_bias(s.gate, L.ffn_gate_b, n, c.n_ff);
    b.add_bias(s.ff, L.fc1_b, n, c.n_ff);
    b.silu_mul(s.gate, s.ff, n * c.n_ff);
    act = s.gate;
  } else {
    b.matmul(L.fc1, s.h, n, s.ff);
    b.add_bias(s.ff, L.fc1_b, n, c.n_ff);
    if (c.use_gelu) b.gelu(s.ff, n * c.n_ff, c.ref_build);
    else b.gelu_quick(s.ff, n * c.n_ff);
  }
  b.matmul(L.fc2, act, n, s.h);
  b.add_bias(s.h, L.fc2_b, n, d);
  b.add(x, s.h, n * d);
}

}  // namespace zs::engine
