// The schema-2 figures of the cost ledger (phases, peak instances, always-on cost), the
// migration from schema-1 files, and the read-only open that `zeroserve cost` uses.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
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

CostReport report_ok(const CostLedger& ledger, double from, double to, double now) {
  auto r = ledger.report(from, to, now);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : CostReport{};
}

// The one deployment a report must hold.
DeploymentCost only(const CostReport& r) {
  EXPECT_EQ(r.deployments.size(), 1u);
  return r.deployments.empty() ? DeploymentCost{} : r.deployments[0];
}

// A version-1 ledger: one finished run (cold, 60 s at 0.001), one left open by a crash
// (heartbeat at 230), two requests.
void write_version1_ledger(const std::string& path) {
  ASSERT_TRUE(exec_sql(
      path, version1_schema() +
                "INSERT INTO instances (instance_id, deployment, device, price_per_second,"
                " started_at, last_seen, stopped_at, cold_start) VALUES"
                " ('i1', 'old', 'gpu', 0.001, 100, 160, 160, 1),"
                " ('i2', 'old', 'gpu', 0.001, 200, 230, NULL, 0);"
                "INSERT INTO requests (deployment, at, prompt_tokens, completion_tokens,"
                " http_status, queue_seconds) VALUES ('old', 110, 10, 20, 200, 0),"
                " ('old', 210, 1, 2, 200, 0);"));
}

TEST(CostReport, PhasesGiveStartingAndIdleSeconds) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  // starting [100, 110), idle [110, 120), ready [120, 150), idle [150, 190), draining [190, 200).
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 100, true).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 110).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kReady, 120).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 150).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kDraining, 190).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 200).is_ok());

  const DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 100);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 10);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 50);
  EXPECT_DOUBLE_EQ(d.idle_share(), 0.5);
  EXPECT_EQ(d.cold_starts, 1);

  // Clipped to [115, 160): idle [115, 120) and [150, 160), no starting.
  const DeploymentCost w = only(report_ok(*ledger, 115, 160, 1000));
  EXPECT_DOUBLE_EQ(w.instance_seconds, 45);
  EXPECT_DOUBLE_EQ(w.starting_seconds, 0);
  EXPECT_DOUBLE_EQ(w.idle_seconds, 15);
  EXPECT_DOUBLE_EQ(w.idle_share(), 15.0 / 45);
  EXPECT_EQ(w.cold_starts, 0);  // started before the window

  const DeploymentCost s = only(report_ok(*ledger, 105, 112, 1000));
  EXPECT_DOUBLE_EQ(s.starting_seconds, 5);
  EXPECT_DOUBLE_EQ(s.idle_seconds, 2);
}

TEST(CostReport, AnOpenPhaseCountsUpToNowAndTheWindowEnd) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 0, false).is_ok());
  EXPECT_DOUBLE_EQ(only(report_ok(*ledger, 0, 100, 7)).starting_seconds, 7);  // still starting
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 10).is_ok());
  EXPECT_DOUBLE_EQ(only(report_ok(*ledger, 0, 100, 50)).idle_seconds, 40);
  EXPECT_DOUBLE_EQ(only(report_ok(*ledger, 0, 30, 50)).idle_seconds, 20);
  EXPECT_DOUBLE_EQ(only(report_ok(*ledger, 0, 100, 50)).idle_share(), 40.0 / 50);
}

TEST(CostReport, InstanceStateRefusesImpossibleMoves) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  auto unknown = ledger->instance_state("nope", S::kReady, 10);
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.message().find("no open instance"), std::string::npos) << unknown.message();

  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 100, false).is_ok());
  EXPECT_TRUE(ledger->instance_state("i1", S::kStarting, 105).is_ok());  // already: no-op
  ASSERT_TRUE(ledger->instance_state("i1", S::kReady, 110).is_ok());
  EXPECT_TRUE(ledger->instance_state("i1", S::kReady, 115).is_ok());  // no-op, no new phase
  auto again = ledger->instance_state("i1", S::kStarting, 120);
  ASSERT_FALSE(again.is_ok());
  EXPECT_NE(again.message().find("cannot start again"), std::string::npos) << again.message();
  EXPECT_FALSE(ledger->instance_state("i1", S::kIdle, NAN).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kDraining, 130).is_ok());
  auto back = ledger->instance_state("i1", S::kIdle, 135);
  ASSERT_FALSE(back.is_ok());
  EXPECT_NE(back.message().find("draining"), std::string::npos) << back.message();
  ASSERT_TRUE(ledger->instance_stopped("i1", 140).is_ok());
  EXPECT_FALSE(ledger->instance_state("i1", S::kIdle, 150).is_ok());  // stopped

  const std::string path = dir.file("ledger.db");
  EXPECT_EQ(query_text(path, "SELECT group_concat(phase, ',') FROM"
                             " (SELECT phase FROM instance_phases ORDER BY id)"),
            "starting,ready,draining");
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instance_phases WHERE ended_at IS NULL"), "0");
}

