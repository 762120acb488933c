#pragma once
// Hyper-parameters of a text model, read from GGUF metadata (`<arch>.embedding_length`,
// `<arch>.attention.head_count`, ...). The keys common to every family are read here; each
// family (engine/model/families/) reads its own keys and sets the knobs that make the one
// decoder graph (forward.h) or the encoder graph (encoder.h) compute that family.
// Failure: a missing or implausible key is an error naming the key.
#include <string>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"

namespace zs::engine {

enum class TextArch {
  kLlama, kQwen2, kQwen2Moe, kQwen2Vl, kQwen3, kQwen3Moe, kGemma, kGemma2, kGemma3, kPhi3, kChatglm, kBert, kNomicBert
};
// "normal" rotates adjacent pairs (x[2i], x[2i+1]); "neox" rotates (x[i], x[i + d/2]);
// "mrope" (Qwen2-VL) rotates NEOX pairs with one of several position components per pair.
enum class RopeMode { kNormal, kNeox, kMrope, kNone };
enum class FfnActivation { kSilu, kGelu };
// Which decoder blocks attend through the sliding window (when sliding_window > 0): none, all,
// or periodically (block l slides when l % window_period < window_period - 1: gemma2 every
// other block from 0, gemma3 five of every six).
enum class WindowLayers { kNone, kAll, kPeriodic };
// How an encoder turns its last hidden states into one vector (GGUF `<arch>.pooling_type`).
enum class Pooling { kNone = 0, kMean = 1, kCls = 2, kLast = 3 };

struct ModelConfig {
  TextArch arch = TextArch::kLlama;
  std::string arch_name;
  std::string name;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;  // of keys and values (`attention.key_length`, default n_embd / n_head)
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int rope_dims = 0;  // leading dimensions of each head that are rotated
  float rope_base = 10000.f;
  float rope_freq_scale = 1.f;  // linear scaling: positions are multiplied by this
  float rms_eps = 1e-5f;
  RopeMode rope_mode = RopeMode::kNormal;

  // Family knobs (defaults: plain llama).
  FfnActivation ffn_act = FfnActivation::kSilu;
  float attn_scale = 0.f;        // Q·K scale; 0 = 1/sqrt(head_dim)
  float embd_scale = 0.f;        // input embeddings multiplied by this; 0 = not scaled (gemma: sqrt(n_embd))
  float attn_softcap = 0.f;      // scores = cap * tanh(scores / cap); 0 = none (gemma2)
  float final_softcap = 0.f;     // the same on the output logits (gemma2)
  int sliding_window = 0;        // keys visible to a query in windowed blocks, itself included
  WindowLayers window_layers = WindowLayers::kNone;
  int window_period = 2;
  // Windowed blocks' own rope (gemma3: base `rope.freq_base_swa`, no scaling); 0 = as the others.
  float rope_base_swa = 0.f;
  float rope_freq_scale_swa = 1.f;
  bool attn_prescale_q = false;  // Q is scaled before its f16 rounding (gemma2/3, as the reference)
  float rope_attn_factor = 1.f;  // rotated values multiplied by this (phi3 LongRoPE)
  int rope_n_ctx_orig = 0;       // LongRoPE: long factors when the instance's context exceeds this
  // M-RoPE: rotary pairs per position component (time, height, width, extra); pair i uses
  // the component whose section holds i mod (sum of sections).
  int rope_sections[4] = {0, 0, 0, 0};

  // Mixture of experts (0 experts: a dense FFN).
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;
  int n_ff_shexp = 0;             // shared expert (qwen2moe); 0 = none
  bool expert_weights_norm = false;  // renormalise the chosen experts' weights to sum 1 (Mixtral)

  // Encoders (embedding models).
  bool causal = true;
  Pooling pooling = Pooling::kNone;
  float norm_eps = 1e-12f;  // LayerNorm epsilon
  int n_token_types = 0;

  bool is_encoder() const { return arch == TextArch::kBert || arch == TextArch::kNomicBert; }
  bool is_moe() const { return n_expert > 0; }
  bool window_on_layer(int layer) const {
    if (sliding_window <= 0) return false;
    return window_layers == WindowLayers::kAll ||
           (window_layers == WindowLayers::kPeriodic && layer % window_period < window_period - 1);
  }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }

  static core::Result<ModelConfig> from_gguf(const GgufFile& file);
};

// Reads `<arch>.<key>` as an int in [min_value, 2^24]; an absent key leaves *out unchanged
// unless required. For family code.
core::Status read_int_key(const GgufFile& file, const std::string& arch, const std::string& key, int* out,
                          int64_t min_value, bool required);

std::string_view pooling_name(Pooling p);  // "none", "mean", "cls", "last"

}  // namespace zs::engine
