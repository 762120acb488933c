// Platform speed targets of `zeroserve serve`, measured against baselines taken in the same
// run (the machine is shared and noisy, so every claim is a ratio or a difference):
//
//   a) cold start: time to first token of a request that arrives at zero instances vs one
//      that finds the instance warm, through `serve`                        (target <= +100 ms);
//      and a request that wakes a sleeping instance vs the warm one after it (target <= +10 ms),
//      interleaved; then the wake itself measured in a worker reached directly: arrival to the
//      first step of a request that woke it vs of one that did not, paired (target <= 10 ms)
//   b) gateway overhead: the same short request through `serve` vs straight to the worker
//      instance behind it (its Unix socket): per-request ms difference      (target <= 1 ms)
//      and streamed tokens/s ratio                                          (target >= 0.95)
//   c) idle streams: the gateway alone holding N (default 10,000) streaming requests that
//      wait for an instance that never becomes ready; each must receive its first SSE
//      keep-alive comment. Reports N, the daemon's threads, RSS and open files against the
//      idle daemon.
//
//   bench_gateway [--model F] [--zeroserve BIN] [--threads 2] [--cold-trials 3]
//                 [--overhead-requests 30] [--stream-tokens 48] [--stream-trials 4]
//                 [--connections 10000] [--serve-nofile N] [--only a|b|c] [--quick]
//
// --serve-nofile N starts serve with a soft RLIMIT_NOFILE of N (1024 is what most shells
// give) to see how the daemon copes with its own descriptor limit.
//
// Without --model, bench-1b Q4_K_M is generated once into $ZS_BENCH_CACHE (default
// /tmp/zs-bench) and reused. No thresholds are enforced.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/model/llm.h"
#include "engine/vision/chat_prompt.h"
#include "gateway/http/http_client.h"
#include "gateway/http/sse.h"
#include "bench_util.h"


