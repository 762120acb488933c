// Structured outputs: what constrained decoding costs against unconstrained decoding, measured
// side by side in one run (bench-1b Q4_K_M, 32k vocabulary, random weights; in-process engine):
//
//   a) sampling step alone: allowed-token lookup + masked draw + automaton advance, vs the plain
//      sampler on the same logits, for a 20-field schema; medians of interleaved rounds, and the
//      first (cold) pass through a fresh automaton reported apart
//   b) per-token decode time of one stream, constrained (20-field schema) vs unconstrained
//      (target <= 1.1x)
//   c) aggregate tokens/s of 16 streams of which 8 constrained vs 16 unconstrained (target >= 0.9x)
//
//   bench_structured [--model F] [--zeroserve BIN] [--threads 2] [--streams 16] [--gen-tokens 48]
//                    [--rounds 3] [--only a|b|c] [--quick]
//
// Every generated sequence runs to --gen-tokens (the schema's strings are unbounded, so the
// constrained output is never complete earlier), so both sides decode the same number of tokens.
// No thresholds are enforced.
#include <condition_variable>
#include <mutex>
#include <random>

#include "bench_util.h"
#include "engine/backend/backend.h"
#include "engine/batch/batch_engine.h"
#include "engine/structured/json_schema.h"

namespace {

using namespace zs::bench;
namespace st = zs::engine::structured;

struct Options {
  std::string model, zeroserve, only;
  int threads = 2, streams = 16, gen_tokens = 48, rounds = 3, sample_steps = 2000;
};

nlohmann::ordered_json twenty_field_schema() {
  nlohmann::ordered_json props = nlohmann::ordered_json::object();
  const char* kinds[] = {"string", "integer", "number", "boolean", "string"};
  for (int i = 0; i < 20; ++i) {
    const std::string name = "field_" + std::to_string(i);
    if (i % 5 == 4) props[name] = {{"enum", {"alpha", "beta", "gamma"}}};
    else props[name] = {{"type", kinds[i % 5]}};
  }
  nlohmann::ordered_json req = nlohmann::ordered_json::array();
  for (const auto& [k, v] : props.items()) req.push_back(k);
  return {{"type", "object"}, {"properties", props}, {"required", req}, {"additionalProperties", false}};
}

std::shared_ptr<st::Constraint> make_constraint(const zs::engine::Llm& llm) {
  static auto index = std::make_shared<st::TokenIndex>(*llm.tokenizer);
  auto g = st::compile_json_schema(twenty_field_schema());
  if (!g) die(g.status().message());
  return std::make_shared<st::Constraint>(std::move(g.value()), index);
}

zs::engine::SamplingParams sampling(uint64_t seed) {
  zs::engine::SamplingParams p;  // OpenAI's defaults: temperature 1, no top-k/top-p/min-p
  p.temperature = 1;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.repeat_penalty = 1;
  p.seed = seed;
  return p;
}

// a) the sampling step alone.
void bench_sampling(const zs::engine::Llm& llm, const Options& o) {
  const int n_vocab = llm.model->config().n_vocab;
  std::printf("\n[a] sampling step: plain sampler vs constrained (mask lookup + masked draw + advance), vocabulary %d, "
              "%d steps per round, %d rounds, interleaved\n",
              n_vocab, o.sample_steps, o.rounds * 2);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0, 3);
  std::vector<std::vector<float>> rows(64, std::vector<float>(static_cast<size_t>(n_vocab)));
  for (auto& r : rows)
    for (auto& v : r) v = nd(rng);
  auto plain = [&] {
    zs::engine::Sampler s(sampling(1));
    const auto t0 = Clock::now();
    int64_t sink = 0;
    for (int i = 0; i < o.sample_steps; ++i) sink += s.sample(rows[static_cast<size_t>(i) % rows.size()].data(), n_vocab);
    const double us = seconds_between(t0, Clock::now()) * 1e6 / o.sample_steps;
    if (sink == -1) std::printf(" ");
    return us;
  };
  auto constrained = [&](st::Constraint& c) {
    zs::engine::Sampler s(sampling(1));
    int32_t state = c.start();
    const auto t0 = Clock::now();
    for (int i = 0; i < o.sample_steps; ++i) {
      const auto& allowed = c.allowed(state);
      const int32_t t = s.sample_among(rows[static_cast<size_t>(i) % rows.size()].data(), n_vocab, allowed);
      const int32_t next = c.next_token(state, t);
      state = next < 0 || c.accepting(next) ? c.start() : next;  // start over once complete
    }
    return seconds_between(t0, Clock::now()) * 1e6 / o.sample_steps;
  };
  auto shared = make_constraint(llm);
  auto cold_c = make_constraint(llm);
  const double cold = constrained(*cold_c);
  constrained(*shared);  // warm the shared automaton, as the worker's cache does after one request
  std::vector<double> p, c, ratio;
  for (int r = 0; r < o.rounds * 2; ++r) {
    double a, b;
    if (r % 2 == 0) {
      a = plain();
      b = constrained(*shared);
    } else {
      b = constrained(*shared);
      a = plain();
    }
    p.push_back(a);
    c.push_back(b);
    ratio.push_back(b / a);
  }
  std::printf("  plain us/step: %.1f  constrained us/step: %.1f  (automaton states: %zu)\n", median(p), median(c),
              shared->n_states());
  std::printf("  first pass through a fresh automaton: %.1f us/step (its masks are computed on first use)\n", cold);
  std::printf("  RESULT sampling-step constrained/plain ratio %.2fx (median of %zu interleaved rounds)\n", median(ratio),
              ratio.size());
}

