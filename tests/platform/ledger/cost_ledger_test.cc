#include "platform/ledger/cost_ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ledger_test_util.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace ledger_test;
using zs::testing::TempDir;

std::vector<DeploymentCost> costs_ok(const CostLedger& ledger, double from, double to, double now) {
  auto c = ledger.costs(from, to, now);
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  return c.is_ok() ? std::move(c).value() : std::vector<DeploymentCost>{};
}

double total_ok(const CostLedger& ledger, double from, double to, double now) {
  auto t = ledger.total_cost(from, to, now);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  return t.is_ok() ? t.value() : -1;
}

TEST(CostLedger, MetersInstanceTimeOnAVirtualClock) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "llava", "gpu0", 0.001, 0, 100, false).is_ok());
  ASSERT_TRUE(ledger->heartbeat(130).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 160).is_ok());

  auto costs = costs_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_EQ(costs[0].deployment, "llava");
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 60);
  EXPECT_NEAR(costs[0].cost, 0.06, 1e-12);
  EXPECT_EQ(costs[0].requests, 0);
  EXPECT_EQ(costs[0].cost_per_request(), 0);
  EXPECT_NEAR(total_ok(*ledger, 0, 1000, 1000), 0.06, 1e-12);
}

TEST(CostLedger, ClipsInstanceTimeToTheWindow) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.001, 0, 100, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 160).is_ok());

  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 120, 140, 1000).at(0).instance_seconds, 20);
  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 0, 110, 1000).at(0).instance_seconds, 10);
  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 150, 1000, 1000).at(0).instance_seconds, 10);
  EXPECT_NEAR(total_ok(*ledger, 150, 1000, 1000), 0.01, 1e-12);
  EXPECT_TRUE(costs_ok(*ledger, 160, 300, 1000).empty());  // [from, to): the stop is outside
  EXPECT_TRUE(costs_ok(*ledger, 0, 100, 1000).empty());
  EXPECT_EQ(total_ok(*ledger, 200, 300, 1000), 0);
}

TEST(CostLedger, CountsARunningInstanceUpToNowAndTheWindowEnd) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 100, false).is_ok());
  ASSERT_TRUE(ledger->heartbeat(125).is_ok());

  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 0, 1000, 130).at(0).instance_seconds, 30);   // up to now
  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 0, 120, 130).at(0).instance_seconds, 20);    // up to `to`
  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 110, 1000, 130).at(0).instance_seconds, 20);
  EXPECT_TRUE(costs_ok(*ledger, 0, 1000, 90).empty());  // not started yet at `now`
  EXPECT_NEAR(total_ok(*ledger, 0, 1000, 130), 0.3, 1e-12);
}

TEST(CostLedger, SeparatesDeploymentsAndDevicesWithTheirPrices) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("a-gpu", "alpha", "h100", 0.002, 0, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_started("a-cpu", "alpha", "cpu", 0.0001, 0, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_started("b-gpu", "beta", "h100", 0.002, 0, 10, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b-gpu", 20).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("a-cpu", 50).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("a-gpu", 100).is_ok());
  // The same id started again later on a device with another price: each run keeps its price.
  ASSERT_TRUE(ledger->instance_started("b-gpu", "beta", "l4", 0.0005, 0, 200, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("b-gpu", 240).is_ok());

  auto costs = costs_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(costs.size(), 2u);
  EXPECT_EQ(costs[0].deployment, "alpha");
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 150);
  EXPECT_NEAR(costs[0].cost, 100 * 0.002 + 50 * 0.0001, 1e-12);
  EXPECT_EQ(costs[1].deployment, "beta");
  EXPECT_DOUBLE_EQ(costs[1].instance_seconds, 50);
  EXPECT_NEAR(costs[1].cost, 10 * 0.002 + 40 * 0.0005, 1e-12);
  EXPECT_NEAR(total_ok(*ledger, 0, 1000, 1000), 0.2 + 0.005 + 0.02 + 0.02, 1e-12);

  auto by_device = ledger->instance_costs(0, 1000, 1000);
  ASSERT_TRUE(by_device.is_ok()) << by_device.status().message();
  ASSERT_EQ(by_device->size(), 4u);
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"alpha", "cpu"}, {"alpha", "h100"}, {"beta", "h100"}, {"beta", "l4"}};
  const std::vector<double> seconds = {50, 100, 10, 40};
  const std::vector<double> cost = {0.005, 0.2, 0.02, 0.02};
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ((*by_device)[i].deployment, keys[i].first);
    EXPECT_EQ((*by_device)[i].device, keys[i].second);
    EXPECT_DOUBLE_EQ((*by_device)[i].instance_seconds, seconds[i]);
    EXPECT_NEAR((*by_device)[i].cost, cost[i], 1e-12);
  }
}

