// Q8_0 against Q4_K_M, and Q8_0's prompt kernels (16-row panels) against the Q8_0 kernels
// they replaced, in the same run: interleaved rounds (the order rotates every round), ratios
// per round, medians reported with their range.
//
//   a) kernels: products of the shapes of bench-1b (2048 -> 8192 and 8192 -> 2048) for a
//      128-token prompt (GFLOP/s) and one token (GB/s of weights read, cycling through
//      copies spanning >= 1 GiB so that memory, not cache, is measured); Q8_0, Q4_K and Q6_K prompts
//      with the panels against their narrow kernels, at 128 tokens and at 8 and 16 tokens
//      (batched decoding) from memory.
//   b) models: bench-1b at q8_0 and q4_k_m (random weights, generated once into
//      $ZS_BENCH_CACHE, default /tmp/zs-bench): prefill effective GFLOP/s of a 128-token
//      prompt and decode tokens/s and GB/s of weights read per token; Q8_0 with the panels
//      switched off (set_wide_kernels(false)) is the "before".
//
// Targets (issue #20, item 2): Q8_0 prefill GFLOP/s >= Q4_K_M's; Q8_0 decode limited by
// memory bandwidth. No thresholds are enforced.
//
//   bench_quant [--threads N] [--rounds N] [--prompt N] [--decode-tokens N] [--only a|b]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/memory_bandwidth.h"
#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/kernels/matmul.h"
#include "engine/model/llm.h"
#include "engine/model/model_preset.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "engine/quant/quantize.h"

namespace {

using namespace zs;
using bench::Clock;
using bench::load_average;
using bench::median;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t) { return bench::seconds_between(t, Clock::now()); }

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "bench_quant: %s\n", m.c_str());
  std::exit(1);
}

struct Options {
  int threads = 2;
  int rounds = 9;
  int prompt = 128;
  int decode_tokens = 24;
  std::string only;
};

struct Stats {
  double med, lo, hi;
};

Stats stats(const std::vector<double>& v) {
  return {median(v), *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
}

// Runs every case once per round in rotating order; returns each case's per-round values.
std::vector<std::vector<double>> interleave(const std::vector<std::function<double()>>& cases, int rounds) {
  for (const auto& c : cases) c();  // warm-up
  std::vector<std::vector<double>> out(cases.size());
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < cases.size(); ++i) {
      const size_t k = (i + r) % cases.size();
      out[k].push_back(cases[k]());
    }
  return out;
}

std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size(); ++i) r.push_back(a[i] / b[i]);
  return r;
}

void print_ratio(const char* what, const std::vector<double>& r, const char* target) {
  const Stats s = stats(r);
  std::printf("  RESULT %s: %.2fx (median of %zu rounds; min %.2f, max %.2f)%s%s\n", what, s.med, r.size(), s.lo, s.hi,
              *target ? "; target " : "", target);
}

// ----------------------------------------------------------------------------- a) kernels

struct Weights {
  engine::GgmlType type;
  int64_t n_in, n_out;
  std::vector<uint8_t> data;  // copies of the matrix
  size_t matrix_bytes = 0;
  int copies = 0;
};

Weights make_weights(engine::GgmlType type, int64_t n_in, int64_t n_out, size_t min_total) {
  Weights w{type, n_in, n_out, {}, 0, 0};
  const size_t row = engine::ggml_row_size(type, n_in);
  w.matrix_bytes = row * n_out;
  w.copies = static_cast<int>(std::max<size_t>(1, (min_total + w.matrix_bytes - 1) / w.matrix_bytes));
  w.data.resize(w.matrix_bytes * w.copies);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : f) v = dist(rng);
    if (!engine::quantize_row(type, f.data(), w.data.data() + r * row, n_in).is_ok()) die("quantize");
  }
  for (int c = 1; c < w.copies; ++c) std::memcpy(w.data.data() + c * w.matrix_bytes, w.data.data(), w.matrix_bytes);
  return w;
}

// Seconds per product (the best of `iters` calls; with `cycle`, each call reads another copy).
double time_product(const Weights& w, const std::vector<float>& x, int64_t n_tokens, std::vector<float>& y,
                    core::ThreadPool& pool, int iters, bool cycle, bool wide) {
  const bool before = engine::set_wide_kernels(wide);
  static int next = 0;
  double best = 1e30;
  if (cycle) {
    const auto t = Clock::now();
    for (int i = 0; i < iters; ++i) {
      const int c = next++ % w.copies;
      engine::matmul({w.type, w.data.data() + c * w.matrix_bytes, w.n_in, w.n_out, engine::ggml_row_size(w.type, w.n_in)},
                     x.data(), n_tokens, y.data(), pool);
    }
    best = seconds_since(t) / iters;
  } else {
    for (int i = 0; i < iters; ++i) {
      const auto t = Clock::now();
      engine::matmul({w.type, w.data.data(), w.n_in, w.n_out, engine::ggml_row_size(w.type, w.n_in)}, x.data(),
                     n_tokens, y.data(), pool);
      best = std::min(best, seconds_since(t));
    }
  }
  engine::set_wide_kernels(before);
  return best;
}

