#pragma once
// Helpers shared by the benchmarks that drive real zeroserve processes: child processes that
// die with the benchmark, the zeroserve binary and the bench model, prompts, and streaming
// requests with timing.
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
#include "platform/instance/process.h"


namespace zs::bench {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

inline double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

inline double load_average() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}
inline double median(const std::vector<double>& v) { return quantile(v, 0.5); }

// The value of the Prometheus sample whose line starts with `series` in a /metrics page, or 0.
inline double metric(const std::string& page, const std::string& series) {
  for (size_t at = 0; at < page.size();) {
    const size_t end = std::min(page.find('\n', at), page.size());
    if (page.compare(at, series.size() + 1, series + " ") == 0) return std::strtod(page.c_str() + at + series.size() + 1, nullptr);
    at = end + 1;
  }
  return 0;
}

[[noreturn]] inline void die(const std::string& message) {
  std::fprintf(stderr, "bench: %s\n", message.c_str());
  std::exit(1);
}

// ---------------------------------------------------------------------------------------
// A child process whose stdout is read for "ready <addr>"; stderr goes to a log file. It dies
// with this process (parent-death signal) and is stopped on destruction (SIGTERM, then
// SIGKILL after a grace period).
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path, const std::vector<std::string>& extra_env = {}) {
    std::map<std::string, std::string> env;
    for (const auto& kv : extra_env) env[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    auto p = zs::platform::Process::spawn(argv, env, log_path);
    if (!p) die("cannot start " + argv[0] + ": " + p.status().message());
    process_ = std::move(p.value());
  }
  ~Child() { stop(); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  // The address printed after "ready ", or nullopt (exited or timed out).
  std::optional<std::string> wait_ready(std::chrono::seconds limit) {
    return process_ ? process_->wait_for_line("ready ", limit) : std::nullopt;
  }
  void stop() {
    if (process_) process_->terminate(std::chrono::seconds(10));
    process_.reset();
  }

 private:
  std::unique_ptr<zs::platform::Process> process_;
};

inline std::string find_zeroserve(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* e = std::getenv("ZEROSERVE_BIN"); e && *e) return e;
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& p : {self.parent_path().parent_path() / "zeroserve", self.parent_path() / "zeroserve"})
    if (fs::exists(p, ec)) return p.string();
  die("cannot find the zeroserve binary: pass --zeroserve or set ZEROSERVE_BIN");
}

inline std::string ensure_model(const std::string& flag, const std::string& zeroserve) {
  if (!flag.empty()) return flag;
  const char* c = std::getenv("ZS_BENCH_CACHE");
  const std::string dir = c && *c ? c : "/tmp/zs-bench";
  const std::string path = dir + "/bench-1b-q4_k_m.gguf";
  if (fs::exists(path)) return path;
  fs::create_directories(dir);
  std::printf("generating %s (once) ...\n", path.c_str());
  std::fflush(stdout);
  const std::string cmd = "'" + zeroserve + "' gen-model --preset bench-1b --type q4_k_m --out '" + path + ".tmp' && mv '" +
                          path + ".tmp' '" + path + "'";
  if (std::system(cmd.c_str()) != 0) die("gen-model failed");
  return path;
}

// ---------------------------------------------------------------------------------------
// Prompts of an exact length in positions (as the worker counts them), distinct per index so
// that the prefix cache does not turn one stream's prefill into another's.
inline std::string make_prompt(const zs::engine::Llm& llm, int index, int positions) {
  static const char* kWords[] = {"river", "stone", "lamp", "quiet", "orange", "window", "seven", "cloud", "paper",
                                 "garden", "silver", "train", "morning", "bridge", "candle", "forest"};
  std::string text = "Story " + std::to_string(index) + ":";
  auto count = [&](const std::string& t) {
    auto p = zs::engine::prepare_text_prompt(llm, nullptr, t, {});
    return p ? p->prompt.n_positions() : 0;
  };
  for (int i = 0; count(text) < positions && i < 4 * positions; ++i) {
    const std::string next = text + " " + kWords[(i * 7 + index) % 16];
    if (count(next) > positions) {  // a shorter filler to land exactly
      std::string t = text;
      while (count(t) < positions) t += ".";
      return t;
    }
    text = next;
  }
  return text;
}

