// Sleeping instances in the cost ledger (schema version 4): sleeping seconds billed at the
// run's sleep price in every cost figure, checked against a plain reference that prices each
// phase interval clipped to the window; the 3 -> 4 migration, and reading version-3 files
// without migrating them.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "platform/ledger/cost_ledger.h"
#include "ledger_test_util.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace ledger_test;
using zs::testing::TempDir;
using S = InstancePhase;

// The reference: one run as a list of back-to-back phases, each priced on its own.
struct RefPhase {
  S phase;
  double start, end;
};
struct RefRun {
  double price, sleep_price;
  std::vector<RefPhase> phases;  // back to back, from the start to the stop of the run
};

double clip(double start, double end, double from, double to) {
  return std::max(0.0, std::min(end, to) - std::max(start, from));
}

double ref_seconds(const RefRun& run, double from, double to, std::optional<S> phase = std::nullopt) {
  double s = 0;
  for (const RefPhase& p : run.phases)
    if (!phase || p.phase == *phase) s += clip(p.start, p.end, from, to);
  return s;
}

double ref_cost(const RefRun& run, double from, double to) {
  double c = 0;
  for (const RefPhase& p : run.phases) {
    c += clip(p.start, p.end, from, to) * (p.phase == S::kSleeping ? run.sleep_price : run.price);
  }
  return c;
}

// Plays `run` into the ledger as instance `id` of `deployment` on `device`, and stops it.
void record_run(CostLedger& ledger, const std::string& id, const std::string& deployment,
                const std::string& device, const RefRun& run) {
  ASSERT_FALSE(run.phases.empty());
  ASSERT_EQ(run.phases.front().phase, S::kStarting);
  const core::Status st = ledger.instance_started(id, deployment, device, run.price, run.sleep_price,
                                                  run.phases.front().start, false);
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (size_t i = 1; i < run.phases.size(); ++i) {
    const core::Status s = ledger.instance_state(id, run.phases[i].phase, run.phases[i].start);
    ASSERT_TRUE(s.is_ok()) << s.message();
  }
  ASSERT_TRUE(ledger.instance_stopped(id, run.phases.back().end).is_ok());
}

CostReport report_ok(const CostLedger& ledger, double from, double to, double now) {
  auto r = ledger.report(from, to, now);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : CostReport{};
}

DeploymentCost only(const CostReport& r) {
  EXPECT_EQ(r.deployments.size(), 1u);
  return r.deployments.empty() ? DeploymentCost{} : r.deployments[0];
}

// A run at 0.01/s that sleeps at 0.001/s twice: 300 s, 170 of them asleep.
const RefRun kSleeper = {0.01, 0.001,
                         {{S::kStarting, 0, 10},
                          {S::kReady, 10, 40},
                          {S::kIdle, 40, 60},
                          {S::kSleeping, 60, 160},
                          {S::kReady, 160, 200},
                          {S::kIdle, 200, 230},
                          {S::kSleeping, 230, 290},
                          {S::kDraining, 290, 300}}};

TEST(SleepCost, ASleepingSecondCostsTheSleepPriceInsteadOfTheRunningPrice) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  record_run(*ledger, "i1", "a", "gpu", kSleeper);

  const DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 300);
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 160);
  EXPECT_DOUBLE_EQ(d.busy_seconds, 70);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 50);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 10);
  // seconds * price - sleeping seconds * (price - sleep price)
  EXPECT_NEAR(d.cost, 300 * 0.01 - 160 * (0.01 - 0.001), 1e-12);
  EXPECT_NEAR(d.cost, ref_cost(kSleeper, 0, 1000), 1e-12);
  // An always-on instance never sleeps: the baseline stays at the running price.
  EXPECT_NEAR(d.always_on_cost, 1000 * 0.01, 1e-9);
}

