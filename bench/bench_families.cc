// Decode speed of the model families against baselines measured in the same run, on
// random-weight models in the shapes of real ones (generated once into $ZS_BENCH_CACHE,
// default /tmp/zs-bench; the big presets scaled down in block count only).
//
//   a) dense families: decode bandwidth (GB/s of weights read per token) of gemma2-2b,
//      phi-3.5-mini, glm-4-9b, qwen3-1.7b and gemma-3-4b, each cut to the most blocks that
//      keep the file near 1 GB, as a ratio to the llama family's (bench-1b) at the same file
//      type.                                                                 target >= 0.9x
//   b) MoE: decode tokens/s of qwen1.5-moe-a2.7b and qwen3-30b-a3b (each cut to --moe-layers
//      blocks, Q8_0) against a dense model of the same active shape (FFN as wide as the chosen
//      experts plus any shared expert; same attention, embeddings, blocks and file type:
//      llama for qwen2moe, qwen3 for qwen3moe).                              target >= 0.8x
//   c) MoE batching: aggregate decode tokens/s of 16 streams through BatchEngine against
//      one stream, on the model of b).                                      target >= 2x
//
// Rounds interleave the models (the order rotates every round) and ratios are taken per round;
// medians are reported. No thresholds are enforced: targets are printed for the reader.
//
//   bench_families [--threads N] [--rounds N] [--decode-tokens N] [--type q4_k_m|q8_0]
//                  [--moe-layers N] [--streams N] [--gen-tokens N] [--only a|b|c] [--quick]
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/batch/batch_engine.h"
#include "engine/kernels/matmul.h"
#include "engine/model/llm.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"

namespace {

using namespace zs;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double load_average() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "bench_families: %s\n", m.c_str());
  std::exit(1);
}

struct Options {
  int threads = 2;
  int rounds = 7;
  int decode_tokens = 24;
  std::string type = "q4_k_m";
  int moe_layers = 4;
  int streams = 16;
  int gen_tokens = 32;
  std::string only;
};

std::string cache_dir() {
  const char* c = std::getenv("ZS_BENCH_CACHE");
  return c && *c ? c : "/tmp/zs-bench";
}

// The file for `p` at `ft`, generated once.
std::string ensure_file(const engine::ModelPreset& p, engine::FileType ft, const std::string& type_name) {
  fs::create_directories(cache_dir());
  const std::string path =
      cache_dir() + "/" + p.name + "-L" + std::to_string(p.n_layer) + "-" + type_name + ".gguf";
  if (fs::exists(path)) return path;
  std::printf("generating %s (%.2f GB, once) ...\n", path.c_str(), engine::estimate_file_bytes(p, ft) / 1e9);
  std::fflush(stdout);
  const auto t = Clock::now();
  if (auto s = engine::write_random_model(p, ft, path + ".tmp"); !s) die(s.message());
  fs::rename(path + ".tmp", path);
  std::printf("  %.1f s\n", seconds_since(t));
  return path;
}

// The preset cut to the most blocks that keep its file at or under `bytes` (at least one).
engine::ModelPreset fit_layers(const engine::ModelPreset& full, engine::FileType ft, double bytes) {
  engine::ModelPreset best = engine::with_layers(full, 1).value();
  for (int n = 2; n <= full.n_layer; ++n) {
    auto p = engine::with_layers(full, n).value();
    if (static_cast<double>(engine::estimate_file_bytes(p, ft)) > bytes) break;
    best = p;
  }
  return best;
}

engine::ModelPreset preset(const std::string& name) {
  auto p = engine::find_model_preset(name);
  if (!p) die(p.status().message());
  return p.value();
}

// One loaded model with a session ready to decode after a short prompt.
struct Decoder {
  std::string label;
  engine::Llm llm;
  std::unique_ptr<engine::Session> session;
  int prompt = 16;