void bench_kernels(const Options& o) {
  core::ThreadPool pool(o.threads);
  const int64_t tokens = o.prompt;
  std::printf("\n[a] kernels, bench-1b shapes, %lld-token prompts and single tokens, %d rounds\n",
              static_cast<long long>(tokens), o.rounds);
  for (auto [n_in, n_out] : {std::pair<int64_t, int64_t>{2048, 8192}, {8192, 2048}}) {
    std::mt19937 rng(2);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n_in * tokens));
    for (auto& v : x) v = dist(rng);
    std::vector<float> y(static_cast<size_t>(n_out * tokens));
    const Weights q8 = make_weights(engine::GgmlType::kQ8_0, n_in, n_out, size_t{1} << 30);
    const Weights q4 = make_weights(engine::GgmlType::kQ4_K, n_in, n_out, size_t{1} << 30);
    const Weights q6 = make_weights(engine::GgmlType::kQ6_K, n_in, n_out, size_t{1} << 30);
    const double flops = 2.0 * n_in * n_out * tokens;
    auto gflops = [&](const Weights& w, bool wide) {
      return [&, wide] { return flops / time_product(w, x, tokens, y, pool, 3, false, wide) / 1e9; };
    };
    auto gbs = [&](const Weights& w) {
      return [&] { return w.matrix_bytes / time_product(w, x, 1, y, pool, 100, true, true) / 1e9; };
    };
    const auto t = interleave({gflops(q8, true), gflops(q8, false), gflops(q4, true), gflops(q4, false), gbs(q8), gbs(q4),
                               gflops(q6, true), gflops(q6, false)},
                              o.rounds);
    std::printf("  %lld -> %lld: prefill Q8_0 %.0f GFLOP/s (panels off: %.0f), Q4_K %.0f GFLOP/s (panels off: %.0f); "
                "decode Q8_0 %.1f GB/s, Q4_K %.1f GB/s (medians)\n",
                static_cast<long long>(n_in), static_cast<long long>(n_out), median(t[0]), median(t[1]), median(t[2]),
                median(t[3]), median(t[4]), median(t[5]));
    print_ratio("kernel prefill Q8_0 / Q4_K GFLOP/s", ratios(t[0], t[2]), ">= 1x");
    print_ratio("kernel prefill Q8_0 panels / Q8_0 before", ratios(t[0], t[1]), "");
    print_ratio("kernel prefill Q4_K panels / Q4_K before", ratios(t[2], t[3]), "");
    std::printf("  Q6_K prefill %.0f GFLOP/s (panels off: %.0f)\n", median(t[6]), median(t[7]));
    print_ratio("kernel prefill Q6_K panels / Q6_K before", ratios(t[6], t[7]), "");
    print_ratio("kernel decode Q8_0 / Q4_K GB/s", ratios(t[4], t[5]), "");
    // Small batches (batched decoding, speculative verification) with the weights read from
    // memory: the panels' repacking must not cost more than it saves.
    for (const Weights* w : {&q8, &q4, &q6}) {
      const char* name = w == &q8 ? "Q8_0" : w == &q4 ? "Q4_K" : "Q6_K";
      for (int64_t n : {8, 16}) {
        auto small = [&, n, w](bool wide) {
          return [&, n, w, wide] { return w->matrix_bytes / time_product(*w, x, n, y, pool, 30, true, wide) / 1e9; };
        };
        const auto s = interleave({small(true), small(false)}, o.rounds);
        std::printf("  %lld tokens from memory: %s %.1f GB/s of weights (panels off: %.1f)\n", static_cast<long long>(n),
                    name, median(s[0]), median(s[1]));
        const std::string what = std::string("kernel ") + name + " " + std::to_string(n) + " tokens, panels / before";
        print_ratio(what.c_str(), ratios(s[0], s[1]), ">= 1x");
      }
    }
  }
  core::ThreadPool p2(o.threads);
  std::printf("  memory read bandwidth %.1f GB/s\n", core::measure_read_bandwidth(p2) / 1e9);
}

// ----------------------------------------------------------------------------- b) models

std::string cache_dir() {
  const char* c = std::getenv("ZS_BENCH_CACHE");
  return c && *c ? c : "/tmp/zs-bench";
}

std::string ensure_file(const engine::ModelPreset& p, engine::FileType ft, const std::string& type_name) {
  fs::create_directories(cache_dir());
  const std::string path = cache_dir() + "/" + p.name + "-L" + std::to_string(p.n_layer) + "-" + type_name + ".gguf";
  if (fs::exists(path)) return path;
  std::printf("generating %s (once) ...\n", path.c_str());
  std::fflush(stdout);
  if (auto s = engine::write_random_model(p, ft, path + ".tmp"); !s) die(s.message());
  fs::rename(path + ".tmp", path);
  return path;
}