TEST(CostReport, ATimeBeforeTheCurrentPhaseNeverRunsBackwards) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 100, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 120).is_ok());
  ASSERT_TRUE(ledger->instance_state("i1", S::kReady, 90).is_ok());  // taken as 120
  ASSERT_TRUE(ledger->instance_stopped("i1", 150).is_ok());
  const DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.starting_seconds, 20);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 0);
  EXPECT_DOUBLE_EQ(d.instance_seconds, 50);
}

TEST(CostReport, PeakCountsOverlappingInstancesInTheWindow) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  // i1 [0, 100), i2 [50, 150), i3 [100, 200) replaces i1 at the same instant,
  // i4 [120, 130): three at once in [120, 130). A failed start (zero length) is no instance.
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 0, true).is_ok());
  ASSERT_TRUE(ledger->instance_started("i2", "a", "gpu", 0.01, 0, 50, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 100).is_ok());
  ASSERT_TRUE(ledger->instance_started("i3", "a", "gpu", 0.01, 0, 100, false).is_ok());
  ASSERT_TRUE(ledger->instance_started("i4", "a", "gpu", 0.01, 0, 120, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i4", 130).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i2", 150).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i3", 200).is_ok());
  ASSERT_TRUE(ledger->instance_started("i5", "a", "gpu", 0.01, 0, 125, true).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i5", 125).is_ok());
  ASSERT_TRUE(ledger->instance_started("b1", "b", "gpu", 0.01, 0, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b1", 10).is_ok());

  auto all = report_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(all.deployments.size(), 2u);
  EXPECT_EQ(all.deployments[0].peak_instances, 3);
  EXPECT_EQ(all.deployments[1].peak_instances, 1);
  EXPECT_EQ(all.total.peak_instances, 4);  // an always-on fleet keeps both peaks
  EXPECT_EQ(report_ok(*ledger, 0, 110, 1000).deployments.at(0).peak_instances, 2);
  EXPECT_EQ(report_ok(*ledger, 0, 120, 1000).deployments.at(0).peak_instances, 2);  // [from, to)
  EXPECT_EQ(report_ok(*ledger, 160, 300, 1000).deployments.at(0).peak_instances, 1);
  EXPECT_EQ(report_ok(*ledger, 100, 101, 1000).deployments.at(0).peak_instances, 2);  // i2, i3
}

TEST(CostReport, AlwaysOnCostRunsThePeakThroughTheCoveredWindow) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 1, 1, 200, 0, 1000).is_ok());  // the first record
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 1100, true).is_ok());
  ASSERT_TRUE(ledger->instance_started("i2", "a", "gpu", 0.01, 0, 1150, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 1200).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i2", 1250).is_ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ledger->record_request("a", "", "interactive", 1, 1, 200, 0, 1160).is_ok());

  auto r = report_ok(*ledger, 1000, 2000, 5000);
  EXPECT_DOUBLE_EQ(r.covered_from, 1000);
  EXPECT_DOUBLE_EQ(r.covered_to, 2000);
  DeploymentCost d = only(r);
  EXPECT_EQ(d.peak_instances, 2);
  EXPECT_NEAR(d.cost, 2.0, 1e-12);                 // 200 instance-seconds at 0.01
  EXPECT_NEAR(d.always_on_cost, 2 * 1000 * 0.01, 1e-9);  // 2 instances x 1000 s
  EXPECT_NEAR(d.saving(), 18.0, 1e-9);
  EXPECT_EQ(d.requests, 5);
  EXPECT_NEAR(d.cost_per_1k_requests(), 400.0, 1e-9);
  EXPECT_NEAR(r.total.always_on_cost, d.always_on_cost, 1e-12);

  // A window reaching before the first record or past now is priced only where it is covered.
  r = report_ok(*ledger, 0, 1e9, 1500);
  EXPECT_DOUBLE_EQ(r.covered_from, 1000);
  EXPECT_DOUBLE_EQ(r.covered_to, 1500);
  EXPECT_NEAR(only(r).always_on_cost, 2 * 500 * 0.01, 1e-9);

  // Two devices: priced at the mean price per instance-second (here (100*0.01+100*0.03)/200).
  ASSERT_TRUE(ledger->instance_started("b1", "b", "cheap", 0.01, 0, 3000, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b1", 3100).is_ok());
  ASSERT_TRUE(ledger->instance_started("b2", "b", "dear", 0.03, 0, 3100, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b2", 3200).is_ok());
  r = report_ok(*ledger, 3000, 3400, 5000);
  d = only(r);
  EXPECT_EQ(d.deployment, "b");
  EXPECT_EQ(d.peak_instances, 1);
  EXPECT_NEAR(d.always_on_cost, 400 * 0.02, 1e-9);
}

TEST(CostReport, AnEmptyLedgerReportsNothing) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  auto first = ledger->first_record_time();
  ASSERT_TRUE(first.is_ok());
  EXPECT_FALSE(first->has_value());
  auto r = report_ok(*ledger, 0, 100, 100);
  EXPECT_TRUE(r.deployments.empty());
  EXPECT_DOUBLE_EQ(r.covered_to - r.covered_from, 0);
  EXPECT_EQ(r.total.cost, 0);

  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 1, 1, 200, 0, 70).is_ok());
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 40, false).is_ok());
  first = ledger->first_record_time();
  ASSERT_TRUE(first.is_ok() && first->has_value());
  EXPECT_DOUBLE_EQ(**first, 40);
}

