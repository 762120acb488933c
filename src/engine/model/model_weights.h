#pragma once
// The weights of a text model as the forward passes use them: one struct for every family,
// bound in place to the memory-mapped GGUF file by the family's code (families/). Fields a
// family does not have stay null; fused tensors (phi3's attn_qkv, chatglm's ffn_up) are bound
// as row ranges of the fused matrix, so the graphs never see the difference.
#include <cstddef>
#include <vector>

#include "engine/kernels/matmul.h"

namespace zs::engine {

// n matrices of the same shape stored back to back (a 3-D `*_exps` tensor): matrix e starts
// e * stride bytes after the first.
struct StackedWeights {
  WeightView first;
  size_t stride = 0;
  int n = 0;
  WeightView at(int e) const {
    WeightView w = first;
    w.data = static_cast<const unsigned char*>(first.data) + stride * static_cast<size_t>(e);
    return w;
  }
  explicit operator bool() const { return n > 0; }
};

// Rows [first, first + n) of w, as a matrix of its own.
inline WeightView weight_rows(const WeightView& w, int64_t first, int64_t n) {
  WeightView r = w;
  r.data = static_cast<const unsigned char*>(w.data) + w.row_stride * static_cast<size_t>(first);
  r.n_out = n;
  return r;
}

struct LayerWeights {
  const float* attn_norm = nullptr;
  const float* attn_norm_b = nullptr;  // LayerNorm bias (encoders)
  WeightView wq, wk, wv, wo;
  const float* bq = nullptr;  // biases (qwen2, chatglm, bert), or null
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;
  const float* attn_q_norm = nullptr;  // qwen3, gemma3: RMSNorm of each head of Q and K (head_dim), before rope
  const float* attn_k_norm = nullptr;
  const float* attn_post_norm = nullptr;  // gemma2: RMSNorm of the attention output
  const float* attn_post_norm_b = nullptr;
  const float* ffn_norm = nullptr;
  const float* ffn_norm_b = nullptr;
  WeightView ffn_gate, ffn_up, ffn_down;  // ffn_gate absent (n_in 0) for a plain GELU MLP
  const float* ffn_up_b = nullptr;
  const float* ffn_down_b = nullptr;
  const float* ffn_post_norm = nullptr;  // gemma2: RMSNorm of the FFN output
  const float* ffn_post_norm_b = nullptr;

  // Mixture of experts.
  WeightView ffn_gate_inp;  // router [n_embd, n_expert]
  StackedWeights gate_exps, up_exps, down_exps;
  const float* ffn_gate_inp_shexp = nullptr;  // shared expert's gate vector [n_embd]
  WeightView gate_shexp, up_shexp, down_shexp;
};

struct ModelWeights {
  WeightView token_embd, output;
  const float* output_norm = nullptr;
  const float* output_norm_b = nullptr;
  const float* rope_freqs = nullptr;        // Llama-3 frequency factors
  const float* rope_factors_long = nullptr;  // LongRoPE
  const float* rope_factors_short = nullptr;
  // Encoders.
  const float* token_types = nullptr;   // [n_token_types][n_embd]
  const float* position_embd = nullptr;  // [n_ctx_train][n_embd]
  const float* embd_norm = nullptr;
  const float* embd_norm_b = nullptr;
  std::vector<LayerWeights> layers;
};

}  // namespace zs::engine
