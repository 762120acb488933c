#pragma once
// The knobs of token sampling, as an OpenAI request (plus llama.cpp's extras) sets them.
#include <cstdint>

#include "core/status.h"

namespace zs::engine {

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax, lowest id on ties)
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off; drops tokens below min_p * (probability of the best)
  float repeat_penalty = 1.0f;    // 1: off; llama.cpp-style, over the last repeat_last_n tokens
  int repeat_last_n = 64;         // 0: no penalties at all
  float frequency_penalty = 0;    // OpenAI-style, in [-2, 2]
  float presence_penalty = 0;     // OpenAI-style, in [-2, 2]
  uint64_t seed = 0;

  // ok, or an error naming the bad field and its valid range (for a 400 answer).
  core::Status validate() const;
};

}  // namespace zs::engine
