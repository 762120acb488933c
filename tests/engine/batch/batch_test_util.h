#pragma once
// Shared by the batch engine's tests: the real stories260K model, prompts, and the
// single-sequence greedy reference every batched result is checked against.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "engine/batch/batch_engine.h"
#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {

inline const Llm& stories() {
  static Llm llm = std::move(Llm::load(zs::testing::golden_model("stories260K.gguf")).value());
  return llm;
}

inline MultimodalPrompt text_prompt(const std::string& text) {
  MultimodalPrompt p;
  PromptPiece piece;
  piece.tokens = stories().tokenizer->encode(text, true, true);
  p.pieces.push_back(std::move(piece));
  return p;
}

inline std::string greedy_reference(const std::string& text, int n) {
  auto backend = make_cpu_backend(1);
  auto ids = stories().tokenizer->encode(text, true, true);
  Session s(*stories().model, *backend, static_cast<int>(ids.size()) + n + 1);
  EXPECT_TRUE(s.eval(ids).is_ok());
  std::string out;
  for (int i = 0; i < n; ++i) {
    int32_t next = static_cast<int32_t>(std::max_element(s.logits(), s.logits() + s.n_vocab()) - s.logits());
    if (stories().tokenizer->is_end_of_generation(next)) break;
    out += stories().tokenizer->token_to_piece(next);
    EXPECT_TRUE(s.eval(&next, 1).is_ok());
  }
  return out;
}

}  // namespace zs::engine