TEST(CostLedger, AggregatesRequestsAndTokensInTheWindow) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 0, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 100).is_ok());
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 10, 5, 200, 0.1, 10).is_ok());
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 20, 7, 200, 0, 50).is_ok());
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 30, 0, 500, 0, 99.5).is_ok());  // failures count too
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 1000, 1000, 200, 0, 100).is_ok());  // outside [0, 100)
  ASSERT_TRUE(ledger->record_request("b", "", "interactive", 3, 4, 429, 2.5, 60).is_ok());  // no instance time

  auto costs = costs_ok(*ledger, 0, 100, 1000);
  ASSERT_EQ(costs.size(), 2u);
  EXPECT_EQ(costs[0].deployment, "a");
  EXPECT_EQ(costs[0].requests, 3);
  EXPECT_EQ(costs[0].prompt_tokens, 60);
  EXPECT_EQ(costs[0].completion_tokens, 12);
  EXPECT_NEAR(costs[0].cost, 1.0, 1e-12);
  EXPECT_NEAR(costs[0].cost_per_request(), 1.0 / 3, 1e-12);
  EXPECT_EQ(costs[1].deployment, "b");
  EXPECT_EQ(costs[1].requests, 1);
  EXPECT_EQ(costs[1].prompt_tokens, 3);
  EXPECT_EQ(costs[1].completion_tokens, 4);
  EXPECT_EQ(costs[1].instance_seconds, 0);
  EXPECT_EQ(costs[1].cost_per_request(), 0);

  auto later = costs_ok(*ledger, 50, 200, 1000);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].requests, 3);  // t=50, 99.5, 100
  EXPECT_EQ(later[0].prompt_tokens, 1050);
}

TEST(CostLedger, CountsColdStartsByStartTime) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 10, true).is_ok());
  ASSERT_TRUE(ledger->instance_started("i2", "a", "gpu", 0.01, 0, 20, false).is_ok());  // pre-warm
  ASSERT_TRUE(ledger->instance_started("i3", "a", "gpu", 0.01, 0, 30, true).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i3", 30).is_ok());  // failed to start: no time, still cold
  ASSERT_TRUE(ledger->instance_started("i4", "b", "gpu", 0.01, 0, 50, true).is_ok());

  auto all = costs_ok(*ledger, 0, 100, 100);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].cold_starts, 2);
  EXPECT_EQ(all[1].cold_starts, 1);
  // i1 runs through [25, 100) but started before it: no cold start there.
  auto late = costs_ok(*ledger, 25, 100, 100);
  EXPECT_EQ(late.at(0).cold_starts, 1);
  EXPECT_DOUBLE_EQ(late.at(0).instance_seconds, 75 + 75);
}

TEST(CostLedger, RejectsInconsistentCalls) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.01, 0, 10, false).is_ok());
  auto dup = ledger->instance_started("i1", "a", "gpu", 0.01, 0, 11, false);
  EXPECT_FALSE(dup.is_ok());
  EXPECT_NE(dup.message().find("already open"), std::string::npos) << dup.message();
  auto unknown = ledger->instance_stopped("nope", 20);
  EXPECT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.message().find("nope"), std::string::npos) << unknown.message();
  ASSERT_TRUE(ledger->instance_stopped("i1", 20).is_ok());
  EXPECT_FALSE(ledger->instance_stopped("i1", 30).is_ok());  // twice
  EXPECT_FALSE(ledger->instance_started("i2", "a", "gpu", -1, 0, 10, false).is_ok());
  EXPECT_FALSE(ledger->instance_started("i2", "a", "gpu", NAN, 0, 10, false).is_ok());
  EXPECT_FALSE(ledger->instance_started("", "a", "gpu", 0.01, 0, 10, false).is_ok());
  EXPECT_FALSE(ledger->instance_started("i2", "a", "gpu", 0.01, 0, INFINITY, false).is_ok());
  EXPECT_FALSE(ledger->record_request("a", "", "interactive", -1, 0, 200, 0, 10).is_ok());
  EXPECT_FALSE(ledger->heartbeat(NAN).is_ok());
  EXPECT_FALSE(ledger->costs(100, 0, 100).is_ok());
  // A stop before the start never bills negative time.
  ASSERT_TRUE(ledger->instance_started("i3", "b", "gpu", 0.01, 0, 50, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i3", 40).is_ok());
  auto costs = costs_ok(*ledger, 0, 100, 100);
  ASSERT_EQ(costs.size(), 1u);  // b has no time and no cold start
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 10);
}