  Decoder(std::string l, const std::string& path, engine::Backend& backend, int decode_tokens)
      : label(std::move(l)) {
    auto m = engine::Llm::load(path);
    if (!m) die(m.status().message());
    llm = std::move(m.value());
    session = std::make_unique<engine::Session>(*llm.model, backend, prompt + decode_tokens + 1);
  }
  // Seconds per decoded token over n tokens (greedy), after the prompt.
  double decode(int n) {
    session->truncate(0);
    std::vector<int32_t> ids(prompt);
    for (int i = 0; i < prompt; ++i) ids[i] = 300 + 37 * i;
    if (auto s = session->eval(ids); !s) die(s.message());
    const auto t = Clock::now();
    for (int i = 0; i < n; ++i) {
      const float* l = session->logits();
      int32_t next = static_cast<int32_t>(std::max_element(l, l + session->n_vocab()) - l);
      if (auto s = session->eval(&next, 1); !s) die(s.message());
    }
    return seconds_since(t) / n;
  }
  double gb_per_token() const { return llm.model->weight_bytes_per_token() / 1e9; }
};

// Runs `rounds` rounds over the decoders (rotating the order); returns seconds per token of
// each decoder per round.
std::vector<std::vector<double>> interleave(std::vector<Decoder*> ds, int rounds, int n) {
  for (auto* d : ds) d->decode(std::max(2, n / 4));  // warm-up: page cache, first touches
  std::vector<std::vector<double>> t(ds.size());
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < ds.size(); ++i) {
      const size_t k = (i + r) % ds.size();
      t[k].push_back(ds[k]->decode(n));
    }
  return t;
}

void bench_dense(const Options& o, engine::Backend& backend) {
  auto ft = engine::parse_file_type(o.type);
  if (!ft) die(ft.status().message());
  std::printf("\n[a] dense families: decode GB/s of weights read vs llama (bench-1b), %s, %d rounds of %d tokens\n",
              o.type.c_str(), o.rounds, o.decode_tokens);
  const auto llama_p = preset("bench-1b");
  std::vector<std::unique_ptr<Decoder>> ds;
  ds.push_back(std::make_unique<Decoder>("llama (bench-1b)", ensure_file(llama_p, ft.value(), o.type), backend,
                                         o.decode_tokens));
  for (const char* name : {"gemma2-2b", "phi-3.5-mini", "glm-4-9b", "qwen3-1.7b", "gemma-3-4b"}) {
    const auto p = fit_layers(preset(name), ft.value(), 1.05e9);
    ds.push_back(std::make_unique<Decoder>(std::string(p.arch) + " (" + name + ", " + std::to_string(p.n_layer) + "/" +
                                               std::to_string(p.full_layers) + " blocks)",
                                           ensure_file(p, ft.value(), o.type), backend, o.decode_tokens));
  }
  std::vector<Decoder*> raw;
  for (auto& d : ds) raw.push_back(d.get());
  const auto t = interleave(raw, o.rounds, o.decode_tokens);
  for (size_t i = 0; i < ds.size(); ++i) {
    std::vector<double> gbs, ratio;
    for (size_t r = 0; r < t[i].size(); ++r) {
      gbs.push_back(ds[i]->gb_per_token() / t[i][r]);
      ratio.push_back((ds[i]->gb_per_token() / t[i][r]) / (ds[0]->gb_per_token() / t[0][r]));
    }
    std::printf("  %-40s %.3f GB/token  %6.2f tok/s  %6.2f GB/s (median)", ds[i]->label.c_str(), ds[i]->gb_per_token(),
                1 / median(t[i]), median(gbs));
    if (i == 0) {
      std::printf("\n");
    } else {
      std::printf("  ratio %.2fx (min %.2f, max %.2f)\n", median(ratio), *std::min_element(ratio.begin(), ratio.end()),
                  *std::max_element(ratio.begin(), ratio.end()));
      std::printf("  RESULT family-decode-bandwidth %s %s: %.2f GB/s vs llama %.2f GB/s, ratio %.2fx (target >= 0.9x)\n",
                  ds[i]->llm.model->config().arch_name.c_str(), o.type.c_str(), median(gbs),
                  ds[0]->gb_per_token() / median(t[0]), median(ratio));
    }
  }
}

engine::ModelPreset moe_preset(const Options& o, const std::string& name = "qwen1.5-moe-a2.7b") {
  auto p = engine::with_layers(preset(name), o.moe_layers);
  if (!p) die(p.status().message());
  return p.value();
}

