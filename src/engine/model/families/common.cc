// Building blocks shared by the family files: the tensor layouts several families have in
// common (see family.h).
#include "engine/model/family.h"

namespace zs::engine::family {

using core::Status;

std::string blk(int layer, const char* tensor) { return "blk." + std::to_string(layer) + "." + tensor; }

Status bind_decoder_globals(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(b.bind(w.token_embd, "token_embd.weight", c.n_embd, c.n_vocab));
  if (b.has("output.weight")) {
    ZS_RETURN_IF_ERROR(b.bind(w.output, "output.weight", c.n_embd, c.n_vocab));
  } else {
    w.output = w.token_embd;  // tied embeddings
  }
  ZS_RETURN_IF_ERROR(b.bind(w.output_norm, "output_norm.weight", c.n_embd, true));
  ZS_RETURN_IF_ERROR(b.bind(w.rope_freqs, "rope_freqs.weight", c.rope_dims / 2, false));
  return Status::ok();
}

Status bind_attention(TensorBinder& b, const ModelConfig& c, int i, LayerWeights& L, bool biases) {
  ZS_RETURN_IF_ERROR(b.bind(L.wq, blk(i, "attn_q.weight"), c.n_embd, c.q_dim()));
  ZS_RETURN_IF_ERROR(b.bind(L.wk, blk(i, "attn_k.weight"), c.n_embd, c.kv_dim()));
  ZS_RETURN_IF_ERROR(b.bind(L.wv, blk(i, "attn_v.weight"), c.n_embd, c.kv_dim()));
  ZS_RETURN_IF_ERROR(b.bind(L.wo, blk(i, "attn_output.weight"), c.q_dim(), c.n_embd));
  ZS_RETURN_IF_ERROR(b.bind(L.bq, blk(i, "attn_q.bias"), c.q_dim(), biases));
  ZS_RETURN_IF_ERROR(b.bind(L.bk, blk(i, "attn_k.bias"), c.kv_dim(), biases));
  ZS_RETURN_IF_ERROR(b.bind(L.bv, blk(i, "attn_v.bias"), c.kv_dim(), biases));
  return Status::ok();
}

Status bind_attention_fused(TensorBinder& b, const ModelConfig& c, int i, LayerWeights& L) {
  const int64_t rows = c.q_dim() + 2 * c.kv_dim();
  WeightView qkv;
  ZS_RETURN_IF_ERROR(b.bind(qkv, blk(i, "attn_qkv.weight"), c.n_embd, rows));
  L.wq = weight_rows(qkv, 0, c.q_dim());
  L.wk = weight_rows(qkv, c.q_dim(), c.kv_dim());
  L.wv = weight_rows(qkv, c.q_dim() + c.kv_dim(), c.kv_dim());
  const float* bias = nullptr;
  ZS_RETURN_IF_ERROR(b.bind(bias, blk(i, "attn_qkv.bias"), rows, false));
  if (bias) {
    L.bq = bias;
    L.bk = bias + c.q_dim();
    L.bv = bias + c.q_dim() + c.kv_dim();
  }
  ZS_RETURN_IF_ERROR(b.bind(L.wo, blk(i, "attn_output.weight"), c.q_dim(), c.n_embd));
  return Status::ok();
}

Status bind_ffn(TensorBinder& b, const ModelConfig& c, int i, LayerWeights& L) {
  ZS_RETURN_IF_ERROR(b.bind(L.ffn_gate, blk(i, "ffn_gate.weight"), c.n_embd, c.n_ff));
  ZS_RETURN_IF_ERROR(b.bind(L.ffn_up, blk(i, "ffn_up.weight"), c.n_embd, c.n_ff));
  ZS_RETURN_IF_ERROR(b.bind(L.ffn_down, blk(i, "ffn_down.weight"), c.n_ff, c.n_embd));
  return Status::ok();
}

Status bind_ffn_fused(TensorBinder& b, const ModelConfig& c, int i, LayerWeights& L) {
  WeightView up;
  ZS_RETURN_IF_ERROR(b.bind(up, blk(i, "ffn_up.weight"), c.n_embd, 2 * static_cast<int64_t>(c.n_ff)));
  L.ffn_gate = weight_rows(up, 0, c.n_ff);
  L.ffn_up = weight_rows(up, c.n_ff, c.n_ff);
  ZS_RETURN_IF_ERROR(b.bind(L.ffn_down, blk(i, "ffn_down.weight"), c.n_ff, c.n_embd));
  return Status::ok();
}

Status bind_experts(TensorBinder& b, const ModelConfig& c, int i, LayerWeights& L) {
  ZS_RETURN_IF_ERROR(b.bind(L.ffn_gate_inp, blk(i, "ffn_gate_inp.weight"), c.n_embd, c.n_expert));
  auto stack = [&](StackedWeights& dst, const char* name, int64_t n_in, int64_t n_out) -> Status {
    auto v = b.stacked(blk(i, name), n_in, n_out, c.n_expert);
    if (!v) return v.status();
    dst.first = v.value();
    dst.stride = dst.first.row_stride * static_cast<size_t>(n_out);
    dst.n = c.n_expert;
    return Status::ok();
  };
  ZS_RETURN_IF_ERROR(stack(L.gate_exps, "ffn_gate_exps.weight", c.n_embd, c.n_ff_exp));
  ZS_RETURN_IF_ERROR(stack(L.up_exps, "ffn_up_exps.weight", c.n_embd, c.n_ff_exp));
  ZS_RETURN_IF_ERROR(stack(L.down_exps, "ffn_down_exps.weight", c.n_ff_exp, c.n_embd));
  if (c.n_ff_shexp > 0) {
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_gate_inp_shexp, blk(i, "ffn_gate_inp_shexp.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(b.bind(L.gate_shexp, blk(i, "ffn_gate_shexp.weight"), c.n_embd, c.n_ff_shexp));
    ZS_RETURN_IF_ERROR(b.bind(L.up_shexp, blk(i, "ffn_up_shexp.weight"), c.n_embd, c.n_ff_shexp));
    ZS_RETURN_IF_ERROR(b.bind(L.down_shexp, blk(i, "ffn_down_shexp.weight"), c.n_ff_shexp, c.n_embd));
  }
  return Status::ok();
}

Status bind_decoder(TensorBinder& b, const ModelConfig& c, ModelWeights& w, const DecoderLayout& layout) {
  ZS_RETURN_IF_ERROR(bind_decoder_globals(b, c, w));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, blk(i, "attn_norm.weight"), c.n_embd, true));
    const bool fused = layout.qkv == DecoderLayout::Qkv::kFused ||
                       (layout.qkv == DecoderLayout::Qkv::kFusedOrSeparate && b.has(blk(i, "attn_qkv.weight")));
    ZS_RETURN_IF_ERROR(fused ? bind_attention_fused(b, c, i, L) : bind_attention(b, c, i, L, layout.qkv_bias));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_q_norm, blk(i, "attn_q_norm.weight"), c.head_dim, layout.qk_norms));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_k_norm, blk(i, "attn_k_norm.weight"), c.head_dim, layout.qk_norms));
    if (layout.post_norms) {
      ZS_RETURN_IF_ERROR(b.bind(L.attn_post_norm, blk(i, "post_attention_norm.weight"), c.n_embd, true));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_post_norm, blk(i, "post_ffw_norm.weight"), c.n_embd, true));
    }
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, blk(i, "ffn_norm.weight"), c.n_embd, true));
    if (c.is_moe()) {
      ZS_RETURN_IF_ERROR(bind_experts(b, c, i, L));
    } else {
      ZS_RETURN_IF_ERROR(layout.fused_gate_up ? bind_ffn_fused(b, c, i, L) : bind_ffn(b, c, i, L));
    }
  }
  return Status::ok();
}

Status read_expert_counts(const GgufFile& file, ModelConfig& c) {
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "expert_count", &c.n_expert, 0, false));
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "expert_used_count", &c.n_expert_used, 0, false));
  if (c.n_expert == 0 && c.n_expert_used == 0) return Status::ok();
  if (c.n_expert_used < 1 || c.n_expert_used > c.n_expert)
    return Status::error(c.arch_name + ".expert_used_count " + std::to_string(c.n_expert_used) +
                         " must be between 1 and expert_count " + std::to_string(c.n_expert));
  c.n_ff_exp = c.n_ff;
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "expert_feed_forward_length", &c.n_ff_exp, 1, false));
  if (c.n_ff_exp == 0) return Status::error(c.arch_name + ".expert_feed_forward_length is missing");
  return Status::ok();
}

}  // namespace zs::engine::family