TEST(CostLedger, ACrashBillsUpToTheLastHeartbeatOnly) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    auto ledger = open_ok(path);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.001, 0, 100, true).is_ok());
    ASSERT_TRUE(ledger->instance_started("i2", "a", "gpu", 0.001, 0, 125, false).is_ok());
    ASSERT_TRUE(ledger->heartbeat(130).is_ok());
    ASSERT_TRUE(ledger->instance_started("i3", "a", "gpu", 0.001, 0, 135, false).is_ok());
    // Destroyed without stopping anything: the daemon died.
  }
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->recovered_on_open(), 3);
  // Reopened at t=500: i1 is billed 30 s (not 400), i2 5 s, i3 (never heartbeaten) nothing.
  auto costs = costs_ok(*ledger, 0, 1000, 500);
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 35);
  EXPECT_NEAR(costs[0].cost, 0.035, 1e-12);
  EXPECT_EQ(costs[0].cold_starts, 1);
  // They are closed for good: a heartbeat no longer moves them, and their ids are free again.
  ASSERT_TRUE(ledger->heartbeat(600).is_ok());
  EXPECT_DOUBLE_EQ(costs_ok(*ledger, 0, 1000, 700).at(0).instance_seconds, 35);
  EXPECT_FALSE(ledger->instance_stopped("i1", 600).is_ok());
  EXPECT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.001, 0, 600, false).is_ok());
  ledger.reset();
  EXPECT_EQ(open_ok(path)->recovered_on_open(), 1);
}

// A real crash: the process ends without destructors, leaving the WAL file unmerged.
TEST(CostLedgerDeathTest, AProcessExitWithoutCleanupLosesAtMostOneHeartbeat) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  EXPECT_EXIT(
      {
        auto ledger = CostLedger::open(path);
        if (!ledger.is_ok()) _exit(2);
        if (!(*ledger)->instance_started("i1", "a", "gpu", 0.001, 0, 100, false).is_ok()) _exit(3);
        if (!(*ledger)->record_request("a", "", "interactive", 1, 2, 200, 0, 110).is_ok()) _exit(4);
        if (!(*ledger)->heartbeat(130).is_ok()) _exit(5);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->recovered_on_open(), 1);
  auto costs = costs_ok(*ledger, 0, 1000, 500);
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 30);
  EXPECT_EQ(costs[0].requests, 1);
}

TEST(CostLedger, PersistsAcrossReopen) {
  TempDir dir;
  const std::string path = dir.file("state/ledger.db");  // the directory does not exist yet
  {
    auto ledger = open_ok(path);
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->instance_started("i1", "a", "gpu", 0.001, 0, 100, true).is_ok());
    ASSERT_TRUE(ledger->instance_stopped("i1", 160).is_ok());
    ASSERT_TRUE(ledger->record_request("a", "", "interactive", 11, 22, 200, 0, 120).is_ok());
  }
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->recovered_on_open(), 0);
  auto costs = costs_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_DOUBLE_EQ(costs[0].instance_seconds, 60);
  EXPECT_NEAR(costs[0].cost, 0.06, 1e-12);
  EXPECT_EQ(costs[0].requests, 1);
  EXPECT_EQ(costs[0].prompt_tokens, 11);
  EXPECT_EQ(costs[0].completion_tokens, 22);
  EXPECT_EQ(costs[0].cold_starts, 1);
  EXPECT_EQ(query_text(path, "SELECT group_concat(version) FROM schema_version", SQLITE_OPEN_READWRITE),
            std::to_string(CostLedger::kSchemaVersion));
}

TEST(CostLedger, UsesWalMode) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  ASSERT_TRUE(ledger->record_request("a", "", "interactive", 1, 1, 200, 0, 1).is_ok());
  EXPECT_EQ(query_text(path, "PRAGMA journal_mode", SQLITE_OPEN_READWRITE), "wal");
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));
}

TEST(CostLedger, ConcurrentWritersOnOneLedgerLoseNothing) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!ledger->instance_started(id, "d" + std::to_string(t), "gpu", 0.001, 0, i, i % 2 == 0).is_ok()) {
          ++failures[t];
        }
        if (!ledger->record_request("d" + std::to_string(t), "", "interactive", 1, 2, 200, 0, i).is_ok()) ++failures[t];
        if (!ledger->heartbeat(i).is_ok()) ++failures[t];
        if (!ledger->instance_stopped(id, i + 1).is_ok()) ++failures[t];
        if (!ledger->costs(0, 1e9, i).is_ok()) ++failures[t];  // readers interleave too
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  ledger.reset();

  auto reopened = open_ok(path);
  ASSERT_TRUE(reopened);
  auto costs = costs_ok(*reopened, 0, 1e9, 1e9);
  ASSERT_EQ(costs.size(), static_cast<size_t>(kThreads));
  for (const auto& d : costs) {
    EXPECT_EQ(d.requests, kPerThread) << d.deployment;
    EXPECT_EQ(d.prompt_tokens, kPerThread) << d.deployment;
    EXPECT_EQ(d.completion_tokens, 2 * kPerThread) << d.deployment;
    EXPECT_DOUBLE_EQ(d.instance_seconds, kPerThread) << d.deployment;
    EXPECT_EQ(d.cold_starts, kPerThread / 2) << d.deployment;
  }
}

