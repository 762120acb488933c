#include "engine/sampling/sampling_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace zs::engine {
namespace {

std::string error_after(const std::function<void(SamplingParams&)>& change) {
  SamplingParams p;
  change(p);
  core::Status s = p.validate();
  return s.is_ok() ? std::string() : s.message();
}

TEST(SamplingParams, DefaultsAreValid) { EXPECT_TRUE(SamplingParams{}.validate().is_ok()); }

TEST(SamplingParams, EdgesThatAreValid) {
  EXPECT_EQ(error_after([](SamplingParams& p) { p.temperature = 0; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.top_k = 0; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.top_p = 1; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.min_p = 0; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.min_p = 1; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.repeat_last_n = 0; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.frequency_penalty = -2; }), "");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.presence_penalty = 2; }), "");
}

TEST(SamplingParams, ErrorsNameTheField) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(error_after([](SamplingParams& p) { p.temperature = -0.5f; }),
            "temperature must be a number >= 0 (0 means greedy)");
  EXPECT_EQ(error_after([nan](SamplingParams& p) { p.temperature = nan; }),
            "temperature must be a number >= 0 (0 means greedy)");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.top_k = -1; }),
            "top_k must be >= 0 (0 disables it)");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.top_p = 0; }), "top_p must be in (0, 1]");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.top_p = 1.5f; }), "top_p must be in (0, 1]");
  EXPECT_EQ(error_after([nan](SamplingParams& p) { p.top_p = nan; }), "top_p must be in (0, 1]");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.min_p = -0.1f; }), "min_p must be in [0, 1]");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.repeat_penalty = 0; }),
            "repeat_penalty must be > 0 (1 disables it)");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.repeat_last_n = -1; }),
            "repeat_last_n must be >= 0 (0 disables penalties)");
  EXPECT_EQ(error_after([](SamplingParams& p) { p.frequency_penalty = 2.5f; }),
            "frequency_penalty must be in [-2, 2]");
  EXPECT_EQ(error_after([nan](SamplingParams& p) { p.presence_penalty = nan; }),
            "presence_penalty must be in [-2, 2]");
}

}  // namespace
}  // namespace zs::engine
