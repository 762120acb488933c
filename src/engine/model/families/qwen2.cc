// `qwen2` (Qwen2, Qwen2.5: Q/K/V biases, NEOX rope), `qwen2moe` (routed experts whose
// softmax weights are used as they are, plus a shared expert behind a sigmoid gate) and
// `qwen2vl` (the Qwen2-VL language model: qwen2 with multimodal rotary positions, whose
// sections come from `rope.dimension_sections`).
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure_qwen2(const GgufFile&, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  return Status::ok();
}

Status configure_qwen2moe(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kNeox;
  ZS_RETURN_IF_ERROR(family::read_expert_counts(file, c));
  if (c.n_expert == 0) return Status::error("metadata key 'qwen2moe.expert_count' is missing");
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "expert_shared_feed_forward_length", &c.n_ff_shexp, 0, false));
  c.expert_weights_norm = false;
  return Status::ok();
}

Status configure_qwen2vl(const GgufFile& file, ModelConfig& c) {
  c.rope_mode = RopeMode::kMrope;
  const auto sections = file.get_int_array(c.arch_name + ".rope.dimension_sections");
  if (sections.empty() || sections.size() > 4)
    return Status::error("metadata key '" + c.arch_name + ".rope.dimension_sections' is missing or not 1-4 integers");
  int sum = 0;
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i] < 0 || sections[i] > c.rope_dims)
      return Status::error(c.arch_name + ".rope.dimension_sections has an implausible value " +
                           std::to_string(sections[i]));
    c.rope_sections[i] = static_cast<int>(sections[i]);
    sum += c.rope_sections[i];
  }
  if (sum <= 0 || sum > c.rope_dims / 2)
    return Status::error(c.arch_name + ".rope.dimension_sections sum to " + std::to_string(sum) +
                         ", which does not fit the " + std::to_string(c.rope_dims / 2) + " rotary pairs of a head");
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  return family::bind_decoder(b, c, w, {.qkv_bias = true});
}

}  // namespace

extern const ModelFamily kQwen2Family{"qwen2", TextArch::kQwen2, configure_qwen2, bind};
extern const ModelFamily kQwen2VlFamily{"qwen2vl", TextArch::kQwen2Vl, configure_qwen2vl, bind};
extern const ModelFamily kQwen2MoeFamily{"qwen2moe", TextArch::kQwen2Moe, configure_qwen2moe, bind};

}  // namespace zs::engine
