// The pre-tokenizer expressions, checked on texts whose split is known from the regexes.
#include "engine/tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

namespace zs::engine {
namespace {

using Words = std::vector<std::string>;

Words split(const char* pre, std::string_view text) {
  auto type = pre_tokenizer_from_name(pre);
  EXPECT_TRUE(type.is_ok()) << pre;
  return pre_tokenize(type.value(), text);
}

TEST(PreTokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world 12345 I'M"),
            (Words{"Hello", " world", " 12345", " I", "'", "M"}));
  EXPECT_EQ(split("gpt-2", "I'm   here\t\tnow "),
            (Words{"I", "'m", "  ", " here", "\t", "\t", "now", " "}));
  EXPECT_EQ(split("mpt", "a!!  ?"), (Words{"a", "!!", " ", " ?"}));
}

TEST(PreTokenizer, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(split("llama-bpe", "Hello world 12345 I'M  \n\n x"),
            (Words{"Hello", " world", " ", "123", "45", " I", "'M", "  \n\n", " x"}));
  EXPECT_EQ(split("llama3", "(x)!!\n\nok"), (Words{"(x", ")!!\n\n", "ok"}));
}

TEST(PreTokenizer, Qwen2SingleDigits) {
  EXPECT_EQ(split("qwen2", "Hello world 12345 I'M"),
            (Words{"Hello", " world", " ", "1", "2", "3", "4", "5", " I", "'M"}));
}

TEST(PreTokenizer, StarcoderDigitsFirst) {
  EXPECT_EQ(split("starcoder", "Hello world 12345 I'M"),
            (Words{"Hello", " world", " ", "1", "2", "3", "4", "5", " I", "'", "M"}));
  EXPECT_EQ(split("refact", "x=42"), split("smollm", "x=42"));
}

TEST(PreTokenizer, DefaultAndFalcon) {
  const Words want{"Hello", " world", " ", "123", "45", " I", "'", "M"};
  EXPECT_EQ(split("default", "Hello world 12345 I'M"), want);
  EXPECT_EQ(split("falcon", "Hello world 12345 I'M"), want);
  EXPECT_EQ(split("default", "a+=b"), (Words{"a", "+=", "b"}));
}

TEST(PreTokenizer, Deepseek) {
  EXPECT_EQ(split("deepseek-coder", "Hello world 12345 I'M"),
            (Words{"Hello", " world", " ", "1", "2", "3", "4", "5", " I", "'", "M"}));
  EXPECT_EQ(split("deepseek-llm", "Hello world 12345 I'M"),
            (Words{"Hello", " world", " ", "12345", " I", "'", "M"}));
  EXPECT_EQ(split("deepseek-llm", "ab  "), (Words{"ab", "  "}));
  EXPECT_EQ(split("deepseek-coder", "\xE4\xBD\xA0\xE5\xA5\xBD\n"),  // 你好\n
            (Words{"\xE4\xBD\xA0\xE5\xA5\xBD", "\n"}));
}

TEST(PreTokenizer, Bloom) {
  EXPECT_EQ(split("bloom", "Hello, world"), (Words{"Hello", ",", " world"}));
}

TEST(PreTokenizer, UnicodeClasses) {
  // U+00A0 is whitespace, é a letter, ٣ (Arabic-Indic three) a number.
  EXPECT_EQ(split("gpt-2", "caf\xC3\xA9\xC2\xA0\xD9\xA3"),
            (Words{"caf\xC3\xA9", "\xC2\xA0", "\xD9\xA3"}));
}

TEST(PreTokenizer, InvalidUtf8BecomesReplacementChar) {
  EXPECT_EQ(split("gpt-2", "a\xFF" "b"), (Words{"a", "\xEF\xBF\xBD", "b"}));
}

TEST(PreTokenizer, UnknownNameIsAnError) {
  auto t = pre_tokenizer_from_name("no-such-pre");
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("no-such-pre"), std::string::npos);
}

}  // namespace
}  // namespace zs::engine
