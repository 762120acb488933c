// End to end: `zeroserve serve` with a `runtime: slurm` deployment on a real Slurm cluster of
// two nodes in network namespaces (slurm_fixture.h). Each test starts its own cluster and
// daemon, and leaves nothing behind.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/serial/slurm/slurm_fixture.h"

namespace zs::testing {
namespace {

using namespace std::chrono_literals;

#define REQUIRE_SLURM()                                               \
  do {                                                                \
    if (const std::string why = slurm_unavailable(); !why.empty()) {  \
      GTEST_SKIP() << why;                                            \
    }                                                                 \
  } while (0)

json completion(int max_tokens) {
  return {{"model", "tiny"}, {"prompt", "Once upon a time"}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

gateway::HttpResponse complete(const Serve& serve, int max_tokens = 8, std::chrono::seconds timeout = 60s) {
  auto r = gateway::http_request("POST", serve.address(), "/v1/completions", completion(max_tokens).dump(), {},
                                 timeout);
  return r.is_ok() ? r.value() : gateway::HttpResponse{};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The one instance folder under the shared directory (its files: token, address, job.log).
std::string instance_folder(const std::string& shared) {
  std::string found;
  for (const auto& e : std::filesystem::directory_iterator(shared))
    if (e.is_directory()) found = e.path().string();
  return found;
}

// `zeroserve cost` of serve's ledger over [from, until) (Unix seconds), as JSON.
json cost(Serve& s, double from, double until) {
  auto r = run_command(zeroserve() + " cost --format json --state-dir " + shell_quote(s.dir().file("state") + "/zeroserve") +
                       " --since " + std::to_string(static_cast<int64_t>(from)) + " --until " +
                       std::to_string(static_cast<int64_t>(until)) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return r.exit_code == 0 ? json::parse(r.out) : json();
}

double instance_seconds(const json& report) {
  return report.contains("total") ? report["total"]["instance_seconds"].get<double>() : -1;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class SlurmRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_SLURM();
    cluster_ = std::make_unique<SlurmCluster>(2, 2, elastic());
    ASSERT_TRUE(cluster_->ok()) << cluster_->log();
    shared_ = tmp_.file("shared");
    std::filesystem::create_directories(shared_);
  }
  // A serve of the test's cluster, owned by the fixture: TearDown stops it while Slurm still
  // runs, so that its slurm-instance processes cancel their jobs and exit at once (killed
  // with serve at the end of a test, they would wait out a vanished slurmctld, holding the
  // test's output open).
  Serve* serve(const std::string& cluster_extra = "", const std::string& deployment_extra = "",
               const std::string& model = golden_model("TinyStories-656K-Q8_0.gguf")) {
    serves_.push_back(std::make_unique<Serve>(slurm_config(*cluster_, shared_, cluster_extra, deployment_extra, model)));
    EXPECT_FALSE(serves_.back()->address().empty()) << "serve did not start";
    return serves_.back().get();
  }
  void TearDown() override {
    for (auto& s : serves_)
      if (!s->process().wait_exit(std::chrono::milliseconds(0))) s->stop(std::chrono::seconds(30));
    serves_.clear();
    // A slurm-instance still waiting to see its cancelled job end (after a kill -9 of serve it
    // may poll squeue a little longer than the test) is stopped with the cluster.
    if (cluster_) run_command("pkill -KILL -f " + shell_quote("slurm-instance.*--slurm-conf " + cluster_->conf()));
  }
  virtual bool elastic() const { return false; }
  bool squeue_empty(std::chrono::seconds limit = 60s) {
    return wait_for([&] { return cluster_->jobs().empty(); }, limit);
  }

  TempDir tmp_;
  std::string shared_;
  std::unique_ptr<SlurmCluster> cluster_;
  std::vector<std::unique_ptr<Serve>> serves_;
};

TEST_F(SlurmRuntime, ARequestColdStartsASlurmJobAndKeepAliveExpiryCancelsIt) {
  auto s = serve("", "    keep_alive: 2s\n    threads: 1\n");
  ASSERT_TRUE(cluster_->jobs().empty());
  const auto r = complete(*s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["usage"]["completion_tokens"], 8);
  EXPECT_FALSE(r.header("X-Zeroserve-Cold-Start-Ms").empty()) << "the request should have waited for a cold start";
  // The job is gone (cancelled) once the instance idled out.
  EXPECT_TRUE(squeue_empty()) << "the job was not cancelled after keep_alive";
  EXPECT_EQ(s->stop(), 0);
}

TEST_F(SlurmRuntime, TheJobAsksForTheDeploymentsResourcesAndCarriesZeroservesComment) {
  auto s = serve("  sbatch_options: [--nice=5]\n", "    keep_alive: 60s\n    threads: 2\n    memory: 200MiB\n");
  ASSERT_EQ(complete(*s).status, 200);
  const auto jobs = cluster_->running();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].comment.rfind("zeroserve/", 0), 0u) << jobs[0].comment;
  const CommandResult shown = run_command(cluster_->env() + "scontrol show job " + jobs[0].id + " 2>&1");
  EXPECT_NE(shown.out.find("NumCPUs=2"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("MinMemoryNode=200M"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("Nice=5"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("Requeue=0"), std::string::npos) << shown.out;
  EXPECT_EQ(s->stop(), 0);
  // serve's shutdown cancels every job it started.
  EXPECT_TRUE(squeue_empty());
}

TEST_F(SlurmRuntime, TheWorkerOnTheNodeRefusesRequestsWithoutTheInstanceToken) {
  auto s = serve("", "    keep_alive: 60s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  const std::string folder = instance_folder(shared_);
  ASSERT_FALSE(folder.empty());
  std::string address = read_file(folder + "/address");
  std::string token = read_file(folder + "/token");
  address = address.substr(0, address.find('\n'));
  token = token.substr(0, token.find('\n'));
  ASSERT_FALSE(address.empty());
  ASSERT_EQ(address.rfind("127.", 0), std::string::npos) << "the worker should listen on its node's address";
  const std::string body = completion(4).dump();
  auto none = gateway::http_request("POST", address, "/v1/completions", body, {}, 10s);
  ASSERT_TRUE(none.is_ok()) << none.status().message();
  EXPECT_EQ(none->status, 401) << none->body;
  auto wrong = gateway::http_request("POST", address, "/v1/completions", body, {{"Authorization", "Bearer " + token + "x"}}, 10s);
  ASSERT_TRUE(wrong.is_ok());
  EXPECT_EQ(wrong->status, 401);
  auto models = gateway::http_request("GET", address, "/v1/models", "", {}, 10s);
  ASSERT_TRUE(models.is_ok());
  EXPECT_EQ(models->status, 401);
  auto right = gateway::http_request("POST", address, "/v1/completions", body, {{"Authorization", "Bearer " + token}}, 10s);
  ASSERT_TRUE(right.is_ok());
  EXPECT_EQ(right->status, 200) << right->body;
}

TEST_F(SlurmRuntime, ABurstScalesToInstancesOnBothNodes) {
  // Each job takes both CPUs of a node, so two instances cannot share one.
  auto s = serve("", "    keep_alive: 60s\n    threads: 2\n    slots: 1\n    max_instances: 2\n"
                     "    autoscale: {policy: concurrency, target_concurrency: 1}\n");
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&] {
      while (!stop) (complete(*s, 64).status == 200 ? ok : failed)++;
    });
  std::set<std::string> nodes;
  const bool both = wait_for(
      [&] {
        for (const auto& j : cluster_->running()) nodes.insert(j.nodes);
        return nodes.size() >= 2;
      },
      90s);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_TRUE(both) << "jobs ran on " << nodes.size() << " node(s)";
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 0);
}

TEST_F(SlurmRuntime, TwoDeploymentsJobsShareANodeWhenItsResourcesAllow) {
  // One CPU each on nodes of two: zeroserve asks, Slurm places, and packs them.
  const std::string model = golden_model("TinyStories-656K-Q8_0.gguf");
  auto s = serve("", "    keep_alive: 60s\n    threads: 1\n  - name: other\n    runtime: slurm\n    model: " + model +
                         "\n    ctx: 512\n    keep_alive: 60s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  json other = completion(8);
  other["model"] = "other";
  auto r = gateway::http_request("POST", s->address(), "/v1/completions", other.dump(), {}, 60s);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->status, 200) << r->body;
  const auto jobs = cluster_->running();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].nodes, jobs[1].nodes) << "Slurm packed both one-CPU jobs onto one node";
}

TEST_F(SlurmRuntime, ScancelFromOutsideIsACrashAndTheNextRequestGetsANewInstance) {
  auto s = serve("", "    keep_alive: 60s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  const auto before = cluster_->running();
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(cluster_->command("scancel " + before[0].id), 0);
  ASSERT_TRUE(squeue_empty());
  // The instance's exit is seen as a crash; the next request gets an answer from a new job.
  gateway::HttpResponse next;
  ASSERT_TRUE(wait_for([&] { return (next = complete(*s)).status == 200; }, 60s)) << next.status << " " << next.body;
  const auto after = cluster_->running();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0].id, before[0].id);
  auto m = gateway::http_request("GET", s->address(), "/metrics", "", {}, 10s);
  ASSERT_TRUE(m.is_ok());
  EXPECT_GE(metric_in(m->body, "zs_deployment_crashes{deployment=\"tiny\"}"), 1) << "the cancelled job should count as a crash";
}

TEST_F(SlurmRuntime, ScancelOfABusyInstanceGivesItsInFlightRequestA502AndTheNextRequestANewInstance) {
  // A model slow enough (135M parameters on one thread, about 10 ms a token here) that 1500
  // tokens outlast Slurm's KillWait of 2 s after the scancel: the worker, told to stop,
  // finishes what it can within KillWait (a short request would still be answered), then
  // Slurm kills it under the request.
  const std::string model = tmp_.file("smollm2.gguf");
  ASSERT_EQ(run_command(zeroserve() + " gen-model --preset smollm2-135m --type q8_0 --out " + model + " 2>&1").exit_code, 0);
  auto s = serve("", "    keep_alive: 60s\n    threads: 1\n    ctx: 2048\n    request_timeout: 120s\n", model);
  ASSERT_EQ(complete(*s, 2).status, 200);
  const auto before = cluster_->running();
  ASSERT_EQ(before.size(), 1u);
  gateway::HttpResponse cut;
  const auto sent = std::chrono::steady_clock::now();
  std::thread in_flight([&] { cut = complete(*s, 1500, 120s); });
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(cluster_->command("scancel " + before[0].id), 0);
  in_flight.join();
  EXPECT_EQ(cut.status, 502) << "after " << std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count()
                             << " s: " << cut.body;
  EXPECT_FALSE(cut.body.empty());
  gateway::HttpResponse next;
  ASSERT_TRUE(wait_for([&] { return (next = complete(*s, 2)).status == 200; }, 90s)) << next.status << " " << next.body;
  const auto after = cluster_->running();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0].id, before[0].id);
}

