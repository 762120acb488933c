// The two halves of the `slurm` runtime (docs/cluster.md):
//
// `zeroserve slurm-instance`: started by `serve`'s fleet as the local handle of one instance,
// like a worker process. It submits the instance's Slurm job (sbatch --parsable), touches the
// heartbeat file every half second, prints "pending <reason>" while Slurm holds the job,
// "ready <host:port> <token>" once the job's worker answers, "retiring <s>" when the job nears
// its time limit (the fleet replaces it), and "ran <start> <end>" (Slurm's times of the job,
// for the ledger) before it exits; it exits when the job ends (scancel from outside, node
// failure, time limit: the fleet sees a crash). SIGTERM (the fleet
// stopping the instance, or serve dying: its parent-death signal) cancels the job and exits
// once Slurm has ended it. Killed outright (SIGKILL, a crashed machine), it leaves the job to
// end itself when the heartbeat stops.
//
// `zeroserve slurm-job`: the job's program on the node. It starts the worker on the node's
// address with the per-instance token, writes the worker's address into the rendezvous
// folder once it is ready, and stops the worker when the heartbeat file goes stale (the
// gateway died) or when Slurm signals the job.
//
// Both talk through one folder on a file system the gateway and the nodes share (names in
// platform/cluster/slurm.h). Failures are exit codes with a line on stderr: 0 stopped as asked,
// 1 could not start, 2 the job ended by itself, 3 the heartbeat went stale.
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/log.h"
#include "platform/cluster/slurm.h"
#include "platform/instance/process.h"
#include "worker/worker_protocol.h"

namespace zs::cli {
namespace {

namespace fs = std::filesystem;
namespace slurm = platform::slurm;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string random_token() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  unsigned char bytes[24];
  in.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  if (!in) {  // no /dev/urandom: the C++ engine's seed
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

core::Status write_file(const fs::path& p, const std::string& text, fs::perms perms) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return core::Status::unavailable("cannot write '" + tmp.string() + "'");
  }
  std::error_code ec;
  fs::permissions(tmp, perms, ec);
  fs::rename(tmp, p, ec);  // atomic: a reader sees the whole file or none
  if (ec) return core::Status::unavailable("cannot rename '" + tmp.string() + "': " + ec.message());
  return core::Status::ok();
}

// Signals are taken synchronously: blocked here, waited for with a timeout.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// A stop signal within `timeout` (0 when none came).
int wait_signal(const sigset_t& set, std::chrono::milliseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1'000'000)};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

// ---------------------------------------------------------------------------------------------
// slurm-instance (beside serve)
// ---------------------------------------------------------------------------------------------

struct InstanceOptions {
  std::string listen;  // the fleet's address for the instance: unix:<run dir>/<instance>.sock
  std::string deployment;
  std::string shared_dir;
  std::string owner;
  std::string slurm_conf;
  std::string exe;  // zeroserve on the nodes
  double heartbeat_limit_s = 30;
  double poll_s = 1;
  double replace_before_s = 600;
  slurm::JobRequest job;
  std::vector<std::string> worker_args;  // after `zeroserve worker`, without --listen
};

class SlurmInstance {
 public:
  explicit SlurmInstance(InstanceOptions o) : o_(std::move(o)), env_(slurm::slurm_env(o_.slurm_conf)) {}

  int run() {
    const sigset_t signals = block_stop_signals();
    // serve starts its children with a parent-death SIGKILL; this one needs SIGTERM instead,
    // so that it cancels its job when serve (or the thread that started it) goes away. The
    // heartbeat still ends the job if this process is killed outright.
    const pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return fail("serve exited before the instance started");
    std::string id = fs::path(o_.listen.rfind("unix:", 0) == 0 ? o_.listen.substr(5) : o_.listen).stem().string();
    if (id.empty()) id = "instance";
    dir_ = fs::path(o_.shared_dir) / (o_.owner + "-" + id);
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_, ec);
    if (ec) return fail("cannot create the rendezvous folder '" + dir_.string() + "': " + ec.message());
    fs::permissions(dir_, fs::perms::owner_all, ec);
    token_ = random_token();
    if (auto s = write_file(dir_ / slurm::kTokenFile, token_ + "\n", fs::perms::owner_read | fs::perms::owner_write); !s)
      return fail(s.message());
    touch_heartbeat();
    std::string script = "#!/bin/sh\n# zeroserve instance " + id + " of deployment " + o_.deployment + "\nexec " +
                         shell_quote(o_.exe) + " slurm-job --dir " + shell_quote(dir_.string()) + " --heartbeat-limit " +
                         std::to_string(o_.heartbeat_limit_s) + " --";
    for (const auto& a : o_.worker_args) script += " " + shell_quote(a);
    script += "\n";
    if (auto s = write_file(dir_ / slurm::kScriptFile, script, fs::perms::owner_all); !s) return fail(s.message());