// A dense model with the MoE's active shape: same width, heads, head size, vocabulary, blocks;
// FFN as wide as the experts a token uses plus the shared expert (llama for qwen2moe, whose
// attention it shares; qwen3 for qwen3moe).
engine::ModelPreset dense_equivalent(const engine::ModelPreset& m) {
  engine::ModelPreset d{m.name + "-active-dense", m.arch == "qwen3moe" ? "qwen3" : "llama", m.n_embd, m.n_layer,
                        m.n_head, m.n_head_kv, m.n_expert_used * m.expert_ff() + m.n_ff_shexp, m.n_vocab, m.n_ctx,
                        m.rope_base, m.rms_eps, false};
  d.head_dim = m.head_dim;
  d.full_layers = m.full_layers;
  return d;
}

void bench_moe(const Options& o, engine::Backend& backend, const std::string& name) {
  const auto ft = engine::FileType::kQ8_0;  // one block format everywhere: equal bytes for equal shapes
  const auto mp = moe_preset(o, name);
  const auto dp = dense_equivalent(mp);
  std::printf("\n[b] MoE decode vs a dense model of its active size: %s (%d/%d blocks) vs %s with FFN %d, q8_0, "
              "%d rounds of %d tokens\n",
              mp.name.c_str(), mp.n_layer, mp.full_layers, dp.arch.c_str(), dp.n_ff, o.rounds, o.decode_tokens);
  Decoder moe(mp.arch, ensure_file(mp, ft, "q8_0"), backend, o.decode_tokens);
  Decoder dense(dp.arch + " (active-size dense)", ensure_file(dp, ft, "q8_0"), backend, o.decode_tokens);
  const auto& mm = *moe.llm.model;
  std::printf("  active parameters: moe %.3f B (of %.3f B), dense %.3f B; bytes read per token: moe %.3f GB, dense "
              "%.3f GB\n",
              mm.params_active() / 1e9, mm.params_total() / 1e9, dense.llm.model->params_total() / 1e9,
              moe.gb_per_token(), dense.gb_per_token());
  const auto t = interleave({&moe, &dense}, o.rounds, o.decode_tokens);
  std::vector<double> ratio, moe_gbs, dense_gbs;
  for (size_t r = 0; r < t[0].size(); ++r) {
    ratio.push_back(t[1][r] / t[0][r]);
    moe_gbs.push_back(moe.gb_per_token() / t[0][r]);
    dense_gbs.push_back(dense.gb_per_token() / t[1][r]);
  }
  std::printf("  moe   %.2f tok/s, %.2f GB/s of weights read (median)\n", 1 / median(t[0]), median(moe_gbs));
  std::printf("  dense %.2f tok/s, %.2f GB/s (median)\n", 1 / median(t[1]), median(dense_gbs));
  std::printf("  RESULT moe-decode %s %.2f tok/s vs dense-of-active-size %.2f tok/s, ratio %.2fx (min %.2f, max %.2f; "
              "target >= 0.8x)\n",
              mp.arch.c_str(), 1 / median(t[0]), 1 / median(t[1]), median(ratio), *std::min_element(ratio.begin(), ratio.end()),
              *std::max_element(ratio.begin(), ratio.end()));
}

