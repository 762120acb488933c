#pragma once
// A real Slurm cluster for end-to-end tests: slurm_cluster.sh (next to this file) starts
// munged, slurmctld and two slurmd nodes, each in a network and UTS namespace of its own on a
// bridge private to the test; the destructor stops all of it and removes the namespaces and
// the bridge, whether the test passed or not. Tests skip (with the reason) only where they
// cannot run: not root, or Slurm not installed (scripts/install-deps.sh installs it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/serve_fixture.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs::testing {

// The source tree (ZS_SHARED_DIR is <source>/../shared).
inline std::string source_dir() {
  std::string s = ZS_SHARED_DIR;
  const std::string suffix = "/../shared";
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0
             ? s.substr(0, s.size() - suffix.size())
             : s;
}

// Why a Slurm test cannot run here ("" when it can).
inline std::string slurm_unavailable() {
  if (geteuid() != 0) return "needs root (network namespaces, a bridge and the Slurm daemons)";
  for (const char* tool : {"slurmctld", "slurmd", "munged", "sbatch", "ip", "unshare"})
    if (run_command(std::string("command -v ") + tool + " >/dev/null 2>&1").exit_code != 0)
      return std::string(tool) + " is not installed (scripts/install-deps.sh installs slurm-wlm and munge)";
  return "";
}

struct SlurmJob {
  std::string id, state, reason, nodes, comment;
};

// A job as Slurm's completion record (jobcomp/filetxt) has it: Slurm's own start and end.
struct CompletedJob {
  std::string id, state;
  double start_s = 0, end_s = 0;  // Unix seconds
};

class SlurmCluster {
 public:
  // Starts `nodes` nodes of `cpus` CPUs each; ok() tells whether it came up. Elastic nodes
  // start powered down: Slurm's power saving starts one for a queued job and stops it when
  // idle (slurm_cluster.sh).
  explicit SlurmCluster(int nodes = 2, int cpus = 2, bool elastic = false) {
    script_ = source_dir() + "/tests/e2e/serial/slurm/slurm_cluster.sh";
    dir_ = dir_holder_.file("cluster");
    const CommandResult r = run_command(shell_quote(script_) + " up " + shell_quote(dir_) + " " +
                                        std::to_string(nodes) + " " + std::to_string(cpus) +
                                        (elastic ? " elastic" : "") + " 2>&1");
    log_ = r.out;
    ok_ = r.exit_code == 0;
    std::smatch m;
    if (std::regex_search(r.out, m, std::regex("BRIDGE_ADDRESS=([0-9.]+)"))) bridge_ = m[1];
  }
  ~SlurmCluster() { run_command(shell_quote(script_) + " down " + shell_quote(dir_) + " >/dev/null 2>&1"); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& log() const { return log_; }
  std::string conf() const { return dir_ + "/slurm.conf"; }
  std::string env() const { return "SLURM_CONF=" + shell_quote(conf()) + " "; }

  // Every job Slurm lists now (pending, running, completing).
  std::vector<SlurmJob> jobs() const {
    const CommandResult r = run_command(env() + "squeue --noheader --format='%i|%T|%r|%N|%k' 2>/dev/null");
    std::vector<SlurmJob> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string part; std::getline(ss, part, '|');) f.push_back(part);
      if (f.size() >= 5) out.push_back({f[0], f[1], f[2], f[3], f[4]});
    }
    return out;
  }
  std::vector<SlurmJob> running() const {
    std::vector<SlurmJob> out;
    for (auto& j : jobs())
      if (j.state == "RUNNING") out.push_back(j);
    return out;
  }
  // Every job's completion record so far, in order of completion.
  std::vector<CompletedJob> completed() const {
    std::vector<CompletedJob> out;
    std::ifstream in(dir_ + "/log/jobcomp.txt");
    auto field = [](const std::string& line, const std::string& key) {
      const size_t at = line.find(" " + key + "=");
      if (at == std::string::npos) return std::string();
      const size_t from = at + key.size() + 2;
      return line.substr(from, line.find(' ', from) - from);
    };
    // Slurm writes local times ("2026-12-02T09:15:16"), as the test's own clock reads them.
    auto unix_time = [](const std::string& t) {
      std::tm tm{};
      std::istringstream ss(t);
      ss >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
      tm.tm_isdst = -1;
      return ss.fail() ? 0.0 : static_cast<double>(std::mktime(&tm));
    };
    for (std::string line; std::getline(in, line);) {
      const std::string id = line.rfind("JobId=", 0) == 0 ? line.substr(6, line.find(' ') - 6) : "";
      if (id.empty()) continue;
      out.push_back({id, field(line, "JobState"), unix_time(field(line, "StartTime")), unix_time(field(line, "EndTime"))});
    }
    return out;
  }
  // How many nodes are powered up (their slurmd runs).
  int nodes_up() const {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/pids"))
      if (e.path().filename().string().rfind("slurmd", 0) == 0) ++n;
    return n;
  }
  // What Slurm's power saving did: "HH:MM:SS start|stop NODE" lines.
  std::string power_log() const {
    std::ifstream in(dir_ + "/log/power.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  int command(const std::string& shell) const { return run_command(env() + shell + " >/dev/null 2>&1").exit_code; }
  // SIGKILL to the slurmd of node `i` (1-based; its hostname is zsnode<i>).
  void kill_node(int i) const {
    run_command(shell_quote(script_) + " kill-node " + shell_quote(dir_) + " " + std::to_string(i));
  }

 private:
  TempDir dir_holder_;
  std::string script_;
  std::string dir_;
  std::string log_;
  std::string bridge_;
  bool ok_ = false;
};

// The `cluster:` section and one slurm deployment of the TinyStories model.
inline std::string slurm_config(const SlurmCluster& c, const std::string& shared_dir, const std::string& cluster_extra,
                                const std::string& deployment_extra,
                                const std::string& model = golden_model("TinyStories-656K-Q8_0.gguf")) {
  // A time limit of 30 minutes and a context of 512 unless the test gives its own.
  const bool own_limit = cluster_extra.find("time_limit:") != std::string::npos;
  const bool own_ctx = deployment_extra.find("ctx:") != std::string::npos;
  return "cluster:\n  slurm_conf: " + c.conf() + "\n  shared_dir: " + shared_dir + "\n  poll: 250ms\n" +
         (own_limit ? "" : "  time_limit: 30m\n") + "  price_per_second: {zs: 0.001}\n" + cluster_extra +
         "deployments:\n  - name: tiny\n    runtime: slurm\n    model: " + model +
         "\n" + (own_ctx ? "" : "    ctx: 512\n") + deployment_extra;
}

}  // namespace zs::testing
