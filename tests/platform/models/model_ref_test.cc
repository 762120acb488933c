#include "platform/models/model_ref.h"

#include <gtest/gtest.h>

#include <random>

namespace zs::platform {
namespace {

TEST(ModelRefTest, AFileNameParsesIntoOwnerRepoFileAndTheMainRevision) {
  auto r = parse_model_ref("hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->owner, "Qwen");
  EXPECT_EQ(r->repo, "Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(r->file, "qwen2.5-0.5b-instruct-q4_k_m.gguf");
  EXPECT_EQ(r->quant, "");
  EXPECT_EQ(r->revision, "main");
  EXPECT_EQ(r->repo_id(), "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
  EXPECT_EQ(r->to_string(), "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf");
}

TEST(ModelRefTest, AQuantNameAndARevisionParseAndPrintBack) {
  auto r = parse_model_ref("hf:ggml-org/SmolVLM-256M-Instruct-GGUF:q8_0@v1.2");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->quant, "Q8_0");
  EXPECT_EQ(r->file, "");
  EXPECT_EQ(r->revision, "v1.2");
  EXPECT_EQ(r->to_string(), "hf:ggml-org/SmolVLM-256M-Instruct-GGUF:Q8_0@v1.2");
  EXPECT_EQ(r->with_file("x-Q8_0.gguf").to_string(), "hf:ggml-org/SmolVLM-256M-Instruct-GGUF/x-Q8_0.gguf@v1.2");
}

TEST(ModelRefTest, AFileInAFolderKeepsItsPath) {
  auto r = parse_model_ref("hf:acme/big-GGUF/Q4_K_M/big-Q4_K_M.gguf@0123abcd");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->file, "Q4_K_M/big-Q4_K_M.gguf");
  EXPECT_EQ(r->revision, "0123abcd");
}

TEST(ModelRefTest, MalformedNamesAreRefusedNamingThePartThatIsWrong) {
  struct Case {
    const char* text;
    const char* names;
  };
  for (const Case& c : {Case{"Qwen/x/y.gguf", "start with 'hf:'"}, Case{"hf:", "expected hf:OWNER"},
                        Case{"hf:owner", "expected hf:OWNER"}, Case{"hf:owner/repo", "name a file"},
                        Case{"hf:/repo/f.gguf", "owner is empty"}, Case{"hf:o/repo/f.bin", "not a .gguf"},
                        Case{"hf:o/repo/../x.gguf", "may not be '..'"}, Case{"hf:o/repo/a//x.gguf", "file path part is empty"},
                        Case{"hf:o/repo:", "quantization after ':' is empty"}, Case{"hf:o/repo:Q4-K", "quantization 'Q4-K'"},
                        Case{"hf:o/repo/f.gguf@", "revision after '@' is empty"}, Case{"hf:o/repo/f.gguf@a/b", "revision 'a/b'"},
                        Case{"hf:o/re po/f.gguf", "spaces"}, Case{"hf:o$/repo/f.gguf", "owner 'o$'"}}) {
    auto r = parse_model_ref(c.text);
    ASSERT_FALSE(r.is_ok()) << c.text;
    EXPECT_EQ(r.code(), core::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.names), std::string::npos) << c.text << ": " << r.status().message();
  }
}

TEST(ModelRefTest, TheQuantLabelPicksTheWholeWordNotAPrefixOfALongerLabel) {
  const std::vector<std::string> files = {"README.md",          "m-Q4_K.gguf",          "m-Q4_K_M.gguf",
                                          "m-Q8_0.gguf",        "mmproj-m-Q8_0.gguf",   "mmproj-m-f16.gguf",
                                          "m-Q4_K_M-imat.gguf", "m-F16-00001-of-00002.gguf", "m-F16-00002-of-00002.gguf"};
  EXPECT_EQ(pick_quant_file(files, "Q4_K").value(), "m-Q4_K.gguf");
  EXPECT_EQ(pick_quant_file(files, "q4_k_m").value(), "m-Q4_K_M.gguf");
  EXPECT_EQ(pick_quant_file(files, "Q8_0").value(), "m-Q8_0.gguf");  // not the projector
  EXPECT_EQ(pick_quant_file(files, "F16").value(), "m-F16-00001-of-00002.gguf");
  auto none = pick_quant_file(files, "Q5_K_M");
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.code(), core::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("Q4_K_M"), std::string::npos) << none.status().message();
  EXPECT_EQ(pick_mmproj_file(files, "Q8_0").value(), "mmproj-m-Q8_0.gguf");
  EXPECT_EQ(pick_mmproj_file(files, "Q4_K_M").value(), "mmproj-m-f16.gguf");
  EXPECT_FALSE(pick_mmproj_file({"m-Q8_0.gguf"}, "Q8_0").has_value());
}

TEST(ModelRefTest, QuantLabelsListsEachLabelOnce) {
  EXPECT_EQ(quant_labels({"m-Q4_K_M.gguf", "m.Q8_0.gguf", "x-Q4_K_M.gguf", "mmproj-f16.gguf", "m-IQ2_XS.gguf", "notes.txt"}),
            (std::vector<std::string>{"IQ2_XS", "Q4_K_M", "Q8_0"}));
}

TEST(ModelRefTest, IsModelRefTellsNamesFromPaths) {
  EXPECT_TRUE(is_model_ref("hf:a/b:Q4_K_M"));
  EXPECT_FALSE(is_model_ref("/models/hf:a.gguf"));
  EXPECT_FALSE(is_model_ref("models/a.gguf"));
}

// The parser takes names from config files and the command line: random bytes and mutations
// of valid names end in a name or a refusal with a message, and a name prints back to itself.
TEST(ModelRefTest, RandomMutationsNeverCrashAndParsedNamesRoundTrip) {
  std::mt19937 rng(1234);
  const std::vector<std::string> seeds = {"hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", "hf:a/b/c/d.gguf@rev",
                                          "hf:o/r/f.gguf"};
  const std::string alphabet = "hf:/@.-_aZ09 \t\x01\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 3) {
        case 0: if (!s.empty()) s.erase(at, 1); break;
        case 1: s.insert(s.begin() + static_cast<long>(at), alphabet[rng() % alphabet.size()]); break;
        default: if (!s.empty()) s[at] = alphabet[rng() % alphabet.size()];
      }
    }
    auto r = parse_model_ref(s);
    if (!r.is_ok()) {
      ASSERT_FALSE(r.status().message().empty()) << s;
      continue;
    }
    auto again = parse_model_ref(r->to_string());
    ASSERT_TRUE(again.is_ok()) << s << " -> " << r->to_string();
    ASSERT_EQ(again->to_string(), r->to_string());
  }
}

}  // namespace
}  // namespace zs::platform
