// `llama`: LLaMA 1/2/3, Mistral, SmolLM, TinyLlama; with `expert_count` the Mixtral layout
// (router `ffn_gate_inp`, experts `ffn_*_exps`, the chosen experts' weights renormalised).
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kNormal;
  ZS_RETURN_IF_ERROR(family::read_expert_counts(file, c));
  c.expert_weights_norm = true;
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  return family::bind_decoder(b, c, w, {});
}

}  // namespace

extern const ModelFamily kLlamaFamily{"llama", TextArch::kLlama, configure, bind};

}  // namespace zs::engine