TEST(SleepCost, AWindowThatCutsASleepingPhaseBillsOnlyTheSleepInside) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  record_run(*ledger, "i1", "a", "gpu", kSleeper);

  // Windows that start or end inside a sleeping phase, lie wholly inside one, or hold none.
  const std::vector<std::pair<double, double>> windows = {
      {0, 300}, {100, 250}, {70, 90}, {0, 61}, {159, 161}, {250, 1000}, {10, 60}, {300, 400}};
  for (const auto& [from, to] : windows) {
    SCOPED_TRACE("window [" + std::to_string(from) + ", " + std::to_string(to) + ")");
    auto c = ledger->costs(from, to, 1000);
    ASSERT_TRUE(c.is_ok()) << c.status().message();
    const double seconds = ref_seconds(kSleeper, from, to);
    if (seconds <= 0) {
      EXPECT_TRUE(c->empty());
      continue;
    }
    ASSERT_EQ(c->size(), 1u);
    const DeploymentCost& d = (*c)[0];
    EXPECT_NEAR(d.instance_seconds, seconds, 1e-9);
    EXPECT_NEAR(d.sleeping_seconds, ref_seconds(kSleeper, from, to, S::kSleeping), 1e-9);
    EXPECT_NEAR(d.busy_seconds, ref_seconds(kSleeper, from, to, S::kReady), 1e-9);
    EXPECT_NEAR(d.idle_seconds, ref_seconds(kSleeper, from, to, S::kIdle), 1e-9);
    EXPECT_NEAR(d.starting_seconds, ref_seconds(kSleeper, from, to, S::kStarting), 1e-9);
    EXPECT_NEAR(d.cost, ref_cost(kSleeper, from, to), 1e-12);
    auto total = ledger->total_cost(from, to, 1000);
    ASSERT_TRUE(total.is_ok());
    EXPECT_NEAR(*total, ref_cost(kSleeper, from, to), 1e-12);
  }
}

