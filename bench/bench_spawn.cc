// Starting an instance process: platform::Process::spawn (clone with CLONE_VM | CLONE_VFORK:
// the child borrows the daemon's memory until its exec) against the fork() it replaced, from a
// parent holding a touched heap like the daemon's. Per spawn of `true`, in interleaved rounds:
//   spawn     the call itself (fork copies the page tables);
//   to exit   until the child has exec'd, run and exited (what a cold start waits for);
//   re-touch  writing one byte per page of the parent's heap afterwards: after a fork every
//             page was write-protected and faults once more (slow where faults are, in VMs),
//             which the daemon's other threads (the gateway's) pay while a worker starts.
// Prints the medians and the ratios fork / spawn (> 1: spawn is faster).
//
//   bench_spawn [--heap-mb 256] [--rounds 15]
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "platform/instance/process.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The baseline: what Process::spawn did before, fork() and exec.
pid_t fork_exec(const zs::platform::ExecImage& image) {
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvpe(image.argv[0], image.argv.data(), image.envp.data());
    _exit(127);
  }
  return pid;
}

void touch(std::vector<char>& heap) {
  for (size_t i = 0; i < heap.size(); i += 4096) heap[i] = static_cast<char>(heap[i] + 1);
}

struct Sample {
  double spawn_ms, exit_ms, retouch_ms;
};

}  // namespace

int main(int argc, char** argv) {
  size_t heap_mb = 256;
  int rounds = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--heap-mb") heap_mb = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s (known: --heap-mb N, --rounds N)\n", a.c_str());
      return 2;
    }
  }
  std::vector<char> heap(heap_mb << 20, 1);
  touch(heap);
  const std::vector<std::string> cmd = {"true"};
  const zs::platform::ExecImage image(cmd, {});
  std::vector<Sample> forked, spawned;
  for (int r = 0; r < rounds; ++r) {
    for (int which = 0; which < 2; ++which) {
      const bool use_fork = (which == 0) == (r % 2 == 0);  // alternate which goes first
      Sample s{};
      auto t0 = Clock::now();
      if (use_fork) {
        const pid_t pid = fork_exec(image);
        s.spawn_ms = ms_since(t0);
        waitpid(pid, nullptr, 0);
      } else {
        auto p = zs::platform::Process::spawn(cmd);
        if (!p) {
          std::fprintf(stderr, "spawn failed: %s\n", p.status().message().c_str());
          return 1;
        }
        s.spawn_ms = ms_since(t0);
        p.value()->wait_exit(std::chrono::seconds(10));
      }
      s.exit_ms = ms_since(t0);
      t0 = Clock::now();
      touch(heap);
      s.retouch_ms = ms_since(t0);
      (use_fork ? forked : spawned).push_back(s);
    }
  }
  auto col = [](const std::vector<Sample>& v, double Sample::*f) {
    std::vector<double> x;
    for (const auto& s : v) x.push_back(s.*f);
    return median(x);
  };
  std::printf("bench_spawn: parent heap %zu MiB touched, %d interleaved rounds, medians (ms)\n", heap_mb, rounds);
  std::printf("%-10s %10s %10s %8s\n", "", "fork", "spawn", "ratio");
  for (auto [name, f] : {std::pair{"spawn", &Sample::spawn_ms}, std::pair{"to exit", &Sample::exit_ms},
                         std::pair{"re-touch", &Sample::retouch_ms}}) {
    const double a = col(forked, f), b = col(spawned, f);
    std::printf("%-10s %10.3f %10.3f %7.2fx\n", name, a, b, b > 0 ? a / b : 0);
  }
  return 0;
}