    slurm::JobRequest job = o_.job;
    job_name_ = "zs-" + o_.deployment + "-" + id;
    job.name = job_name_;
    job.comment = std::string(slurm::kCommentPrefix) + o_.owner + "/" + id;
    job.output_path = (dir_ / slurm::kJobLogFile).string();
    job.script_path = (dir_ / slurm::kScriptFile).string();
    auto submitted = slurm::run_slurm_command(slurm::sbatch_argv(job), env_);
    if (!submitted) return fail("sbatch: " + submitted.status().message());
    if (submitted->exit_code != 0) return fail("sbatch refused the job: " + submitted->err);
    auto job_id = slurm::parse_sbatch_output(submitted->out);
    if (!job_id) return fail(job_id.status().message());
    job_id_ = job_id.value();
    const int64_t submitted_ms = unix_ms();
    core::log_info("slurm", "instance " + id + ": job " + job_id_ + " submitted (" + job_name_ + ")");

    bool ready = false;
    auto next_poll = Clock::now();
    for (;;) {
      if (const int sig = wait_signal(signals, std::chrono::milliseconds(ready ? 500 : 100))) {
        core::log_info("slurm", std::string("instance ") + id + ": " + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                                    ": cancelling job " + job_id_);
        return cancel_and_wait();
      }
      touch_heartbeat();
      if (!ready) {
        const std::string address = read_first_line(dir_ / slurm::kAddressFile);
        if (!address.empty()) {
          std::printf("%s%s %s\n", worker::kReadyPrefix, address.c_str(), token_.c_str());
          std::fflush(stdout);
          // Time pending in Slurm: from sbatch to the job's start on its node (node clocks
          // are assumed in sync, as Slurm itself assumes).
          std::string pending;
          const std::string started = read_first_line(dir_ / slurm::kStartedFile);
          if (!started.empty())
            pending = " (pending in Slurm " + std::to_string(std::max<int64_t>(0, std::strtoll(started.c_str(), nullptr, 10) - submitted_ms)) +
                      " ms, then started in " + std::to_string(std::max<int64_t>(0, unix_ms() - std::strtoll(started.c_str(), nullptr, 10))) +
                      " ms)";
          core::log_info("slurm", "instance " + id + ": job " + job_id_ + " ready at " + address + pending);
          ready = true;
        }
      }
      if (Clock::now() < next_poll) continue;
      next_poll = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.poll_s * 1000));
      auto job_info = query();
      if (!job_info) {
        core::log_warn("slurm", "instance " + id + ": squeue: " + job_info.status().message() + " (retrying)");
        continue;
      }
      if (!*job_info || !slurm::job_is_alive((*job_info)->state)) {
        const std::string state = *job_info ? (*job_info)->state : "gone from squeue";
        std::fprintf(stderr, "zeroserve slurm-instance: job %s ended by itself (%s); see %s\n", job_id_.c_str(),
                     state.c_str(), (dir_ / slurm::kJobLogFile).c_str());
        print_ran(*job_info);
        return 2;
      }
      const slurm::JobInfo& job = **job_info;
      // Pending: Slurm's reason. Configuring: the job has its node and waits for it to boot
      // (a node powered up on demand); told as the reason "Configuring".
      const std::string why = job.state == "PENDING" ? job.reason : job.state == "CONFIGURING" ? "Configuring" : "";
      if (!ready && !why.empty() && why != reason_) {
        reason_ = why;
        std::printf("%s%s\n", worker::kPendingPrefix, reason_.c_str());
        std::fflush(stdout);
      }
      // Near its time limit (by Slurm's clock of the job's start and end): the fleet starts a
      // replacement and drains this one. At most half the job's time, so that a job always
      // serves for half of it and replacements cannot follow each other at once.
      if (ready && !retiring_ && job.state == "RUNNING" && job.start_s > 0 && job.end_s > job.start_s &&
          o_.replace_before_s > 0) {
        const double margin = std::min(o_.replace_before_s, (job.end_s - job.start_s) / 2.0);
        const double left = static_cast<double>(job.end_s) - unix_ms() / 1000.0;
        if (left <= margin) {
          retiring_ = true;
          core::log_info("slurm", "instance " + id + ": job " + job_id_ + " reaches its time limit in " +
                                      std::to_string(static_cast<int>(left)) + " s: asking for a replacement");
          std::printf("%s%.0f\n", worker::kRetiringPrefix, std::max(0.0, left));
          std::fflush(stdout);
        }
      }
    }
  }

 private:
  int fail(const std::string& message) {
    std::fprintf(stderr, "zeroserve slurm-instance: %s\n", message.c_str());
    return 1;
  }

  void touch_heartbeat() {
    const fs::path p = dir_ / slurm::kHeartbeatFile;
    std::ofstream(p, std::ios::trunc) << ++beats_ << "\n";
  }

  // The job (nullopt inside when Slurm no longer lists it).
  core::Result<std::optional<slurm::JobInfo>> query() {
    auto out = slurm::run_slurm_command(slurm::squeue_argv(job_name_), env_, std::chrono::seconds(10));
    if (!out) return out.status();
    if (out->exit_code != 0) return core::Status::unavailable("squeue failed: " + out->err);
    auto jobs = slurm::parse_squeue(out->out);
    if (!jobs) return jobs.status();
    for (auto& j : jobs.value())
      if (j.id == job_id_) return std::optional<slurm::JobInfo>(std::move(j));
    return std::optional<slurm::JobInfo>();
  }

  // "ran <start> <end>": Slurm's record of the job, for the ledger (nothing when Slurm has
  // forgotten the job or never started it).
  static void print_ran(const std::optional<slurm::JobInfo>& job) {
    if (!job || job->start_s <= 0 || job->end_s < job->start_s) return;
    std::printf("%s%lld %lld\n", worker::kRanPrefix, static_cast<long long>(job->start_s),
                static_cast<long long>(job->end_s));
    std::fflush(stdout);
  }

  int cancel_and_wait() {
    auto c = slurm::run_slurm_command({"scancel", job_id_}, env_, std::chrono::seconds(10));
    if (!c || c->exit_code != 0)
      core::log_warn("slurm", "scancel " + job_id_ + " failed: " + (c ? c->err : c.status().message()));
    // Until Slurm says it has ended (its processes are gone), so that a stopped instance
    // holds no resources once this process has exited.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      auto j = query();
      if (j && (!*j || !slurm::job_is_alive((*j)->state))) {
        print_ran(*j);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    return 0;
  }

  InstanceOptions o_;
  std::map<std::string, std::string> env_;
  fs::path dir_;
  std::string token_;
  std::string job_name_;
  std::string job_id_;
  std::string reason_;
  bool retiring_ = false;
  uint64_t beats_ = 0;
};