// Runs `n` streams at once (the first `constrained` of them under the schema) and returns
// (wall seconds, tokens generated).
std::pair<double, int64_t> run_streams(zs::engine::BatchEngine& engine, const zs::engine::Llm& llm, int n,
                                       int constrained, const std::shared_ptr<st::Constraint>& c, const Options& o,
                                       int salt) {
  std::mutex m;
  std::condition_variable cv;
  int done = 0;
  int64_t tokens = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    auto prepared = zs::engine::prepare_text_prompt(llm, nullptr, make_prompt(llm, salt * 100 + i, 16), {});
    if (!prepared) die(prepared.status().message());
    zs::engine::GenerationRequest gr;
    gr.prompt = std::move(prepared->prompt);
    gr.sampling = sampling(static_cast<uint64_t>(salt * 1000 + i));
    gr.max_tokens = o.gen_tokens;
    if (i < constrained) gr.constraint = c;
    gr.on_event = [&](const zs::engine::GenerationEvent& e) {
      if (!e.finished) return;
      std::lock_guard<std::mutex> l(m);
      tokens += e.completion_tokens;
      ++done;
      cv.notify_one();
    };
    if (!engine.submit(std::move(gr))) die("submit failed");
  }
  std::unique_lock<std::mutex> l(m);
  cv.wait(l, [&] { return done == n; });
  return {seconds_between(t0, Clock::now()), tokens};
}

// b) one stream, per-token time.
void bench_single(const zs::engine::Llm& llm, zs::engine::BatchEngine& engine, const Options& o) {
  std::printf("\n[b] one stream, %d tokens: per-token time constrained (20-field schema) vs unconstrained, %d rounds, "
              "interleaved\n",
              o.gen_tokens, o.rounds * 2);
  auto c = make_constraint(llm);
  run_streams(engine, llm, 1, 1, c, o, 1);  // warm-up (and the automaton's first pass)
  std::vector<double> plain, cons, ratio;
  for (int r = 0; r < o.rounds * 2; ++r) {
    auto one = [&](bool constrained) {
      auto [s, t] = run_streams(engine, llm, 1, constrained ? 1 : 0, c, o, 10 + r);
      return s * 1e3 / static_cast<double>(std::max<int64_t>(1, t));
    };
    double a, b;
    if (r % 2 == 0) {
      a = one(false);
      b = one(true);
    } else {
      b = one(true);
      a = one(false);
    }
    plain.push_back(a);
    cons.push_back(b);
    ratio.push_back(b / a);
  }
  std::printf("  unconstrained ms/token: %.2f  constrained ms/token: %.2f\n", median(plain), median(cons));
  std::printf("  RESULT constrained-decode per-token ratio %.3fx (target <= 1.1x)\n", median(ratio));
}

// c) 16 streams, half constrained.
void bench_mixed(const zs::engine::Llm& llm, zs::engine::BatchEngine& engine, const Options& o) {
  std::printf("\n[c] %d streams x %d tokens: aggregate tokens/s with %d constrained vs none, %d rounds, interleaved\n",
              o.streams, o.gen_tokens, o.streams / 2, o.rounds * 2);
  auto c = make_constraint(llm);
  run_streams(engine, llm, o.streams, o.streams / 2, c, o, 2);  // warm-up
  std::vector<double> plain, mixed, ratio;
  for (int r = 0; r < o.rounds * 2; ++r) {
    auto one = [&](int constrained) {
      auto [s, t] = run_streams(engine, llm, o.streams, constrained, c, o, 50 + r);
      return static_cast<double>(t) / s;
    };
    double a, b;
    if (r % 2 == 0) {
      a = one(0);
      b = one(o.streams / 2);
    } else {
      b = one(o.streams / 2);
      a = one(0);
    }
    plain.push_back(a);
    mixed.push_back(b);
    ratio.push_back(b / a);
  }
  std::printf("  unconstrained tokens/s: %.1f  half constrained tokens/s: %.1f\n", median(plain), median(mixed));
  std::printf("  RESULT mixed-batch aggregate ratio %.3fx (target >= 0.9x)\n", median(ratio));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--model") o.model = next();
    else if (a == "--zeroserve") o.zeroserve = next();
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--streams") o.streams = std::stoi(next());
    else if (a == "--gen-tokens") o.gen_tokens = std::stoi(next());
    else if (a == "--rounds") o.rounds = std::stoi(next());
    else if (a == "--only") o.only = next();
    else if (a == "--quick") {
      o.rounds = 1;
      o.gen_tokens = 24;
      o.sample_steps = 500;
    } else die("unknown flag " + a);
  }
  const std::string path = o.model.empty() ? ensure_model("", find_zeroserve(o.zeroserve)) : o.model;
  std::printf("bench_structured: model %s, %d threads, load average %.2f\n", path.c_str(), o.threads, load_average());
  auto llm = zs::engine::Llm::load(path);
  if (!llm) die(llm.status().message());
  if (o.only.empty() || o.only == "a") bench_sampling(llm.value(), o);
  if (o.only.empty() || o.only == "b" || o.only == "c") {
    auto backend = zs::engine::make_cpu_backend(o.threads);
    zs::engine::BatchEngineOptions eo;
    eo.slots = o.streams;
    eo.ctx_tokens = 4096;
    eo.step_token_budget = 256;
    zs::engine::BatchEngine engine(llm.value(), *backend, eo);
    if (o.only.empty() || o.only == "b") bench_single(llm.value(), engine, o);
    if (o.only.empty() || o.only == "c") bench_mixed(llm.value(), engine, o);
  }
  std::printf("\nload average at the end %.2f\n", load_average());
  return 0;
}
