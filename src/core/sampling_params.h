#pragma once
// The knobs of token sampling, as an OpenAI request (plus llama.cpp's extras) sets them, and the one
// rule for which values are valid. The engine samples with exactly these (32-bit) values; the
// OpenAI request parser converts a request to them and applies the same rule, so a value the
// engine would refuse (e.g. a top_p that rounds to 0 as a float) is refused up front as a 400
// naming the field, never as a late failure. Pure: no I/O.
#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace zs::core {

// A field whose value is outside its valid range.
struct InvalidSamplingField {
  std::string field;    // "top_p"
  std::string message;  // "top_p must be in (0, 1]"
};

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

  // The first field outside its valid range, or nullopt when all are valid.
  std::optional<InvalidSamplingField> invalid_field() const;
  // ok, or an error naming the bad field and its valid range (for a 400 answer).
  Status validate() const;
};

}  // namespace zs::core
