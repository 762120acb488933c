#pragma once
// A `zeroserve serve` daemon for end-to-end tests, with its own config, state and cache
// directories; a `zeroserve worker` process; and the request helpers the end-to-end tests share.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/http/http_client.h"
#include "gateway/http/sse.h"
#include "test_util/process.h"
#include "test_util/temp_dir.h"

namespace zs::testing {

using nlohmann::json;

// The value of the Prometheus sample whose line starts with `series` in a /metrics page, or -1
// when absent.
inline double metric_in(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

// A `zeroserve worker` on loopback with 2 threads. `model`: a file of ../shared/golden/models,
// or an absolute path; `extra`: more worker flags.
class WorkerProcess {
 public:
  explicit WorkerProcess(const std::vector<std::string>& extra = {}, const std::string& model = "stories260K.gguf") {
    std::vector<std::string> argv = {ZS_BINARY, "worker", "--model", model.starts_with("/") ? model : golden_model(model),
                                     "--listen", "127.0.0.1:0", "--threads", "2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>(argv);
    if (auto addr = process_->wait_ready()) address_ = *addr;
  }
  const std::string& address() const { return address_; }
  ChildProcess& process() { return *process_; }

  gateway::HttpResponse post(const std::string& path, const std::string& body, const gateway::HttpHeaders& headers = {}) {
    auto r = gateway::http_request("POST", address_, path, body, headers);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : gateway::HttpResponse{};
  }
  gateway::HttpResponse get(const std::string& path) {
    auto r = gateway::http_request("GET", address_, path);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : gateway::HttpResponse{};
  }
  // The SSE events of a streamed request (which must be answered 200).
  std::vector<std::string> stream(const std::string& path, const std::string& body) {
    gateway::SseParser parser;
    auto r = gateway::http_stream("POST", address_, path, body, {}, [&](std::string_view chunk) {
      parser.feed(chunk);
      return true;
    });
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (r.is_ok()) {
      EXPECT_EQ(r->status, 200);
    }
    return parser.take_events();
  }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
};

// A daemon with its own config, state and cache directories.
class Serve {
 public:
  explicit Serve(const std::string& yaml) {
    config_ = dir_.file("zeroserve.yaml");
    std::ofstream(config_) << yaml;
    start();
  }
  // Stops the daemon with SIGTERM (it drains) and returns its exit status.
  std::optional<int> stop(std::chrono::seconds limit = std::chrono::seconds(60)) {
    process_->signal(SIGTERM);
    return process_->wait_exit(limit);
  }
  void start() {
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "/usr/bin/env", "XDG_STATE_HOME=" + dir_.file("state"), "XDG_CACHE_HOME=" + dir_.file("cache"), ZS_BINARY,
        "serve", "--config", config_, "--listen", "127.0.0.1:0"});
    auto addr = process_->wait_ready(std::chrono::seconds(30));
    if (addr) address_ = *addr;
  }
  const std::string& address() const { return address_; }
  ChildProcess& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  // The daemon's worker processes: its children, not every worker on the machine (tests run
  // in parallel, and another test's deployment may have the same name).
  std::vector<pid_t> worker_pids() const {
    std::vector<pid_t> pids;
    const std::string parent = std::to_string(process_->pid());
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string name = e.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state, ppid;
      if (rest >> state >> ppid && ppid == parent) pids.push_back(std::stoi(name));
    }
    return pids;
  }
  // The worker of `deployment` among the daemon's children (its command line names it), or -1.
  pid_t worker_of(const std::string& deployment) const {
    for (pid_t pid : worker_pids()) {
      std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(std::string("--name") + '\0' + deployment + '\0') != std::string::npos) return pid;
    }
    return -1;
  }
  void rewrite_config(const std::string& yaml) { std::ofstream(config_) << yaml; }

  gateway::HttpResponse post(const json& body, gateway::HttpHeaders headers = {}) {
    auto r = gateway::http_request("POST", address_, "/v1/chat/completions", body.dump(), headers, std::chrono::seconds(60));
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? r.value() : gateway::HttpResponse{};
  }
  json models() {
    auto r = gateway::http_request("GET", address_, "/v1/models");
    return r.is_ok() ? json::parse(r->body) : json();
  }
  std::string state_of(const std::string& name) {
    const json all = models();
    if (!all.contains("data")) return "?";
    for (const auto& m : all["data"])
      if (m["id"] == name) return m["state"];
    return "?";
  }

 private:
  TempDir dir_;
  std::string config_;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
};

inline std::string stories_deployment(const std::string& name, const std::string& extra = "") {
  return "  - name: " + name + "\n    model: " + golden_model("stories260K.gguf") +
         "\n    slots: 2\n    ctx: 512\n    threads: 1\n" + extra;
}

inline json chat(const std::string& model, int max_tokens, bool stream = false) {
  return {{"model", model},
          {"messages", json::array({{{"role", "user"}, {"content", "Once upon a time"}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", stream}};
}

inline bool wait_for(const std::function<bool()>& cond, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}


}  // namespace zs::testing
