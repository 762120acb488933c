// Special tokens, decoding, bad vocabularies, hostile input and speed.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "engine/gguf/gguf_writer.h"
#include "test_util.h"

namespace zs::engine {
namespace {

std::unique_ptr<Tokenizer> spm() {
  return testing::load_tokenizer(testing::shared_path("golden/tokenizer/ggml-vocab-llama-spm.gguf"));
}
std::unique_ptr<Tokenizer> gpt2() {
  return testing::load_tokenizer(testing::shared_path("golden/tokenizer/ggml-vocab-gpt-2.gguf"));
}

using Ids = std::vector<int32_t>;

TEST(SpecialTokens, SpmControlTokensOnlyWhenParsing) {
  auto tok = spm();
  ASSERT_NE(tok, nullptr);
  // A text after a special token gets the SentencePiece space prefix again.
  EXPECT_EQ(tok->encode("<s>Hello</s>", false, true), (Ids{1, 15043, 2}));
  EXPECT_EQ(tok->encode("<s>Hello</s>", true, true), (Ids{1, 1, 15043, 2}));
  const Ids plain = tok->encode("<s>Hello</s>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tok->decode(plain), "<s>Hello</s>");
  // Control tokens render as nothing unless asked.
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok->decode({1, 15043, 2}), "Hello");
  EXPECT_EQ(tok->decode({1, 15043, 2}, true), "<s>Hello</s>");
}

TEST(SpecialTokens, Gpt2EndOfText) {
  auto tok = gpt2();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->encode("<|endoftext|>Hello<|endoftext|>", false, true),
            (Ids{50256, 15496, 50256}));
  const Ids plain = tok->encode("<|endoftext|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok->decode(plain), "<|endoftext|>");
  EXPECT_TRUE(tok->is_end_of_generation(50256));
  EXPECT_EQ(tok->find_token("<|endoftext|>"), 50256);
  EXPECT_EQ(tok->token_text(15496), "Hello");
  EXPECT_EQ(tok->token_to_piece(18435), " Hello");  // "ĠHello"
  EXPECT_EQ(tok->token_text(-5), "");
  EXPECT_EQ(tok->token_to_piece(1 << 30), "");
}

// A synthetic SentencePiece vocabulary with overlapping user-defined tokens.
std::unique_ptr<Tokenizer> synthetic_spm() {
  Vocab::Spec spec;
  spec.type = VocabType::kSpm;
  auto add = [&](std::string text, TokenType type, float score = 0.0f) {
    spec.tokens.push_back({std::move(text), score, type});
  };
  add("<unk>", TokenType::kUnknown);
  add("<s>", TokenType::kControl);
  add("</s>", TokenType::kControl);
  add("<|im_start|>", TokenType::kControl);
  add("<|im_end|>", TokenType::kControl);
  add("\xE2\x96\x81", TokenType::kNormal);  // 5: ▁
  add("a", TokenType::kNormal);             // 6
  add("b", TokenType::kNormal);
  add("c", TokenType::kNormal);
  add("d", TokenType::kNormal);
  add("ab", TokenType::kUserDefined);       // 10
  add("bcd", TokenType::kUserDefined);      // 11
  add("\xE2\x96\x81" "a", TokenType::kNormal, 1.0f);  // 12: ▁a
  spec.bos = 1;
  spec.eos = 2;
  spec.unk = 0;
  auto vocab = Vocab::from_spec(std::move(spec));
  EXPECT_TRUE(vocab.is_ok()) << vocab.status().message();
  auto tok = Tokenizer::from_vocab(std::move(vocab.value()));
  return std::move(tok.value());
}

TEST(SpecialTokens, LongestFirstAndUserDefinedAlways) {
  auto tok = synthetic_spm();
  // "bcd" is longer than "ab", so it is taken first even though "ab" starts earlier.
  EXPECT_EQ(tok->encode("abcd", false, false), (Ids{12, 11}));
  EXPECT_EQ(tok->encode("<|im_start|>ab<|im_end|>", false, true), (Ids{3, 10, 4}));
  EXPECT_TRUE(tok->is_end_of_generation(4));  // <|im_end|> by its text
  EXPECT_TRUE(tok->is_end_of_generation(2));
  EXPECT_EQ(tok->eot(), 4);
  // Characters without a token and without byte tokens fall back to <unk>.
  EXPECT_EQ(tok->encode("z", false, false), (Ids{5, 0}));
}

TEST(SpecialTokens, ControlTokensRenderedAsTextAppearInTheOutputButStayControlTokensInPrompts) {
  auto tok = synthetic_spm();
  EXPECT_EQ(tok->token_to_piece(3), "");
  EXPECT_EQ(tok->decode({3, 6, 4}), "a");
  tok->render_as_text({3, 6, 0, 1 << 30});  // a normal token, <unk> and a bad id are ignored
  EXPECT_EQ(tok->token_to_piece(3), "<|im_start|>");
  EXPECT_EQ(tok->decode({3, 6, 4}), "<|im_start|>a");
  EXPECT_EQ(tok->token_to_piece(0), "");
  // Encoding is unchanged: the text is the token only with parse_special.
  EXPECT_EQ(tok->encode("<|im_start|>", false, true), (Ids{3}));
  EXPECT_NE(tok->encode("<|im_start|>", false, false), (Ids{3}));
}

TEST(Decode, SpmBytesAndSpaces) {
  auto tok = spm();
  ASSERT_NE(tok, nullptr);
  const std::string text = " leading, double  space\ttab\nnewline \xF0\x9F\xA6\x99 end ";
  EXPECT_EQ(tok->decode(tok->encode(text, false, false)), text);
  EXPECT_EQ(tok->decode(tok->encode(text, true, false)), text);
  EXPECT_EQ(tok->token_to_piece(3 + 0x41), "A");  // <0x41>
}

// Writes a vocabulary-only GGUF and tries to load it.
class BadVocab : public ::testing::Test {
 protected:
  GgufWriter base_spm() {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "\xE2\x96\x81"});
    w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, 0, 0});
    w.set_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1});
    return w;
  }
  GgufWriter base_bpe() {
    GgufWriter w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "gpt-2");
    w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "<|endoftext|>"});
    w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 3});
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_u32("tokenizer.ggml.bos_token_id", 3);
    w.set_u32("tokenizer.ggml.eos_token_id", 3);
    return w;
  }
  core::Result<std::unique_ptr<Tokenizer>> load(const GgufWriter& w) {
    const std::string path = ::testing::TempDir() + "/zs_tok_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                             ".gguf";
    auto st = w.write(path);
    EXPECT_TRUE(st.is_ok()) << st.message();
    auto file = GgufFile::open(path);
    EXPECT_TRUE(file.is_ok()) << file.status().message();
    files_.push_back(std::move(file.value()));
    return Tokenizer::from_gguf(*files_.back());
  }
  void expect_error(const GgufWriter& w, const std::string& needle) {
    auto tok = load(w);
    ASSERT_FALSE(tok.is_ok());
    EXPECT_NE(tok.status().message().find(needle), std::string::npos) << tok.status().message();
  }
  std::vector<std::unique_ptr<GgufFile>> files_;
};

