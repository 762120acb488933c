// `qwen2` (Qwen2, Qwen2.5: Q/K/V biases, NEOX rope) and `qwen2moe` (routed experts whose
// softmax weights are used as they are, plus a shared expert behind a sigmoid gate).
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure_qwen2(const GgufFile&, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  return Status::ok();
}

Status configure_qwen2moe(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  ZS_RETURN_IF_ERROR(family::read_expert_counts(file, c));
  if (c.n_expert == 0) return Status::error("metadata key 'qwen2moe.expert_count' is missing");
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "expert_shared_feed_forward_length", &c.n_ff_shexp, 0, false));
  c.expert_weights_norm = false;
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(family::bind_decoder_globals(b, c, w));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, family::blk(i, "attn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_attention(b, c, i, L, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, family::blk(i, "ffn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(c.is_moe() ? family::bind_experts(b, c, i, L) : family::bind_ffn(b, c, i, L));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kQwen2Family{"qwen2", TextArch::kQwen2, configure_qwen2, bind};
extern const ModelFamily kQwen2MoeFamily{"qwen2moe", TextArch::kQwen2Moe, configure_qwen2moe, bind};

}  // namespace zs::engine
