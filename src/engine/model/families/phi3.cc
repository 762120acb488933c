// `phi3` (Phi-3, Phi-3.5): fused attn_qkv and fused gate/up (`ffn_up` holds 2 * FFN rows),
// NEOX rope, a sliding window on every block when `attention.sliding_window` is non-zero, and
// LongRoPE: `rope_factors_long` / `rope_factors_short` chosen by the instance's context size
// against `rope.scaling.original_context_length` (see Forward), rotated values multiplied by
// `rope.scaling.attn_factor`.
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "attention.sliding_window", &c.sliding_window, 0, false));
  c.window_layers = c.sliding_window > 0 ? WindowLayers::kAll : WindowLayers::kNone;
  ZS_RETURN_IF_ERROR(
      read_int_key(file, c.arch_name, "rope.scaling.original_context_length", &c.rope_n_ctx_orig, 1, false));
  c.rope_attn_factor = static_cast<float>(file.get_float(c.arch_name + ".rope.scaling.attn_factor").value_or(1.0));
  if (!(c.rope_attn_factor > 0)) return Status::error("phi3.rope.scaling.attn_factor must be positive");
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  ZS_RETURN_IF_ERROR(b.bind(w.rope_factors_long, "rope_factors_long.weight", c.rope_dims / 2, false));
  ZS_RETURN_IF_ERROR(b.bind(w.rope_factors_short, "rope_factors_short.weight", c.rope_dims / 2, false));
  if ((w.rope_factors_long == nullptr) != (w.rope_factors_short == nullptr))
    return Status::error("a LongRoPE file needs both 'rope_factors_long.weight' and 'rope_factors_short.weight'");
  if (w.rope_factors_long && c.rope_n_ctx_orig == 0)
    return Status::error("LongRoPE factors need 'phi3.rope.scaling.original_context_length'");
  return family::bind_decoder(b, c, w,
                              {.qkv = family::DecoderLayout::Qkv::kFusedOrSeparate, .fused_gate_up = true});
}

}  // namespace

extern const ModelFamily kPhi3Family{"phi3", TextArch::kPhi3, configure, bind};

}  // namespace zs::engine
