// Worker speed targets, measured through a real `zeroserve worker` process (bench-1b, Q4_K_M,
// random weights, 2 compute threads by default). Every claim is a ratio or difference against
// a baseline measured in the same run, because the machine is shared and noisy:
//
//   a) batching: aggregate decode tokens/s of 16 concurrent streams vs 1 stream   (target >= 2.5x)
//   b) time to first token of a short request while 15 streams decode vs idle     (target <= 2x)
//   c) HTTP overhead: the same short request through the worker's HTTP vs calling
//      BatchEngine in-process (same model, same engine options), median of N      (target <= 1 ms)
//
//   bench_worker [--model F] [--zeroserve BIN] [--threads 2] [--streams 16] [--prompt-tokens 32]
//                [--gen-tokens 64] [--trials 2] [--probes 5] [--overhead-requests 30]
//                [--only a|b|c] [--quick]
//
// Without --model, bench-1b Q4_K_M is generated once into $ZS_BENCH_CACHE (default
// /tmp/zs-bench) with `zeroserve gen-model` and reused. No thresholds are enforced: the
// benchmark prints both numbers and the ratio, and the target for the reader to compare.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/batch/batch_engine.h"
#include "engine/model/llm.h"
#include "engine/vision/chat_prompt.h"
#include "gateway/http/http_client.h"
#include "gateway/http/sse.h"
#include "bench_util.h"

namespace {

using namespace zs::bench;

struct Options {
  std::string model, zeroserve, only;
  int threads = 2, streams = 16, prompt_tokens = 32, gen_tokens = 64, trials = 1, probes = 5, overhead_requests = 30;
  int overhead_max_tokens = 1, overhead_prompt_tokens = 8;
};

// ---------------------------------------------------------------------------------------
// a) aggregate decode throughput, N streams vs 1.
struct Throughput {
  double e2e_tps = 0;     // completion tokens / (last done - first send), prefill included
  double decode_tps = 0;  // text events while every stream decodes / that window
  int tokens = 0;
  double seconds = 0;
};

Throughput measure_streams(const std::string& addr, const std::vector<std::string>& prompts, int n, int gen) {
  std::vector<StreamResult> results(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      results[static_cast<size_t>(i)] = run_stream(addr, completion_body("bench", prompts[static_cast<size_t>(i)], gen, true, i + 1));
    });
  for (auto& t : threads) t.join();
  int short_streams = 0;
  for (const auto& r : results) short_streams += r.ok && r.completion_tokens < gen;
  if (short_streams > 0)
    std::printf("  note: %d of %d streams ended before %d tokens (end of sequence): the batch shrank\n", short_streams, n,
                gen);
  Throughput out;
  Clock::time_point start = results[0].sent, end = results[0].done, window_start = results[0].sent,
                    window_end = results[0].done;
  for (const auto& r : results) {
    if (!r.ok || !r.first_text) die("stream failed: " + r.error);
    start = std::min(start, r.sent);
    end = std::max(end, r.done);
    window_start = std::max(window_start, *r.first_text);  // every stream is decoding after this
    window_end = std::min(window_end, r.text_events.back());
    out.tokens += r.completion_tokens;
  }
  out.seconds = seconds_between(start, end);
  out.e2e_tps = out.tokens / out.seconds;
  int in_window = 0;
  for (const auto& r : results)
    for (const auto& t : r.text_events)
      if (t > window_start && t <= window_end) ++in_window;
  const double w = seconds_between(window_start, window_end);
  out.decode_tps = w > 0 ? in_window / w : 0;
  return out;
}