TEST_F(BadVocab, GoodFilesLoad) {
  auto a = load(base_spm());
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a.value()->encode("a", true, true), (Ids{1, 4, 3}));
  auto b = load(base_bpe());
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b.value()->encode("ab", true, true), (Ids{2}));
  EXPECT_FALSE(b.value()->add_bos_by_default());
}

TEST_F(BadVocab, MissingModel) {
  GgufWriter w;
  w.set_string_array("tokenizer.ggml.tokens", {"a"});
  expect_error(w, "tokenizer.ggml.model");
}

TEST_F(BadVocab, UnsupportedModel) {
  auto w = base_spm();
  w.set_string("tokenizer.ggml.model", "rwkv");
  expect_error(w, "rwkv");
}

TEST_F(BadVocab, ScoresLengthMismatch) {
  auto w = base_spm();
  w.set_f32_array("tokenizer.ggml.scores", {0, 0});
  expect_error(w, "tokenizer.ggml.scores");
}

TEST_F(BadVocab, TokenTypeLengthMismatch) {
  auto w = base_spm();
  w.set_i32_array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1});
  expect_error(w, "tokenizer.ggml.token_type");
}

TEST_F(BadVocab, NoTokens) {
  auto w = base_spm();
  w.set_string_array("tokenizer.ggml.tokens", {});
  expect_error(w, "tokenizer.ggml.tokens");
}

TEST_F(BadVocab, SpecialIdOutOfRange) {
  auto w = base_spm();
  w.set_u32("tokenizer.ggml.bos_token_id", 5000);
  expect_error(w, "BOS token id 5000");
  auto e = base_bpe();
  e.set_i32("tokenizer.ggml.eos_token_id", -7);
  expect_error(e, "EOS token id -7");
}