struct Model {
  engine::Llm llm;
  std::unique_ptr<engine::Session> session;
  std::vector<int32_t> prompt;

  Model(const std::string& path, engine::Backend& backend, const Options& o) {
    auto m = engine::Llm::load(path);
    if (!m) die(m.status().message());
    llm = std::move(m.value());
    session = std::make_unique<engine::Session>(*llm.model, backend, o.prompt + o.decode_tokens + 1, o.prompt);
    std::mt19937 rng(7);
    prompt.resize(o.prompt);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % session->n_vocab());
  }
  // Effective GFLOP/s of one prompt.
  double prefill(bool wide) {
    const bool before = engine::set_wide_kernels(wide);
    session->truncate(0);
    const auto t = Clock::now();
    if (auto s = session->eval(prompt); !s) die(s.message());
    const double dt = seconds_since(t);
    engine::set_wide_kernels(before);
    return llm.model->matrix_flops_per_token() * static_cast<double>(prompt.size()) / dt / 1e9;
  }
  // Tokens/s of greedy decoding after the prompt.
  double decode(int n) {
    session->truncate(static_cast<int>(prompt.size()));
    const auto t = Clock::now();
    for (int i = 0; i < n; ++i) {
      const float* l = session->logits();
      int32_t next = static_cast<int32_t>(std::max_element(l, l + session->n_vocab()) - l);
      if (auto s = session->eval(&next, 1); !s) die(s.message());
    }
    return n / seconds_since(t);
  }
  double gb_per_token() const { return llm.model->weight_bytes_per_token() / 1e9; }
};

void bench_models(const Options& o) {
  auto backend = engine::make_cpu_backend(o.threads);
  const auto p = engine::find_model_preset("bench-1b");
  if (!p) die(p.status().message());
  std::printf("\n[b] models: bench-1b q8_0 and q4_k_m, %d-token prompts, %d decoded tokens, %d rounds\n", o.prompt,
              o.decode_tokens, o.rounds);
  Model q8(ensure_file(p.value(), engine::FileType::kQ8_0, "q8_0"), *backend, o);
  Model q4(ensure_file(p.value(), engine::FileType::kQ4_K_M, "q4_k_m"), *backend, o);
  q8.prefill(true);  // the session holds a prompt before decoding
  q4.prefill(true);
  const auto t = interleave({[&] { return q8.prefill(true); }, [&] { return q8.prefill(false); },
                             [&] { return q4.prefill(true); }, [&] { return q8.decode(o.decode_tokens); },
                             [&] { return q4.decode(o.decode_tokens); }, [&] { return q4.prefill(false); }},
                            o.rounds);
  std::printf("  prefill: Q8_0 %.0f GFLOP/s (panels off: %.0f), Q4_K_M %.0f GFLOP/s (panels off: %.0f) (medians)\n",
              median(t[0]), median(t[1]), median(t[2]), median(t[5]));
  std::printf("  decode:  Q8_0 %.2f tok/s = %.1f GB/s (%.3f GB/token), Q4_K_M %.2f tok/s = %.1f GB/s (%.3f GB/token)\n",
              median(t[3]), median(t[3]) * q8.gb_per_token(), q8.gb_per_token(), median(t[4]),
              median(t[4]) * q4.gb_per_token(), q4.gb_per_token());
  print_ratio("model prefill Q8_0 / Q4_K_M GFLOP/s", ratios(t[0], t[2]), ">= 1x");
  print_ratio("model prefill Q8_0 panels / Q8_0 before", ratios(t[0], t[1]), "");
  print_ratio("model prefill Q4_K_M panels / Q4_K_M before", ratios(t[2], t[5]), "");
  std::vector<double> q8_gbs, q4_gbs;
  for (double v : t[3]) q8_gbs.push_back(v * q8.gb_per_token());
  for (double v : t[4]) q4_gbs.push_back(v * q4.gb_per_token());
  print_ratio("model decode Q8_0 / Q4_K_M GB/s of weights", ratios(q8_gbs, q4_gbs), "");
  core::ThreadPool pool(o.threads);
  const double bw = core::measure_read_bandwidth(pool) / 1e9;
  std::printf("  memory read bandwidth %.1f GB/s: decode Q8_0 at %.2f of it, Q4_K_M at %.2f\n", bw,
              median(q8_gbs) / bw, median(q4_gbs) / bw);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--prompt") o.prompt = std::stoi(next());
    else if (a == "--decode-tokens") o.decode_tokens = std::stoi(next());
    else if (a == "--only") o.only = next();
    else die("unknown option " + a);
  }
  std::printf("bench_quant: threads %d, kernels %s, load average %.2f\n", o.threads,
              std::string(engine::kernel_isa()).c_str(), load_average());
  if (o.only.empty() || o.only == "a") bench_kernels(o);
  if (o.only.empty() || o.only == "b") bench_models(o);
  std::printf("\nload average at the end %.2f\n", load_average());
  return 0;
}
