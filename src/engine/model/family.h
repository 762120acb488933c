#pragma once
// A model family: what one `general.architecture` value means. Each family lives in a small
// file of its own under families/ and does two things only: read its metadata keys into the
// knobs of ModelConfig, and bind its tensor names to ModelWeights. The graphs (forward.h for
// decoders, encoder.h for embedding models) are shared and driven by those knobs.
// Families are listed in family.cc (explicitly: static registration does not survive static
// linking). Thread-safety: immutable tables.
#include <string>
#include <string_view>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace zs::engine {

struct ModelFamily {
  std::string_view arch;  // the `general.architecture` value
  TextArch id;
  // Called after the keys every family shares were read into c.
  core::Status (*configure)(const GgufFile& file, ModelConfig& c);
  core::Status (*bind)(TensorBinder& b, const ModelConfig& c, ModelWeights& w);
};

const ModelFamily* find_family(std::string_view arch);
std::string supported_architectures();  // "llama, qwen2, ..."

// Building blocks the family files share (families/common.cc).
namespace family {

std::string blk(int layer, const char* tensor);  // "blk.<layer>.<tensor>"

// token_embd, output (tied when absent), output_norm (RMSNorm weight), rope_freqs.
core::Status bind_decoder_globals(TensorBinder& b, const ModelConfig& c, ModelWeights& w);
// attn_q/k/v/output, optional biases (required when `biases`).
core::Status bind_attention(TensorBinder& b, const ModelConfig& c, int layer, LayerWeights& L, bool biases);
// attn_qkv (rows Q, then K, then V) and its optional bias, attn_output.
core::Status bind_attention_fused(TensorBinder& b, const ModelConfig& c, int layer, LayerWeights& L);
// ffn_gate, ffn_up, ffn_down of width n_ff.
core::Status bind_ffn(TensorBinder& b, const ModelConfig& c, int layer, LayerWeights& L);
// ffn_up holding 2 * n_ff rows (gate rows first, then up rows), ffn_down.
core::Status bind_ffn_fused(TensorBinder& b, const ModelConfig& c, int layer, LayerWeights& L);
// Router ffn_gate_inp and ffn_{gate,up,down}_exps; with a shared expert (c.n_ff_shexp) also
// ffn_gate_inp_shexp and ffn_{gate,up,down}_shexp.
core::Status bind_experts(TensorBinder& b, const ModelConfig& c, int layer, LayerWeights& L);
// The tensor layout of a pre-norm decoder block (attn_norm, attention, ffn_norm, FFN), the
// shape nearly every decoder family shares; the FFN is experts when the config has them.
struct DecoderLayout {
  enum class Qkv { kSeparate, kFused, kFusedOrSeparate };
  Qkv qkv = Qkv::kSeparate;
  bool qkv_bias = false;       // separate Q/K/V biases are required (optional otherwise)
  bool qk_norms = false;       // attn_q_norm / attn_k_norm, one weight per head dimension
  bool post_norms = false;     // post_attention_norm / post_ffw_norm
  bool fused_gate_up = false;  // ffn_up holds the gate rows, then the up rows
};

// Globals (bind_decoder_globals) and every block in that layout.
core::Status bind_decoder(TensorBinder& b, const ModelConfig& c, ModelWeights& w, const DecoderLayout& layout);

// Reads `<arch>.expert_count` / `expert_used_count` (both or neither) into c.
core::Status read_expert_counts(const GgufFile& file, ModelConfig& c);

}  // namespace family
}  // namespace zs::engine
