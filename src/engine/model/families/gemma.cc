// `gemma`, `gemma2` and `gemma3`: input embeddings scaled by sqrt(n_embd), GELU-gated FFN, NEOX
// rope, tied output; norm weights are used as stored (the converter already added Gemma's +1).
// gemma2 adds soft-capping of attention scores and of the logits, RMSNorms of the attention
// and FFN outputs before their residual adds, and a sliding window on even blocks. gemma3 keeps
// the post-norms, drops soft-capping, normalises each head of Q and K before rope, and slides
// five blocks of every six (the period is `attention.sliding_window_pattern`, which converters
// do not write: 6), the sliding ones with their own rope base (`rope.freq_base_swa`) and no
// rope scaling, the global ones with `rope.freq_base` and the file's linear scaling.
#include <cmath>

#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure_gemma(const GgufFile&, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  c.ffn_act = FfnActivation::kGelu;
  c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
  return Status::ok();
}

Status configure_gemma2(const GgufFile& file, ModelConfig& c) {
  ZS_RETURN_IF_ERROR(configure_gemma(file, c));
  const std::string p = c.arch_name + ".";
  c.attn_softcap = static_cast<float>(file.get_float(p + "attn_logit_softcapping").value_or(50.0));
  c.final_softcap = static_cast<float>(file.get_float(p + "final_logit_softcapping").value_or(30.0));
  if (!(c.attn_softcap > 0) || !(c.final_softcap > 0))
    return Status::error("gemma2 soft-capping values must be positive");
  c.sliding_window = 4096;
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "attention.sliding_window", &c.sliding_window, 1, false));
  c.window_layers = WindowLayers::kPeriodic;
  c.window_period = 2;
  c.attn_prescale_q = true;
  // The 27B model (46 blocks) scales queries by 1/sqrt(n_embd / n_head), the others by
  // 1/sqrt(key_length), as the reference does.
  c.attn_scale = c.n_layer == 46 ? 1.0f / std::sqrt(static_cast<float>(c.n_embd / c.n_head))
                                 : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  return Status::ok();
}

Status configure_gemma3(const GgufFile& file, ModelConfig& c) {
  ZS_RETURN_IF_ERROR(configure_gemma(file, c));
  const std::string p = c.arch_name + ".";
  if (auto cap = file.get_float(p + "final_logit_softcapping")) c.final_softcap = static_cast<float>(*cap);
  c.sliding_window = 4096;
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "attention.sliding_window", &c.sliding_window, 1, false));
  c.window_layers = WindowLayers::kPeriodic;
  c.window_period = 6;
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "attention.sliding_window_pattern", &c.window_period, 1, false));
  c.rope_base_swa = static_cast<float>(file.get_float(p + "rope.freq_base_swa").value_or(10000.0));
  if (!(c.rope_base_swa > 0)) return Status::error("gemma3.rope.freq_base_swa must be positive");
  c.rope_freq_scale_swa = 1.f;
  c.attn_prescale_q = true;  // queries scaled by 1/sqrt(key_length) before the f16 product
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(family::bind_decoder_globals(b, c, w));
  const bool post_norms = c.arch == TextArch::kGemma2 || c.arch == TextArch::kGemma3;
  const bool qk_norms = c.arch == TextArch::kGemma3;
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.attn_norm, family::blk(i, "attn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_attention(b, c, i, L, false));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_q_norm, family::blk(i, "attn_q_norm.weight"), c.head_dim, qk_norms));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_k_norm, family::blk(i, "attn_k_norm.weight"), c.head_dim, qk_norms));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_post_norm, family::blk(i, "post_attention_norm.weight"), c.n_embd, post_norms));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_norm, family::blk(i, "ffn_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(family::bind_ffn(b, c, i, L));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_post_norm, family::blk(i, "post_ffw_norm.weight"), c.n_embd, post_norms));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kGemmaFamily{"gemma", TextArch::kGemma, configure_gemma, bind};
extern const ModelFamily kGemma2Family{"gemma2", TextArch::kGemma2, configure_gemma2, bind};
extern const ModelFamily kGemma3Family{"gemma3", TextArch::kGemma3, configure_gemma3, bind};

}  // namespace zs::engine
