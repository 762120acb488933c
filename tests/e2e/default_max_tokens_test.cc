// A chat completion without max_tokens stops at the worker's default cap (1,024 tokens,
// docs/serving.md) instead of running to the end of the context.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/serve_fixture.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs::testing {
namespace {

using nlohmann::json;

TEST(DefaultMaxTokens, AChatWithoutMaxTokensStopsAt1024TokensNotAtTheEndOfTheContext) {
  TempDir dir;
  const std::string model = dir.file("tiny.gguf");  // 2,048 positions of context, random weights
  ASSERT_EQ(run_command(zeroserve() + " gen-model --preset tiny --type q8_0 --out " + shell_quote(model)).exit_code, 0);
  WorkerProcess w({"--ctx", "4096", "--slots", "1"}, model);
  ASSERT_FALSE(w.address().empty());
  // The end-of-sequence token (id 2) is never picked, so only a cap or the context ends it.
  json body = {{"model", "m"},
               {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
               {"temperature", 0},
               {"logit_bias", {{"2", -100}}}};
  const json answer = json::parse(w.post("/v1/chat/completions", body.dump()).body);
  ASSERT_TRUE(answer.contains("usage")) << answer.dump();
  EXPECT_EQ(answer["usage"]["completion_tokens"], 1024);
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "length");
  body["max_tokens"] = 7;  // a request's own limit still wins
  EXPECT_EQ(json::parse(w.post("/v1/chat/completions", body.dump()).body)["usage"]["completion_tokens"], 7);
}

}  // namespace
}  // namespace zs::testing
