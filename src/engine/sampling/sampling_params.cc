#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <string>

namespace zs::engine {
namespace {

// Penalties beyond OpenAI's range only produce degenerate text, so they are refused.
constexpr float kMaxAbsOpenAiPenalty = 2.0f;

}  // namespace

core::Status SamplingParams::validate() const {
  if (!std::isfinite(temperature) || temperature < 0) {
    return core::Status::error("temperature must be a number >= 0 (0 means greedy)");
  }
  if (top_k < 0) return core::Status::error("top_k must be >= 0 (0 disables it)");
  if (!(top_p > 0 && top_p <= 1)) return core::Status::error("top_p must be in (0, 1]");
  if (!(min_p >= 0 && min_p <= 1)) return core::Status::error("min_p must be in [0, 1]");
  if (!(std::isfinite(repeat_penalty) && repeat_penalty > 0)) {
    return core::Status::error("repeat_penalty must be > 0 (1 disables it)");
  }
  if (repeat_last_n < 0) {
    return core::Status::error("repeat_last_n must be >= 0 (0 disables penalties)");
  }
  if (!(std::fabs(frequency_penalty) <= kMaxAbsOpenAiPenalty)) {
    return core::Status::error("frequency_penalty must be in [-2, 2]");
  }
  if (!(std::fabs(presence_penalty) <= kMaxAbsOpenAiPenalty)) {
    return core::Status::error("presence_penalty must be in [-2, 2]");
  }
  return core::Status::ok();
}

}  // namespace zs::engine
