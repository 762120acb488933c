#include "cli/serve_slurm.h"

#include <chrono>
#include <map>
#include <sstream>
#include <thread>

#include "core/log.h"
#include "platform/cluster/slurm.h"

namespace zs::cli {

namespace slurm = platform::slurm;

platform::DeploymentSpec slurm_spec(const platform::Config& config, const platform::DeploymentConfig& d,
                                    uint64_t memory_bytes, const platform::DeviceConfig* device, const std::string& exe,
                                    std::vector<std::string> worker_args) {
  const platform::ClusterConfig& c = config.cluster;
  double price = 0;
  if (auto it = c.price_per_second.find(c.partition); it != c.price_per_second.end()) price = it->second;
  // Slurm places the job: no local device memory is reserved for it.
  platform::DeploymentSpec s = platform::scheduling_spec(d, 0, price);
  // A job may wait for a node to power up (elastic clusters): pending counts as starting.
  if (d.start_timeout_s <= 0) s.start_timeout_s = std::max(600.0, d.request_timeout_s);
  s.env = d.env;
  s.uses_unix_socket = true;  // names the instance; the job announces its real address
  s.announces_ready = true;
  const std::string node_exe = c.zeroserve_path.empty() ? exe : c.zeroserve_path;
  if (!worker_args.empty()) worker_args[0] = node_exe;
  const int gpus = device && device->kind == "cuda" ? 1 : 0;
  const std::string owner = slurm::owner_tag(config.gateway.state_dir);
  s.command = [c, d, exe, node_exe, worker_args, memory_bytes, gpus, owner](
                  const std::string& address, int) -> core::Result<std::vector<std::string>> {
    auto number = [](double v) {
      std::ostringstream o;
      o << v;
      return o.str();
    };
    std::vector<std::string> argv = {exe, "slurm-instance"};
    // The repeated option first: CLI11 would take a "--" right after it as its end, not as the
    // start of the worker's arguments.
    for (const auto& o : c.sbatch_options) argv.push_back("--sbatch-option=" + o);
    argv.insert(argv.end(), {"--listen", address, "--deployment", d.name, "--shared-dir",
                                     c.shared_dir, "--owner", owner, "--exe", node_exe, "--heartbeat-limit",
                                     number(c.heartbeat_limit_s), "--poll", number(c.poll_s),
                                     "--replace-before", number(c.replace_before_s), "--cpus",
                                     std::to_string(std::max(1, d.threads)), "--memory-bytes", std::to_string(memory_bytes),
                                     "--gpus", std::to_string(gpus)});
    if (!c.slurm_conf.empty()) argv.insert(argv.end(), {"--slurm-conf", c.slurm_conf});
    if (!c.partition.empty()) argv.insert(argv.end(), {"--partition", c.partition});
    if (!c.account.empty()) argv.insert(argv.end(), {"--account", c.account});
    if (!c.qos.empty()) argv.insert(argv.end(), {"--qos", c.qos});
    if (c.time_limit_s > 0) argv.insert(argv.end(), {"--time-limit", number(c.time_limit_s)});
    argv.push_back("--");
    argv.insert(argv.end(), worker_args.begin(), worker_args.end());
    return argv;
  };
  std::string fp = "slurm|" + d.model + "|" + std::to_string(d.slots) + "|" + std::to_string(d.ctx) + "|" +
                   std::to_string(d.threads) + "|" + c.partition + "|" + c.account + "|" + c.qos + "|" +
                   std::to_string(c.time_limit_s) + "|" + c.shared_dir;
  for (const auto& o : c.sbatch_options) fp += "|" + o;
  for (const auto& [k, v] : d.env) fp += "|" + k + "=" + v;
  s.fingerprint = fp;
  return s;
}

int cancel_leftover_jobs(const platform::ClusterConfig& cluster, const std::string& state_dir,
                         platform::CostLedger* ledger) {
  const auto env = slurm::slurm_env(cluster.slurm_conf);
  auto list = [&]() -> core::Result<std::vector<slurm::JobInfo>> {
    auto listed = slurm::run_slurm_command(slurm::squeue_all_argv(), env);
    if (!listed) return listed.status();
    if (listed->exit_code != 0) return core::Status::unavailable(listed->err);
    return slurm::parse_squeue(listed->out);
  };
  auto jobs = list();
  if (!jobs) {
    core::log_warn("slurm", "cannot list the jobs a previous serve may have left (" + jobs.status().message() +
                                "); they end themselves when their heartbeat stops");
    return 0;
  }
  // Alive jobs with this serve's owner tag: instance id -> its latest job (ids of instances
  // repeat from one serve to the next; the highest job id is the predecessor's).
  const std::string mine = std::string(slurm::kCommentPrefix) + slurm::owner_tag(state_dir) + "/";
  std::map<std::string, std::string> left;
  auto numeric_less = [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  };
  for (const auto& j : jobs.value()) {
    if (j.comment.rfind(mine, 0) != 0 || !slurm::job_is_alive(j.state)) continue;
    std::string& id = left[j.comment.substr(mine.size())];
    if (id.empty() || numeric_less(id, j.id)) id = j.id;
  }
  if (left.empty()) return 0;
  std::vector<std::string> argv = {"scancel"};
  for (const auto& [instance, id] : left) argv.push_back(id);
  auto cancelled = slurm::run_slurm_command(argv, env);
  if (!cancelled || cancelled->exit_code != 0) {
    core::log_warn("slurm", "scancel of the previous serve's jobs failed: " +
                                (cancelled ? cancelled->err : cancelled.status().message()));
    return 0;
  }
  const int n = static_cast<int>(left.size());
  core::log_info("slurm", "cancelled " + std::to_string(n) + " job(s) a previous serve left running");
  if (!ledger) return n;
  // The ledger closed their runs at the predecessor's last heartbeat; once Slurm has ended
  // the jobs, their runs get Slurm's own start and end instead.
  std::map<std::string, slurm::JobInfo> ended;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ended.size() < left.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto now = list();
    if (!now) continue;
    for (const auto& j : now.value())
      for (const auto& [instance, id] : left)
        if (j.id == id && !slurm::job_is_alive(j.state)) ended[instance] = j;
  }
  for (const auto& [instance, job] : ended) {
    if (job.start_s <= 0 || job.end_s < job.start_s) continue;
    core::Status s = ledger->set_run_span(instance, static_cast<double>(job.start_s), static_cast<double>(job.end_s));
    if (!s && !s.is_not_found()) core::log_warn("slurm", s.message());
  }
  if (ended.size() < left.size())
    core::log_warn("slurm", std::to_string(left.size() - ended.size()) +
                                " cancelled job(s) did not end within 30 s; the ledger keeps their runs as recovered");
  return n;
}

}  // namespace zs::cli