namespace {

using namespace zs::bench;

struct Options {
  std::string model, zeroserve, only;
  int threads = 2, cold_trials = 3, wake_trials = 15, overhead_requests = 30, stream_tokens = 48, stream_trials = 4;
  int connections = 10'000, prompt_tokens = 8;
  long serve_nofile = 0;  // > 0: start serve with this soft RLIMIT_NOFILE (what a default shell gives)
};

// A `zeroserve serve` daemon for this benchmark's options.
class Serve : public ServeDaemon {
 public:
  Serve(const Options& o, const std::string& name, const std::string& yaml) : ServeDaemon(o.zeroserve, name, yaml) {}
};

std::string builtin_deployment(const std::string& name, const std::string& model, int threads, const std::string& extra) {
  return "  - name: " + name + "\n    model: " + model + "\n    slots: 16\n    ctx: 8192\n    threads: " +
         std::to_string(threads) + "\n" + extra;
}

// ---------------------------------------------------------------------------------------
// a) cold start and wake vs warm.
double ms_of(const std::string& start_header) {  // "wake; ms=0.4" -> 0.4
  const size_t at = start_header.find("ms=");
  return at == std::string::npos ? -1 : std::strtod(start_header.c_str() + at + 3, nullptr);
}

void print_quartiles(const char* what, const std::vector<double>& v) {
  std::printf("  %s: median %.2f ms, quartiles %.2f .. %.2f ms (n %zu)\n", what, median(v), quantile(v, 0.25),
              quantile(v, 0.75), v.size());
}

void bench_cold_start(Serve& s, const zs::engine::Llm& llm, const Options& o) {
  std::printf("\n[a] time to first token at zero instances, and of a sleeping instance, vs warm, through serve "
              "(deployment 'cold': keep_alive 1s; 'sleepy': sleep_after 0s, always one instance, paired with 'warm': "
              "never sleeps, idle as long; %d-token prompts that share no prefix, max_tokens 1, streaming)\n",
              o.prompt_tokens);
  std::vector<double> cold, warm, header, wake, wake_warm, wake_header;
  int seed = 100;
  for (int t = 0; t < o.cold_trials; ++t) {
    // Each pair starts on a quiet machine: the last cold instance has exited (its exit, and
    // the start before it, must not fall into the next measurement).
    if (!s.wait_state("cold", "idle", std::chrono::seconds(60))) die("deployment 'cold' did not scale to zero");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (!s.wait_state("sleepy", "sleeping", std::chrono::seconds(60))) die("deployment 'sleepy' did not go to sleep");
    // Paired with a request to 'warm' (awake, idle as long): which goes first alternates.
    const std::string pk = make_prompt(llm, seed++, o.prompt_tokens), pw = make_prompt(llm, seed++, o.prompt_tokens);
    StreamResult k, kw;
    if (t % 2 == 0) {
      k = run_stream(s.address(), completion_body("sleepy", pk, 1, true));
      kw = run_stream(s.address(), completion_body("warm", pw, 1, true));
    } else {
      kw = run_stream(s.address(), completion_body("warm", pw, 1, true));
      k = run_stream(s.address(), completion_body("sleepy", pk, 1, true));
    }
    if (!k.ok || !k.first_choice || !kw.ok || !kw.first_choice) die("sleepy request failed: " + k.error + kw.error);
    if (k.start.rfind("wake", 0) != 0 || kw.start.rfind("warm", 0) != 0)
      std::printf("  note: expected wake and warm, got '%s' and '%s'\n", k.start.c_str(), kw.start.c_str());
    wake.push_back(seconds_between(k.sent, *k.first_choice) * 1e3);
    wake_warm.push_back(seconds_between(kw.sent, *kw.first_choice) * 1e3);
    wake_header.push_back(ms_of(k.start));

    auto c = run_stream(s.address(), completion_body("cold", make_prompt(llm, seed++, o.prompt_tokens), 1, true));
    if (!c.ok || !c.first_choice) die("cold request failed: " + c.error);
    auto w = run_stream(s.address(), completion_body("cold", make_prompt(llm, seed++, o.prompt_tokens), 1, true));
    if (!w.ok || !w.first_choice) die("warm request failed: " + w.error);
    if (!w.cold_start_ms.empty()) std::printf("  note: the warm request also waited for a start\n");
    cold.push_back(seconds_between(c.sent, *c.first_choice) * 1e3);
    warm.push_back(seconds_between(w.sent, *w.first_choice) * 1e3);
    header.push_back(c.cold_start_ms.empty() ? -1 : std::stod(c.cold_start_ms));
    std::printf("  trial %d: wake %.1f ms (%s), warm (idle as long) %.1f ms; cold %.0f ms (%s), warm after it %.0f ms\n",
                t + 1, wake.back(), k.start.c_str(), wake_warm.back(), cold.back(), c.start.c_str(), warm.back());
    std::fflush(stdout);
  }
  std::vector<double> wake_diff;
  for (size_t i = 0; i < wake.size(); ++i) wake_diff.push_back(wake[i] - wake_warm[i]);
  std::printf("  RESULT cold-start  warm ttft %.0f ms, cold ttft %.0f ms, difference %+.0f ms, ratio %.2fx; instance "
              "start reported %.0f ms (target <= +100 ms)\n",
              median(warm), median(cold), median(cold) - median(warm), median(cold) / median(warm), median(header));
  std::printf("  RESULT wake  warm ttft %.1f ms, wake ttft %.1f ms, paired difference median %+.1f ms (quartiles "
              "%+.1f .. %+.1f), ratio %.2fx; wake reported by the worker %.2f ms (target <= +10 ms)\n",
              median(wake_warm), median(wake), median(wake_diff), quantile(wake_diff, 0.25), quantile(wake_diff, 0.75),
              median(wake) / median(wake_warm), median(wake_header));
}

// The wake itself, in a worker reached directly: put it to sleep, send a request (it wakes the
// engine), then another (warm); the worker's histogram of arrival-to-first-step, by label, gives
// each request's own delay (its sum moves by exactly that request's value).
void bench_wake_direct(Serve& s, const zs::engine::Llm& llm, const Options& o) {
  std::printf("\n[a2] the wake itself: arrival to first step in a worker reached directly (deployment 'direct', "
              "which the fleet never puts to sleep: this benchmark does), a request that wakes it vs the next one "
              "(paired, %d trials)\n",
              o.wake_trials);
  const std::string address = s.instance_socket("direct");
  if (address.empty()) die("no instance of deployment 'direct'");
  auto metrics = [&] {
    auto r = zs::gateway::http_request("GET", address, "/metrics");
    if (!r) die("cannot read the worker's metrics");
    return r->body;
  };
  auto sum_of = [&](const std::string& page, const char* start) {
    return metric(page, std::string("zs_worker_first_step_seconds_sum{start=\"") + start + "\"}");
  };
  std::vector<double> woke, warm, diff, header, ttft_woke, ttft_warm, ttft_diff;
  int seed = 5000;
  for (int t = 0; t < o.wake_trials; ++t) {
    auto slept = zs::gateway::http_request("POST", address, "/internal/sleep", "");
    if (!slept || slept->status != 200) die("the worker did not sleep");
    const std::string m0 = metrics();
    const auto t0 = Clock::now();
    auto a = zs::gateway::http_request("POST", address, "/v1/completions",
                                       completion_body("m", make_prompt(llm, seed++, o.prompt_tokens), 1, false).dump());
    const auto t1 = Clock::now();
    const std::string m1 = metrics();
    const auto t2 = Clock::now();
    auto b = zs::gateway::http_request("POST", address, "/v1/completions",
                                       completion_body("m", make_prompt(llm, seed++, o.prompt_tokens), 1, false).dump());
    const auto t3 = Clock::now();
    const std::string m2 = metrics();
    ttft_woke.push_back(seconds_between(t0, t1) * 1e3);
    ttft_warm.push_back(seconds_between(t2, t3) * 1e3);
    ttft_diff.push_back(ttft_woke.back() - ttft_warm.back());
    if (!a || !b || a->status != 200 || b->status != 200) die("a request to the worker failed");
    woke.push_back((sum_of(m1, "wake") - sum_of(m0, "wake")) * 1e3);
    warm.push_back((sum_of(m2, "warm") - sum_of(m1, "warm")) * 1e3);
    diff.push_back(woke.back() - warm.back());
    header.push_back(std::strtod(a->header("X-Zeroserve-Wake-Ms").c_str(), nullptr));
  }
  print_quartiles("arrival to first step, waking request", woke);
  print_quartiles("arrival to first step, warm request", warm);
  print_quartiles("the worker's X-Zeroserve-Wake-Ms", header);
  print_quartiles("whole request (first token), waking request", ttft_woke);
  print_quartiles("whole request (first token), warm request", ttft_warm);
  std::printf("  RESULT wake-ttft-direct  paired difference median %+.1f ms (quartiles %+.1f .. %+.1f) (target <= +10 ms)\n",
              median(ttft_diff), quantile(ttft_diff, 0.25), quantile(ttft_diff, 0.75));
  std::printf("  RESULT wake-direct  wake %.2f ms vs warm %.2f ms: paired difference median %+.2f ms (quartiles %+.2f .. "
              "%+.2f) (target: wake <= 10 ms)\n",
              median(woke), median(warm), median(diff), quantile(diff, 0.25), quantile(diff, 0.75));
}

// ---------------------------------------------------------------------------------------
// b) gateway overhead against the same worker reached directly.
void bench_overhead(Serve& s, const zs::engine::Llm& llm, const Options& o) {
  if (!s.wait_state("warm", "ready", std::chrono::seconds(120))) die("deployment 'warm' did not become ready");
  const std::string direct = s.instance_socket("warm");
  if (direct.empty()) die("cannot find the Unix socket of the 'warm' instance under " + s.dir());
  std::printf("\n[b] gateway overhead: serve (%s, model 'warm') vs its worker directly (%s)\n", s.address().c_str(),
              direct.c_str());
  auto via_gw = zs::gateway::HttpClient::connect(s.address());
  auto via_worker = zs::gateway::HttpClient::connect(direct);
  if (!via_gw || !via_worker) die("connect failed");
  auto timed = [](zs::gateway::HttpClient& c, const std::string& body, int expect) {
    const auto t0 = Clock::now();
    auto r = c.request("POST", "/v1/completions", body, {}, std::chrono::seconds(60));
    if (!r || r->status != expect)
      die("unexpected answer: " + (r ? std::to_string(r->status) + " " + r->body : r.status().message()));
    return seconds_between(t0, Clock::now()) * 1e3;
  };
  auto paired = [&](const std::string& body, int expect, int n, std::vector<double>* gw, std::vector<double>* wk) {
    for (int i = 0; i < 3; ++i) {
      timed(*via_gw.value(), body, expect);
      timed(*via_worker.value(), body, expect);
    }
    for (int i = 0; i < n; ++i) {
      if (i % 2 == 0) {
        gw->push_back(timed(*via_gw.value(), body, expect));
        wk->push_back(timed(*via_worker.value(), body, expect));
      } else {
        wk->push_back(timed(*via_worker.value(), body, expect));
        gw->push_back(timed(*via_gw.value(), body, expect));
      }
    }
  };
  // 1. The full short request: engine time included, so its noise bounds the resolution.
  const std::string prompt = make_prompt(llm, 300, o.prompt_tokens);
  std::vector<double> gw, wk;
  paired(completion_body("warm", prompt, 1, false).dump(), 200, o.overhead_requests, &gw, &wk);
  std::vector<double> diff;
  for (size_t i = 0; i < gw.size(); ++i) diff.push_back(gw[i] - wk[i]);
  std::printf("  short request (%d-token prompt, max_tokens 1): direct median %.2f ms, via serve %.2f ms; paired difference "
              "median %+.2f ms (p25 %+.2f, p75 %+.2f)\n",
              o.prompt_tokens, median(wk), median(gw), median(diff), quantile(diff, 0.25), quantile(diff, 0.75));
  // 2. The same path without the engine: the worker parses the request and answers 400
  //    (temperature out of range), so what remains is HTTP, the gateway and the proxy hop.
  json bad = completion_body("warm", prompt, 1, false);
  bad["temperature"] = -1;
  std::vector<double> gw0, wk0;
  paired(bad.dump(), 400, 200, &gw0, &wk0);
  std::printf("  request rejected by the worker (400, no engine): direct median %.3f ms, via serve %.3f ms\n", median(wk0),
              median(gw0));
  std::vector<double> diff0;
  for (size_t i = 0; i < gw0.size(); ++i) diff0.push_back(gw0[i] - wk0[i]);
  std::printf("  RESULT gateway-overhead-request  direct %.2f ms, via serve %.2f ms, paired difference %+.2f ms (p25 %+.2f, "
              "p75 %+.2f); engine-free path %+.3f ms (target <= 1 ms)\n",
              median(wk), median(gw), median(diff), quantile(diff, 0.25), quantile(diff, 0.75), median(diff0));
  std::fflush(stdout);

  // 3. Streamed tokens/s, alternating.
  std::vector<double> tps_gw, tps_wk;
  auto tps = [](const StreamResult& r) {
    if (!r.ok || r.text_events.size() < 2) die("stream failed: " + r.error);
    return (r.text_events.size() - 1) / seconds_between(r.text_events.front(), r.text_events.back());
  };
  for (int t = 0; t < o.stream_trials; ++t) {
    const json body = completion_body("warm", make_prompt(llm, 400 + t, o.prompt_tokens), o.stream_tokens, true, t + 1);
    if (t % 2 == 0) {
      tps_gw.push_back(tps(run_stream(s.address(), body)));
      tps_wk.push_back(tps(run_stream(direct, body)));
    } else {
      tps_wk.push_back(tps(run_stream(direct, body)));
      tps_gw.push_back(tps(run_stream(s.address(), body)));
    }
    std::printf("  stream trial %d: direct %.2f events/s, via serve %.2f events/s\n", t + 1, tps_wk.back(), tps_gw.back());
    std::fflush(stdout);
  }
  std::printf("  RESULT gateway-overhead-stream  direct %.2f tok/s, via serve %.2f tok/s, ratio %.3f (target >= 0.95)\n",
              median(tps_wk), median(tps_gw), median(tps_gw) / median(tps_wk));
}

// ---------------------------------------------------------------------------------------
// c) many idle streaming connections.
struct ProcInfo {
  long threads = -1;
  long rss_kib = -1;
  long fds = -1;
};

ProcInfo proc_info(pid_t pid) {
  ProcInfo p;
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Threads:", 0) == 0) p.threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) p.rss_kib = std::stol(line.substr(6));
  }
  std::error_code ec;
  long n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    ++n;
  p.fds = n;
  return p;
}

