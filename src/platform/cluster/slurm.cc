#include "platform/cluster/slurm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "platform/instance/process.h"

extern char** environ;

namespace zs::platform::slurm {

using core::Result;
using core::Status;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Submitting
// ---------------------------------------------------------------------------------------------

std::string time_limit_minutes(double seconds) {
  const long minutes = std::max(1L, static_cast<long>(std::ceil(seconds / 60.0)));
  return std::to_string(minutes);
}

std::vector<std::string> sbatch_argv(const JobRequest& r) {
  std::vector<std::string> argv = {"sbatch", "--parsable", "--job-name=" + r.name};
  if (!r.comment.empty()) argv.push_back("--comment=" + r.comment);
  if (!r.partition.empty()) argv.push_back("--partition=" + r.partition);
  if (!r.account.empty()) argv.push_back("--account=" + r.account);
  if (!r.qos.empty()) argv.push_back("--qos=" + r.qos);
  if (r.time_limit_s > 0) argv.push_back("--time=" + time_limit_minutes(r.time_limit_s));
  // zeroserve restarts a failed instance itself (with back-off, perhaps elsewhere): Slurm must
  // not run the same job again behind its back.
  argv.push_back("--no-requeue");
  argv.push_back("--nodes=1");
  argv.push_back("--ntasks=1");
  argv.push_back("--cpus-per-task=" + std::to_string(std::max(1, r.cpus_per_task)));
  if (r.memory_bytes > 0) argv.push_back("--mem=" + std::to_string((r.memory_bytes + (1u << 20) - 1) >> 20) + "M");
  if (r.gpus > 0) argv.push_back("--gres=gpu:" + std::to_string(r.gpus));
  if (!r.output_path.empty()) argv.push_back("--output=" + r.output_path);
  for (const auto& o : r.extra_options) argv.push_back(o);
  argv.push_back(r.script_path);
  return argv;
}

Result<std::string> parse_sbatch_output(std::string_view output) {
  std::string_view line = trim(output.substr(0, output.find('\n')));
  const std::string_view id = line.substr(0, line.find(';'));
  if (!all_digits(id))
    return Status::invalid_argument("sbatch --parsable printed '" + std::string(line) + "', not a job id");
  return std::string(id);
}

// ---------------------------------------------------------------------------------------------
// Watching
// ---------------------------------------------------------------------------------------------

namespace {

// A time field of squeue under SLURM_TIME_FORMAT=%s: seconds, or a word (N/A, NONE,
// Unknown) where Slurm has no time.
int64_t parse_time(std::string_view field) {
  field = trim(field);
  return all_digits(field) ? std::strtoll(std::string(field).c_str(), nullptr, 10) : 0;
}

}  // namespace

Result<std::vector<JobInfo>> parse_squeue(std::string_view output) {
  std::vector<JobInfo> jobs;
  for (std::string_view line : split(output, '\n')) {
    line = trim(line);
    if (line.empty()) continue;
    auto f = split(line, '|');
    if (f.size() < 7 || !all_digits(trim(f[0])))
      return Status::invalid_argument("squeue printed '" + std::string(line) +
                                      "', not id|state|reason|nodes|start|end|comment");
    JobInfo j;
    j.id = std::string(trim(f[0]));
    j.state = std::string(trim(f[1]));
    j.reason = std::string(trim(f[2]));
    j.nodes = std::string(trim(f[3]));
    j.start_s = parse_time(f[4]);
    j.end_s = parse_time(f[5]);
    // The comment is the rest of the line, '|' and all.
    const size_t at = static_cast<size_t>(f[6].data() - line.data());
    j.comment = std::string(line.substr(at));
    jobs.push_back(std::move(j));
  }
  return jobs;
}

bool job_is_alive(std::string_view state) {
  static constexpr std::string_view kAlive[] = {"PENDING",  "CONFIGURING", "RUNNING",    "SUSPENDED", "COMPLETING",
                                                "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",  "SIGNALING",
                                                "STAGE_OUT", "STOPPED"};
  for (auto s : kAlive)
    if (s == state) return true;
  return false;
}

std::vector<std::string> squeue_argv(const std::string& job_name) {
  return {"squeue", "--noheader", "--states=all", "--name=" + job_name, "--format=" + std::string(kSqueueFormat)};
}

std::vector<std::string> squeue_all_argv() {
  return {"squeue", "--noheader", "--states=all", "--format=" + std::string(kSqueueFormat)};
}

std::map<std::string, std::string> slurm_env(const std::string& slurm_conf) {
  std::map<std::string, std::string> env = {{"SLURM_TIME_FORMAT", "%s"}};
  if (!slurm_conf.empty()) env["SLURM_CONF"] = slurm_conf;
  return env;
}

std::string owner_tag(const std::string& state_dir) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : state_dir) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 12);
}

// ---------------------------------------------------------------------------------------------
// Running Slurm's commands
// ---------------------------------------------------------------------------------------------

Result<CommandOutput> run_slurm_command(const std::vector<std::string>& argv,
                                        const std::map<std::string, std::string>& env,
                                        std::chrono::milliseconds timeout) {
  if (argv.empty()) return Status::invalid_argument("empty command");
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::unavailable(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return Status::unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  const ExecImage image(argv, env);
  const pid_t pid = fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return Status::unavailable(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execvpe(image.argv[0], image.argv.data(), image.envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  CommandOutput result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    const int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return Status::deadline_exceeded("'" + argv[0] + "' did not finish within " +
                                     std::to_string(timeout.count()) + " ms");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && result.out.empty())
    return Status::unavailable("cannot run '" + argv[0] + "' (is Slurm installed and in PATH?)");
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace zs::platform::slurm