TEST_F(SlurmRuntime, TheLedgersInstanceSecondsMatchTheElapsedTimeSlurmRecordedForEachJob) {
  const double began = unix_now();
  auto s = serve("", "    keep_alive: 2s\n    threads: 1\n");
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(complete(*s).status, 200);
    ASSERT_TRUE(squeue_empty());
    std::this_thread::sleep_for(2s);  // apart, so that a window of a second around each job holds it alone
  }
  EXPECT_EQ(s->stop(), 0);
  const auto done = cluster_->completed();
  ASSERT_EQ(done.size(), 2u);
  double slurm_total = 0;
  for (const auto& j : done) {
    const double elapsed = j.end_s - j.start_s;
    slurm_total += elapsed;
    // The ledger bills what Slurm recorded (not from sbatch, which includes time pending in
    // Slurm, nor until serve saw the job gone).
    EXPECT_NEAR(instance_seconds(cost(*s, j.start_s - 1, j.end_s + 1)), elapsed, 1.0) << "job " << j.id;
  }
  EXPECT_NEAR(instance_seconds(cost(*s, began - 10, unix_now() + 10)), slurm_total, 1.0 * done.size());
}

TEST_F(SlurmRuntime, AnInstanceNearItsJobsTimeLimitIsReplacedBeforeItWithoutAFailedRequest) {
  // One-minute jobs; a replacement is asked for 30 s before the end (at most half the limit).
  auto s = serve("  time_limit: 1m\n  replace_before: 50s\n", "    keep_alive: 600s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  const auto first = cluster_->running();
  ASSERT_EQ(first.size(), 1u);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::thread client([&] {
    while (!stop) {
      (complete(*s, 8).status == 200 ? ok : failed)++;
      std::this_thread::sleep_for(50ms);
    }
  });
  // The first job ends (cancelled by zeroserve, not by its time limit) while a new one runs.
  const bool replaced = wait_for(
      [&] {
        bool first_alive = false, other_running = false;
        for (const auto& j : cluster_->jobs()) {
          if (j.id == first[0].id) first_alive = true;
          else if (j.state == "RUNNING") other_running = true;
        }
        return !first_alive && other_running;
      },
      75s);
  std::this_thread::sleep_for(1s);
  stop = true;
  client.join();
  EXPECT_TRUE(replaced) << "the job near its time limit was not replaced";
  EXPECT_EQ(failed, 0);
  EXPECT_GT(ok, 10);
  bool found = false;
  for (const auto& j : cluster_->completed())
    if (j.id == first[0].id) {
      found = true;
      EXPECT_EQ(j.state, "CANCELLED") << "ended by zeroserve, not by Slurm's time limit";
      EXPECT_LT(j.end_s - j.start_s, 59);
    }
  EXPECT_TRUE(found) << "no completion record of job " << first[0].id;
}

// Nodes powered down until Slurm's power saving starts one for a queued job (ResumeProgram),
// and stopped again when idle (SuspendProgram, SuspendTime 4 s): the 0..N node pool.
class SlurmElasticNodes : public SlurmRuntime {
  bool elastic() const override { return true; }
};

TEST_F(SlurmElasticNodes, ARequestPowersUpANodeWhichStopsOnceKeepAliveEndedTheJobAndTheLedgerBillsSlurmsTimes) {
  const double began = unix_now();
  ASSERT_EQ(cluster_->nodes_up(), 0) << "every node starts powered down";
  auto s = serve("", "    keep_alive: 2s\n    threads: 1\n    request_timeout: 120s\n");
  gateway::HttpResponse r;
  std::atomic<bool> answered{false};
  std::thread request([&] {
    r = complete(*s, 8, 150s);
    answered = true;
  });
  // While the node boots the instance is a cold start pending in Slurm, and says why.
  bool seen_pending = false;
  while (!answered && !seen_pending) {
    auto m = gateway::http_request("GET", s->address(), "/metrics", "", {}, 10s);
    seen_pending = m.is_ok() && m->body.find("zs_deployment_pending_in_slurm{deployment=\"tiny\"") != std::string::npos;
    std::this_thread::sleep_for(200ms);
  }
  request.join();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(seen_pending) << "no pending-in-Slurm gauge while the node powered up";
  EXPECT_FALSE(r.header("X-Zeroserve-Cold-Start-Ms").empty());
  EXPECT_NE(cluster_->power_log().find("start zsnode"), std::string::npos) << cluster_->power_log();
  // keep_alive ends the job; the idle node is powered down after SuspendTime.
  ASSERT_TRUE(squeue_empty());
  EXPECT_TRUE(wait_for([&] { return cluster_->nodes_up() == 0; }, 60s)) << cluster_->power_log();
  EXPECT_NE(cluster_->power_log().find("stop zsnode"), std::string::npos) << cluster_->power_log();
  EXPECT_EQ(s->stop(), 0);
  // The job's time includes its node's boot (Slurm starts the job's clock at allocation).
  const auto done = cluster_->completed();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NEAR(instance_seconds(cost(*s, began - 10, unix_now() + 10)), done[0].end_s - done[0].start_s, 1.0);
}

TEST_F(SlurmRuntime, KillingTheSlurmdOfTheInstancesNodeIsSurvivedOnTheOtherNode) {
  auto s = serve("  heartbeat_limit: 3s\n", "    keep_alive: 60s\n    threads: 2\n");
  ASSERT_EQ(complete(*s).status, 200);
  const auto before = cluster_->running();
  ASSERT_EQ(before.size(), 1u);
  const std::string dead = before[0].nodes;
  cluster_->kill_node(dead == "zsnode1" ? 1 : 2);
  // Slurm marks the node down (SlurmdTimeout 5 s) and fails its job; the next instance runs
  // on the other node and answers.
  std::string node_now;
  const bool moved = wait_for(
      [&] {
        const auto r = complete(*s, 8, 20s);
        if (r.status != 200) return false;
        const auto jobs = cluster_->running();
        if (jobs.size() != 1 || jobs[0].nodes == dead) return false;
        node_now = jobs[0].nodes;
        return true;
      },
      120s);
  EXPECT_TRUE(moved) << "no answer from an instance on the other node";
  EXPECT_NE(node_now, dead);
}

TEST_F(SlurmRuntime, AFullClusterKeepsARequestWaitingUntilRequestTimeoutWithA504NamingTheReason) {
  // Both nodes taken by jobs of someone else.
  ASSERT_EQ(cluster_->command("sbatch --cpus-per-task=2 --output=/dev/null --wrap='sleep 300'"), 0);
  ASSERT_EQ(cluster_->command("sbatch --cpus-per-task=2 --output=/dev/null --wrap='sleep 300'"), 0);
  ASSERT_TRUE(wait_for([&] { return cluster_->running().size() == 2; }, 30s));
  auto s = serve("", "    threads: 1\n    request_timeout: 4s\n");
  const auto r = complete(*s, 8, 60s);
  EXPECT_EQ(r.status, 504) << r.body;
  std::string reason;
  for (const auto& j : cluster_->jobs())
    if (j.comment.rfind("zeroserve/", 0) == 0) reason = j.reason;
  ASSERT_FALSE(reason.empty()) << "zeroserve's job should still be pending";
  EXPECT_NE(r.body.find("pending in Slurm (reason: " + reason + ")"), std::string::npos) << r.body;
  // The metrics show it too.
  auto m = gateway::http_request("GET", s->address(), "/metrics", "", {}, 10s);
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(metric_in(m->body, "zs_deployment_pending_in_slurm{deployment=\"tiny\",reason=\"" + reason + "\"}"), 1)
      << m->body;
  // And the console.
  auto c = gateway::http_request("GET", s->address(), "/console/api/status", "", {}, 10s);
  ASSERT_TRUE(c.is_ok());
  const json console = json::parse(c->body);
  ASSERT_EQ(console["deployments"].size(), 1u) << c->body;
  EXPECT_EQ(console["deployments"][0]["pending_reason"], reason) << c->body;
}

TEST_F(SlurmRuntime, AJobSlurmRefusesFailsTheWaitingRequestAfterTheRestartsWithoutLeavingJobs) {
  auto s = serve("  partition: no-such-partition\n", "    threads: 1\n    request_timeout: 60s\n");
  const auto r = complete(*s, 8, 90s);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(cluster_->jobs().empty());
}

// SIGKILL to serve and to its slurm-instance processes (a crashed machine): nothing cancels the
// job, it ends itself when the heartbeat stops.
void kill_nine_with_instances(Serve& s) {
  // serve's children are its slurm-instance processes.
  run_command("pkill -KILL -P " + std::to_string(s.process().pid()));
  s.process().signal(SIGKILL);
  ASSERT_TRUE(s.process().wait_exit(10s).has_value());
}

TEST_F(SlurmRuntime, KillNineOfServeCancelsItsJobsThroughTheParentDeathSignal) {
  auto s = serve("  heartbeat_limit: 10m\n", "    keep_alive: 600s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  ASSERT_EQ(cluster_->running().size(), 1u);
  s->process().signal(SIGKILL);
  ASSERT_TRUE(s->process().wait_exit(10s).has_value());
  // Long before the heartbeat limit of 10 minutes.
  EXPECT_TRUE(squeue_empty(60s)) << "a job outlived its gateway";
}

TEST_F(SlurmRuntime, AJobWhoseGatewayMachineDiedEndsItselfAfterTheHeartbeatLimit) {
  auto s = serve("  heartbeat_limit: 3s\n", "    keep_alive: 600s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  ASSERT_EQ(cluster_->running().size(), 1u);
  kill_nine_with_instances(*s);
  EXPECT_TRUE(squeue_empty(90s)) << "a job outlived its gateway";
}

TEST_F(SlurmRuntime, ARestartedServeCancelsTheJobsItsPredecessorLeftAndBillsThemAsSlurmRecorded) {
  const double began = unix_now();
  auto s = serve("  heartbeat_limit: 10m\n", "    keep_alive: 600s\n    threads: 1\n");
  ASSERT_EQ(complete(*s).status, 200);
  const auto left = cluster_->running();
  ASSERT_EQ(left.size(), 1u);
  kill_nine_with_instances(*s);
  // With a heartbeat limit of 10 minutes the job is still there...
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(cluster_->running().size(), 1u);
  // ...until serve starts again with the same state folder.
  s->start();
  ASSERT_FALSE(s->address().empty());
  EXPECT_TRUE(wait_for(
      [&] {
        for (const auto& j : cluster_->jobs())
          if (j.id == left[0].id) return false;
        return true;
      },
      60s))
      << "the predecessor's job " << left[0].id << " is still listed";
  EXPECT_EQ(complete(*s).status, 200);
  EXPECT_EQ(s->stop(), 0);
  // The predecessor's run was closed at its last heartbeat when serve restarted; now it is
  // billed as Slurm recorded the job, like the new one.
  const auto done = cluster_->completed();
  ASSERT_EQ(done.size(), 2u);
  double slurm_total = 0;
  for (const auto& j : done) slurm_total += j.end_s - j.start_s;
  EXPECT_NEAR(instance_seconds(cost(*s, began - 10, unix_now() + 10)), slurm_total, 2.0);
}

}  // namespace
}  // namespace zs::testing
