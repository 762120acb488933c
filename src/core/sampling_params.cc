#include "core/sampling_params.h"

#include <cmath>

namespace zs::core {
namespace {

// Penalties beyond OpenAI's range only produce degenerate text, so they are refused.
constexpr float kMaxAbsOpenAiPenalty = 2.0f;

}  // namespace

std::optional<InvalidSamplingField> SamplingParams::invalid_field() const {
  auto bad = [](const char* field, const char* message) {
    return std::optional<InvalidSamplingField>(InvalidSamplingField{field, message});
  };
  if (!std::isfinite(temperature) || temperature < 0)
    return bad("temperature", "temperature must be a number >= 0 (0 means greedy)");
  if (top_k < 0) return bad("top_k", "top_k must be >= 0 (0 disables it)");
  if (!(top_p > 0 && top_p <= 1)) return bad("top_p", "top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) return bad("min_p", "min_p must be in [0, 1]");
  if (!(std::isfinite(repeat_penalty) && repeat_penalty > 0))
    return bad("repeat_penalty", "repeat_penalty must be > 0 (1 disables it)");
  if (repeat_last_n < 0) return bad("repeat_last_n", "repeat_last_n must be >= 0 (0 disables penalties)");
  if (!(std::fabs(frequency_penalty) <= kMaxAbsOpenAiPenalty))
    return bad("frequency_penalty", "frequency_penalty must be in [-2, 2]");
  if (!(std::fabs(presence_penalty) <= kMaxAbsOpenAiPenalty))
    return bad("presence_penalty", "presence_penalty must be in [-2, 2]");
  return std::nullopt;
}

Status SamplingParams::validate() const {
  if (auto bad = invalid_field()) return Status::error(bad->message);
  return Status::ok();
}

}  // namespace zs::core