TEST(SleepCost, EveryCostFigureUsesTheSleepPrice) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  // Deployment "a" on two devices with different sleep prices, "b" never sleeping.
  const RefRun dear = {0.02, 0.005, {{S::kStarting, 0, 5}, {S::kIdle, 5, 25}, {S::kSleeping, 25, 125}}};
  const RefRun cheap = {0.002, 0, {{S::kStarting, 50, 55}, {S::kSleeping, 55, 95}, {S::kReady, 95, 150}}};
  const RefRun plain = {0.01, 0.001, {{S::kStarting, 0, 10}, {S::kReady, 10, 100}}};
  record_run(*ledger, "a1", "a", "h100", dear);
  record_run(*ledger, "a2", "a", "cpu", cheap);
  record_run(*ledger, "b1", "b", "h100", plain);
  ASSERT_TRUE(ledger->record_request("a", "team-x", "interactive", 30, 10, 200, 0, 100).is_ok());
  ASSERT_TRUE(ledger->record_request("a", "team-y", "interactive", 50, 10, 200, 0, 110).is_ok());
  ASSERT_TRUE(ledger->record_request("b", "", "interactive", 1, 1, 200, 0, 20).is_ok());

  const double from = 20, to = 120;  // cuts both of a's sleeping phases
  const double a_cost = ref_cost(dear, from, to) + ref_cost(cheap, from, to);
  const double b_cost = ref_cost(plain, from, to);

  // Per device.
  auto devices = ledger->instance_costs(from, to, 1000);
  ASSERT_TRUE(devices.is_ok()) << devices.status().message();
  ASSERT_EQ(devices->size(), 3u);
  EXPECT_EQ((*devices)[0].deployment, "a");
  EXPECT_EQ((*devices)[0].device, "cpu");
  EXPECT_NEAR((*devices)[0].cost, ref_cost(cheap, from, to), 1e-12);
  EXPECT_NEAR((*devices)[0].sleeping_seconds, 40, 1e-9);
  EXPECT_EQ((*devices)[1].device, "h100");
  EXPECT_NEAR((*devices)[1].cost, ref_cost(dear, from, to), 1e-12);
  EXPECT_NEAR((*devices)[1].sleeping_seconds, 95, 1e-9);
  EXPECT_EQ((*devices)[2].deployment, "b");
  EXPECT_NEAR((*devices)[2].cost, b_cost, 1e-12);
  EXPECT_DOUBLE_EQ((*devices)[2].sleeping_seconds, 0);

  // Per deployment and in total.
  const CostReport r = report_ok(*ledger, from, to, 1000);
  ASSERT_EQ(r.deployments.size(), 2u);
  EXPECT_NEAR(r.deployments[0].cost, a_cost, 1e-12);
  EXPECT_NEAR(r.deployments[0].sleeping_seconds, 95 + 40, 1e-9);
  EXPECT_NEAR(r.deployments[1].cost, b_cost, 1e-12);
  EXPECT_NEAR(r.total.cost, a_cost + b_cost, 1e-12);
  EXPECT_NEAR(r.total.sleeping_seconds, 135, 1e-9);
  EXPECT_NEAR(r.total.busy_seconds, 25 + 80, 1e-9);
  auto total = ledger->total_cost(from, to, 1000);
  ASSERT_TRUE(total.is_ok());
  EXPECT_NEAR(*total, a_cost + b_cost, 1e-12);
  // Always on at the running prices: the mean running price of a's instance time.
  const double a_running = ref_seconds(dear, from, to) * 0.02 + ref_seconds(cheap, from, to) * 0.002;
  EXPECT_NEAR(r.deployments[0].always_on_cost,
              2 * (to - from) * a_running / r.deployments[0].instance_seconds, 1e-9);

  // Key shares split the sleep-priced cost: 40 and 60 tokens of a's 100.
  auto keys = ledger->usage_by_key(from, to, 1000);
  ASSERT_TRUE(keys.is_ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_NEAR((*keys)[1].cost_share, a_cost * 0.4, 1e-12);  // "team-x"
  EXPECT_NEAR((*keys)[2].cost_share, a_cost * 0.6, 1e-12);  // "team-y"

  // The admin JSON carries the same figures.
  auto text = ledger->costs_json(from, to, 1000);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  const auto j = nlohmann::json::parse(*text);
  EXPECT_NEAR(j["deployments"][0]["cost"].get<double>(), a_cost, 1e-12);
  EXPECT_NEAR(j["deployments"][0]["sleeping_seconds"].get<double>(), 135, 1e-9);
  EXPECT_NEAR(j["deployments"][0]["busy_seconds"].get<double>(), 25, 1e-9);
  EXPECT_NEAR(j["deployments"][1]["busy_seconds"].get<double>(), 80, 1e-9);
  EXPECT_NEAR(j["total_cost"].get<double>(), a_cost + b_cost, 1e-12);
}

TEST(SleepCost, AnOpenSleepingPhaseCountsUpToNowAndTheWindowEnd) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0.002, 100, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 110).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 120).is_ok());
  ASSERT_TRUE(ledger->heartbeat(150).is_ok());

  DeploymentCost d = only(report_ok(*ledger, 0, 1000, 160));  // up to now
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 40);
  EXPECT_NEAR(d.cost, 20 * 0.01 + 40 * 0.002, 1e-12);
  d = only(report_ok(*ledger, 0, 140, 160));  // up to the window's end
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 20);
  EXPECT_NEAR(d.cost, 20 * 0.01 + 20 * 0.002, 1e-12);
}

TEST(SleepCost, ACrashEndsASleepingPhaseAtTheLastHeartbeat) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    auto ledger = open_ok(path);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0.001, 100, false).is_ok());
    ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 110).is_ok());
    ASSERT_TRUE(ledger->heartbeat(170).is_ok());
  }
  // A reader sees the stale open run end at its heartbeat, as the writer's recovery will.
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  DeploymentCost d = only(report_ok(*reader, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 60);
  EXPECT_NEAR(d.cost, 10 * 0.01 + 60 * 0.001, 1e-12);
  reader.reset();

  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->recovered_on_open(), 1);
  d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 70);
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 60);
  EXPECT_NEAR(d.cost, 10 * 0.01 + 60 * 0.001, 1e-12);
}

