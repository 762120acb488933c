// `zeroserve bench`: load time, prefill and decode speed of a model on this machine, with
// decode bandwidth (bytes of weights a token actually reads: for a mixture of experts only
// the experts it uses) as a fraction of the machine's measured memory read bandwidth; with
// --mmproj also the vision encoder's throughput against prefill's in the same run. Embedding
// models (bert, nomic-bert) have no decode: their inputs/s and tokens/s through the Encoder
// are measured instead.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/memory_bandwidth.h"
#include "engine/kernels/matmul.h"
#include "engine/model/encoder.h"
#include "engine/model/llm.h"
#include "engine/model/session.h"
#include "engine/vision/clip_encoder.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/qwen2vl_encoder.h"

namespace zs::cli {
namespace {

struct BenchOptions {
  std::string model;
  std::string mmproj;
  int threads = 0;
  int prompt = 128;
  int decode = 64;
  int repeats = 3;
  int inputs = 16;  // embedding models: inputs per embed() call
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void print_params(const engine::TextModel& m) {
  const engine::ModelConfig& c = m.config();
  if (c.is_moe()) {
    std::printf("parameters       %.3f B active of %.3f B (%d of %d experts per token), weights read per token "
                "%.3f GB of %.3f GB\n",
                m.params_active() / 1e9, m.params_total() / 1e9, c.n_expert_used, c.n_expert,
                m.weight_bytes_per_token() / 1e9, m.weight_bytes_total() / 1e9);
  } else {
    std::printf("parameters       %.3f B, weights read per token %.3f GB\n", m.params_total() / 1e9,
                m.weight_bytes_per_token() / 1e9);
  }
}

// Embedding models: `inputs` inputs of `tokens` ids each through Encoder::embed, best of
// `repeats` calls after a warm-up; also one input alone (the latency of a single request).
core::Status bench_encoder(const BenchOptions& o, const engine::Llm& llm, engine::Backend& backend,
                           double ready_s) {
  const engine::TextModel& m = *llm.model;
  engine::Encoder encoder(m, backend, std::max(512, o.prompt));
  const int tokens = std::min(o.prompt, encoder.max_input_tokens());
  std::mt19937 rng(7);
  std::vector<std::vector<int32_t>> inputs(o.inputs, std::vector<int32_t>(tokens));
  for (auto& in : inputs)
    for (auto& t : in) t = static_cast<int32_t>(1000 + rng() % (m.config().n_vocab - 1000));
  auto timed = [&](const std::vector<std::vector<int32_t>>& batch) -> core::Result<double> {
    auto t = Clock::now();
    auto e = encoder.embed(batch);
    if (!e) return e.status();
    return seconds_since(t);
  };
  auto warm = timed(inputs);
  if (!warm) return warm.status();
  double best_batch = 1e30, best_single = 1e30;
  const std::vector<std::vector<int32_t>> one = {inputs[0]};
  for (int r = 0; r < o.repeats; ++r) {
    auto b = timed(inputs);
    if (!b) return b.status();
    best_batch = std::min(best_batch, b.value());
    auto s = timed(one);
    if (!s) return s.status();
    best_single = std::min(best_single, s.value());
  }
  const double flops = m.matrix_flops_per_token();
  std::printf("model            %s (%s, embedding model, %d dims, pooling %s)\n", o.model.c_str(),
              m.config().name.c_str(), encoder.dim(), std::string(engine::pooling_name(encoder.pooling())).c_str());
  std::printf("threads          %d, kernels %s\n", backend.threads(), std::string(engine::kernel_isa()).c_str());
  print_params(m);
  std::printf("ready            %.1f ms (open, map, bind, tokenizer)\n", ready_s * 1e3);
  std::printf("embed            %.1f inputs/s, %.1f tokens/s (%d inputs of %d tokens per call), %.1f effective GFLOP/s\n",
              o.inputs / best_batch, o.inputs * tokens / best_batch, o.inputs, tokens,
              flops * o.inputs * tokens / best_batch / 1e9);
  std::printf("embed one        %.2f ms per input of %d tokens (%.1f tokens/s)\n", best_single * 1e3, tokens,
              tokens / best_single);
  return core::Status::ok();
}

struct VisionResult {
  double seconds_per_image = 0;  // one encoder view (tile), or Qwen2-VL's 448x448 image
  double gflops = 0;
  engine::ImageTokenCount photo;  // what a 1024x768 photo becomes
  double photo_seconds = 0;       // its encoder time (Qwen2-VL: from the measured GFLOP/s)
  const char* view_note = "";
};

// Encodes one synthetic image (normalized pixels of a fixed pattern) `repeats` times after a
// warm-up, each time after one more prefill run (prefill_once), so that both see the same
// machine; the best times count.
core::Result<VisionResult> bench_vision(const std::string& path, engine::Backend& backend, int repeats,
                                        const std::function<core::Result<double>()>& prefill_once,
                                        double* best_prefill) {
  auto clip = engine::ClipModel::load(path);
  if (!clip) return clip.status();
  const engine::ClipConfig& c = clip.value()->config();
  // Qwen2-VL and Qwen2.5-VL run at native resolution: measured on a 448x448 image (256 tokens);
  // the others on one view of their fixed size.
  const bool native = c.native_resolution();
  const int width = native ? 448 : c.image_size, height = width;
  std::unique_ptr<engine::ClipEncoder> fixed;
  std::unique_ptr<engine::Qwen2VlEncoder> qwen2vl;
  if (native) qwen2vl = std::make_unique<engine::Qwen2VlEncoder>(*clip.value(), backend);
  else fixed = std::make_unique<engine::ClipEncoder>(*clip.value(), backend);
  std::vector<float> pixels(3 * static_cast<size_t>(width) * height);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (auto& p : pixels) p = dist(rng);
  auto encode = [&]() -> core::Status {
    auto e = native ? qwen2vl->encode(pixels.data(), width, height) : fixed->encode(pixels.data());
    return e.is_ok() ? core::Status::ok() : e.status();
  };
  ZS_RETURN_IF_ERROR(encode());  // warm-up
  VisionResult r;
  r.seconds_per_image = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto p = prefill_once();
    if (!p) return p.status();
    *best_prefill = std::min(*best_prefill, p.value());
    auto t = Clock::now();
    ZS_RETURN_IF_ERROR(encode());
    r.seconds_per_image = std::min(r.seconds_per_image, seconds_since(t));
  }
  const double flops = native ? qwen2vl->flops(width, height) : fixed->flops_per_image();
  r.gflops = flops / r.seconds_per_image / 1e9;
  r.photo = engine::image_token_count(c, 1024, 768);
  if (native) {
    // The photo at its own size (Qwen2-VL 1036x784) is one view; its time from this GFLOP/s.
    const engine::ImageSize s = engine::native_image_size(c, 1024, 768, 0);
    r.photo_seconds = qwen2vl->flops(s.width, s.height) / (r.gflops * 1e9);
    r.view_note = "448x448 image";
  } else {
    r.photo_seconds = r.seconds_per_image * r.photo.views;
    r.view_note = "one view";
  }
  return r;
}

core::Status bench(const BenchOptions& o) {
  auto t0 = Clock::now();
  auto llm = engine::Llm::load(o.model);
  if (!llm) return llm.status();
  auto backend = engine::make_cpu_backend(o.threads);
  if (llm->model->config().is_encoder()) return bench_encoder(o, llm.value(), *backend, seconds_since(t0));
  const int n_ctx = o.prompt + o.decode + 1;
  engine::Session session(*llm->model, *backend, n_ctx, std::max(1, o.prompt));
  int32_t first = llm->tokenizer->bos() >= 0 ? llm->tokenizer->bos() : 0;
  ZS_RETURN_IF_ERROR(session.eval(&first, 1));
  const double ready_s = seconds_since(t0);

  std::mt19937 rng(7);
  std::vector<int32_t> prompt(o.prompt);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % session.n_vocab());
  auto prefill_once = [&]() -> core::Result<double> {
    session.truncate(0);
    auto t = Clock::now();
    ZS_RETURN_IF_ERROR(session.eval(prompt));
    return seconds_since(t);
  };
  // Warm-up, as the reference's llama-bench does before it measures: one prefill of the full
  // prompt (first touch of the KV cache and the prompt-sized scratch buffers) and one decode
  // step, neither counted.
  if (auto warm = prefill_once(); !warm) return warm.status();
  double best_prefill = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    auto s = prefill_once();
    if (!s) return s.status();
    best_prefill = std::min(best_prefill, s.value());
  }
  std::optional<VisionResult> vision;
  if (!o.mmproj.empty()) {
    auto v = bench_vision(o.mmproj, *backend, o.repeats, prefill_once, &best_prefill);
    if (!v) return v.status();
    vision = v.value();
  }
  double best_decode = 1e30;
  for (int r = -1; r < o.repeats; ++r) {  // r = -1: one uncounted warm-up step
    session.truncate(o.prompt);
    if (r < 0) {
      int32_t next = 0;
      ZS_RETURN_IF_ERROR(session.eval(&next, 1));
      continue;
    }
    auto t = Clock::now();
    for (int i = 0; i < o.decode; ++i) {
      int32_t next = static_cast<int32_t>(std::max_element(session.logits(), session.logits() + session.n_vocab()) - session.logits());
      ZS_RETURN_IF_ERROR(session.eval(&next, 1));
    }
    best_decode = std::min(best_decode, seconds_since(t) / o.decode);
  }
  core::ThreadPool pool(backend->threads());
  const double bandwidth = core::measure_read_bandwidth(pool);
  const double bytes = static_cast<double>(llm->model->weight_bytes_per_token());
  const double gflops = llm->model->matrix_flops_per_token() * o.prompt / best_prefill / 1e9;