void bench_batching(const std::string& addr, const zs::engine::Llm& llm, const Options& o) {
  std::printf("\n[a] batching: aggregate decode tokens/s, %d concurrent streams vs 1 (prompt %d tokens, %d generated "
              "each)\n",
              o.streams, o.prompt_tokens, o.gen_tokens);
  std::vector<double> one_dec, one_e2e, many_dec, many_e2e;
  for (int t = 0; t < o.trials; ++t) {
    // Fresh prompts every trial so that the prefix cache never skips a prefill.
    std::vector<std::string> prompts;
    for (int i = 0; i < o.streams; ++i) prompts.push_back(make_prompt(llm, 1000 * (t + 1) + i, o.prompt_tokens));
    auto one = measure_streams(addr, {make_prompt(llm, 1000 * (t + 1) + 999, o.prompt_tokens)}, 1, o.gen_tokens);
    auto many = measure_streams(addr, prompts, o.streams, o.gen_tokens);
    std::printf("  trial %d: 1 stream %.2f tok/s decode (%.2f end-to-end, %d tokens in %.1f s) | %d streams %.2f tok/s "
                "decode (%.2f end-to-end, %d tokens in %.1f s)\n",
                t + 1, one.decode_tps, one.e2e_tps, one.tokens, one.seconds, o.streams, many.decode_tps, many.e2e_tps,
                many.tokens, many.seconds);
    std::fflush(stdout);
    one_dec.push_back(one.decode_tps);
    one_e2e.push_back(one.e2e_tps);
    many_dec.push_back(many.decode_tps);
    many_e2e.push_back(many.e2e_tps);
  }
  std::printf("  RESULT batching decode      1 stream %.2f tok/s, %d streams %.2f tok/s, ratio %.2fx (target >= 2.5x)\n",
              median(one_dec), o.streams, median(many_dec), median(many_dec) / median(one_dec));
  std::printf("  RESULT batching end-to-end  1 stream %.2f tok/s, %d streams %.2f tok/s, ratio %.2fx (prefill included)\n",
              median(one_e2e), o.streams, median(many_e2e), median(many_e2e) / median(one_e2e));
}

// ---------------------------------------------------------------------------------------
// b) time to first token under load.
struct Probe {
  Clock::time_point sent, first;
  double ms() const { return seconds_between(sent, first) * 1e3; }
};

Probe probe_ttft(const std::string& addr, const std::string& prompt) {
  auto r = run_stream(addr, completion_body("bench", prompt, 1, true));
  if (!r.ok || !r.first_text) die("probe failed: " + r.error);
  return {r.sent, *r.first_text};
}

// Where a loaded probe's time went, from the background streams' event times: every engine
// step ends with a burst of events (one per stream whose text advanced), so bursts mark step
// ends. Reports the steady decode step, the wait from the probe's arrival to the start of the
// step that carried its prompt, and that step's length.
void explain_probes(const std::vector<Probe>& probes, const std::vector<StreamResult>& bg) {
  std::vector<Clock::time_point> all;
  for (const auto& r : bg) all.insert(all.end(), r.text_events.begin(), r.text_events.end());
  std::sort(all.begin(), all.end());
  std::vector<Clock::time_point> ends;  // first event of each burst
  for (const auto& t : all)
    if (ends.empty() || t - ends.back() > std::chrono::milliseconds(30)) ends.push_back(t);
  if (ends.size() < 4) return;
  std::vector<double> gaps, wait, step;
  for (size_t i = 1; i < ends.size(); ++i) gaps.push_back(seconds_between(ends[i - 1], ends[i]) * 1e3);
  for (const auto& p : probes) {
    auto end = std::lower_bound(ends.begin(), ends.end(), p.first - std::chrono::milliseconds(30));
    if (end == ends.end() || end == ends.begin()) continue;
    const auto start = *(end - 1);
    step.push_back(seconds_between(start, *end) * 1e3);
    wait.push_back(std::max(0.0, seconds_between(p.sent, start) * 1e3));
  }
  std::printf("  diagnosis: decode-only step with %zu streams (median) %.0f ms; the step carrying the probe's prompt "
              "%.0f ms; the probe waited %.0f ms for the step in flight\n",
              bg.size(), median(gaps), median(step), median(wait));
}