// ---------------------------------------------------------------------------------------------
// slurm-job (inside the job, on the node)
// ---------------------------------------------------------------------------------------------

// The first IPv4 address of an interface that is up and not loopback.
std::string node_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* a = list; a && out.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP)) continue;
    char buf[INET_ADDRSTRLEN];
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) out = buf;
  }
  freeifaddrs(list);
  return out;
}

struct JobOptions {
  std::string dir;
  std::string advertise;
  double heartbeat_limit_s = 30;
  std::vector<std::string> worker_argv;  // the command after --
};

int run_job(const JobOptions& o) {
  const sigset_t signals = block_stop_signals();
  const fs::path dir(o.dir);
  const std::string host = o.advertise.empty() ? node_address() : o.advertise;
  if (host.empty()) {
    std::fprintf(stderr, "zeroserve slurm-job: no non-loopback IPv4 address on this node; pass --advertise\n");
    return 1;
  }
  if (o.worker_argv.empty()) {
    std::fprintf(stderr, "zeroserve slurm-job: no worker command after --\n");
    return 1;
  }
  (void)write_file(dir / slurm::kStartedFile, std::to_string(unix_ms()) + "\n", fs::perms::owner_read | fs::perms::owner_write);
  std::vector<std::string> argv = o.worker_argv;
  argv.insert(argv.end(), {"--listen", host + ":0", "--auth-token-file", (dir / slurm::kTokenFile).string()});
  auto spawned = platform::Process::spawn(argv);
  if (!spawned) {
    std::fprintf(stderr, "zeroserve slurm-job: %s\n", spawned.status().message().c_str());
    return 1;
  }
  auto& worker = *spawned.value();
  std::fprintf(stderr, "zeroserve slurm-job: worker pid %d listening on %s\n", worker.pid(), host.c_str());
  std::error_code ec;
  auto last_beat = fs::last_write_time(dir / slurm::kHeartbeatFile, ec);
  auto last_change = Clock::now();
  bool announced = false;
  for (;;) {
    if (const int sig = wait_signal(signals, std::chrono::milliseconds(100))) {
      std::fprintf(stderr, "zeroserve slurm-job: signal %d: stopping the worker\n", sig);
      return worker.terminate(std::chrono::seconds(10)) == 0 ? 0 : 2;
    }
    for (const auto& line : worker.read_lines()) {
      const std::string_view ready = worker::kReadyPrefix;
      if (announced || line.rfind(ready, 0) != 0) continue;
      if (auto s = write_file(dir / slurm::kAddressFile, line.substr(ready.size()) + "\n", fs::perms::owner_read | fs::perms::owner_write); !s) {
        std::fprintf(stderr, "zeroserve slurm-job: %s\n", s.message().c_str());
        worker.terminate(std::chrono::seconds(5));
        return 1;
      }
      announced = true;
    }
    if (auto code = worker.poll_exit()) {
      std::fprintf(stderr, "zeroserve slurm-job: the worker exited with %d\n", *code);
      return 2;
    }
    // The heartbeat is judged by this node's clock alone: a change of the file's time, not
    // its value, so that clocks of the gateway and the node need not agree.
    const auto beat = fs::last_write_time(dir / slurm::kHeartbeatFile, ec);
    if (!ec && beat != last_beat) {
      last_beat = beat;
      last_change = Clock::now();
    }
    if (std::chrono::duration<double>(Clock::now() - last_change).count() > o.heartbeat_limit_s) {
      std::fprintf(stderr, "zeroserve slurm-job: no heartbeat from the gateway for %.0f s: stopping\n",
                   o.heartbeat_limit_s);
      worker.terminate(std::chrono::seconds(5));
      return 3;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

void register_slurm_commands(CLI::App& app, int& exit_code) {
  auto io = std::make_shared<InstanceOptions>();
  auto* inst = app.add_subcommand("slurm-instance", "(started by serve) one instance of a deployment as a Slurm job");
  inst->add_option("--listen", io->listen, "the fleet's address for the instance (names the instance)")->required();
  inst->add_option("--deployment", io->deployment, "deployment name")->required();
  inst->add_option("--shared-dir", io->shared_dir, "rendezvous folder shared with the nodes")->required();
  inst->add_option("--owner", io->owner, "owner tag of the jobs (one per serve state folder)")->required();
  inst->add_option("--slurm-conf", io->slurm_conf, "slurm.conf for the Slurm commands (SLURM_CONF)");
  inst->add_option("--exe", io->exe, "zeroserve on the nodes")->required();
  inst->add_option("--heartbeat-limit", io->heartbeat_limit_s, "seconds without heartbeat after which the job ends itself")
      ->check(CLI::Range(1.0, 86400.0));
  inst->add_option("--poll", io->poll_s, "seconds between squeue polls")->check(CLI::Range(0.1, 60.0));
  inst->add_option("--replace-before", io->replace_before_s,
                   "seconds before the job's time limit to ask for a replacement (0: never)")
      ->check(CLI::Range(0.0, 1e9));
  inst->add_option("--partition", io->job.partition, "Slurm partition");
  inst->add_option("--account", io->job.account, "Slurm account");
  inst->add_option("--qos", io->job.qos, "Slurm QoS");
  inst->add_option("--time-limit", io->job.time_limit_s, "job time limit in seconds (0: the partition's)");
  inst->add_option("--cpus", io->job.cpus_per_task, "--cpus-per-task")->check(CLI::Range(1, 4096));
  inst->add_option("--memory-bytes", io->job.memory_bytes, "--mem");
  inst->add_option("--gpus", io->job.gpus, "--gres=gpu:N")->check(CLI::Range(0, 64));
  // One value per occurrence, so that the "--" before the worker's arguments ends options.
  inst->add_option("--sbatch-option", io->job.extra_options, "extra sbatch option (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  inst->add_option("worker_args", io->worker_args, "arguments of `zeroserve worker` (after --)");
  inst->callback([io, &exit_code] { exit_code = SlurmInstance(*io).run(); });

  auto jo = std::make_shared<JobOptions>();
  auto* job = app.add_subcommand("slurm-job", "(run by a Slurm job) the worker of one instance on this node");
  job->add_option("--dir", jo->dir, "the instance's rendezvous folder")->required();
  job->add_option("--advertise", jo->advertise, "address to listen on and announce (default: the node's first IPv4)");
  job->add_option("--heartbeat-limit", jo->heartbeat_limit_s, "seconds without heartbeat before stopping")
      ->check(CLI::Range(1.0, 86400.0));
  job->add_option("command", jo->worker_argv, "the worker's command line (after --)")->required();
  job->callback([jo, &exit_code] { exit_code = run_job(*jo); });
}

}  // namespace zs::cli
