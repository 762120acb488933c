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
  return family::bind_decoder(b, c, w, {.qk_norms = true});
}

}  // namespace

extern const ModelFamily kQwen3Family{"qwen3", TextArch::kQwen3, configure_qwen3, bind};
extern const ModelFamily kQwen3MoeFamily{"qwen3moe", TextArch::kQwen3Moe, configure_qwen3moe, bind};

}  // namespace zs::engine