TEST(CostReport, TotalsSumTheDeployments) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("a1", "a", "gpu", 0.01, 0, 0, true).is_ok());
  ASSERT_TRUE(ledger->instance_state("a1", S::kIdle, 10).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("a1", 100).is_ok());
  ASSERT_TRUE(ledger->instance_started("b1", "b", "cpu", 0.001, 0, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("b1", S::kReady, 20).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b1", 100).is_ok());
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 3, 4, 200, 0, 50).is_ok());
  ASSERT_TRUE(ledger->record_request("b", "", "interactive", 5, 6, 200, 0, 50).is_ok());
  auto r = report_ok(*ledger, 0, 100, 100);
  ASSERT_EQ(r.deployments.size(), 2u);
  EXPECT_DOUBLE_EQ(r.total.instance_seconds, 200);
  EXPECT_NEAR(r.total.cost, 1.0 + 0.1, 1e-12);
  EXPECT_EQ(r.total.requests, 2);
  EXPECT_EQ(r.total.prompt_tokens, 8);
  EXPECT_EQ(r.total.completion_tokens, 10);
  EXPECT_EQ(r.total.cold_starts, 1);
  EXPECT_DOUBLE_EQ(r.total.starting_seconds, 30);
  EXPECT_DOUBLE_EQ(r.total.idle_seconds, 90);
  EXPECT_DOUBLE_EQ(r.total.idle_share(), 0.45);
  EXPECT_NEAR(r.total.always_on_cost, r.total.cost, 1e-12);  // both ran through the window
  EXPECT_TRUE(r.total.deployment.empty());
}

TEST(CostReport, ACrashEndsPhasesAtTheLastHeartbeat) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    auto ledger = open_ok(path);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 100, true).is_ok());
    ASSERT_TRUE(ledger->instance_state("i1", S::kIdle, 110).is_ok());
    ASSERT_TRUE(ledger->heartbeat(130).is_ok());
    ASSERT_TRUE(ledger->instance_state("i1", S::kReady, 140).is_ok());  // after the last beat
  }
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->recovered_on_open(), 1);
  const DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 30);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 10);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 20);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instance_phases WHERE ended_at IS NULL"), "0");
}

