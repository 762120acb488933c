// Embedding throughput through a real `zeroserve worker`: N inputs of T tokens sent in ONE
// /v1/embeddings request (one encoder call, packed into as few forward passes as fit) against
// the same N inputs sent as N sequential single-input requests. Rounds interleave the two
// (the order alternates), each round's inputs/s is recorded, and the medians and their ratio
// are printed (target >= 2x). Inputs are texts of exactly T tokens as the model's own
// tokenizer counts them ([CLS] and [SEP] included), different in every round.
//
//   bench_embeddings [--model F] [--zeroserve BIN] [--threads 2] [--inputs 64] [--tokens 32]
//                    [--rounds 15] [--quick]
//
// Without --model, the tiny-bert test model from ../shared/golden is used. No threshold is
// enforced: the benchmark prints both numbers, the ratio, and the target.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "engine/model/llm.h"
#include "gateway/http/http_client.h"

namespace {

using namespace zs::bench;

struct Options {
  std::string model, zeroserve;
  int threads = 2, inputs = 64, tokens = 32, rounds = 15;
};

std::string default_model() { return std::string(ZS_SHARED_DIR) + "/golden/families/models/tiny-bert-f32.gguf"; }

// A text of exactly `tokens` tokens (as the worker will count them), distinct per `seed`;
// nullopt when no word combination lands on the count.
std::optional<std::string> text_of_length(const zs::engine::Llm& llm, int tokens, int seed) {
  static const char* kWords[] = {"river", "stone",  "lamp",   "quiet",  "orange",  "window", "seven",  "cloud",
                                 "paper", "garden", "silver", "train",  "morning", "bridge", "candle", "forest",
                                 "music", "winter", "yellow", "doctor", "market",  "island", "letter", "summer"};
  constexpr int kN = sizeof kWords / sizeof kWords[0];
  std::string text = "item " + std::to_string(seed);
  auto count = [&](const std::string& t) { return static_cast<int>(llm.tokenizer->encode(t, true, true).size()); };
  for (int i = 0, tries = 0; tries < 10 * tokens; ++i, ++tries) {
    const int n = count(text);
    if (n == tokens) return text;
    if (n > tokens) return std::nullopt;
    const std::string next = text + " " + kWords[(seed * 5 + i * 7) % kN];
    if (count(next) <= tokens) text = next;
  }
  return std::nullopt;
}

double post_embeddings(const std::string& address, const json& input) {
  const json body{{"model", "bench"}, {"input", input}};
  const auto t0 = Clock::now();
  auto r = zs::gateway::http_request("POST", address, "/v1/embeddings", body.dump(), {}, std::chrono::minutes(10));
  const double s = seconds_between(t0, Clock::now());
  if (!r) die("request failed: " + r.status().message());
  if (r->status != 200) die("the worker answered " + std::to_string(r->status) + ": " + r->body);
  return s;
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
    if (a == "--model")
      o.model = next();
    else if (a == "--zeroserve")
      o.zeroserve = next();
    else if (a == "--threads")
      o.threads = std::stoi(next());
    else if (a == "--inputs")
      o.inputs = std::stoi(next());
    else if (a == "--tokens")
      o.tokens = std::stoi(next());
    else if (a == "--rounds")
      o.rounds = std::stoi(next());
    else if (a == "--quick")
      o.rounds = 3;
    else {
      std::printf(
          "usage: bench_embeddings [--model F] [--zeroserve BIN] [--threads N] [--inputs N] [--tokens N]\n"
          "                        [--rounds N] [--quick]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (o.inputs < 1 || o.tokens < 3 || o.rounds < 1) die("--inputs, --tokens (>= 3) and --rounds must be positive");
  std::signal(SIGPIPE, SIG_IGN);
  const auto t_start = Clock::now();
  o.zeroserve = find_zeroserve(o.zeroserve);
  if (o.model.empty()) o.model = default_model();
  auto llm = zs::engine::Llm::load(o.model);  // to build inputs of an exact token count
  if (!llm) die(llm.status().message());
  if (!llm->model->config().is_encoder()) die(o.model + " is not an embedding model");

  // Every round gets its own inputs; all are built before anything is timed.
  std::vector<std::vector<std::string>> rounds(o.rounds);
  int seed = 0;
  for (auto& texts : rounds) {
    while (static_cast<int>(texts.size()) < o.inputs) {
      if (auto t = text_of_length(*llm, o.tokens, seed++)) texts.push_back(*t);
      if (seed > 100 * o.inputs * o.rounds)
        die("cannot build texts of exactly " + std::to_string(o.tokens) + " tokens");
    }
  }

  const std::string log =
      (fs::temp_directory_path() / ("bench_embeddings-" + std::to_string(getpid()) + ".log")).string();
  Child worker(
      {o.zeroserve, "worker", "--model", o.model, "--listen", "127.0.0.1:0", "--threads", std::to_string(o.threads)},
      log);
  auto addr = worker.wait_ready(std::chrono::seconds(120));
  if (!addr) die("the worker did not become ready (log: " + log + ")");
  std::printf(
      "bench_embeddings: %s, worker %s (--threads %d), %d inputs of %d tokens, %d rounds, load average %.2f, "
      "%u cores\n",
      o.model.c_str(), addr->c_str(), o.threads, o.inputs, o.tokens, o.rounds, load_average(),
      std::thread::hardware_concurrency());
  std::fflush(stdout);
  // Warm both paths (page cache, first touch of the encoder's buffers).
  (void)post_embeddings(*addr, rounds[0]);
  (void)post_embeddings(*addr, rounds[0][0]);

  std::vector<double> batched, sequential, ratios;
  for (int r = 0; r < o.rounds; ++r) {
    const auto& texts = rounds[r];
    double one = 0, many = 0;
    auto run_one = [&] { one = post_embeddings(*addr, texts); };
    auto run_many = [&] {
      for (const auto& t : texts) many += post_embeddings(*addr, t);
    };
    if (r % 2 == 0) {
      run_one();
      run_many();
    } else {
      run_many();
      run_one();
    }
    batched.push_back(o.inputs / one);
    sequential.push_back(o.inputs / many);
    ratios.push_back(many / one);
    std::printf("  round %d: one request %.1f inputs/s, %d requests %.1f inputs/s, ratio %.2fx\n", r + 1,
                batched.back(), o.inputs, sequential.back(), ratios.back());
    std::fflush(stdout);
  }
  const double b = median(batched), s = median(sequential);
  std::printf("\none request of %d inputs: median %.1f inputs/s (quartiles %.1f-%.1f)\n", o.inputs, b,
              quantile(batched, 0.25), quantile(batched, 0.75));
  std::printf("%d single-input requests:  median %.1f inputs/s (quartiles %.1f-%.1f)\n", o.inputs, s,
              quantile(sequential, 0.25), quantile(sequential, 0.75));
  std::printf(
      "RESULT embeddings_batch_ratio %.2f (one request vs sequential requests, median of medians; per-round "
      "median %.2f; target >= 2x)\n",
      b / s, median(ratios));
  std::printf("\nload average at the end %.2f; total %.0f s\n", load_average(), seconds_between(t_start, Clock::now()));
  worker.stop();
  return 0;
}
