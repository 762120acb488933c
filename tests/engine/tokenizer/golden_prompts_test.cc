// golden.jsonl `prompt_tokens`: the model's prompt tokenized by llama.cpp with BOS added when
// the vocabulary asks for it and special tokens parsed.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace zs::engine {
namespace {

TEST(GoldenPrompts, MatchReference) {
  std::istringstream in(testing::read_file(testing::shared_path("golden/golden.jsonl")));
  std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    const std::string model = j.at("model");
    auto& tok = cache[model];
    if (!tok) tok = testing::load_tokenizer(testing::shared_path("golden/models/" + model));
    ASSERT_NE(tok, nullptr) << model;
    const std::string prompt = j.at("prompt");
    const auto want = j.at("prompt_tokens").get<std::vector<int32_t>>();
    const auto got = tok->encode(prompt, tok->add_bos_by_default(), true);
    EXPECT_EQ(got, want) << model << " '" << prompt << "'\n want" << testing::ids_to_string(want)
                         << "\n got " << testing::ids_to_string(got);
    // Without BOS the text itself comes back unchanged.
    EXPECT_EQ(tok->decode(tok->encode(prompt, false, true)), prompt) << model;
    EXPECT_EQ(tok->decode(got), prompt) << model;
    ++checked;
  }
  EXPECT_GE(checked, 17);
}

TEST(GoldenPrompts, BosConventions) {
  auto llama = testing::load_tokenizer(testing::shared_path("golden/models/tiny-llama-q8_0.gguf"));
  auto qwen = testing::load_tokenizer(testing::shared_path("golden/models/tiny-qwen2-q8_0.gguf"));
  ASSERT_TRUE(llama && qwen);
  EXPECT_TRUE(llama->add_bos_by_default());
  EXPECT_EQ(llama->bos(), 1);
  EXPECT_EQ(llama->eos(), 2);
  EXPECT_FALSE(qwen->add_bos_by_default());
  EXPECT_EQ(qwen->encode("The quick brown fox", true, true),
            (std::vector<int32_t>{464, 2068, 7586, 21831}));
  EXPECT_EQ(llama->encode("The quick brown fox", false, true),
            (std::vector<int32_t>{450, 4996, 17354, 1701, 29916}));
  EXPECT_TRUE(llama->is_end_of_generation(2));
  EXPECT_FALSE(llama->is_end_of_generation(1));
  EXPECT_TRUE(qwen->is_end_of_generation(50256));  // <|endoftext|>
  EXPECT_EQ(qwen->n_vocab(), 50257);
}

}  // namespace
}  // namespace zs::engine
