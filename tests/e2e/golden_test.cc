// Holds the engine to the reference outputs in ../shared/golden/golden.jsonl and
// ../shared/golden/families/golden.jsonl, through the `zeroserve golden` command exactly as a
// user runs it, with the tolerances of ../shared/golden/README.md.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

std::vector<json> golden_lines() { return read_lines(zs::testing::shared_dir() + "/golden/golden.jsonl"); }

std::string families_dir() { return zs::testing::shared_dir() + "/golden/families"; }

// The families' lines of one kind: "text" (next-token logits), "embedding", or "vision"
// (projectors of the vision-language families).
std::vector<json> family_lines(const std::string& kind) {
  std::vector<json> out;
  for (json& line : read_lines(families_dir() + "/golden.jsonl")) {
    const std::string k = line.contains("mmproj") ? "vision" : line.contains("embedding_sum") ? "embedding" : "text";
    if (k == kind) out.push_back(std::move(line));
  }
  return out;
}

// File names spell the type either way ("tiny-llama-q8_0", "TinyStories-656K-Q8_0").
bool is_quantized(std::string model) {
  for (char& c : model) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return model.find("q8_0") != std::string::npos || model.find("q4_") != std::string::npos;
}

class GoldenText : public ::testing::TestWithParam<int> {};

// Compares `zeroserve golden` output with a reference line of next-token logits.
void expect_matches_text_line(const json& ref, const json& got) {
  const std::string model = ref["model"];
  const int n = static_cast<int>(ref["greedy"].size());
  SCOPED_TRACE(model + " / " + ref["prompt"].get<std::string>());
  EXPECT_EQ(got["prompt_tokens"], ref["prompt_tokens"]);
  if (ref.contains("image")) {
    EXPECT_EQ(got["image_tokens"], ref["image_tokens"]);
    EXPECT_EQ(got["layout"], ref["layout"]);
    const double ref_sumsq = ref["image_embed_sumsq"];
    EXPECT_NEAR(got["image_embed_sumsq"].get<double>(), ref_sumsq, 1e-3 * ref_sumsq);
    const double ref_sum = ref["image_embed_sum"];
    EXPECT_NEAR(got["image_embed_sum"].get<double>(), ref_sum, 1e-3 * std::max(1.0, std::abs(ref_sum)));
    // The README bounds only the sums. The first values catch a wrong row order or layout, which
    // moves them by far more than 1e-3; the lines agree to 1e-6 but Qwen2.5-VL's, whose
    // encoder keeps a residual of up to 5e-4 (docs/engine.md).
    for (int i = 0; i < 8; ++i)
      EXPECT_NEAR(got["image_embed_first8"][i].get<double>(), ref["image_embed_first8"][i].get<double>(), 1e-3);
  }

  // Our logit for each of the reference's top-10 ids, from our own top-10 list.
  auto logit_of = [&](int id) {
    for (const auto& p : got["last_logits_top10"])
      if (p[0] == id) return p[1].get<double>();
    return std::nan("");
  };
  const auto& ref_top = ref["last_logits_top10"];
  const auto& got_top = got["last_logits_top10"];
  EXPECT_EQ(got_top[0][0], ref_top[0][0]) << "top-1 differs";
  if (!is_quantized(model)) {
    // A rank is held only where the reference separates it from both neighbours by more than
    // 1e-3 (two near-tied ids may come out in either order).
    for (size_t i = 0; i + 1 < ref_top.size(); ++i) {
      double gap = ref_top[i][1].get<double>() - ref_top[i + 1][1].get<double>();
      double gap_above = i == 0 ? 1.0 : ref_top[i - 1][1].get<double>() - ref_top[i][1].get<double>();
      if (gap > 1e-3 && gap_above > 1e-3) {
        EXPECT_EQ(got_top[i][0], ref_top[i][0]) << "rank " << i;
      }
    }
    for (const auto& p : ref_top) {
      double mine = logit_of(p[0]);
      if (std::isnan(mine)) continue;  // fell out of our top-10: caught by the rank check above
      EXPECT_NEAR(mine, p[1].get<double>(), 1e-2) << "token " << p[0];
    }
    EXPECT_EQ(got["greedy"], ref["greedy"]);
    EXPECT_NEAR(got["last_logits_sum"].get<double>(), ref["last_logits_sum"].get<double>(),
                1e-3 * std::abs(ref["last_logits_sumsq"].get<double>()));
  } else {
    const double abs_tol = model.find("q8_0") != std::string::npos || model.find("Q8_0") != std::string::npos ? 0.1 : 0.15;
    int matched = 0;
    for (const auto& p : ref_top) {
      double mine = logit_of(p[0]);
      double want = p[1].get<double>();
      if (std::isnan(mine)) continue;
      ++matched;
      EXPECT_NEAR(mine, want, abs_tol + 0.01 * std::abs(want)) << "token " << p[0];
    }
    EXPECT_GE(matched, 8) << "too few of the reference's top-10 ids are in ours";
    for (int i = 0; i < 4 && i < n; ++i) EXPECT_EQ(got["greedy"][i], ref["greedy"][i]) << "greedy token " << i;
  }
  EXPECT_NEAR(got["last_logits_sumsq"].get<double>(), ref["last_logits_sumsq"].get<double>(),
              0.02 * ref["last_logits_sumsq"].get<double>());
}

