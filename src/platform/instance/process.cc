#include "platform/instance/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

extern char** environ;

// ThreadSanitizer builds (GCC says so with __SANITIZE_THREAD__, Clang with __has_feature).
#if defined(__SANITIZE_THREAD__)
#define ZS_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ZS_THREAD_SANITIZER 1
#endif
#endif
#ifndef ZS_THREAD_SANITIZER
#define ZS_THREAD_SANITIZER 0
#endif

namespace zs::platform {

using core::Result;
using core::Status;

ExecImage::ExecImage(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
    : argv_strings(args) {
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (!env.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
}

namespace {

// What the child of spawn() needs, prepared by the parent.
struct ChildSetup {
  const ExecImage* image;
  int out_fd;
  const char* stderr_path;  // nullptr: inherit the daemon's stderr
  pid_t parent;
};

// The child until its exec. It shares the daemon's memory (CLONE_VM) while the spawning thread
// waits (CLONE_VFORK), so it makes only async-signal-safe calls on its own stack, writes no
// shared state, and runs none of the daemon's signal handlers: the parent blocked every signal,
// and each caught one is set back to its default before the mask is lifted for the exec.
int child_main(void* arg) {
  const ChildSetup& c = *static_cast<const ChildSetup*>(arg);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (sigaction(sig, nullptr, &sa) != 0 || sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL) continue;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, nullptr);
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != c.parent) _exit(127);  // the daemon died before prctl took effect
  dup2(c.out_fd, 1);
  if (c.stderr_path) {
    const int err = open(c.stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (err >= 0) dup2(err, 2);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);  // the daemon blocks signals it waits for
  execvpe(c.image->argv[0], c.image->argv.data(), c.image->envp.data());
  const char msg[] = "zeroserve: cannot execute instance command\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(127);
}

}  // namespace

Result<std::unique_ptr<Process>> Process::spawn(const std::vector<std::string>& argv,
                                                const std::map<std::string, std::string>& env,
                                                const std::string& stderr_path) {
  if (argv.empty()) return Status::error("empty command");
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::error(std::string("pipe: ") + std::strerror(errno));
  // Everything the child needs is prepared before the clone: after it only async-signal-safe calls.
  const ExecImage image(argv, env);
  const ChildSetup setup{&image, out[1], stderr_path.empty() ? nullptr : stderr_path.c_str(), getpid()};
  // Not fork(): copying the daemon's page tables and write-protecting its memory would stall
  // its other threads (the gateway's) for milliseconds per start, and more on hosts where page
  // faults are expensive (virtual machines). The child borrows the memory until its exec.
  // Under ThreadSanitizer the child gets its own copy (fork semantics): the sanitizer cannot
  // follow a child running on its parent's memory and would report races that are not there.
#if ZS_THREAD_SANITIZER
  constexpr int kCloneFlags = SIGCHLD;
#else
  constexpr int kCloneFlags = CLONE_VM | CLONE_VFORK | SIGCHLD;
#endif
  constexpr size_t kStackBytes = 256 << 10;  // execvpe builds the PATH candidates on the stack
  void* stack = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    const int e = errno;
    close(out[0]);
    close(out[1]);
    return Status::error(std::string("spawn stack: ") + std::strerror(e));
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = clone(child_main, static_cast<char*>(stack) + kStackBytes, kCloneFlags,
                          const_cast<ChildSetup*>(&setup));
  const int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  munmap(stack, kStackBytes);
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    return Status::error(std::string("clone: ") + std::strerror(clone_errno));
  }
  close(out[1]);
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  std::unique_ptr<Process> p(new Process());
  p->pid_ = pid;
  p->out_fd_ = out[0];
#ifdef SYS_pidfd_open
  // Opened before anyone could reap the child, so it names this process and no later one
  // (close-on-exec: later instances do not inherit it).
  p->exit_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#endif
  return p;
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
  if (exit_fd_ >= 0) close(exit_fd_);
}

std::vector<std::string> Process::read_lines() {
  char buf[4096];
  for (;;) {
    ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) break;
    partial_.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> lines;
  for (size_t nl; (nl = partial_.find('\n')) != std::string::npos;) {
    lines.push_back(partial_.substr(0, nl));
    partial_.erase(0, nl + 1);
  }
  return lines;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const size_t nl = partial_.find('\n'); nl != std::string::npos) {
      std::string line = partial_.substr(0, nl);
      partial_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
    char buf[4096];
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return std::nullopt;  // end of output
    if (n > 0) partial_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<std::string> Process::wait_for_line(std::string_view prefix, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto line = read_line(std::max(left, std::chrono::milliseconds(0)));
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
  }
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!poll_exit()) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (exit_fd_ >= 0) {  // readable once the process has exited: no polling delay
      pollfd p{exit_fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    } else {
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));
    }
  }
  return poll_exit();
}

std::optional<int> Process::poll_exit() {
  if (exit_code_ || pid_ <= 0) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_)
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

void Process::signal(int sig) {
  if (pid_ > 0 && !poll_exit()) kill(pid_, sig);
}

int Process::terminate(std::chrono::milliseconds grace) {
  signal(SIGTERM);
  if (!wait_exit(grace)) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_code_ = 128 + SIGKILL;
  }
  return *exit_code_;
}

Result<std::vector<std::string>> expand_command(const std::string& tmpl, const std::map<std::string, std::string>& values) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
        continue;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
      continue;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
      continue;
    }
    if (c == '{') {
      size_t end = tmpl.find('}', i);
      if (end == std::string::npos) return Status::error("unclosed '{' in command: " + tmpl);
      std::string name = tmpl.substr(i + 1, end - i - 1);
      auto it = values.find(name);
      if (it == values.end()) return Status::error("unknown placeholder {" + name + "} in command: " + tmpl);
      cur += it->second;
      in_word = true;
      i = end;
      continue;
    }
    cur += c;
    in_word = true;
  }
  if (quote) return Status::error("unclosed quote in command: " + tmpl);
  if (in_word) out.push_back(cur);
  if (out.empty()) return Status::error("empty command");
  return out;
}

}  // namespace zs::platform
