// Interactive latency under batch load, through `zeroserve serve` (Platform II): the time to
// first token of short interactive requests
//   a) on an idle instance (the baseline),
//   b) while batch-class streams fill every slot of the instance (X-Priority: batch): the
//      gateway sends interactive requests past batch work and the worker pauses batch
//      sequences for them,
//   c) while the same load is sent as interactive requests (no classes): the short request
//      queues behind it, which is what a server without priority classes does.
// Reports the medians and the ratios b/a (target: close to 1) and c/a. Alternating trials,
// one process, same instance.
//
//   bench_priority [--model F] [--zeroserve BIN] [--threads 2] [--slots 4] [--trials 8] [--quick]
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

using namespace zs::bench;

namespace {

struct Options {
  std::string model, zeroserve;
  int threads = 2, slots = 4, trials = 8, short_prompt = 16, short_tokens = 4, load_tokens = 400;
};

// Keeps `n` long streams running (each restarts when it ends) until stopped.
class Load {
 public:
  Load(const std::string& address, int n, const std::string& cls, int tokens) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([=, this] {
        for (int round = 0; !stop_; ++round) {
          run_stream(address, completion_body("m", "Batch work " + std::to_string(i), tokens, true, 100 * i + round), &stop_,
                     nullptr, std::chrono::seconds(600), {{"X-Priority", cls}});
        }
      });
  }
  ~Load() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

double ttft_ms(const std::string& address, const Options& o, int i) {
  auto r = run_stream(address, completion_body("m", "Question " + std::to_string(i) + ": why is the sky blue?", o.short_tokens, true),
                      nullptr, nullptr, std::chrono::seconds(600), {{"X-Priority", "interactive"}});
  if (!r.ok || !r.first_text) die("interactive request failed: " + r.error);
  return seconds_between(r.sent, *r.first_text) * 1000;
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
    else if (a == "--slots") o.slots = std::stoi(next());
    else if (a == "--trials") o.trials = std::stoi(next());
    else if (a == "--quick") o.trials = 4;
    else die("unknown option " + a);
  }
  o.zeroserve = find_zeroserve(o.zeroserve);
  o.model = ensure_model(o.model, o.zeroserve);
  std::printf("bench_priority: model %s, %d threads, %d slots, load average %.2f\n", o.model.c_str(), o.threads, o.slots,
              load_average());
  ServeDaemon s(o.zeroserve, "priority",
                "deployments:\n  - name: m\n    model: " + o.model + "\n    min_instances: 1\n    slots: " +
                    std::to_string(o.slots) + "\n    ctx: 8192\n    threads: " + std::to_string(o.threads) +
                    "\n    max_queue: 256\n");
  if (!s.wait_state("m", "ready", std::chrono::seconds(120))) die("the instance did not start");
  ttft_ms(s.address(), o, -1);  // warm-up

  std::vector<double> idle, with_classes, without_classes;
  for (int t = 0; t < o.trials; ++t) {
    idle.push_back(ttft_ms(s.address(), o, t));
    {
      Load load(s.address(), o.slots, "batch", o.load_tokens);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // every slot busy decoding
      with_classes.push_back(ttft_ms(s.address(), o, 100 + t));
    }
    {
      Load load(s.address(), o.slots, "interactive", o.load_tokens);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      without_classes.push_back(ttft_ms(s.address(), o, 200 + t));
    }
    std::printf("  trial %d: idle %.0f ms, under batch load %.0f ms, under the same load without classes %.0f ms\n", t + 1,
                idle.back(), with_classes.back(), without_classes.back());
    std::fflush(stdout);
  }
  const double a = median(idle), b = median(with_classes), c = median(without_classes);
  std::printf("RESULT priority-ttft  idle %.0f ms, under batch load %.0f ms (ratio %.2f), same load without classes "
              "%.0f ms (ratio %.2f)\n",
              a, b, b / a, c, c / a);
  std::printf("load average at end %.2f\n", load_average());
  return 0;
}