TEST(SleepCost, SleepingMovesToAndFromIdleAndReadyAndCanDrain) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0.001, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 10).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 20).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 25).is_ok());  // no-op
  ASSERT_TRUE(ledger->instance_state("i1", S::kReady, 30).is_ok());     // a request wakes it
  ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 40).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 50).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kSleeping, 60).is_ok());
  EXPECT_FALSE(ledger->instance_state("i1", S::kStarting, 70).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kDraining, 80).is_ok());
  EXPECT_FALSE(ledger->instance_state("i1", S::kSleeping, 85).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 90).is_ok());
  EXPECT_EQ(query_text(path, "SELECT group_concat(phase, ',') FROM"
                             " (SELECT phase FROM instance_phases ORDER BY id)"),
            "starting,idle,sleeping,ready,sleeping,idle,sleeping,draining");
  const DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.sleeping_seconds, 10 + 10 + 20);
  EXPECT_NEAR(d.cost, 50 * 0.01 + 40 * 0.001, 1e-12);
}

TEST(SleepCost, AnInvalidSleepPriceIsRefused) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  for (double bad : {-0.001, static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    const core::Status st = ledger->instance_started("i1", "a", "gpu", 0.01, bad, 10, false);
    EXPECT_FALSE(st.is_ok()) << bad;
    EXPECT_EQ(st.code(), core::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instances"), "0");
  // Zero is a price: a device that costs nothing while its instance sleeps.
  EXPECT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 10, false).is_ok());
}

// A version-3 ledger: "old" ran [100, 200) at 0.002 (starting 10 s, idle 90 s) with two keyed
// requests; "live" was left open by a crash (heartbeat at 260) in its idle phase.
void write_version3_ledger(const std::string& path) {
  ASSERT_TRUE(exec_sql(
      path, version3_schema() +
                "INSERT INTO instances (instance_id, deployment, device, price_per_second,"
                " started_at, last_seen, stopped_at, cold_start) VALUES"
                " ('i1', 'old', 'gpu', 0.002, 100, 200, 200, 1),"
                " ('l1', 'live', 'cpu', 0.001, 200, 260, NULL, 0);"
                "INSERT INTO instance_phases (run, phase, started_at, ended_at) VALUES"
                " (1, 'starting', 100, 110), (1, 'idle', 110, 200),"
                " (2, 'starting', 200, 205), (2, 'idle', 205, NULL);"
                "INSERT INTO requests (deployment, at, prompt_tokens, completion_tokens,"
                " http_status, queue_seconds, api_key, class) VALUES"
                " ('old', 120, 20, 10, 200, 0, 'team-a', 'batch'),"
                " ('old', 130, 6, 4, 200, 0, '', 'interactive');"));
}

