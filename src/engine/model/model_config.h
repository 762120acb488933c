#pragma once
// Hyper-parameters of a decoder-only text model, read from GGUF metadata
// (`<arch>.embedding_length`, `<arch>.attention.head_count`, ...).
#include <string>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"

namespace zs::engine {

enum class TextArch { kLlama, kQwen2 };
// "normal" rotates adjacent pairs (x[2i], x[2i+1]); "neox" rotates (x[i], x[i + d/2]).
enum class RopeMode { kNormal, kNeox };

struct ModelConfig {
  TextArch arch = TextArch::kLlama;
  std::string arch_name;
  std::string name;
  int n_embd = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int rope_dims = 0;  // leading dimensions of each head that are rotated
  float rope_base = 10000.f;
  float rope_freq_scale = 1.f;  // linear scaling: positions are multiplied by this
  float rms_eps = 1e-5f;

  RopeMode rope_mode() const { return arch == TextArch::kQwen2 ? RopeMode::kNeox : RopeMode::kNormal; }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }

  static core::Result<ModelConfig> from_gguf(const GgufFile& file);
};

}  // namespace zs::engine
