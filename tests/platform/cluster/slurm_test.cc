// The Slurm runtime's pure parts: sbatch's arguments, the parsing of Slurm's machine-readable
// output, and the `cluster:` section of the configuration.
#include "platform/cluster/slurm.h"

#include <gtest/gtest.h>

#include <random>

#include <algorithm>

#include "platform/config/config.h"

namespace zs::platform::slurm {
namespace {

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(SbatchArgv, AsksForTheDeploymentsResourcesAndNeverRequeues) {
  JobRequest r;
  r.name = "zs-tiny-tiny-1";
  r.comment = "zeroserve/abc/tiny-1";
  r.partition = "gpu";
  r.account = "ml";
  r.qos = "high";
  r.time_limit_s = 5400;
  r.cpus_per_task = 4;
  r.memory_bytes = (1ull << 30) + 1;
  r.gpus = 1;
  r.extra_options = {"--exclusive"};
  r.output_path = "/s/job.log";
  r.script_path = "/s/job.sh";
  const auto argv = sbatch_argv(r);
  EXPECT_EQ(argv[0], "sbatch");
  EXPECT_TRUE(has(argv, "--parsable"));
  EXPECT_TRUE(has(argv, "--job-name=zs-tiny-tiny-1"));
  EXPECT_TRUE(has(argv, "--comment=zeroserve/abc/tiny-1"));
  EXPECT_TRUE(has(argv, "--partition=gpu"));
  EXPECT_TRUE(has(argv, "--account=ml"));
  EXPECT_TRUE(has(argv, "--qos=high"));
  EXPECT_TRUE(has(argv, "--time=90"));
  EXPECT_TRUE(has(argv, "--cpus-per-task=4"));
  EXPECT_TRUE(has(argv, "--mem=1025M"));  // rounded up to whole MiB
  EXPECT_TRUE(has(argv, "--gres=gpu:1"));
  EXPECT_TRUE(has(argv, "--no-requeue"));
  EXPECT_TRUE(has(argv, "--exclusive"));
  EXPECT_EQ(argv.back(), "/s/job.sh");
}

TEST(SbatchArgv, LeavesOutWhatTheDeploymentDoesNotAskFor) {
  JobRequest r;
  r.name = "n";
  r.script_path = "s.sh";
  const auto argv = sbatch_argv(r);
  for (const auto& a : argv) {
    EXPECT_NE(a.rfind("--partition", 0), 0u) << a;
    EXPECT_NE(a.rfind("--gres", 0), 0u) << a;
    EXPECT_NE(a.rfind("--mem", 0), 0u) << a;
    EXPECT_NE(a.rfind("--time", 0), 0u) << a;
  }
  EXPECT_TRUE(has(argv, "--cpus-per-task=1"));
}

TEST(TimeLimit, RoundsUpToWholeMinutesOfAtLeastOne) {
  EXPECT_EQ(time_limit_minutes(1), "1");
  EXPECT_EQ(time_limit_minutes(60), "1");
  EXPECT_EQ(time_limit_minutes(61), "2");
}

TEST(ParseSbatch, ReadsTheJobIdWithOrWithoutACluster) {
  EXPECT_EQ(parse_sbatch_output("1234\n").value(), "1234");
  EXPECT_EQ(parse_sbatch_output("77;cluster2\n").value(), "77");
}

TEST(ParseSbatch, RefusesAnythingButAJobId) {
  auto r = parse_sbatch_output("sbatch: error: Batch job submission failed\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(parse_sbatch_output("").is_ok());
}

TEST(ParseSqueue, ReadsEachJobsIdStateReasonNodesTimesAndComment) {
  auto jobs = parse_squeue("12|PENDING|Resources||N/A|N/A|zeroserve/abc/tiny-1\n"
                           "13|RUNNING|None|node7|1796202916|1796202976|(null)\n\n");
  ASSERT_TRUE(jobs.is_ok()) << jobs.status().message();
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id, "12");
  EXPECT_EQ((*jobs)[0].state, "PENDING");
  EXPECT_EQ((*jobs)[0].reason, "Resources");
  EXPECT_EQ((*jobs)[0].nodes, "");
  EXPECT_EQ((*jobs)[0].start_s, 0) << "N/A is no time";
  EXPECT_EQ((*jobs)[0].end_s, 0);
  EXPECT_EQ((*jobs)[0].comment, "zeroserve/abc/tiny-1");
  EXPECT_EQ((*jobs)[1].nodes, "node7");
  EXPECT_EQ((*jobs)[1].start_s, 1796202916);
  EXPECT_EQ((*jobs)[1].end_s, 1796202976);
  EXPECT_TRUE(parse_squeue("").value().empty());
}

TEST(ParseSqueue, KeepsBarsInTheCommentAndReadsNoneAsNoTime) {
  auto jobs = parse_squeue("7|RUNNING|None|n1|100|NONE|a|b\n");
  ASSERT_TRUE(jobs.is_ok()) << jobs.status().message();
  EXPECT_EQ((*jobs)[0].comment, "a|b");
  EXPECT_EQ((*jobs)[0].end_s, 0) << "a job without a time limit has no end";
}

TEST(ParseSqueue, RefusesLinesOfAnotherFormat) {
  auto r = parse_squeue("JOBID PARTITION NAME\n");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(parse_squeue("12|RUNNING|None\n").is_ok());
  EXPECT_FALSE(parse_squeue("12|RUNNING|None|n1|1|2\n").is_ok()) << "the comment field is missing";
}

TEST(SlurmEnv, AsksForUnixTimesAndNamesTheConfigWhenGiven) {
  auto env = slurm_env("/etc/slurm/x.conf");
  EXPECT_EQ(env["SLURM_TIME_FORMAT"], "%s");
  EXPECT_EQ(env["SLURM_CONF"], "/etc/slurm/x.conf");
  EXPECT_EQ(slurm_env("").count("SLURM_CONF"), 0u);
}

TEST(JobIsAlive, CountsPendingRunningAndCompletingAsAliveAndEndedStatesAsNot) {
  for (const char* s : {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"}) EXPECT_TRUE(job_is_alive(s)) << s;
  for (const char* s : {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"})
    EXPECT_FALSE(job_is_alive(s)) << s;
}

TEST(OwnerTag, IsStablePerStateFolderAndDiffersBetweenThem) {
  EXPECT_EQ(owner_tag("/var/lib/zs"), owner_tag("/var/lib/zs"));
  EXPECT_NE(owner_tag("/var/lib/zs"), owner_tag("/var/lib/zs2"));
  EXPECT_EQ(owner_tag("/x").size(), 12u);
}

TEST(RunSlurmCommand, CollectsStdoutStderrAndTheExitCode) {
  auto r = run_slurm_command({"sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
}

TEST(RunSlurmCommand, PassesTheEnvironmentItIsGiven) {
  auto r = run_slurm_command({"sh", "-c", "printf %s \"$SLURM_CONF\""}, {{"SLURM_CONF", "/etc/x.conf"}});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->out, "/etc/x.conf");
}

TEST(RunSlurmCommand, AMissingCommandIsUnavailable) {
  auto r = run_slurm_command({"zs-no-such-slurm-command"}, {});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), core::StatusCode::kUnavailable);
}

TEST(RunSlurmCommand, ACommandPastItsTimeoutIsKilledAndDeadlineExceeded) {
  auto r = run_slurm_command({"sleep", "30"}, {}, std::chrono::milliseconds(100));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.code(), core::StatusCode::kDeadlineExceeded);
}

// ---------------------------------------------------------------------------------------------
// The cluster: section
// ---------------------------------------------------------------------------------------------

core::Result<Config> parse(const std::string& yaml) {
  ConfigEnvironment env;
  env.getenv = [](const std::string& n) -> std::optional<std::string> {
    if (n == "HOME") return std::string("/home/u");
    return std::nullopt;
  };
  env.physical_memory_bytes = 16ull << 30;
  return parse_config(yaml, "zeroserve.yaml", "/etc/zs", env);
}

TEST(ClusterConfig, ReadsEveryFieldOfTheSection) {
  auto c = parse(R"(cluster:
  partition: gpu
  account: ml
  qos: high
  time_limit: 2h
  sbatch_options: [--exclusive, --constraint=a100]
  slurm_conf: slurm.conf
  shared_dir: /shared/zs
  heartbeat_limit: 45s
  poll: 500ms
  replace_before: 15m
  price_per_second: {gpu: 0.0005, cpu: 0.00001}
deployments:
  - {name: a, model: a.gguf, runtime: slurm}
)");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  const ClusterConfig& k = c->cluster;
  EXPECT_TRUE(k.configured);
  EXPECT_EQ(k.partition, "gpu");
  EXPECT_EQ(k.account, "ml");
  EXPECT_EQ(k.qos, "high");
  EXPECT_EQ(k.time_limit_s, 7200);
  EXPECT_EQ(k.sbatch_options, (std::vector<std::string>{"--exclusive", "--constraint=a100"}));
  EXPECT_EQ(k.slurm_conf, "/etc/zs/slurm.conf");
  EXPECT_EQ(k.shared_dir, "/shared/zs");
  EXPECT_EQ(k.heartbeat_limit_s, 45);
  EXPECT_EQ(k.poll_s, 0.5);
  EXPECT_EQ(k.replace_before_s, 900);
  EXPECT_EQ(k.price_per_second.at("gpu"), 0.0005);
  EXPECT_EQ(c->deployments[0].runtime, RuntimeKind::kSlurm);
}

TEST(ClusterConfig, RuntimeSlurmWithoutAClusterSectionNamesTheLine) {
  auto c = parse("deployments:\n  - name: a\n    model: a.gguf\n    runtime: slurm\n");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("zeroserve.yaml:4: deployments[0].runtime: runtime: slurm needs a top-level cluster:"),
            std::string::npos)
      << c.status().message();
}

TEST(ClusterConfig, AMisspelledKeySuggestsTheIntendedOne) {
  auto c = parse("cluster:\n  shared_dir: /s\n  partiton: gpu\ndeployments:\n  - {name: a, model: a.gguf}\n");
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("zeroserve.yaml:3: cluster.partiton: unknown key (did you mean partition?)"),
            std::string::npos)
      << c.status().message();
}

TEST(ClusterConfig, AMisspelledRuntimeSuggestsSlurm) {
  auto c = parse("cluster: {shared_dir: /s}\ndeployments:\n  - {name: a, model: a.gguf, runtime: slurn}\n");
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("must be builtin, command or slurm, got \"slurn\" (did you mean slurm?)"),
            std::string::npos)
      << c.status().message();
}

TEST(ClusterConfig, SharedDirIsRequiredAndBadValuesAreNamed) {
  auto c = parse(R"(cluster:
  heartbeat_limit: 1s
  sbatch_options: [exclusive]
  price_per_second: {gpu: -1}
  replace_before: -5s
deployments:
  - {name: a, model: a.gguf}
)");
  ASSERT_FALSE(c.is_ok());
  const std::string m = c.status().message();
  EXPECT_NE(m.find("zeroserve.yaml:1: cluster.shared_dir: required"), std::string::npos) << m;
  EXPECT_NE(m.find("zeroserve.yaml:2: cluster.heartbeat_limit: must be >= 2"), std::string::npos) << m;
  EXPECT_NE(m.find("zeroserve.yaml:3: cluster.sbatch_options[0]: must be one sbatch option starting with '-'"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("zeroserve.yaml:4: cluster.price_per_second.gpu: must be >= 0"), std::string::npos) << m;
  EXPECT_NE(m.find("zeroserve.yaml:5: cluster.replace_before:"), std::string::npos) << m;
}

TEST(ClusterConfig, ReplacementComesTenMinutesBeforeTheTimeLimitByDefault) {
  auto c = parse("cluster: {shared_dir: /s}\ndeployments:\n  - {name: a, model: a.gguf, runtime: slurm}\n");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->cluster.replace_before_s, 600);
}

// Whatever squeue might print, parse_squeue answers jobs or an error naming the line, and
// never crashes or reads past the input.
TEST(ParseSqueue, RandomInputNeverCrashesAndEitherParsesOrNamesTheLine) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789|\n ABCNRPG_/-:.";
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 64);
    for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    auto r = parse_squeue(text);
    if (!r.is_ok()) {
      EXPECT_EQ(r.code(), core::StatusCode::kInvalidArgument);
      EXPECT_NE(r.status().message().find("squeue printed"), std::string::npos);
      continue;
    }
    for (const auto& j : r.value()) {
      EXPECT_FALSE(j.id.empty());
      EXPECT_GE(j.start_s, 0);
      EXPECT_GE(j.end_s, 0);
    }
  }
}

}  // namespace
}  // namespace zs::platform::slurm
