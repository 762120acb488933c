// `qwen3` (Qwen3: no Q/K/V biases, each head of Q and K RMS-normalised before NEOX rope, head
// size from `attention.key_length`) and `qwen3moe` (the same attention; routed experts whose
// chosen weights are renormalised to sum 1, no shared expert).
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure_qwen3(const GgufFile&, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  return Status::ok();
}

Status configure_qwen3moe(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  ZS_RETURN_IF_ERROR(family::read_expert_counts(file, c));
  if (c.n_expert == 0) return Status::error("metadata key 'qwen3moe.expert_count' is missing");
  c.expert_weights_norm = true;
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(family::bind_decoder_globals(b, c, w));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, family::blk(i, "attn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_attention(b, c, i, L, false));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_q_norm, family::blk(i, "attn_q_norm.weight"), c.head_dim, true));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_k_norm, family::blk(i, "attn_k_norm.weight"), c.head_dim, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, family::blk(i, "ffn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(c.is_moe() ? family::bind_experts(b, c, i, L) : family::bind_ffn(b, c, i, L));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kQwen3Family{"qwen3", TextArch::kQwen3, configure_qwen3, bind};
extern const ModelFamily kQwen3MoeFamily{"qwen3moe", TextArch::kQwen3Moe, configure_qwen3moe, bind};

}  // namespace zs::engine