  std::printf("model            %s (%s)\n", o.model.c_str(), llm->model->config().name.c_str());
  std::printf("threads          %d, kernels %s\n", backend->threads(), std::string(engine::kernel_isa()).c_str());
  print_params(*llm->model);
  std::printf("ready            %.1f ms (open, map, bind, tokenizer, first token)\n", ready_s * 1e3);
  std::printf("prefill          %.1f tok/s (%d tokens), %.1f effective GFLOP/s\n", o.prompt / best_prefill, o.prompt, gflops);
  std::printf("decode           %.2f tok/s, %.2f GB/s of weights read\n", 1 / best_decode, bytes / best_decode / 1e9);
  std::printf("memory read      %.2f GB/s measured\n", bandwidth / 1e9);
  std::printf("decode roofline  %.3f (decode bandwidth / measured read bandwidth)\n", bytes / best_decode / bandwidth);
  std::printf("prefetch reach   %s\n", engine::far_prefetch_report().c_str());
  if (vision) {
    std::printf("vision encoder   %s: %.3f images/s (%s), %.1f effective GFLOP/s\n", o.mmproj.c_str(),
                1 / vision->seconds_per_image, vision->view_note, vision->gflops);
    std::printf("1024x768 photo   %d encoder views, %d image tokens, %.3f photos/s\n", vision->photo.views,
                vision->photo.tokens, 1 / vision->photo_seconds);
    std::printf("vision / prefill %.2f (encoder GFLOP/s / prefill GFLOP/s, measured alternately)\n",
                vision->gflops / gflops);
  }
  return core::Status::ok();
}

}  // namespace

void register_bench_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure load, prefill and decode speed of a model (embedding models: inputs/s and tokens/s)");
  cmd->add_option("--model", o->model, "GGUF model")->required();
  cmd->add_option("--mmproj", o->mmproj, "also measure this vision projector's encoder");
  cmd->add_option("--threads,-t", o->threads, "compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--prompt-tokens", o->prompt, "prefill length")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--decode-tokens", o->decode, "tokens to decode")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--repeats", o->repeats, "best of this many runs")->check(CLI::Range(1, 100));
  cmd->add_option("--inputs", o->inputs, "embedding models: inputs per batch (each --prompt-tokens long)")
      ->check(CLI::Range(1, 4096));
  cmd->callback([o, &exit_code] { exit_code = report(bench(*o)); });
}

}  // namespace zs::cli
