#include "cli/serve_slurm.h"

#include <sstream>

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
                                     number(c.heartbeat_limit_s), "--poll", number(c.poll_s), "--cpus",
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

int cancel_leftover_jobs(const platform::ClusterConfig& cluster, const std::string& state_dir) {
  std::map<std::string, std::string> env;
  if (!cluster.slurm_conf.empty()) env["SLURM_CONF"] = cluster.slurm_conf;
  auto listed = slurm::run_slurm_command(slurm::squeue_comments_argv(), env);
  if (!listed || listed->exit_code != 0) {
    core::log_warn("slurm", "cannot list the jobs a previous serve may have left (" +
                                (listed ? listed->err : listed.status().message()) +
                                "); they end themselves when their heartbeat stops");
    return 0;
  }
  auto jobs = slurm::parse_job_comments(listed->out);
  if (!jobs) {
    core::log_warn("slurm", jobs.status().message());
    return 0;
  }
  const std::string mine = std::string(slurm::kCommentPrefix) + slurm::owner_tag(state_dir) + "/";
  std::vector<std::string> argv = {"scancel"};
  for (const auto& [id, comment] : jobs.value())
    if (comment.rfind(mine, 0) == 0) argv.push_back(id);
  const int n = static_cast<int>(argv.size()) - 1;
  if (n == 0) return 0;
  auto cancelled = slurm::run_slurm_command(argv, env);
  if (!cancelled || cancelled->exit_code != 0) {
    core::log_warn("slurm", "scancel of the previous serve's jobs failed: " +
                                (cancelled ? cancelled->err : cancelled.status().message()));
    return 0;
  }
  core::log_info("slurm", "cancelled " + std::to_string(n) + " job(s) a previous serve left running");
  return n;
}

}  // namespace zs::cli