TEST_P(GoldenText, MatchesReference) {
  const json ref = golden_lines().at(GetParam());
  const std::string model = ref["model"];
  const int n = static_cast<int>(ref["greedy"].size());
  std::string cmd = zs::testing::zeroserve() + " golden --model " +
                    zs::testing::shell_quote(zs::testing::golden_model(model)) + " --prompt " +
                    zs::testing::shell_quote(ref["prompt"]) + " --n " + std::to_string(n);
  if (ref.contains("image")) {
    // The vision lines pair tiny-llama-f16 with the LLaVA-style projector (golden README).
    cmd += " --mmproj " + zs::testing::shell_quote(zs::testing::golden_model("tiny-llava-mmproj-f32.gguf")) +
           " --image " + zs::testing::shell_quote(zs::testing::shared_dir() + "/golden/images/" + ref["image"].get<std::string>());
  }
  auto r = zs::testing::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_matches_text_line(ref, json::parse(r.out));
}

INSTANTIATE_TEST_SUITE_P(AllLines, GoldenText, ::testing::Range(0, static_cast<int>(golden_lines().size())));

// gemma2, phi3, chatglm, qwen2moe, Mixtral-style llama, Llama-3 rope factors.
class FamilyText : public ::testing::TestWithParam<int> {};

TEST_P(FamilyText, MatchesReference) {
  const json ref = family_lines("text").at(GetParam());
  std::string cmd = zs::testing::zeroserve() + " golden --model " +
                    zs::testing::shell_quote(families_dir() + "/models/" + ref["model"].get<std::string>()) +
                    " --prompt " + zs::testing::shell_quote(ref["prompt"]) + " --n " +
                    std::to_string(ref["greedy"].size());
  if (ref.contains("n_ctx")) cmd += " --ctx " + std::to_string(ref["n_ctx"].get<int>());
  auto r = zs::testing::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_matches_text_line(ref, json::parse(r.out));
}

INSTANTIATE_TEST_SUITE_P(AllLines, FamilyText, ::testing::Range(0, static_cast<int>(family_lines("text").size())));

// LLaVA-1.6 (anyres, with tiny-llama3), GLM-Edge-V (adapter, with tiny-chatglm) and Qwen2-VL
// (merger, with tiny-qwen2vl; its line frames the image with prefix_text and suffix_text):
// image embedding sums, image_tokens (GLM's boi/eoi included), layout, logits and greedy tokens.
// Runs `zeroserve golden` on a vision line (prefix_text/suffix_text frame the image when
// present) and compares it with the reference.
void check_vision_line(const json& ref, const std::string& dir) {
  const std::string models = dir + "/models/";
  const bool framed = ref.contains("prefix_text");
  std::string cmd =
      zs::testing::zeroserve() + " golden --model " + zs::testing::shell_quote(models + ref["model"].get<std::string>()) +
      " --mmproj " + zs::testing::shell_quote(models + ref["mmproj"].get<std::string>()) + " --image " +
      zs::testing::shell_quote(dir + "/images/" + ref["image"].get<std::string>()) + " --prompt " +
      zs::testing::shell_quote(ref["prompt"]) + " --n " + std::to_string(ref["greedy"].size());
  if (framed)
    cmd += " --prefix " + zs::testing::shell_quote(ref["prefix_text"]) + " --suffix " +
           zs::testing::shell_quote(ref["suffix_text"]);
  auto r = zs::testing::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  json got = json::parse(r.out);
  if (framed) {
    // The reference's layout text describes the positions; ours names the same parts.
    EXPECT_EQ(got["prefix_tokens"], ref["prefix_tokens"]);
    if (ref.contains("image_grid_hw")) {
      EXPECT_EQ(got["image_grid_hw"], ref["image_grid_hw"]);
    }
    EXPECT_EQ(got["layout"], "prefix_tokens,image,prompt_tokens");
    got["layout"] = ref["layout"];
  }
  // Greedy tokens must be identical, except that a divergence is accepted at a step where our
  // top two logits are closer than the logit tolerance (1e-2): there either choice agrees with
  // the reference within tolerance, and the rest follows from that choice. The LLaVA-1.6 line
  // diverges at such a step (step 1, margin ~9e-4; a 1e-6 relative perturbation of the image
  // embeddings flips it either way, see docs/engine.md); every token before it matches.
  const auto& want = ref["greedy"];
  size_t first_diff = 0;
  while (first_diff < want.size() && got["greedy"][first_diff] == want[first_diff]) ++first_diff;
  if (first_diff < want.size()) {
    const double margin = got["greedy_margins"][first_diff].get<double>();
    std::printf("[   NOTE   ] %s: greedy diverges at step %zu where our top-2 margin is %.2e\n",
                ref["model"].get<std::string>().c_str(), first_diff, margin);
    EXPECT_LT(margin, 1e-2) << "greedy token " << first_diff << " differs without a near-tie";
    got["greedy"] = want;  // for the remaining checks of expect_matches_text_line
  }
  expect_matches_text_line(ref, got);
}

