// `zeroserve bench`: load time, prefill and decode speed of a model on this machine, with
// decode bandwidth as a fraction of the machine's measured memory read bandwidth.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/memory_bandwidth.h"
#include "engine/kernels/matmul.h"
#include "engine/model/llm.h"
#include "engine/model/session.h"

namespace zs::cli {
namespace {

struct BenchOptions {
  std::string model;
  int threads = 0;
  int prompt = 128;
  int decode = 64;
  int repeats = 3;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double matrix_flops_per_token(const engine::TextModel& m) {
  double f = 0;
  for (const auto& L : m.layers())
    for (const engine::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
      f += 2.0 * static_cast<double>(w->n_in) * static_cast<double>(w->n_out);
  return f;
}

core::Status bench(const BenchOptions& o) {
  auto t0 = Clock::now();
  auto llm = engine::Llm::load(o.model);
  if (!llm) return llm.status();
  auto backend = engine::make_cpu_backend(o.threads);
  const int n_ctx = o.prompt + o.decode + 1;
  engine::Session session(*llm->model, *backend, n_ctx, std::max(1, o.prompt));
  int32_t first = llm->tokenizer->bos() >= 0 ? llm->tokenizer->bos() : 0;
  ZS_RETURN_IF_ERROR(session.eval(&first, 1));
  const double ready_s = seconds_since(t0);

  std::mt19937 rng(7);
  std::vector<int32_t> prompt(o.prompt);
  for (auto& t : prompt) t = static_cast<int32_t>(rng() % session.n_vocab());
  double best_prefill = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    session.truncate(0);
    auto t = Clock::now();
    ZS_RETURN_IF_ERROR(session.eval(prompt));
    best_prefill = std::min(best_prefill, seconds_since(t));
  }
  double best_decode = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    session.truncate(o.prompt);
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
  const double gflops = matrix_flops_per_token(*llm->model) * o.prompt / best_prefill / 1e9;

  std::printf("model            %s (%s)\n", o.model.c_str(), llm->model->config().name.c_str());
  std::printf("threads          %d, kernels %s\n", backend->threads(), std::string(engine::kernel_isa()).c_str());
  std::printf("ready            %.1f ms (open, map, bind, tokenizer, first token)\n", ready_s * 1e3);
  std::printf("prefill          %.1f tok/s (%d tokens), %.1f effective GFLOP/s\n", o.prompt / best_prefill, o.prompt, gflops);
  std::printf("decode           %.2f tok/s, %.2f GB/s of weights\n", 1 / best_decode, bytes / best_decode / 1e9);
  std::printf("memory read      %.2f GB/s measured\n", bandwidth / 1e9);
  std::printf("decode roofline  %.3f (decode bandwidth / measured read bandwidth)\n", bytes / best_decode / bandwidth);
  return core::Status::ok();
}

}  // namespace

void register_bench_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Measure load, prefill and decode speed of a model");
  cmd->add_option("--model", o->model, "GGUF model")->required();
  cmd->add_option("--threads,-t", o->threads, "compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--prompt-tokens", o->prompt, "prefill length")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--decode-tokens", o->decode, "tokens to decode")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--repeats", o->repeats, "best of this many runs")->check(CLI::Range(1, 100));
  cmd->callback([o, &exit_code] { exit_code = report(bench(*o)); });
}

}  // namespace zs::cli
