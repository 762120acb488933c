// The zeroserve subcommands as a user runs them: real binary, real files.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using zs::testing::run_command;
using zs::testing::shell_quote;
using zs::testing::zeroserve;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TokenizeCommand : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizeCommand, MatchesReferenceVectors) {
  const std::string base = zs::testing::shared_dir() + "/" + GetParam();
  auto r = run_command(zeroserve() + " tokenize --model " + shell_quote(base) + " --text-file " + shell_quote(base + ".inp"));
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, read_file(base + ".out"));
}

INSTANTIATE_TEST_SUITE_P(Vocabs, TokenizeCommand,
                         ::testing::Values("golden/tokenizer/ggml-vocab-llama-spm.gguf",
                                           "golden/tokenizer/ggml-vocab-gpt-2.gguf",
                                           "data/llama-cpp-vocab/ggml-vocab-deepseek-coder.gguf"));

TEST(RunCommand, GreedyStoryIsDeterministicAndStreams) {
  const std::string cmd = zeroserve() + " run --model " + shell_quote(zs::testing::golden_model("stories260K.gguf")) +
                          " --prompt 'Once upon a time' --n-predict 24 --temp 0";
  auto a = run_command(cmd);
  auto b = run_command(cmd + " --threads 1");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_GT(a.out.size(), 20u);
  EXPECT_EQ(a.out, b.out);  // thread count must not change results
}

TEST(RunCommand, SeededSamplingIsReproducible) {
  const std::string cmd = zeroserve() + " run --model " + shell_quote(zs::testing::golden_model("stories260K.gguf")) +
                          " --prompt 'Once upon a time' --n-predict 24 --temp 0.9 --seed ";
  auto a = run_command(cmd + "7");
  auto b = run_command(cmd + "7");
  auto c = run_command(cmd + "8");
  ASSERT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST(RunCommand, BadInputIsAClearError) {
  auto r = run_command(zeroserve() + " run --model " + shell_quote(zs::testing::golden_model("tiny-llava-mmproj-f32.gguf")) +
                       " --prompt hi 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("unsupported model architecture 'clip'"), std::string::npos) << r.out;
  r = run_command(zeroserve() + " run --model " + shell_quote(zs::testing::golden_model("stories260K.gguf")) +
                  " --prompt hi --top-p 7 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("top_p"), std::string::npos) << r.out;
}

TEST(GenModelCommand, WritesAModelThatRuns) {
  zs::testing::TempDir dir;
  for (const char* type : {"f16", "q8_0", "q4_0", "q4_k_m", "q6_k"}) {
    const std::string path = dir.file(std::string("tiny-") + type + ".gguf");
    auto g = run_command(zeroserve() + " gen-model --preset tiny --type " + type + " --out " + shell_quote(path));
    ASSERT_EQ(g.exit_code, 0) << type;
    auto r = run_command(zeroserve() + " run --model " + shell_quote(path) + " --prompt 'hello world' --n-predict 4 --temp 0");
    EXPECT_EQ(r.exit_code, 0) << type;
  }
  auto bad = run_command(zeroserve() + " gen-model --preset nope --out " + shell_quote(dir.file("x.gguf")) + " 2>&1");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("unknown model preset 'nope'"), std::string::npos);
}

TEST(GenModelCommand, LayersKeepTheFirstBlocksAndRefuseImpossibleCounts) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("tiny-1.gguf");
  auto g = run_command(zeroserve() + " gen-model --preset tiny --type q8_0 --layers 1 --out " + shell_quote(path));
  ASSERT_EQ(g.exit_code, 0) << g.out;
  EXPECT_NE(g.out.find("1 of 2 blocks"), std::string::npos) << g.out;
  auto inspect = run_command(zeroserve() + " inspect --model " + shell_quote(path));
  EXPECT_NE(inspect.out.find("llama.block_count = 1"), std::string::npos) << inspect.out;
  EXPECT_EQ(inspect.out.find("blk.1."), std::string::npos) << inspect.out;
  for (const char* bad : {"0", "3"}) {
    auto r = run_command(zeroserve() + " gen-model --preset tiny --layers " + bad + " --out " +
                         shell_quote(dir.file("x.gguf")) + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << bad;
    EXPECT_NE(r.out.find("--layers " + std::string(bad) + " is out of range for preset 'tiny' (1 to 2 blocks)"),
              std::string::npos)
        << r.out;
  }
}

}  // namespace
}  // namespace zs