TEST_F(BadVocab, UnsetSentinelIdsAreAccepted) {
  auto w = base_spm();
  w.set_u32("tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
  w.set_u32("tokenizer.ggml.seperator_token_id", 0xFFFFFFFFu);
  EXPECT_TRUE(load(w).is_ok());
}

TEST_F(BadVocab, MissingMerges) {
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
  expect_error(w, "merges");
}

TEST_F(BadVocab, MalformedMerge) {
  auto w = base_bpe();
  w.set_string_array("tokenizer.ggml.merges", {"ab"});
  expect_error(w, "merge 0");
}

TEST_F(BadVocab, UnknownPreTokenizer) {
  auto w = base_bpe();
  w.set_string("tokenizer.ggml.pre", "made-up");
  expect_error(w, "made-up");
}

TEST_F(BadVocab, WrongValueType) {
  auto w = base_spm();
  w.set_string("tokenizer.ggml.bos_token_id", "one");
  expect_error(w, "bos_token_id");
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(byte(rng));
  return s;
}

TEST(Robustness, ArbitraryBytesNeverCrash) {
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(spm());
  toks.push_back(gpt2());
  for (const char* v : {"deepseek-coder", "mpt", "refact", "bert-bge"}) {
    toks.push_back(testing::load_tokenizer(
        testing::shared_path(std::string("data/llama-cpp-vocab/ggml-vocab-") + v + ".gguf")));
  }
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    const std::string text = random_bytes(rng, 1 + round % 64);
    for (const auto& tok : toks) {
      ASSERT_NE(tok, nullptr);
      for (int32_t id : tok->encode(text, true, true)) {
        ASSERT_GE(id, 0);
        ASSERT_LT(id, tok->n_vocab());
      }
    }
    // Byte fallback keeps SentencePiece lossless even for invalid UTF-8 without spaces.
    std::string no_space = text;
    for (char& c : no_space) {
      if (c == ' ') c = 'x';
    }
    EXPECT_EQ(toks[0]->decode(toks[0]->encode(no_space, false, false)), no_space);
  }
  std::vector<int32_t> junk_ids = {-1, 0, 1 << 30, 50256, 3};
  for (const auto& tok : toks) (void)tok->decode(junk_ids, true);
}

// Vocabularies without upstream test vectors still load and round-trip plain text.
TEST(OtherVocabs, LoadAndRoundTrip) {
  for (const char* v : {"gpt-neox", "baichuan"}) {
    auto tok = testing::load_tokenizer(
        testing::shared_path(std::string("data/llama-cpp-vocab/ggml-vocab-") + v + ".gguf"));
    ASSERT_NE(tok, nullptr) << v;
    const std::string text = "Hello world, this is a test.\n  Indented 12345";
    const auto ids = tok->encode(text, false, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok->decode(ids), text) << v;
  }
}

TEST(Robustness, ValidUtf8RoundTrips) {
  auto s = spm();
  auto g = gpt2();
  ASSERT_TRUE(s && g);
  const std::string text =
      "Mixed: \xC3\xA9t\xC3\xA9, \xE4\xBD\xA0\xE5\xA5\xBD, \xF0\x9F\x98\x80, \xD0\x9F\xD1\x80"
      "\xD0\xB8, 3.14159, tabs\t\tand\r\nnewlines   ";
  EXPECT_EQ(s->decode(s->encode(text, true, false)), text);
  EXPECT_EQ(g->decode(g->encode(text, true, false)), text);
}

double seconds_to_encode(const Tokenizer& tok, const std::string& text, size_t* n_tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  *n_tokens = tok.encode(text, true, true).size();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Speed, HundredKilobyteInputs) {
  std::vector<std::unique_ptr<Tokenizer>> toks;
  toks.push_back(spm());
  toks.push_back(gpt2());
  toks.push_back(testing::load_tokenizer(
      testing::shared_path("data/llama-cpp-vocab/ggml-vocab-mpt.gguf")));
  const std::string prose_unit =
      "The quick brown fox jumps over the lazy dog; <|endoftext|> 12345 \xE4\xBD\xA0\xE5\xA5\xBD!\n";
  std::string prose;
  while (prose.size() < 100000) prose += prose_unit;
  const std::string inputs[] = {prose, std::string(100000, 'a'), std::string(100000, ' '),
                                std::string(100000, '7'),
                                [] {
                                  std::mt19937 rng(7);
                                  return random_bytes(rng, 100000);
                                }()};
  for (const auto& tok : toks) {
    ASSERT_NE(tok, nullptr);
    for (const std::string& text : inputs) {
      size_t n = 0;
      const double s = seconds_to_encode(*tok, text, &n);
      EXPECT_GT(n, 0u);
      // Generous bound (sanitizers, debug builds); release builds take milliseconds.
      EXPECT_LT(s, 5.0) << "encoding 100 KB took " << s << " s";
    }
  }
}

}  // namespace
}  // namespace zs::engine
