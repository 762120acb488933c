#include "engine/model/model_config.h"

#include "engine/model/family.h"

namespace zs::engine {

using core::Result;
using core::Status;

Status read_int_key(const GgufFile& file, const std::string& arch, const std::string& key, int* out,
                    int64_t min_value, bool required) {
  const std::string full = arch + "." + key;
  if (!file.find(full)) {
    if (required) return Status::error("metadata key '" + full + "' is missing");
    return Status::ok();
  }
  auto v = file.get_int(full);
  if (!v) return Status::error("metadata key '" + full + "' is not an integer");
  if (*v < min_value || *v > (1 << 24))
    return Status::error("metadata key '" + full + "' has implausible value " + std::to_string(*v));
  *out = static_cast<int>(*v);
  return Status::ok();
}

std::string_view pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kNone: return "none";
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
    case Pooling::kLast: return "last";
  }
  return "none";
}

Result<ModelConfig> ModelConfig::from_gguf(const GgufFile& file) {
  ModelConfig c;
  auto arch = file.get_string("general.architecture");
  if (!arch) return Status::error("metadata key 'general.architecture' is missing");
  c.arch_name = std::string(*arch);
  const ModelFamily* family = find_family(c.arch_name);
  if (!family)
    return Status::error("unsupported model architecture '" + c.arch_name +
                         "' (supported: " + supported_architectures() + ")");
  c.arch = family->id;
  c.name = std::string(file.get_string("general.name").value_or(""));
  const std::string& a = c.arch_name;
  const std::string p = a + ".";

  ZS_RETURN_IF_ERROR(read_int_key(file, a, "embedding_length", &c.n_embd, 1, true));
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "block_count", &c.n_layer, 1, true));
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "attention.head_count", &c.n_head, 1, true));
  // MoE files may carry feed_forward_length 0 (only experts).
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "feed_forward_length", &c.n_ff, 0, true));
  c.n_head_kv = c.n_head;
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "attention.head_count_kv", &c.n_head_kv, 1, false));
  if (c.n_head % c.n_head_kv != 0)
    return Status::error("head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                         std::to_string(c.n_head_kv));
  c.head_dim = c.n_embd / c.n_head;
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "attention.key_length", &c.head_dim, 2, false));
  int value_dim = c.head_dim;
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "attention.value_length", &value_dim, 2, false));
  if (value_dim != c.head_dim)
    return Status::error("attention.value_length " + std::to_string(value_dim) + " differs from key_length " +
                         std::to_string(c.head_dim) + ", which zeroserve does not support");
  if (c.head_dim % 2 != 0) return Status::error("head dimension " + std::to_string(c.head_dim) + " must be even");
  c.rope_dims = c.head_dim;
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "rope.dimension_count", &c.rope_dims, 2, false));
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    return Status::error("rope.dimension_count " + std::to_string(c.rope_dims) + " is invalid for head dimension " +
                         std::to_string(c.head_dim));
  c.n_ctx_train = 4096;
  ZS_RETURN_IF_ERROR(read_int_key(file, a, "context_length", &c.n_ctx_train, 1, false));
  c.rope_base = static_cast<float>(file.get_float(p + "rope.freq_base").value_or(10000.0));
  c.rms_eps = static_cast<float>(file.get_float(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.norm_eps = static_cast<float>(file.get_float(p + "attention.layer_norm_epsilon").value_or(1e-12));
  if (auto type = file.get_string(p + "rope.scaling.type"); type && *type == "linear") {
    double factor = file.get_float(p + "rope.scaling.factor").value_or(1.0);
    if (factor <= 0) return Status::error("rope.scaling.factor must be positive");
    c.rope_freq_scale = static_cast<float>(1.0 / factor);
  }
  if (c.rope_base <= 0) return Status::error("rope.freq_base must be positive");
  if (!(c.rms_eps > 0)) return Status::error("attention.layer_norm_rms_epsilon must be positive");
  if (!(c.norm_eps > 0)) return Status::error("attention.layer_norm_epsilon must be positive");

  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  if (!embd) return Status::error("tensor 'token_embd.weight' is missing");
  c.n_vocab = static_cast<int>(embd->ne[1]);
  ZS_RETURN_IF_ERROR(family->configure(file, c));
  if (c.n_ff == 0 && c.n_expert == 0) return Status::error("metadata key '" + p + "feed_forward_length' is 0");
  return c;
}

}  // namespace zs::engine
