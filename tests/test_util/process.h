#pragma once
// A real zeroserve process for end-to-end tests: platform::Process (the daemon's own child
// launcher: parent-death signal, stdout read line by line) with the waits tests need. It is
// killed (SIGKILL) if the test did not stop it itself.
#include <signal.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "platform/instance/process.h"

namespace zs::testing {

class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    auto p = platform::Process::spawn(argv);
    if (p) process_ = std::move(p.value());
  }

  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // The next stdout line, or nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    return process_ ? process_->read_line(timeout) : std::nullopt;
  }
  // Waits for the "ready <addr>" line; returns the address.
  std::optional<std::string> wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return process_ ? process_->wait_for_line("ready ", timeout) : std::nullopt;
  }
  void signal(int sig) {
    if (process_) process_->signal(sig);
  }
  // Exit status once the process ends, or nullopt after the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    return process_ ? process_->wait_exit(timeout) : std::nullopt;
  }

 private:
  std::unique_ptr<platform::Process> process_;
};

}  // namespace zs::testing