TEST(CostReport, MigratesAVersion1File) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version1_ledger(path);
  ASSERT_EQ(query_text(path, "SELECT version FROM schema_version"), "1");

  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->schema_version(), CostLedger::kSchemaVersion);
  EXPECT_EQ(query_text(path, "SELECT group_concat(version) FROM schema_version"),
            std::to_string(CostLedger::kSchemaVersion));
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'instance_phases'"),
            "1");
  EXPECT_EQ(ledger->recovered_on_open(), 1);  // the open version-1 run, at its heartbeat

  // The old runs keep their time, price and requests; they have no phases.
  DeploymentCost d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_EQ(d.deployment, "old");
  EXPECT_DOUBLE_EQ(d.instance_seconds, 90);
  EXPECT_NEAR(d.cost, 0.09, 1e-12);
  EXPECT_EQ(d.requests, 2);
  EXPECT_EQ(d.prompt_tokens, 11);
  EXPECT_EQ(d.cold_starts, 1);
  EXPECT_EQ(d.peak_instances, 1);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 0);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 0);
  // Through version 3 too: the old requests have no key and were interactive.
  auto keys = ledger->usage_by_key(0, 1000, 1000);
  ASSERT_TRUE(keys.is_ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].api_key, "");
  EXPECT_EQ((*keys)[0].cls, "interactive");
  EXPECT_EQ((*keys)[0].requests, 2);
  EXPECT_NEAR((*keys)[0].cost_share, 0.09, 1e-12);

  // New runs in the migrated file get phases; the old id is free again.
  ASSERT_TRUE(ledger->instance_started("i2", "old", "gpu", 0.001, 0, 300, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("i2", S::kIdle, 305).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i2", 320).is_ok());
  d = only(report_ok(*ledger, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 110);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 5);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 15);
  ledger.reset();
  ledger = open_ok(path);  // a second open finds the current version and migrates nothing
  ASSERT_TRUE(ledger);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM schema_version"), "1");
  EXPECT_DOUBLE_EQ(only(report_ok(*ledger, 0, 1000, 1000)).idle_seconds, 15);
}

TEST(CostLedgerReadOnly, ReadsWithoutRecoveringOrWriting) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto writer = open_ok(path);
  ASSERT_TRUE(writer);
  ASSERT_TRUE(writer->instance_started("i1", "a", "gpu", 0.01, 0, 100, true).is_ok());
  ASSERT_TRUE(writer->instance_state("i1", S::kIdle, 110).is_ok());
  ASSERT_TRUE(writer->record_request("a", "", "interactive", 1, 2, 200, 0, 105).is_ok());
  ASSERT_TRUE(writer->heartbeat(130).is_ok());

  // The daemon still runs: a reader sees its instance live, up to now.
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  EXPECT_TRUE(reader->read_only());
  EXPECT_EQ(reader->recovered_on_open(), 0);
  DeploymentCost d = only(report_ok(*reader, 0, 1000, 135));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 35);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 25);
  EXPECT_EQ(d.requests, 1);
  // The writer's instance is still open: the reader closed nothing.
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instances WHERE stopped_at IS NULL"), "1");

  for (const core::Status& st :
       {reader->instance_started("i2", "a", "gpu", 0.01, 0, 140, false), reader->heartbeat(140),
        reader->instance_state("i1", S::kReady, 140), reader->instance_stopped("i1", 140),
        reader->record_request("a", "", "interactive", 1, 1, 200, 0, 140)}) {
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("read-only"), std::string::npos) << st.message();
  }
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM requests"), "1");
  EXPECT_EQ(query_text(path, "SELECT max(last_seen) FROM instances"), "130.0");

  // The writer goes on and the reader sees what it commits.
  ASSERT_TRUE(writer->instance_stopped("i1", 150).is_ok());
  EXPECT_DOUBLE_EQ(only(report_ok(*reader, 0, 1000, 1000)).instance_seconds, 50);
}

TEST(CostLedgerReadOnly, AStaleOpenInstanceEndsAtItsLastHeartbeat) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    auto writer = open_ok(path);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->instance_started("i1", "a", "gpu", 0.01, 0, 100, false).is_ok());
    ASSERT_TRUE(writer->instance_state("i1", S::kIdle, 105).is_ok());
    ASSERT_TRUE(writer->heartbeat(130).is_ok());
    // The daemon dies here.
  }
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  // Within the staleness bound the instance may still be live: counted up to now.
  EXPECT_DOUBLE_EQ(only(report_ok(*reader, 0, 1000, 130 + CostLedger::kStaleHeartbeatSeconds))
                       .instance_seconds,
                   30 + CostLedger::kStaleHeartbeatSeconds);
  // Past it, as the writer's recovery will bill it: up to the heartbeat.
  const DeploymentCost d = only(report_ok(*reader, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 30);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 25);
  EXPECT_EQ(d.peak_instances, 1);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instances WHERE stopped_at IS NULL"), "1");
  reader.reset();
  // The writer agrees when it reopens.
  auto writer = open_ok(path);
  ASSERT_TRUE(writer);
  EXPECT_EQ(writer->recovered_on_open(), 1);
  EXPECT_DOUBLE_EQ(only(report_ok(*writer, 0, 1000, 1000)).instance_seconds, 30);
}