TEST(SleepCost, MigratesAVersion3FileKeepingItsRowsAndPhases) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version3_ledger(path);
  ASSERT_EQ(query_text(path, "SELECT version FROM schema_version"), "3");
  const std::string phases_before = query_text(
      path, "SELECT group_concat(id || ':' || run || ':' || phase || ':' || started_at, ' ') FROM"
            " (SELECT * FROM instance_phases ORDER BY id)");

  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->schema_version(), 4);
  EXPECT_EQ(query_text(path, "SELECT group_concat(version) FROM schema_version"), "4");
  EXPECT_EQ(ledger->recovered_on_open(), 1);  // "live", at its heartbeat
  // Every phase kept, with its id; the open one closed by the recovery at 260.
  EXPECT_EQ(query_text(path, "SELECT group_concat(id || ':' || run || ':' || phase || ':' ||"
                             " started_at, ' ') FROM (SELECT * FROM instance_phases ORDER BY id)"),
            phases_before);
  EXPECT_EQ(query_text(path, "SELECT ended_at FROM instance_phases WHERE id = 4"), "260.0");
  // The rebuilt table keeps its indexes; no copy is left behind.
  EXPECT_EQ(query_text(path, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema"
                             " WHERE type = 'index' AND tbl_name = 'instance_phases' ORDER BY name)"),
            "instance_phases_open_run,instance_phases_started_at");
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'instance_phases%'"
                             " AND type = 'table'"),
            "1");
  // The old runs never slept: their sleep price is 0 and changes nothing.
  EXPECT_EQ(query_text(path, "SELECT group_concat(sleep_price_per_second) FROM instances"), "0.0,0.0");

  // The costs of version 3 read as before.
  CostReport r = report_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(r.deployments.size(), 2u);
  EXPECT_EQ(r.deployments[0].deployment, "live");
  EXPECT_DOUBLE_EQ(r.deployments[0].instance_seconds, 60);
  EXPECT_DOUBLE_EQ(r.deployments[0].idle_seconds, 55);
  EXPECT_NEAR(r.deployments[0].cost, 0.06, 1e-12);
  EXPECT_EQ(r.deployments[1].deployment, "old");
  EXPECT_NEAR(r.deployments[1].cost, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(r.deployments[1].starting_seconds, 10);
  EXPECT_DOUBLE_EQ(r.deployments[1].idle_seconds, 90);
  EXPECT_DOUBLE_EQ(r.deployments[1].sleeping_seconds, 0);
  EXPECT_EQ(r.deployments[1].requests, 2);
  auto keys = ledger->usage_by_key(0, 1000, 1000);
  ASSERT_TRUE(keys.is_ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1].api_key, "team-a");
  EXPECT_NEAR((*keys)[1].cost_share, 0.2 * 30 / 40, 1e-12);

  // The migrated file takes sleeping phases and sleep prices.
  ASSERT_TRUE(ledger->instance_started("l1", "live", "cpu", 0.001, 0.0001, 300, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("l1", S::kSleeping, 310).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("l1", 410).is_ok());
  r = report_ok(*ledger, 0, 1000, 1000);
  EXPECT_DOUBLE_EQ(r.deployments[0].sleeping_seconds, 100);
  EXPECT_NEAR(r.deployments[0].cost, 0.06 + 10 * 0.001 + 100 * 0.0001, 1e-12);

  ledger.reset();
  ledger = open_ok(path);  // a second open finds version 4 and migrates nothing
  ASSERT_TRUE(ledger);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM schema_version"), "1");
  EXPECT_DOUBLE_EQ(report_ok(*ledger, 0, 1000, 1000).deployments[0].sleeping_seconds, 100);
}

TEST(SleepCost, ReadsAVersion3FileWithoutMigratingIt) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version3_ledger(path);
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->schema_version(), 3);

  // "live" is open with a stale heartbeat at 260: it ends there.
  const CostReport r = report_ok(*reader, 0, 1000, 1000);
  ASSERT_EQ(r.deployments.size(), 2u);
  EXPECT_DOUBLE_EQ(r.deployments[0].instance_seconds, 60);
  EXPECT_DOUBLE_EQ(r.deployments[0].idle_seconds, 55);
  EXPECT_NEAR(r.deployments[0].cost, 0.06, 1e-12);
  EXPECT_NEAR(r.deployments[1].cost, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(r.deployments[1].busy_seconds, 0);
  EXPECT_DOUBLE_EQ(r.total.sleeping_seconds, 0);
  auto devices = reader->instance_costs(0, 1000, 1000);
  ASSERT_TRUE(devices.is_ok()) << devices.status().message();
  EXPECT_EQ(devices->size(), 2u);
  auto text = reader->costs_json(0, 1000, 1000);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  EXPECT_EQ(nlohmann::json::parse(*text)["deployments"][1]["sleeping_seconds"], 0);

  // Nothing written: still version 3, without the new column or phase.
  EXPECT_EQ(query_text(path, "SELECT version FROM schema_version"), "3");
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM pragma_table_info('instances')"
                             " WHERE name = 'sleep_price_per_second'"),
            "0");
  EXPECT_EQ(query_text(path, "SELECT instr(sql, 'sleeping') FROM sqlite_schema"
                             " WHERE name = 'instance_phases'"),
            "0");
}

}  // namespace
}  // namespace zs::platform
