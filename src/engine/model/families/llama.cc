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
  ZS_RETURN_IF_ERROR(family::bind_decoder_globals(b, c, w));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, family::blk(i, "attn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_attention(b, c, i, L, false));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, family::blk(i, "ffn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(c.is_moe() ? family::bind_experts(b, c, i, L) : family::bind_ffn(b, c, i, L));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kLlamaFamily{"llama", TextArch::kLlama, configure, bind};

}  // namespace zs::engine
