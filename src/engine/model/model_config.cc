#include "engine/model/model_config.h"

namespace zs::engine {

using core::Result;
using core::Status;

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& file) {
  ModelConfig c;
  auto arch = file.get_string("general.architecture");
  if (!arch) return Status::error("metadata key 'general.architecture' is missing");
  c.arch_name = std::string(*arch);
  if (c.arch_name == "llama") {
    c.arch = TextArch::kLlama;
  } else if (c.arch_name == "qwen2") {
    c.arch = TextArch::kQwen2;
  } else {
    return Status::error("unsupported model architecture '" + c.arch_name + "' (supported: llama, qwen2)");
  }
  c.name = std::string(file.get_string("general.name").value_or(""));
  const std::string p = c.arch_name + ".";

  auto need_int = [&](const std::string& key, int* out, int64_t min_value) -> Status {
    auto v = file.get_int(p + key);
    if (!v) return Status::error("metadata key '" + p + key + "' is missing or not an integer");
    if (*v < min_value || *v > (1 << 24))
      return Status::error("metadata key '" + p + key + "' has implausible value " + std::to_string(*v));
    *out = static_cast<int>(*v);
    return Status::ok();
  };
  ZS_RETURN_IF_ERROR(need_int("embedding_length", &c.n_embd, 1));
  ZS_RETURN_IF_ERROR(need_int("block_count", &c.n_layer, 1));
  ZS_RETURN_IF_ERROR(need_int("attention.head_count", &c.n_head, 1));
  ZS_RETURN_IF_ERROR(need_int("feed_forward_length", &c.n_ff, 1));
  c.n_head_kv = c.n_head;
  if (file.find(p + "attention.head_count_kv")) ZS_RETURN_IF_ERROR(need_int("attention.head_count_kv", &c.n_head_kv, 1));
  if (c.n_head % c.n_head_kv != 0)
    return Status::error("head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                         std::to_string(c.n_head_kv));
  c.head_dim = c.n_embd / c.n_head;
  if (file.find(p + "attention.key_length")) ZS_RETURN_IF_ERROR(need_int("attention.key_length", &c.head_dim, 2));
  if (c.head_dim % 2 != 0) return Status::error("head dimension " + std::to_string(c.head_dim) + " must be even");
  c.rope_dims = c.head_dim;
  if (file.find(p + "rope.dimension_count")) ZS_RETURN_IF_ERROR(need_int("rope.dimension_count", &c.rope_dims, 2));
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    return Status::error("rope.dimension_count " + std::to_string(c.rope_dims) + " is invalid for head dimension " +
                         std::to_string(c.head_dim));
  c.n_ctx_train = 4096;
  if (file.find(p + "context_length")) ZS_RETURN_IF_ERROR(need_int("context_length", &c.n_ctx_train, 1));
  c.rope_base = static_cast<float>(file.get_float(p + "rope.freq_base").value_or(10000.0));
  c.rms_eps = static_cast<float>(file.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (auto type = file.get_string(p + "rope.scaling.type"); type && *type == "linear") {
    double factor = file.get_float(p + "rope.scaling.factor").value_or(1.0);
    if (factor <= 0) return Status::error("rope.scaling.factor must be positive");
    c.rope_freq_scale = static_cast<float>(1.0 / factor);
  }
  if (c.rope_base <= 0) return Status::error("rope.freq_base must be positive");
  if (!(c.rms_eps > 0)) return Status::error("attention.layer_norm_rms_epsilon must be positive");

  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd) return Status::error("tensor 'token_embd.weight' is missing");
  c.n_vocab = static_cast<int>(embd->ne[1]);
  return c;
}

}  // namespace zs::engine