class FamilyVision : public ::testing::TestWithParam<int> {};

TEST_P(FamilyVision, MatchesReference) { check_vision_line(family_lines("vision").at(GetParam()), families_dir()); }

INSTANTIATE_TEST_SUITE_P(AllLines, FamilyVision, ::testing::Range(0, static_cast<int>(family_lines("vision").size())));

// The current generation (../shared/golden/2026/): qwen3, qwen3moe, gemma3 (text and vision),
// SmolVLM and Qwen2.5-VL, each in its own line so that an unimplemented family fails only its own.
std::string dir_2026() { return zs::testing::shared_dir() + "/golden/2026"; }
std::vector<json> lines_2026() { return read_lines(dir_2026() + "/golden.jsonl"); }

class Golden2026 : public ::testing::TestWithParam<int> {};

TEST_P(Golden2026, MatchesReference) {
  const json ref = lines_2026().at(GetParam());
  if (ref.contains("mmproj")) return check_vision_line(ref, dir_2026());
  auto r = zs::testing::run_command(zs::testing::zeroserve() + " golden --model " +
                                    zs::testing::shell_quote(dir_2026() + "/models/" + ref["model"].get<std::string>()) +
                                    " --prompt " + zs::testing::shell_quote(ref["prompt"]) + " --n " +
                                    std::to_string(ref["greedy"].size()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  expect_matches_text_line(ref, json::parse(r.out));
}

INSTANTIATE_TEST_SUITE_P(AllLines, Golden2026, ::testing::Range(0, static_cast<int>(lines_2026().size())),
                         [](const auto& info) {
                           const json line = lines_2026().at(info.param);
                           std::string n = line["model"].get<std::string>();
                           n = n.substr(5, n.size() - 10) + (line.contains("mmproj") ? "_vision" : "") + "_" +
                               std::to_string(info.param);
                           for (char& ch : n)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// bert: the pooled vector before and after normalisation (f32 model: 1e-4 relative).
class FamilyEmbedding : public ::testing::TestWithParam<int> {};

TEST_P(FamilyEmbedding, MatchesReference) {
  const json ref = family_lines("embedding").at(GetParam());
  auto r = zs::testing::run_command(
      zs::testing::zeroserve() + " golden --model " +
      zs::testing::shell_quote(families_dir() + "/models/" + ref["model"].get<std::string>()) + " --prompt " +
      zs::testing::shell_quote(ref["prompt"]));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json got = json::parse(r.out);
  SCOPED_TRACE(ref["model"].get<std::string>() + " / " + ref["prompt"].get<std::string>());
  EXPECT_EQ(got["prompt_tokens"], ref["prompt_tokens"]);
  EXPECT_EQ(got["pooling"], ref["pooling"]);
  EXPECT_EQ(got["embedding_dim"], ref["embedding_dim"]);
  const double sumsq = ref["embedding_sumsq"];
  EXPECT_NEAR(got["embedding_sumsq"].get<double>(), sumsq, 1e-4 * sumsq);
  EXPECT_NEAR(got["embedding_sum"].get<double>(), ref["embedding_sum"].get<double>(), 1e-4 * std::sqrt(sumsq));
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(got["embedding_first8"][i].get<double>(), ref["embedding_first8"][i].get<double>(), 1e-4);
    EXPECT_NEAR(got["embedding_norm_first8"][i].get<double>(), ref["embedding_norm_first8"][i].get<double>(), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLines, FamilyEmbedding,
                         ::testing::Range(0, static_cast<int>(family_lines("embedding").size())));

TEST(GoldenCommand, UnknownModelFileIsAClearError) {
  auto r = zs::testing::run_command(zs::testing::zeroserve() + " golden --model /nonexistent.gguf --prompt x 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("/nonexistent.gguf"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace zs
