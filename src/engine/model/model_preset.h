#pragma once
// Shapes of real models, for generating random-weight checkpoints that load and run
// exactly like the real ones (benchmarks, tests, the built-in default deployment).
#include <string>
#include <vector>

#include "core/status.h"

namespace zs::engine {

struct ModelPreset {
  std::string name;
  std::string arch;  // "llama" or "qwen2"
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
  float rope_base, rms_eps;
  bool tied_embeddings;
};

core::Result<ModelPreset> find_model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

}  // namespace zs::engine