// Aggregate decode tokens/s of n concurrent streams: tokens produced while every stream was
// decoding (from the last stream's first token to the first stream's end) over that window.
double streams_decode_rate(engine::BatchEngine& engine, const engine::Llm& llm, int n, int gen_tokens, int trial) {
  struct Stream {
    std::vector<std::pair<double, int>> events;  // (time, completion tokens so far)
    bool done = false;
  };
  std::vector<Stream> streams(n);
  std::mutex m;
  std::condition_variable cv;
  int finished = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    engine::GenerationRequest r;
    engine::PromptPiece piece;
    piece.tokens = llm.tokenizer->encode("Story " + std::to_string(trial * 100 + i) + ": the river and the stone",
                                         true, false);
    r.prompt.pieces.push_back(std::move(piece));
    r.sampling.temperature = 1.0f;  // random weights under greedy decoding loop into end-of-sequence
    r.sampling.seed = 1000 + i;
    r.max_tokens = gen_tokens;
    r.on_event = [&, i](const engine::GenerationEvent& e) {
      std::lock_guard<std::mutex> l(m);
      streams[i].events.emplace_back(seconds_since(t0), e.completion_tokens);
      if (e.finished) {
        streams[i].done = true;
        ++finished;
        cv.notify_all();
      }
    };
    if (auto id = engine.submit(std::move(r)); !id) die(id.status().message());
  }
  std::unique_lock<std::mutex> l(m);
  cv.wait(l, [&] { return finished == n; });
  double start = 0, end = 1e30;
  for (const auto& s : streams) {
    double first = 1e30;
    for (const auto& [t, c] : s.events)
      if (c > 0) {
        first = t;
        break;
      }
    start = std::max(start, first);
    end = std::min(end, s.events.back().first);
  }
  if (!(end > start)) return 0;
  int tokens = 0;
  for (const auto& s : streams) {
    int before = 0, within = 0;
    for (const auto& [t, c] : s.events) {
      if (t <= start) before = c;
      if (t <= end) within = c;
    }
    tokens += within - before;
  }
  return tokens / (end - start);
}

void bench_streams(const Options& o, engine::Backend& backend) {
  const auto mp = moe_preset(o);
  std::printf("\n[c] MoE batching: aggregate decode tok/s of %d streams vs 1 stream through BatchEngine, %s (%d/%d "
              "blocks), q8_0, %d tokens each, %d rounds\n",
              o.streams, mp.name.c_str(), mp.n_layer, mp.full_layers, o.gen_tokens, std::max(1, o.rounds / 2));
  auto m = engine::Llm::load(ensure_file(mp, engine::FileType::kQ8_0, "q8_0"));
  if (!m) die(m.status().message());
  engine::BatchEngineOptions eo;
  eo.slots = o.streams;
  eo.ctx_tokens = 4096;
  eo.step_token_budget = 256;
  engine::BatchEngine engine(m.value(), backend, eo);
  streams_decode_rate(engine, m.value(), 1, 8, 0);  // warm-up
  std::vector<double> one, many, ratio;
  for (int r = 0; r < std::max(1, o.rounds / 2); ++r) {
    const double a = streams_decode_rate(engine, m.value(), 1, o.gen_tokens, 2 * r + 1);
    const double b = streams_decode_rate(engine, m.value(), o.streams, o.gen_tokens, 2 * r + 2);
    one.push_back(a);
    many.push_back(b);
    ratio.push_back(b / a);
    std::printf("  round %d: 1 stream %.2f tok/s, %d streams %.2f tok/s, ratio %.2fx\n", r + 1, a, o.streams, b, b / a);
  }
  engine.shutdown();
  std::printf("  RESULT moe-batching %d streams %.2f tok/s vs 1 stream %.2f tok/s, ratio %.2fx (target >= 2x)\n",
              o.streams, median(many), median(one), median(ratio));
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
    else if (a == "--decode-tokens") o.decode_tokens = std::stoi(next());
    else if (a == "--type") o.type = next();
    else if (a == "--moe-layers") o.moe_layers = std::stoi(next());
    else if (a == "--streams") o.streams = std::stoi(next());
    else if (a == "--gen-tokens") o.gen_tokens = std::stoi(next());
    else if (a == "--only") o.only = next();
    else if (a == "--quick") {
      o.rounds = 3;
      o.decode_tokens = 12;
      o.gen_tokens = 16;
    } else die("unknown option " + a);
  }
  std::printf("bench_families: threads %d, kernels %s, load average %.2f, cache %s\n", o.threads,
              std::string(engine::kernel_isa()).c_str(), load_average(), cache_dir().c_str());
  auto backend = engine::make_cpu_backend(o.threads);
  if (o.only.empty() || o.only == "a") bench_dense(o, *backend);
  if (o.only.empty() || o.only == "b") {
    bench_moe(o, *backend, "qwen1.5-moe-a2.7b");
    bench_moe(o, *backend, "qwen3-30b-a3b");
  }
  if (o.only.empty() || o.only == "c") bench_streams(o, *backend);
  std::printf("\nload average at the end %.2f\n", load_average());
  return 0;
}
