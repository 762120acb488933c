#pragma once
// A child process of the daemon (one model instance). It is started with a parent-death
// signal so that it dies with the daemon even when the daemon is killed with SIGKILL: no
// orphans. Its stdout is read line by line without blocking (workers announce "ready <addr>").
// Its exit can be waited for on a file descriptor (exit_fd: a pidfd, Linux >= 5.3), so that a
// supervisor learns of it as soon as it happens rather than at its next poll.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::platform {

// What execvpe() needs, built before fork (after it a child may make only async-signal-safe
// calls): argv, and this process's environment with `env` added or overriding. The pointers
// point into the strings held here, so keep it alive until the exec.
struct ExecImage {
  ExecImage(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
  ExecImage(const ExecImage&) = delete;
  ExecImage& operator=(const ExecImage&) = delete;
  std::vector<std::string> argv_strings, env_strings;
  std::vector<char*> argv, envp;  // null-terminated
};

class Process {
 public:
  // argv[0] is the executable (searched in PATH when it has no slash). env entries are added
  // to the daemon's environment. stderr is inherited (instance logs go to the daemon's log)
  // unless stderr_path names a file to write it to.
  static core::Result<std::unique_ptr<Process>> spawn(const std::vector<std::string>& argv,
                                                      const std::map<std::string, std::string>& env = {},
                                                      const std::string& stderr_path = "");
  ~Process();  // kills (SIGKILL) and reaps a process that is still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // A descriptor that becomes readable (POLLIN) when the process exits: its pidfd, owned by
  // this object. -1 where the kernel has no pidfd_open (before Linux 5.3): then only
  // poll_exit() tells (waitpid; SIGCHLD is not used, it is process-wide).
  int exit_fd() const { return exit_fd_; }
  // The stdout pipe (non-blocking), for waiting on output with poll/epoll; read_lines() reads it.
  int out_fd() const { return out_fd_; }
  // Complete stdout lines read so far (non-blocking); consumed by the call.
  std::vector<std::string> read_lines();
  // The next stdout line, waiting up to `timeout`; nullopt on timeout or end of output.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix` and returns the rest of it ("ready " ->
  // the address a worker announces); nullopt on timeout or end of output.
  std::optional<std::string> wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout);
  // The exit code once the process ended within `timeout`, else nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Exit code (or 128 + signal) once the process has ended; nullopt while it runs.
  std::optional<int> poll_exit();
  bool running() { return !poll_exit().has_value(); }
  void signal(int sig);
  // SIGTERM, wait up to grace, then SIGKILL; returns the exit code.
  int terminate(std::chrono::milliseconds grace);

 private:
  Process() = default;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int exit_fd_ = -1;
  std::string partial_;
  std::optional<int> exit_code_;
};

// Splits a command template into argv after substituting {name} placeholders (shell-like
// quoting with '...' and "..." is honoured; no shell is involved).
core::Result<std::vector<std::string>> expand_command(const std::string& command_template,
                                                      const std::map<std::string, std::string>& values);

}  // namespace zs::platform