// Greedy decoding (temperature 0) by default. Random weights under greedy decoding often fall
// into a loop that contains the end-of-sequence token, which would end streams early and
// shrink the batch; long streams therefore sample (temperature 1, fixed seed), which makes
// an early end-of-sequence as unlikely as one token in the vocabulary.
inline json completion_body(const std::string& model, const std::string& prompt, int max_tokens, bool stream, int seed = -1) {
  json b = {{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", stream}};
  if (seed >= 0) {
    b["temperature"] = 1.0;
    b["seed"] = seed;
  }
  if (stream) b["stream_options"] = {{"include_usage", true}};
  return b;
}

// A `zeroserve serve` daemon with its own config, state and cache directories.
class ServeDaemon {
 public:
  ServeDaemon(const std::string& zeroserve, const std::string& name, const std::string& yaml) {
    dir_ = (fs::temp_directory_path() / ("zs-bench-" + name + "-" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ + "/zeroserve.yaml") << yaml;
    child_ = std::make_unique<Child>(
        std::vector<std::string>{zeroserve, "serve", "--config", dir_ + "/zeroserve.yaml", "--listen", "127.0.0.1:0"},
        dir_ + "/serve.log", std::vector<std::string>{"XDG_STATE_HOME=" + dir_ + "/state", "XDG_CACHE_HOME=" + dir_ + "/cache"});
    auto a = child_->wait_ready(std::chrono::seconds(60));
    if (!a) die("serve did not become ready (log: " + dir_ + "/serve.log)");
    address_ = *a;
  }
  ~ServeDaemon() {
    child_->stop();
    std::error_code ec;
    if (const char* keep = std::getenv("ZS_BENCH_KEEP"); keep && *keep) return;  // keep logs and state
    fs::remove_all(dir_, ec);
  }
  const std::string& address() const { return address_; }
  pid_t pid() const { return child_->pid(); }
  const std::string& dir() const { return dir_; }

  std::string state_of(const std::string& deployment) {
    auto r = zs::gateway::http_request("GET", address_, "/v1/models", "", {}, std::chrono::seconds(5));
    if (!r || r->status != 200) return "?";
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("data")) return "?";
    for (const auto& m : j["data"])
      if (m.value("id", "") == deployment) return m.value("state", "?");
    return "?";
  }
  bool wait_state(const std::string& deployment, const std::string& state, std::chrono::seconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (state_of(deployment) == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // The Unix socket of the running instance of `deployment` (the builtin runtime's address).
  std::string instance_socket(const std::string& deployment) const {
    const fs::path run = fs::path(dir_) / "state" / "zeroserve" / ("run-" + std::to_string(child_->pid()));
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run, ec))
      if (e.path().extension() == ".sock" && e.path().filename().string().rfind(deployment + "-", 0) == 0)
        return "unix:" + e.path().string();
    return "";
  }

 private:
  std::string dir_, address_;
  std::unique_ptr<Child> child_;
};

// One streamed request: when each text event arrived, and the usage at the end.
struct StreamResult {
  bool ok = false;
  std::string error;
  Clock::time_point sent;
  std::optional<Clock::time_point> first_text;
  // The first event with a choice, even one with empty text (a random model's only token may
  // be a piece of a UTF-8 character, held back): time to first token for max_tokens 1.
  std::optional<Clock::time_point> first_choice;
  std::vector<Clock::time_point> text_events;
  Clock::time_point done;
  int completion_tokens = -1;
  int prompt_tokens = -1;
  std::string cold_start_ms;  // X-Zeroserve-Cold-Start-Ms, when the gateway waited for a start
  std::string start;          // X-Zeroserve-Start: "cold|wake|warm; ms=N"
};

inline StreamResult run_stream(const std::string& address, const json& body, const std::atomic<bool>* hang_up = nullptr,
                        std::atomic<int>* started = nullptr, std::chrono::seconds timeout = std::chrono::seconds(120),
                        const zs::gateway::HttpHeaders& headers = {}) {
  StreamResult r;
  auto client = zs::gateway::HttpClient::connect(address);
  if (!client) {
    r.error = client.status().message();
    return r;
  }
  zs::gateway::SseParser parser;
  bool counted = false;
  r.sent = Clock::now();
  auto resp = client.value()->stream(
      "POST", "/v1/completions", body.dump(), headers,
      [&](std::string_view chunk) {
        const auto now = Clock::now();
        parser.feed(chunk);
        for (const auto& e : parser.take_events()) {
          if (e == "[DONE]") continue;
          auto j = json::parse(e, nullptr, false);
          if (j.is_discarded()) continue;
          if (j.contains("usage") && j["usage"].is_object()) {
            r.completion_tokens = j["usage"].value("completion_tokens", -1);
            r.prompt_tokens = j["usage"].value("prompt_tokens", -1);
          }
          if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() && !r.first_choice)
            r.first_choice = now;
          if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty() &&
              !j["choices"][0].value("text", "").empty()) {
            if (!r.first_text) r.first_text = now;
            r.text_events.push_back(now);
            if (started && !counted) {
              counted = true;
              started->fetch_add(1);
            }
          }
        }
        return !(hang_up && hang_up->load());
      },
      timeout);
  r.done = Clock::now();
  if (!resp) {
    r.error = resp.status().message();
    return r;
  }
  if (resp->status != 200) {
    r.error = "HTTP " + std::to_string(resp->status);
    return r;
  }
  r.cold_start_ms = resp->header("X-Zeroserve-Cold-Start-Ms");
  r.start = resp->header("X-Zeroserve-Start");
  r.ok = true;
  return r;
}

}  // namespace zs::bench
