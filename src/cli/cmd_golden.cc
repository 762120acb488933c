// `zeroserve golden`: one JSON line with the fields of ../shared/golden/golden.jsonl, so
// the engine can be compared against the reference outputs (greedy, 2 threads); for
// embedding models the fields of the embedding lines of ../shared/golden/families/.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "cli/commands.h"
#include "cli/cli_util.h"
#include "engine/model/encoder.h"
#include "engine/model/llm.h"
#include "engine/model/session.h"
#include "engine/vision/multimodal_prompt.h"
#include "engine/vision/vision_loader.h"

namespace zs::cli {
namespace {

struct GoldenOptions {
  std::string model, prompt, mmproj, image;
  std::string prefix, suffix;  // around the image and the prompt: prefix + image + prompt + suffix
  int n = 16;
  int threads = 2;
  int ctx = 0;  // 0: just what the prompt and the greedy tokens need
};

// Sum and sum of squares of n values, in double: the reference lines' checksums.
struct Sums {
  double sum = 0, sumsq = 0;
};
Sums sums_of(const float* v, size_t n) {
  Sums s;
  for (size_t i = 0; i < n; ++i) {
    s.sum += v[i];
    s.sumsq += static_cast<double>(v[i]) * v[i];
  }
  return s;
}

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

// Embedding models: the pooled vector before and after L2 normalisation (the fields of the
// embedding lines of ../shared/golden/families/golden.jsonl).
core::Status golden_embedding(const GoldenOptions& o, const engine::Llm& llm, engine::Backend& backend,
                              const std::vector<int32_t>& tokens) {
  engine::Encoder encoder(*llm.model, backend);
  auto pooled = encoder.embed({tokens});
  if (!pooled) return pooled.status();
  std::vector<float> v = pooled->at(0);
  const Sums s = sums_of(v.data(), v.size());
  nlohmann::json out;
  out["model"] = std::filesystem::path(o.model).filename().string();
  out["prompt"] = o.prompt;
  out["prompt_tokens"] = tokens;
  out["pooling"] = engine::pooling_name(encoder.pooling());
  out["embedding_dim"] = v.size();
  out["embedding_sum"] = s.sum;
  out["embedding_sumsq"] = s.sumsq;
  out["embedding_first8"] = std::vector<float>(v.begin(), v.begin() + std::min<size_t>(8, v.size()));
  engine::l2_normalize(v.data(), static_cast<int64_t>(v.size()));
  out["embedding_norm_first8"] = std::vector<float>(v.begin(), v.begin() + std::min<size_t>(8, v.size()));
  std::printf("%s\n", out.dump().c_str());
  return core::Status::ok();
}

core::Status run_golden(const GoldenOptions& o) {
  if (o.mmproj.empty() != o.image.empty()) return core::Status::error("--mmproj and --image go together");
  auto llm = engine::Llm::load(o.model);
  if (!llm) return llm.status();
  auto backend = engine::make_cpu_backend(o.threads);
  const bool add_bos = llm->tokenizer->add_bos_by_default();
  auto tokens = llm->tokenizer->encode(o.prompt, add_bos, true);
  if (tokens.empty()) return core::Status::error("the prompt produced no tokens");
  nlohmann::json out;
  if (llm->model->config().is_encoder()) {
    if (!o.mmproj.empty()) return core::Status::error("--mmproj does not apply to an embedding model");
    return golden_embedding(o, llm.value(), *backend, tokens);
  }

  // With an image the sequence is BOS (when the model adds one), the image embeddings (with
  // any rows the projector adds, such as GLM-Edge's boi/eoi), then the prompt without BOS.
  engine::MultimodalPrompt prompt;
  std::unique_ptr<engine::ClipModel> clip;
  if (!o.mmproj.empty()) {
    auto loaded = engine::load_vision_for(*llm->model, o.mmproj);
    if (!loaded) return loaded.status();
    clip = std::move(loaded.value());
    engine::ImageEmbedder embedder(*clip, *backend);
    auto bytes = read_file_bytes(o.image);
    if (!bytes) return bytes.status();
    auto img = embedder.embed(bytes->data(), bytes->size());
    if (!img) return img.status().with_context("image '" + o.image + "'");
    const bool framed = !o.prefix.empty() || !o.suffix.empty();
    auto built = engine::build_multimodal_prompt(*llm->tokenizer, o.prefix + o.prompt + o.suffix, {o.prefix.size()},
                                                 {img.value()}, clip->config().projector, add_bos);
    if (!built) return built.status();
    prompt = std::move(built.value());
    if (framed) {
      // The tokens before the first image piece (ending with the family's image start token)
      // and after the last one (SmolVLM's tiles are several image pieces with text between).
      std::vector<int32_t> before, after;
      bool seen_image = false;
      for (const auto& piece : prompt.pieces) {
        if (piece.embeddings) {
          seen_image = true;
          after.clear();
        } else {
          (seen_image ? after : before).insert((seen_image ? after : before).end(), piece.tokens.begin(),
                                               piece.tokens.end());
        }
      }
      out["prefix_tokens"] = before;
      tokens = after;
    }
    if (img->pos_rows > 0) out["image_grid_hw"] = {img->pos_rows, img->pos_cols};
    const std::vector<float>& e = *img->data;
    const size_t n_values = static_cast<size_t>(img->n_tokens()) * img->dim;
    const Sums s = sums_of(e.data(), n_values);
    out["image"] = std::filesystem::path(o.image).filename().string();
    out["image_tokens"] = img->n_tokens();
    out["image_embed_sum"] = s.sum;
    out["image_embed_sumsq"] = s.sumsq;
    out["image_embed_first8"] = std::vector<float>(e.begin(), e.begin() + std::min<size_t>(8, n_values));
    // Models that add a BOS get it before the image; others (chatglm) start with the image.
    out["layout"] = framed ? "prefix_tokens,image,prompt_tokens" : add_bos ? "bos,image,prompt_tokens[1:]" : "image,prompt_tokens";
  } else {
    engine::PromptPiece piece;
    piece.tokens = tokens;
    prompt.pieces.push_back(std::move(piece));
  }
  const int needed = prompt.n_positions() + o.n + 1;
  if (o.ctx > 0 && o.ctx < needed)
    return core::Status::error("--ctx " + std::to_string(o.ctx) + " is smaller than the " + std::to_string(needed) +
                               " positions the prompt and --n need");
  engine::Session session(*llm->model, *backend, o.ctx > 0 ? o.ctx : needed);
  ZS_RETURN_IF_ERROR(engine::eval_prompt(session, prompt));

  const int nv = session.n_vocab();
  const float* logits = session.logits();
  std::vector<int> order(nv);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + std::min(10, nv), order.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  nlohmann::json top = nlohmann::json::array();
  for (int i = 0; i < std::min(10, nv); ++i) top.push_back({order[i], logits[order[i]]});
  const Sums logit_sums = sums_of(logits, static_cast<size_t>(nv));
  // log(sum(exp(logits))): with it a logit becomes its log-probability (logit - logsumexp), which
  // is what the API's logprobs report.
  double logsumexp = 0;
  {
    const float m = nv > 0 ? *std::max_element(logits, logits + nv) : 0.0f;
    double s = 0;
    for (int i = 0; i < nv; ++i) s += std::exp(static_cast<double>(logits[i] - m));
    logsumexp = static_cast<double>(m) + std::log(s);
  }
  std::vector<int32_t> greedy;
  std::vector<float> margins;  // top-1 minus top-2 logit at each greedy step
  for (int i = 0; i < o.n; ++i) {
    int32_t next = argmax(session.logits(), nv);
    // How far ahead the chosen token was: a margin below the logit tolerance means the
    // reference may have picked the runner-up (see tests/e2e/golden_test.cc).
    const float* l = session.logits();
    float second = -INFINITY;
    for (int t = 0; t < nv; ++t)
      if (t != next) second = std::max(second, l[t]);
    margins.push_back(l[next] - second);
    greedy.push_back(next);
    if (i + 1 < o.n) ZS_RETURN_IF_ERROR(session.eval(&next, 1));
  }
  out["model"] = std::filesystem::path(o.model).filename().string();
  out["prompt"] = o.prompt;
  out["prompt_tokens"] = tokens;
  out["last_logits_top10"] = top;
  out["last_logits_sum"] = logit_sums.sum;
  out["last_logits_sumsq"] = logit_sums.sumsq;
  out["last_logits_logsumexp"] = logsumexp;
  out["greedy"] = greedy;
  out["greedy_margins"] = margins;
  std::printf("%s\n", out.dump().c_str());
  return core::Status::ok();
}

}  // namespace

void register_golden_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GoldenOptions>();
  auto* cmd = app.add_subcommand("golden", "Print reference-comparable outputs as one JSON line");
  cmd->add_option("--model", o->model, "GGUF model")->required();
  cmd->add_option("--prompt", o->prompt, "prompt text")->required();
  cmd->add_option("--n", o->n, "greedy tokens to generate")->check(CLI::Range(0, 100000));
  cmd->add_option("--threads", o->threads, "compute threads")->check(CLI::Range(1, 1024));
  cmd->add_option("--ctx", o->ctx, "context size of the run (matters for LongRoPE); default: what is needed")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--mmproj", o->mmproj, "vision projector GGUF");
  cmd->add_option("--image", o->image, "image file");
  cmd->add_option("--prefix", o->prefix, "text before the image (special tokens parsed)");
  cmd->add_option("--suffix", o->suffix, "text after the prompt (special tokens parsed)");
  cmd->callback([o, &exit_code] { exit_code = report(run_golden(*o)); });
}

}  // namespace zs::cli