struct IdleConn {
  int fd = -1;
  bool connected = false, sent = false, headers = false, closed = false;
  int status = 0;
  int comments = 0;
  std::string in;
  size_t scanned = 0;
  Clock::time_point opened, first_comment;
};

void bench_idle_streams(const Options& o) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  const rlim_t before = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);  // serve, started next, inherits it
  getrlimit(RLIMIT_NOFILE, &rl);
  int n = o.connections;
  if (static_cast<rlim_t>(n) + 64 > rl.rlim_cur) {
    n = static_cast<int>(rl.rlim_cur) - 64;
    std::printf("  note: RLIMIT_NOFILE hard limit %llu: only %d connections possible\n",
                static_cast<unsigned long long>(rl.rlim_max), n);
  }
  std::printf("\n[c] idle streams: %d streaming requests waiting on an instance that never becomes ready "
              "(RLIMIT_NOFILE raised from %llu to %llu; serve inherits it)\n",
              n, static_cast<unsigned long long>(before), static_cast<unsigned long long>(rl.rlim_cur));
  if (o.serve_nofile > 0) {  // serve inherits the soft limit in force when it starts
    rlimit low = rl;
    low.rlim_cur = static_cast<rlim_t>(o.serve_nofile);
    setrlimit(RLIMIT_NOFILE, &low);
    std::printf("  serve starts with a soft RLIMIT_NOFILE of %ld\n", o.serve_nofile);
  }
  Serve s(o, "idle",
          "deployments:\n  - name: never\n    runtime: command\n    command: sleep 600 {port}\n    memory: 1MiB\n"
          "    request_timeout: 10m\n    start_timeout: 10m\n    max_queue: 20000\n");
  setrlimit(RLIMIT_NOFILE, &rl);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const ProcInfo idle = proc_info(s.pid());

  const std::string addr = s.address();
  const size_t colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
  inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr);
  const std::string body = R"({"model":"never","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"stream":true})";
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: " + addr +
                              "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;

  const int ep = epoll_create1(0);
  std::vector<IdleConn> conns(static_cast<size_t>(n));
  int opened = 0, with_comment = 0, failed = 0, refused_status = 0;
  std::map<int, int> statuses;
  std::string first_error;
  auto on_ready = [&](IdleConn& c, uint32_t events) {
    if (c.closed) return;
    auto fail = [&](const std::string& why) {
      if (first_error.empty()) first_error = why;
      ++failed;
      c.closed = true;
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    };
    if (!c.sent && (events & EPOLLOUT)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return fail(std::string("connect: ") + std::strerror(err));
      if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
        return fail("short send");
      c.sent = true;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = static_cast<uint64_t>(&c - conns.data());
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      char buf[4096];
      for (;;) {
        ssize_t r = recv(c.fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.in.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0) return fail("the server closed the connection (HTTP " + std::to_string(c.status) + ")");
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return fail(std::string("recv: ") + std::strerror(errno));
      }
      if (!c.headers) {
        const size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) return;
        c.headers = true;
        c.status = std::atoi(c.in.c_str() + 9);
        ++statuses[c.status];
        if (c.status != 200) {
          ++refused_status;
          return fail("HTTP " + std::to_string(c.status) + ": " + c.in.substr(end + 4, 200));
        }
        c.scanned = end + 4;
      }
      // SSE comments are lines starting with ':' (inside HTTP chunks: "<hex>\r\n: ...\n\n").
      for (size_t p; (p = c.in.find("\n:", c.scanned)) != std::string::npos;) {
        if (c.comments++ == 0) {
          c.first_comment = Clock::now();
          ++with_comment;
        }
        c.scanned = p + 2;
      }
      if (c.scanned > 65536) {  // keep memory flat while holding
        c.in.erase(0, c.scanned);
        c.scanned = 0;
      }
    }
  };
  std::vector<epoll_event> events(1024);
  auto pump = [&](int timeout_ms) {
    int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < k; ++i) on_ready(conns[events[static_cast<size_t>(i)].data.u64], events[static_cast<size_t>(i)].events);
  };

  const auto t_open = Clock::now();
  for (int i = 0; i < n; ++i) {
    IdleConn& c = conns[static_cast<size_t>(i)];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c.fd < 0) {
      if (first_error.empty()) first_error = std::string("socket: ") + std::strerror(errno);
      ++failed;
      c.closed = true;
      continue;
    }
    c.opened = Clock::now();
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
      if (first_error.empty()) first_error = std::string("connect: ") + std::strerror(errno);
      ++failed;
      close(c.fd);
      c.closed = true;
      continue;
    }
    ++opened;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    if (i % 100 == 99) pump(1);  // pace: the listen backlog is bounded
  }
  const double open_s = seconds_between(t_open, Clock::now());
  const auto deadline = Clock::now() + std::chrono::seconds(90);
  while (with_comment + failed < n && Clock::now() < deadline) pump(100);
  const double all_s = seconds_between(t_open, Clock::now());
  const ProcInfo held = proc_info(s.pid());
  std::vector<double> first_ms;
  for (const auto& c : conns)
    if (c.comments > 0) first_ms.push_back(seconds_between(c.opened, c.first_comment) * 1e3);

  // Hold a while longer: the streams must keep receiving keep-alive comments.
  std::vector<int> before_hold(conns.size());
  for (size_t i = 0; i < conns.size(); ++i) before_hold[i] = conns[i].comments;
  const auto hold_end = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < hold_end) pump(100);
  int kept = 0;
  for (size_t i = 0; i < conns.size(); ++i) kept += !conns[i].closed && conns[i].comments > before_hold[i];
  const ProcInfo held2 = proc_info(s.pid());

  // One more connection beyond N: is it still served?
  std::string extra = "not tried";
  {
    auto r = zs::gateway::http_request("GET", addr, "/health", "", {}, std::chrono::seconds(5));
    extra = r ? "GET /health answered " + std::to_string(r->status) : "GET /health failed: " + r.status().message();
  }

  for (auto& c : conns)
    if (!c.closed && c.fd >= 0) close(c.fd);
  close(ep);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const ProcInfo after = proc_info(s.pid());

  std::printf("  opened %d connections in %.1f s; %d got their first keep-alive comment within %.1f s (first comment "
              "median %.0f ms, p99 %.0f ms after connect); %d failed",
              opened, open_s, with_comment, all_s, median(first_ms), quantile(first_ms, 0.99), failed);
  if (!first_error.empty()) std::printf(" (first failure: %s)", first_error.c_str());
  std::printf("\n  HTTP statuses:");
  for (const auto& [k, v] : statuses) std::printf(" %d x%d", k, v);
  std::printf("\n  still receiving comments 5 s later: %d of %d\n", kept, n);
  std::printf("  connection %d+1 while holding: %s\n", n, extra.c_str());
  std::printf("  serve process: idle %ld threads, %.1f MiB RSS, %ld fds | holding %ld threads, %.1f MiB RSS, %ld fds "
              "(5 s later %ld threads, %.1f MiB) | after closing %ld threads, %.1f MiB, %ld fds\n",
              idle.threads, idle.rss_kib / 1024.0, idle.fds, held.threads, held.rss_kib / 1024.0, held.fds, held2.threads,
              held2.rss_kib / 1024.0, after.threads, after.rss_kib / 1024.0, after.fds);
  if (held.rss_kib < 0 || after.rss_kib < 0)
    std::printf("  serve is no longer running: it died while holding the connections (its log: %s/serve.log; set "
                "ZS_BENCH_KEEP=1 to keep it)\n",
                s.dir().c_str());
  std::printf("  RESULT idle-streams  N %d, with first comment %d (%.1f%%), serve threads %ld (idle %ld, ratio %.2fx), RSS "
              "%.1f MiB (idle %.1f MiB, %.1f KiB per connection)\n",
              n, with_comment, 100.0 * with_comment / std::max(1, n), held.threads, idle.threads,
              static_cast<double>(held.threads) / std::max(1L, idle.threads), held.rss_kib / 1024.0, idle.rss_kib / 1024.0,
              static_cast<double>(held.rss_kib - idle.rss_kib) / std::max(1, with_comment));
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
    else if (a == "--cold-trials") o.cold_trials = std::stoi(next());
    else if (a == "--wake-trials") o.wake_trials = std::stoi(next());
    else if (a == "--overhead-requests") o.overhead_requests = std::stoi(next());
    else if (a == "--stream-tokens") o.stream_tokens = std::stoi(next());
    else if (a == "--stream-trials") o.stream_trials = std::stoi(next());
    else if (a == "--connections") o.connections = std::stoi(next());
    else if (a == "--serve-nofile") o.serve_nofile = std::stol(next());
    else if (a == "--prompt-tokens") o.prompt_tokens = std::stoi(next());
    else if (a == "--only") o.only = next();
    else if (a == "--quick") {
      o.cold_trials = 2;
      o.overhead_requests = 16;
      o.stream_tokens = 24;
      o.stream_trials = 2;
    } else {
      std::printf("usage: bench_gateway [--model F] [--zeroserve BIN] [--threads N] [--cold-trials N] [--wake-trials N]\n"
                  "                     [--overhead-requests N] [--stream-tokens N] [--stream-trials N]\n"
                  "                     [--connections N] [--serve-nofile N] [--prompt-tokens N] [--only a|b|c] [--quick]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  const auto t_start = Clock::now();
  o.zeroserve = find_zeroserve(o.zeroserve);
  std::printf("bench_gateway: load average %.2f, %u cores\n", load_average(), std::thread::hardware_concurrency());
  if (o.only.empty() || o.only == "a" || o.only == "b") {
    o.model = ensure_model(o.model, o.zeroserve);
    auto llm = zs::engine::Llm::load(o.model);  // for exact prompt lengths
    if (!llm) die(llm.status().message());
    // Read the model once so that every start below finds it in the page cache, as a
    // restarted worker on a node does (the warm tier of the design).
    {
      std::ifstream f(o.model, std::ios::binary);
      std::vector<char> buf(1 << 20);
      while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0) {
      }
    }
    Serve s(o, "gw",
            "deployments:\n" +
                builtin_deployment("cold", o.model, o.threads, "    keep_alive: 1s\n    min_instances: 0\n") +
                builtin_deployment("warm", o.model, o.threads,
                                   "    keep_alive: forever\n    min_instances: 1\n    sleep_after: never\n") +
                builtin_deployment("sleepy", o.model, o.threads,
                                   "    keep_alive: forever\n    min_instances: 1\n    sleep_after: 0s\n") +
                builtin_deployment("direct", o.model, o.threads,
                                   "    keep_alive: forever\n    min_instances: 1\n    sleep_after: never\n"));
    std::printf("serve %s (deployments 'cold' and 'warm': %s, slots 16, ctx 8192, threads %d)\n", s.address().c_str(),
                o.model.c_str(), o.threads);
    for (const char* d : {"warm", "direct"})
      if (!s.wait_state(d, "ready", std::chrono::seconds(120))) die(std::string("deployment '") + d + "' did not become ready");
    if (o.only.empty() || o.only == "a") {
      bench_cold_start(s, *llm, o);
      bench_wake_direct(s, *llm, o);
    }
    if (o.only.empty() || o.only == "b") bench_overhead(s, *llm, o);
  }
  if (o.only.empty() || o.only == "c") bench_idle_streams(o);
  std::printf("\nload average at the end %.2f; total %.0f s\n", load_average(), seconds_between(t_start, Clock::now()));
  return 0;
}