void bench_ttft_under_load(const std::string& addr, const zs::engine::Llm& llm, const Options& o) {
  const int background = o.streams - 1;
  std::printf("\n[b] time to first token of a %d-token request, idle vs while %d streams decode\n", o.prompt_tokens,
              background);
  std::vector<double> idle, loaded;
  std::vector<Probe> loaded_probes;
  int serial = 0;
  // Fresh prompt per probe: no prefix-cache help in either case.
  for (int i = 0; i < o.probes; ++i) idle.push_back(probe_ttft(addr, make_prompt(llm, 5000 + serial++, o.prompt_tokens)).ms());

  std::atomic<bool> hang_up{false};
  std::atomic<int> decoding{0};
  std::vector<std::thread> threads;
  std::vector<StreamResult> bg(static_cast<size_t>(background));
  for (int i = 0; i < background; ++i)
    threads.emplace_back([&, i] {
      bg[static_cast<size_t>(i)] =
          run_stream(addr, completion_body("bench", make_prompt(llm, 6000 + i, o.prompt_tokens), 100000, true, i + 1), &hang_up,
                     &decoding);
    });
  const auto deadline = Clock::now() + std::chrono::minutes(3);
  while (decoding.load() < background && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (decoding.load() < background) {
    hang_up = true;
    for (auto& t : threads) t.join();
    die("background streams did not all start decoding");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past any prefill step
  for (int i = 0; i < o.probes; ++i) {
    loaded_probes.push_back(probe_ttft(addr, make_prompt(llm, 7000 + serial++, o.prompt_tokens)));
    loaded.push_back(loaded_probes.back().ms());
  }
  hang_up = true;
  for (auto& t : threads) t.join();
  int still = 0;
  for (const auto& r : bg) still += r.first_text && r.text_events.size() > 1;
  std::printf("  idle   ms:");
  for (double v : idle) std::printf(" %.0f", v);
  std::printf("\n  loaded ms:");
  for (double v : loaded) std::printf(" %.0f", v);
  std::printf("\n  (%d/%d background streams were streaming throughout)\n", still, background);
  explain_probes(loaded_probes, bg);
  std::printf("  RESULT ttft-under-load  idle %.1f ms, with %d streams %.1f ms, ratio %.2fx (target <= 2x)\n", median(idle),
              background, median(loaded), median(loaded) / median(idle));
}

// ---------------------------------------------------------------------------------------
// c) HTTP overhead against the engine called in-process.
void bench_http_overhead(const std::string& addr, const std::string& model, const zs::engine::Llm& llm, const Options& o) {
  std::printf("\n[c] HTTP overhead: the same %d-token request (max_tokens %d, non-streaming) through the worker's HTTP vs "
              "BatchEngine in-process, %d each, interleaved\n",
              o.overhead_prompt_tokens, o.overhead_max_tokens, o.overhead_requests);
  (void)model;
  auto backend = zs::engine::make_cpu_backend(o.threads);
  zs::engine::BatchEngineOptions eo;  // as the worker sets them from its flags
  eo.slots = o.streams;
  eo.ctx_tokens = 4096;
  eo.step_token_budget = 256;
  zs::engine::BatchEngine engine(llm, *backend, eo);
  const std::string prompt = make_prompt(llm, 9000, o.overhead_prompt_tokens);

  auto in_process = [&]() -> double {
    const auto t0 = Clock::now();
    auto prepared = zs::engine::prepare_text_prompt(llm, nullptr, prompt, {});
    if (!prepared) die(prepared.status().message());
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    zs::engine::GenerationRequest gr;
    gr.prompt = std::move(prepared->prompt);
    gr.sampling.temperature = 0;  // what the worker makes of {"temperature": 0}
    gr.sampling.top_k = 0;
    gr.sampling.top_p = 1;
    gr.sampling.min_p = 0;
    gr.sampling.repeat_penalty = 1;
    gr.max_tokens = o.overhead_max_tokens;
    std::string text;
    gr.on_event = [&](const zs::engine::GenerationEvent& e) {
      text += e.text;
      if (!e.finished) return;
      std::lock_guard<std::mutex> l(m);
      done = true;
      cv.notify_one();
    };
    if (!engine.submit(std::move(gr))) die("submit failed");
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return done; });
    return seconds_between(t0, Clock::now()) * 1e3;
  };
  auto client = zs::gateway::HttpClient::connect(addr);
  if (!client) die(client.status().message());
  const std::string body = completion_body("bench", prompt, o.overhead_max_tokens, false).dump();
  auto over_http = [&]() -> double {
    const auto t0 = Clock::now();
    auto r = client.value()->request("POST", "/v1/completions", body);
    if (!r || r->status != 200) die("HTTP request failed");
    return seconds_between(t0, Clock::now()) * 1e3;
  };
  for (int i = 0; i < 3; ++i) {  // warm-up: caches, first-touch of pages, prefix cache filled in both
    in_process();
    over_http();
  }
  std::vector<double> http, direct;
  for (int i = 0; i < o.overhead_requests; ++i) {
    // Alternate the order so that drift on the shared machine hits both alike.
    if (i % 2 == 0) {
      http.push_back(over_http());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      direct.push_back(in_process());
    } else {
      direct.push_back(in_process());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      http.push_back(over_http());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  engine.shutdown();
  std::vector<double> diffs;
  for (size_t i = 0; i < http.size(); ++i) diffs.push_back(http[i] - direct[i]);
  std::printf("  in-process  median %.2f ms (p25 %.2f, p75 %.2f)\n", median(direct), quantile(direct, 0.25),
              quantile(direct, 0.75));
  std::printf("  HTTP        median %.2f ms (p25 %.2f, p75 %.2f)\n", median(http), quantile(http, 0.25),
              quantile(http, 0.75));
  std::printf("  paired difference median %.2f ms (p25 %.2f, p75 %.2f)\n", median(diffs), quantile(diffs, 0.25),
              quantile(diffs, 0.75));
  // The HTTP stack alone, without the engine: a GET and a completion the worker parses and
  // rejects (400). These bound what HTTP can add when the end-to-end difference drowns in
  // the noise of engine steps on a shared machine.
  const std::string bad = json{{"model", "bench"}, {"prompt", prompt}, {"max_tokens", 1}, {"temperature", -1}}.dump();
  std::vector<double> health, rejected;
  for (int i = 0; i < 200; ++i) {
    auto t0 = Clock::now();
    auto h = client.value()->request("GET", "/health");
    if (!h || h->status != 200) die("GET /health failed");
    health.push_back(seconds_between(t0, Clock::now()) * 1e3);
    t0 = Clock::now();
    auto b = client.value()->request("POST", "/v1/completions", bad);
    if (!b || b->status != 400) die("expected a 400 for temperature -1");
    rejected.push_back(seconds_between(t0, Clock::now()) * 1e3);
  }
  std::printf("  HTTP alone: GET /health round trip median %.3f ms; a completion parsed and rejected (400) median %.3f ms\n",
              median(health), median(rejected));
  std::printf("  RESULT http-overhead  in-process %.2f ms, HTTP %.2f ms, paired difference %+.2f ms (p25 %+.2f, p75 %+.2f; "
              "HTTP alone %.3f ms) (target <= 1 ms)\n",
              median(direct), median(http), median(diffs), quantile(diffs, 0.25), quantile(diffs, 0.75), median(rejected));
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
    if (a == "--model") o.model = next();
    else if (a == "--zeroserve") o.zeroserve = next();
    else if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--streams") o.streams = std::stoi(next());
    else if (a == "--prompt-tokens") o.prompt_tokens = std::stoi(next());
    else if (a == "--gen-tokens") o.gen_tokens = std::stoi(next());
    else if (a == "--trials") o.trials = std::stoi(next());
    else if (a == "--probes") o.probes = std::stoi(next());
    else if (a == "--overhead-requests") o.overhead_requests = std::stoi(next());
    else if (a == "--overhead-max-tokens") o.overhead_max_tokens = std::stoi(next());
    else if (a == "--overhead-prompt-tokens") o.overhead_prompt_tokens = std::stoi(next());
    else if (a == "--only") o.only = next();
    else if (a == "--quick") {
      o.gen_tokens = 32;
      o.trials = 1;
      o.probes = 3;
      o.overhead_requests = 16;
    } else {
      std::printf("usage: bench_worker [--model F] [--zeroserve BIN] [--threads N] [--streams N] [--prompt-tokens N]\n"
                  "                    [--gen-tokens N] [--trials N] [--probes N] [--overhead-requests N]\n"
                  "                    [--overhead-max-tokens N] [--overhead-prompt-tokens N] [--only a|b|c] [--quick]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (o.streams < 2) die("--streams must be at least 2");
  std::signal(SIGPIPE, SIG_IGN);
  const auto t_start = Clock::now();
  o.zeroserve = find_zeroserve(o.zeroserve);
  o.model = ensure_model(o.model, o.zeroserve);
  auto llm = zs::engine::Llm::load(o.model);  // for exact prompt lengths, and for [c]
  if (!llm) die(llm.status().message());

  const std::string log = (fs::temp_directory_path() / ("bench_worker-" + std::to_string(getpid()) + ".log")).string();
  Child worker({o.zeroserve, "worker", "--model", o.model, "--listen", "127.0.0.1:0", "--slots", std::to_string(o.streams),
                "--ctx", "4096", "--threads", std::to_string(o.threads)},
               log);
  auto addr = worker.wait_ready(std::chrono::seconds(120));
  if (!addr) die("the worker did not become ready (log: " + log + ")");
  std::printf("bench_worker: %s, worker %s (--slots %d --ctx 4096 --threads %d), load average %.2f, %u cores\n",
              o.model.c_str(), addr->c_str(), o.streams, o.threads, load_average(), std::thread::hardware_concurrency());
  std::fflush(stdout);
  // Warm the worker (page cache, first-touch of its buffers) before anything is timed.
  (void)run_stream(*addr, completion_body("bench", make_prompt(*llm, 1, o.prompt_tokens), 4, true));

  if (o.only.empty() || o.only == "a") bench_batching(*addr, *llm, o);
  if (o.only.empty() || o.only == "b") bench_ttft_under_load(*addr, *llm, o);
  if (o.only.empty() || o.only == "c") bench_http_overhead(*addr, o.model, *llm, o);
  std::printf("\nload average at the end %.2f; total %.0f s\n", load_average(), seconds_between(t_start, Clock::now()));
  worker.stop();
  return 0;
}
