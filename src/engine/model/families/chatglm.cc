// `chatglm` (GLM-4 layout): fused attn_qkv with bias, rope "normal" on the first
// `rope.dimension_count` dimensions of each head only (half of them), fused SwiGLU
// (`ffn_up` holds gate and up rows), RMSNorm, separate output matrix.
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure(const GgufFile&, ModelConfig& c) {
  c.rope_mode = RopeMode::kNormal;
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(family::bind_decoder_globals(b, c, w));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, family::blk(i, "attn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_attention_fused(b, c, i, L));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, family::blk(i, "ffn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_ffn_fused(b, c, i, L));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kChatglmFamily{"chatglm", TextArch::kChatglm, configure, bind};

}  // namespace zs::engine
