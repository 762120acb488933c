// Constrained sequences in a continuous batch: they produce valid JSON, and the unconstrained
// sequences beside them decode exactly as they would alone.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "engine/batch/batch_engine.h"
#include "engine/structured/json_schema.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

const Llm& model() {
  static Llm llm = std::move(Llm::load(zs::testing::golden_model("stories260K.gguf")).value());
  return llm;
}

struct Out {
  std::string text;
  GenerationEvent last;
  size_t logprobs = 0;
};

std::future<Out> run(BatchEngine& engine, const std::string& prompt, int max_tokens,
                     std::shared_ptr<structured::Constraint> constraint, float temperature = 0, uint64_t seed = 1) {
  auto promise = std::make_shared<std::promise<Out>>();
  auto acc = std::make_shared<Out>();
  GenerationRequest r;
  PromptPiece piece;
  piece.tokens = model().tokenizer->encode(prompt, true, true);
  r.prompt.pieces.push_back(std::move(piece));
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.max_tokens = max_tokens;
  r.constraint = std::move(constraint);
  r.logprobs = 1;
  r.on_event = [promise, acc](const GenerationEvent& e) {
    acc->text += e.text;
    acc->logprobs += e.logprobs.size();
    if (e.finished) {
      acc->last = e;
      promise->set_value(*acc);
    }
  };
  EXPECT_TRUE(engine.submit(std::move(r)).is_ok());
  return promise->get_future();
}

TEST(ConstrainedBatch, OthersDecodeAsAloneAndConstrainedOutputParses) {
  auto backend = make_cpu_backend(2);
  BatchEngine engine(model(), *backend, {.slots = 6, .ctx_tokens = 4096, .block_size = 16, .step_token_budget = 64});
  const std::string alone = run(engine, "Once upon a time", 40, nullptr).get().text;

  auto index = std::make_shared<structured::TokenIndex>(*model().tokenizer);
  auto schema = nlohmann::ordered_json::parse(
      R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"},"tag":{"enum":["x","y"]}},"required":["ok","n","tag"]})");
  auto constraint = std::make_shared<structured::Constraint>(std::move(structured::compile_json_schema(schema).value()), index);

  std::vector<std::future<Out>> constrained;
  for (uint64_t seed = 1; seed <= 4; ++seed)
    constrained.push_back(run(engine, "Lily and Tom went to the park", 400, constraint, 1.0f, seed));
  auto beside = run(engine, "Once upon a time", 40, nullptr);
  EXPECT_EQ(beside.get().text, alone);
  for (auto& f : constrained) {
    const Out o = f.get();
    EXPECT_EQ(o.last.reason, FinishReason::kStop) << o.text;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(o.text)) << o.text;
    EXPECT_TRUE(j["ok"].is_boolean());
    EXPECT_TRUE(j["n"].is_number_integer());
    EXPECT_TRUE(j["tag"] == "x" || j["tag"] == "y");
    EXPECT_EQ(static_cast<int>(o.logprobs), o.last.completion_tokens);
  }
}

}  // namespace
}  // namespace zs::engine
