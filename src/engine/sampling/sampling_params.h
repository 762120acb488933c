#pragma once
// The knobs of token sampling. The struct and its validity rule live in core so that the OpenAI
// request parser (gateway layer) applies the very rule the engine does (core/sampling_params.h).
#include "core/sampling_params.h"

namespace zs::engine {

using SamplingParams = core::SamplingParams;

}  // namespace zs::engine
