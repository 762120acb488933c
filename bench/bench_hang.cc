// A worker that hangs must delay nothing but itself (Platform III). Two deployments, `a` and
// `b`, one instance each, through `zeroserve serve`. In each round:
//   a) requests to `a`, open-loop at --rate per second for --seconds, while `b` is healthy
//      (the baseline),
//   b) the same while `b`'s worker is stopped (SIGSTOP): its socket accepts connections but
//      nothing answers, so the fleet's health probe of it hangs until the probe's timeout
//      (2 s) and then replaces it.
// Reports p99 latency of `a` in each phase per round and the median of the per-round ratios
// b/a (target: within 2x). Rounds alternate the two phases on the same daemon.
//
//   bench_hang [--zeroserve BIN] [--model F] [--rounds 4] [--seconds 8] [--rate 50]
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"

using namespace zs::bench;

namespace {

// The pid of `deployment`'s worker among serve's children (its command line names it).
pid_t worker_of(pid_t serve, const std::string& deployment) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || ppid != serve) continue;
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(std::string("--name") + '\0' + deployment + '\0') != std::string::npos) return std::stoi(name);
  }
  return -1;
}

// Latencies (ms) of requests to `a` sent open-loop at `rate` per second for `seconds`, each
// measured from its scheduled send time (so a stall delays every request due during it, as
// with real clients).
std::vector<double> load(const std::string& address, double seconds, double rate) {
  const int n = static_cast<int>(seconds * rate);
  std::vector<double> ms(n, 0);
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    const auto due = t0 + std::chrono::microseconds(static_cast<int64_t>(i / rate * 1e6));
    std::this_thread::sleep_until(due);
    threads.emplace_back([&, i, due] {
      auto r = zs::gateway::http_request("POST", address, "/v1/completions",
                                         completion_body("a", "Once upon a time " + std::to_string(i), 2, false).dump(),
                                         {}, std::chrono::seconds(60));
      if (!r || r->status != 200) failed = true;
      ms[i] = seconds_between(due, Clock::now()) * 1000;
    });
  }
  for (auto& t : threads) t.join();
  if (failed) die("a request to the healthy deployment failed");
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::string zeroserve, model = std::string(ZS_SHARED_DIR) + "/golden/models/stories260K.gguf";
  int rounds = 4;
  double seconds = 8, rate = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--zeroserve") zeroserve = next();
    else if (a == "--model") model = next();
    else if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--rate") rate = std::stod(next());
    else die("unknown option " + a);
  }
  zeroserve = find_zeroserve(zeroserve);
  std::printf("bench_hang: %s, %d rounds of %.0f s per phase, load average %.2f\n", zeroserve.c_str(), rounds, seconds,
              load_average());
  auto deployment = [&](const std::string& name) {
    return "  - name: " + name + "\n    model: " + model + "\n    min_instances: 1\n    slots: 2\n    ctx: 512\n    threads: 1\n";
  };
  ServeDaemon s(zeroserve, "hang", "deployments:\n" + deployment("a") + deployment("b"));
  if (!s.wait_state("a", "ready", std::chrono::seconds(60)) || !s.wait_state("b", "ready", std::chrono::seconds(60)))
    die("the instances did not start");
  load(s.address(), 0.5, rate);  // warm-up

  std::vector<double> ratios;
  for (int r = 0; r < rounds; ++r) {
    const double healthy = quantile(load(s.address(), seconds, rate), 0.99);
    const pid_t hung = worker_of(s.pid(), "b");
    if (hung <= 0) die("b's worker not found");
    kill(hung, SIGSTOP);
    const std::vector<double> during = load(s.address(), seconds, rate);
    kill(hung, SIGCONT);
    const double hanging = quantile(during, 0.99);
    ratios.push_back(hanging / healthy);
    std::printf("  round %d: p99 of a %.1f ms with b healthy, %.1f ms while b hangs (%zu requests), ratio %.2f\n", r + 1,
                healthy, hanging, during.size(), ratios.back());
    std::fflush(stdout);
    // b is replaced once its probe fails; wait for a fresh one before the next round.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline && (worker_of(s.pid(), "b") == hung || s.state_of("b") != "ready"))
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("RESULT hang-p99  median ratio %.2f (p99 of a while b hangs / p99 with b healthy; target <= 2)\n",
              median(ratios));
  std::printf("load average at end %.2f\n", load_average());
  return 0;
}
