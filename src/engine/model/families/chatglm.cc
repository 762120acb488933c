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
  return family::bind_decoder(b, c, w, {.qkv = family::DecoderLayout::Qkv::kFused, .fused_gate_up = true});
}

}  // namespace

extern const ModelFamily kChatglmFamily{"chatglm", TextArch::kChatglm, configure, bind};

}  // namespace zs::engine