TEST(CostLedgerReadOnly, OpensACleanlyClosedLedger) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    auto writer = open_ok(path);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->instance_started("i1", "a", "gpu", 0.01, 0, 0, false).is_ok());
    ASSERT_TRUE(writer->instance_stopped("i1", 10).is_ok());
  }
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));  // checkpointed away at close
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->schema_version(), CostLedger::kSchemaVersion);
  EXPECT_DOUBLE_EQ(only(report_ok(*reader, 0, 100, 100)).instance_seconds, 10);
  reader.reset();
  // Reading created no -wal or -shm file: another user reading the ledger must not leave
  // files the daemon cannot open.
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path + "-shm"));
}

TEST(CostLedgerReadOnly, ReadsAFileWhoseNameLooksLikeUriSyntax) {
  TempDir dir;
  const std::string path = dir.file("odd ?name#1%20.db");
  {
    auto writer = open_ok(path);
    ASSERT_TRUE(writer);
    ASSERT_TRUE(writer->record_request("a", "", "interactive", 1, 1, 200, 0, 5).is_ok());
    auto live_reader = open_ro_ok(path);  // with the writer attached
    ASSERT_TRUE(live_reader);
    EXPECT_EQ(only(report_ok(*live_reader, 0, 10, 10)).requests, 1);
  }
  auto reader = open_ro_ok(path);  // cleanly closed
  ASSERT_TRUE(reader);
  EXPECT_EQ(only(report_ok(*reader, 0, 10, 10)).requests, 1);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.file("")),
                          std::filesystem::directory_iterator()),
            1);  // the ledger alone: no stray file under a mangled name
}

TEST(CostLedgerReadOnly, ReadsAVersion1FileWithoutMigratingIt) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version1_ledger(path);
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->schema_version(), 1);
  // i2 is open with a stale heartbeat at 230.
  const DeploymentCost d = only(report_ok(*reader, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 90);
  EXPECT_EQ(d.requests, 2);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 0);
  EXPECT_EQ(query_text(path, "SELECT version FROM schema_version"), "1");
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'instance_phases'"),
            "0");
}

TEST(CostLedgerReadOnly, RefusesWhatIsNotALedger) {
  TempDir dir;
  const std::string missing = dir.file("nothing/ledger.db");
  auto r = CostLedger::open_read_only(missing);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(missing), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("does not exist"), std::string::npos) << r.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir.file("nothing")));  // nothing created

  EXPECT_FALSE(CostLedger::open_read_only("").is_ok());
  std::filesystem::create_directory(dir.file("a-dir"));
  EXPECT_FALSE(CostLedger::open_read_only(dir.file("a-dir")).is_ok());

  ASSERT_TRUE(exec_sql(dir.file("other.db"), "CREATE TABLE users (name TEXT)"));
  r = CostLedger::open_read_only(dir.file("other.db"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("not a cost ledger"), std::string::npos)
      << r.status().message();

  ASSERT_TRUE(exec_sql(dir.file("empty.db"), "PRAGMA user_version = 0"));
  r = CostLedger::open_read_only(dir.file("empty.db"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no cost ledger"), std::string::npos) << r.status().message();

  const std::string newer = dir.file("newer.db");
  ASSERT_TRUE(open_ok(newer));
  ASSERT_TRUE(exec_sql(newer, "UPDATE schema_version SET version = 99"));
  r = CostLedger::open_read_only(newer);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("newer"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace zs::platform

namespace zs::platform {
namespace {

// A real crash leaves the -wal file unmerged; the reader must see what it holds.
TEST(CostLedgerReadOnlyDeathTest, ReadsTheWalACrashLeftBehind) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  EXPECT_EXIT(
      {
        auto ledger = CostLedger::open(path);
        if (!ledger.is_ok()) _exit(2);
        if (!(*ledger)->instance_started("i1", "a", "gpu", 0.001, 0, 100, false).is_ok()) _exit(3);
        if (!(*ledger)->instance_state("i1", InstancePhase::kIdle, 110).is_ok()) _exit(4);
        if (!(*ledger)->heartbeat(130).is_ok()) _exit(5);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  ASSERT_TRUE(std::filesystem::exists(path + "-wal"));
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  const DeploymentCost d = only(report_ok(*reader, 0, 1000, 1000));
  EXPECT_DOUBLE_EQ(d.instance_seconds, 30);  // stale: up to the last heartbeat
  EXPECT_DOUBLE_EQ(d.idle_seconds, 20);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM instances WHERE stopped_at IS NULL"), "1");
}

}  // namespace
}  // namespace zs::platform