TEST(CostLedger, ConcurrentWritersOnSeparateConnectionsLoseNothing) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250;
  // Opened before any writes: open() recovers instances, and these writers only add requests.
  std::vector<std::unique_ptr<CostLedger>> ledgers;
  for (int t = 0; t < kThreads; ++t) {
    ledgers.push_back(open_ok(path));
    ASSERT_TRUE(ledgers.back());
  }
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto st = ledgers[t]->record_request("shared", "", "interactive", 1, 1, 200, 0, t * 1000 + i);
        if (!st.is_ok()) {
          ++failures[t];
          ADD_FAILURE() << st.message();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  ledgers.clear();
  auto costs = costs_ok(*open_ok(path), 0, 1e9, 1e9);
  ASSERT_EQ(costs.size(), 1u);
  EXPECT_EQ(costs[0].requests, kThreads * kPerThread);
}

TEST(CostLedger, ACorruptFileIsAClearError) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 512; ++i) f << "this is not an SQLite database ";
  }
  auto ledger = CostLedger::open(path);
  ASSERT_FALSE(ledger.is_ok());
  const std::string& msg = ledger.status().message();
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a database"), std::string::npos) << msg;
}

TEST(CostLedger, AnotherSqliteDatabaseIsNotTakenForALedger) {
  TempDir dir;
  const std::string path = dir.file("other.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE users (name TEXT)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto ledger = CostLedger::open(path);
  ASSERT_FALSE(ledger.is_ok());
  EXPECT_NE(ledger.status().message().find("not a cost ledger"), std::string::npos)
      << ledger.status().message();
}

TEST(CostLedger, ANewerSchemaIsRefused) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  ASSERT_TRUE(open_ok(path));
  ASSERT_TRUE(exec_sql(path, "UPDATE schema_version SET version = 99"));
  auto ledger = CostLedger::open(path);
  ASSERT_FALSE(ledger.is_ok());
  EXPECT_NE(ledger.status().message().find("newer"), std::string::npos) << ledger.status().message();
}

TEST(CostLedger, AnUnusablePathIsAClearError) {
  TempDir dir;
  {
    std::ofstream f(dir.file("plain-file"));
    f << "x";
  }
  // A directory that cannot be created because a file is in the way (holds for root too).
  auto under_file = CostLedger::open(dir.file("plain-file/sub/ledger.db"));
  ASSERT_FALSE(under_file.is_ok());
  EXPECT_NE(under_file.status().message().find("plain-file"), std::string::npos)
      << under_file.status().message();
  auto in_file = CostLedger::open(dir.file("plain-file/ledger.db"));
  ASSERT_FALSE(in_file.is_ok());
  EXPECT_NE(in_file.status().message().find("not a directory"), std::string::npos)
      << in_file.status().message();
  // The path names a directory.
  std::filesystem::create_directory(dir.file("a-dir"));
  auto is_dir = CostLedger::open(dir.file("a-dir"));
  ASSERT_FALSE(is_dir.is_ok());
  EXPECT_NE(is_dir.status().message().find("directory"), std::string::npos)
      << is_dir.status().message();
  EXPECT_FALSE(CostLedger::open("").is_ok());
}

TEST(CostLedger, AWriteProtectedFileIsAClearError) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores file permissions";
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  ASSERT_TRUE(open_ok(path));
  std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                         std::filesystem::perms::group_read);
  auto ledger = CostLedger::open(path);
  ASSERT_FALSE(ledger.is_ok());
  EXPECT_NE(ledger.status().message().find(path), std::string::npos) << ledger.status().message();
  EXPECT_NE(ledger.status().message().find("read-only"), std::string::npos)
      << ledger.status().message();

  // A directory the ledger cannot create its file (or its -wal file) in.
  std::filesystem::create_directory(dir.file("locked"));
  std::filesystem::permissions(dir.file("locked"), std::filesystem::perms::owner_read |
                                                       std::filesystem::perms::owner_exec);
  auto locked = CostLedger::open(dir.file("locked/ledger.db"));
  ASSERT_FALSE(locked.is_ok());
  EXPECT_NE(locked.status().message().find(dir.file("locked/ledger.db")), std::string::npos)
      << locked.status().message();
  std::filesystem::permissions(dir.file("locked"), std::filesystem::perms::owner_all);
}

}  // namespace
}  // namespace zs::platform
