// llama.cpp's tokenizer test vectors (test-tokenizer-0): every text must give exactly the
// reference ids, without BOS.
#include <gtest/gtest.h>

#include "test_util.h"

namespace zs::engine {
namespace {

using testing::ids_to_string;

struct VectorCase {
  const char* name;
  const char* path;      // relative to the shared folder
  bool lossless;         // decode(encode(x)) == x for every text
};

class VocabVectors : public ::testing::TestWithParam<VectorCase> {};

TEST_P(VocabVectors, MatchReference) {
  const VectorCase& c = GetParam();
  const std::string base = testing::shared_path(c.path);
  auto tok = testing::load_tokenizer(base);
  ASSERT_NE(tok, nullptr);
  const auto texts = testing::read_vocab_inputs(base + ".inp");
  const auto expected = testing::read_vocab_outputs(base + ".out");
  ASSERT_EQ(texts.size(), expected.size()) << "inp/out text counts differ";
  ASSERT_GT(texts.size(), 40u);
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    // The texts hold no special-token strings, so parsing them or not must agree.
    const auto got = tok->encode(texts[i], false, false);
    const auto got_special = tok->encode(texts[i], false, true);
    EXPECT_EQ(got, got_special) << "text " << i;
    if (got != expected[i]) {
      ++failures;
      ADD_FAILURE() << c.name << " text " << i << " '" << texts[i] << "'\n  want"
                    << ids_to_string(expected[i]) << "\n  got " << ids_to_string(got);
    }
    if (c.lossless) {
      EXPECT_EQ(tok->decode(got), texts[i]) << "round trip of text " << i;
    }
  }
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Llamacpp, VocabVectors,
    ::testing::Values(
        VectorCase{"llama_spm", "golden/tokenizer/ggml-vocab-llama-spm.gguf", true},
        VectorCase{"gpt2", "golden/tokenizer/ggml-vocab-gpt-2.gguf", true},
        VectorCase{"deepseek_coder", "data/llama-cpp-vocab/ggml-vocab-deepseek-coder.gguf", true},
        VectorCase{"mpt", "data/llama-cpp-vocab/ggml-vocab-mpt.gguf", true},
        VectorCase{"refact", "data/llama-cpp-vocab/ggml-vocab-refact.gguf", true},
        // WordPiece lower-cases and drops accents: not lossless.
        VectorCase{"bert_bge", "data/llama-cpp-vocab/ggml-vocab-bert-bge.gguf", false}),
    [](const ::testing::TestParamInfo<VectorCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zs::engine
