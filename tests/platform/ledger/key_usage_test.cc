// Usage per API key (schema version 3): recording the key and class of each request, sharing
// each deployment's instance cost among its keys, the 2 -> 3 migration, and reading version-2
// files without migrating them.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "platform/ledger/cost_ledger.h"
#include "ledger_test_util.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace ledger_test;
using zs::testing::TempDir;

std::vector<KeyUsage> usage_ok(const CostLedger& ledger, double from, double to, double now) {
  auto u = ledger.usage_by_key(from, to, now);
  EXPECT_TRUE(u.is_ok()) << u.status().message();
  return u.is_ok() ? std::move(u).value() : std::vector<KeyUsage>{};
}

double cost_of(const CostLedger& ledger, const std::string& deployment, double from, double to,
               double now) {
  auto c = ledger.costs(from, to, now);
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  if (c.is_ok())
    for (const DeploymentCost& d : *c)
      if (d.deployment == deployment) return d.cost;
  ADD_FAILURE() << "no deployment " << deployment;
  return -1;
}

double shares_of(const std::vector<KeyUsage>& usage, const std::string& deployment) {
  double sum = 0;
  for (const KeyUsage& u : usage)
    if (u.deployment == deployment) sum += u.cost_share;
  return sum;
}

// A version-2 ledger: deployment "old" ran [100, 200) at 0.002 (cost 0.2) and served three
// requests (30, 10 and 0 tokens); deployment "quiet" ran [100, 150) at 0.001 and served none.
void write_version2_ledger(const std::string& path) {
  ASSERT_TRUE(exec_sql(
      path, version2_schema() +
                "INSERT INTO instances (instance_id, deployment, device, price_per_second,"
                " started_at, last_seen, stopped_at, cold_start) VALUES"
                " ('i1', 'old', 'gpu', 0.002, 100, 200, 200, 1),"
                " ('q1', 'quiet', 'cpu', 0.001, 100, 150, 150, 0);"
                "INSERT INTO instance_phases (run, phase, started_at, ended_at) VALUES"
                " (1, 'starting', 100, 110), (1, 'ready', 110, 200);"
                "INSERT INTO requests (deployment, at, prompt_tokens, completion_tokens,"
                " http_status, queue_seconds) VALUES ('old', 120, 20, 10, 200, 0),"
                " ('old', 130, 6, 4, 200, 0), ('old', 140, 0, 0, 500, 0);"));
}

// One instance of `deployment` running [start, stop) at `price`.
void run_instance(CostLedger& ledger, const std::string& id, const std::string& deployment,
                  double price, double start, double stop) {
  ASSERT_TRUE(ledger.instance_started(id, deployment, "gpu", price, 0, start, false).is_ok());
  ASSERT_TRUE(ledger.instance_stopped(id, stop).is_ok());
}

void request(CostLedger& ledger, const std::string& deployment, const std::string& key,
             const std::string& cls, int64_t prompt, int64_t completion, double at) {
  const core::Status st = ledger.record_request(deployment, key, cls, prompt, completion, 200, 0, at);
  ASSERT_TRUE(st.is_ok()) << st.message();
}

TEST(KeyUsage, RecordsTheKeyAndClassOfEachRequest) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->schema_version(), CostLedger::kSchemaVersion);
  request(*ledger, "llava", "team-a", "batch", 7, 3, 10);
  request(*ledger, "llava", "", "interactive", 1, 1, 11);
  EXPECT_EQ(query_text(path, "SELECT api_key || '/' || class FROM requests WHERE at = 10"),
            "team-a/batch");
  EXPECT_EQ(query_text(path, "SELECT api_key || '/' || class FROM requests WHERE at = 11"),
            "/interactive");

  // A class the gateway does not have would become a group of its own: refused.
  for (const char* cls : {"", "Batch", "bulk"}) {
    const core::Status st = ledger->record_request("llava", "team-a", cls, 1, 1, 200, 0, 12);
    ASSERT_FALSE(st.is_ok()) << cls;
    EXPECT_NE(st.message().find("request class"), std::string::npos) << st.message();
  }
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM requests"), "2");
}

TEST(KeyUsage, RowsAreSortedByKeyDeploymentAndClass) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  request(*ledger, "qwen", "team-b", "interactive", 1, 0, 1);
  request(*ledger, "llava", "team-b", "interactive", 1, 0, 2);
  request(*ledger, "llava", "team-a", "interactive", 1, 0, 3);
  request(*ledger, "llava", "team-a", "batch", 1, 0, 4);
  request(*ledger, "llava", "team-a", "batch", 2, 5, 5);
  request(*ledger, "qwen", "", "interactive", 1, 0, 6);

  const auto usage = usage_ok(*ledger, 0, 100, 100);
  const std::vector<std::vector<std::string>> expected = {
      {"", "qwen", "interactive"},         {"team-a", "llava", "batch"},
      {"team-a", "llava", "interactive"},  {"team-b", "llava", "interactive"},
      {"team-b", "qwen", "interactive"}};
  ASSERT_EQ(usage.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(usage[i].api_key, expected[i][0]) << i;
    EXPECT_EQ(usage[i].deployment, expected[i][1]) << i;
    EXPECT_EQ(usage[i].cls, expected[i][2]) << i;
  }
  EXPECT_EQ(usage[1].requests, 2);
  EXPECT_EQ(usage[1].prompt_tokens, 3);
  EXPECT_EQ(usage[1].completion_tokens, 5);
  // No instance time anywhere: nothing to share.
  for (const KeyUsage& u : usage) EXPECT_EQ(u.cost_share, 0) << u.api_key << " " << u.deployment;
}

TEST(KeyUsage, SharesADeploymentsCostByTokens) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  run_instance(*ledger, "i1", "llava", 0.001, 0, 800);  // 0.8, idle time included
  // 3:1 in tokens, 1:3 in requests: the split follows the tokens.
  request(*ledger, "llava", "team-a", "interactive", 200, 100, 10);
  request(*ledger, "llava", "team-b", "interactive", 40, 10, 20);
  request(*ledger, "llava", "team-b", "interactive", 30, 0, 30);
  request(*ledger, "llava", "team-b", "interactive", 10, 10, 40);

  const auto usage = usage_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].api_key, "team-a");
  EXPECT_EQ(usage[0].requests, 1);
  EXPECT_EQ(usage[0].prompt_tokens + usage[0].completion_tokens, 300);
  EXPECT_NEAR(usage[0].cost_share, 0.75 * 0.8, 1e-12);
  EXPECT_EQ(usage[1].api_key, "team-b");
  EXPECT_EQ(usage[1].requests, 3);
  EXPECT_EQ(usage[1].prompt_tokens + usage[1].completion_tokens, 100);
  EXPECT_NEAR(usage[1].cost_share, 0.25 * 0.8, 1e-12);
  EXPECT_NEAR(shares_of(usage, "llava"), cost_of(*ledger, "llava", 0, 1000, 1000), 1e-9);
}

TEST(KeyUsage, SharesSumToTheDeploymentsCost) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  // Prices and token counts that do not divide evenly, on two devices, one run still open.
  ASSERT_TRUE(ledger->instance_started("i1", "llava", "h100", 0.0013, 0, 3, false).is_ok());
  run_instance(*ledger, "i2", "llava", 0.00071, 17, 311);
  int64_t tokens = 1;
  for (const char* key : {"a", "b", "c", "d", "e", "f", "g"}) {
    for (const char* cls : {"interactive", "batch"}) {
      request(*ledger, "llava", key, cls, tokens, tokens * 3 % 11, 20 + static_cast<double>(tokens));
      tokens = tokens * 7 % 97 + 1;
    }
  }
  const auto usage = usage_ok(*ledger, 0, 1000, 500);
  ASSERT_EQ(usage.size(), 14u);
  const double cost = cost_of(*ledger, "llava", 0, 1000, 500);
  EXPECT_NEAR(cost, 497 * 0.0013 + 294 * 0.00071, 1e-12);
  EXPECT_NEAR(shares_of(usage, "llava"), cost, 1e-9);
  for (const KeyUsage& u : usage) EXPECT_GT(u.cost_share, 0) << u.api_key << " " << u.cls;
}

TEST(KeyUsage, ADeploymentWithoutTokensSplitsByRequests) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  run_instance(*ledger, "i1", "embed", 0.01, 0, 40);  // 0.4
  request(*ledger, "embed", "x", "interactive", 0, 0, 1);
  for (double at : {2, 3, 4}) request(*ledger, "embed", "y", "batch", 0, 0, at);
  // Tokens elsewhere do not count here.
  run_instance(*ledger, "i2", "llava", 0.001, 0, 100);
  request(*ledger, "llava", "x", "interactive", 5, 5, 5);

  const auto usage = usage_ok(*ledger, 0, 100, 100);
  ASSERT_EQ(usage.size(), 3u);
  EXPECT_EQ(usage[0].api_key, "x");
  EXPECT_EQ(usage[0].deployment, "embed");
  EXPECT_NEAR(usage[0].cost_share, 0.1, 1e-12);
  EXPECT_EQ(usage[1].deployment, "llava");
  EXPECT_NEAR(usage[1].cost_share, 0.1, 1e-12);  // the only key on llava
  EXPECT_EQ(usage[2].api_key, "y");
  EXPECT_EQ(usage[2].cls, "batch");
  EXPECT_EQ(usage[2].requests, 3);
  EXPECT_NEAR(usage[2].cost_share, 0.3, 1e-12);
  EXPECT_NEAR(shares_of(usage, "embed"), 0.4, 1e-9);
}

TEST(KeyUsage, OnlyTheWindowCounts) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  run_instance(*ledger, "i1", "llava", 0.01, 0, 100);
  request(*ledger, "llava", "team-a", "interactive", 900, 100, 10);  // before [50, 100)
  request(*ledger, "llava", "team-a", "interactive", 5, 5, 60);
  request(*ledger, "llava", "team-b", "interactive", 20, 10, 70);
  request(*ledger, "llava", "team-c", "interactive", 50, 50, 100);  // at the end: outside

  // [50, 100): half the instance time (0.5), shared 10:30.
  auto usage = usage_ok(*ledger, 50, 100, 1000);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].api_key, "team-a");
  EXPECT_EQ(usage[0].requests, 1);
  EXPECT_EQ(usage[0].prompt_tokens, 5);
  EXPECT_NEAR(usage[0].cost_share, 0.5 * 10 / 40, 1e-12);
  EXPECT_EQ(usage[1].api_key, "team-b");
  EXPECT_NEAR(usage[1].cost_share, 0.5 * 30 / 40, 1e-12);

  // [0, 100): the whole run (1.0), shared 1010:30.
  usage = usage_ok(*ledger, 0, 100, 1000);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].requests, 2);
  EXPECT_NEAR(usage[0].cost_share, 1010.0 / 1040, 1e-12);
  EXPECT_NEAR(usage[1].cost_share, 30.0 / 1040, 1e-12);

  // [100, 200): team-c's request and no instance time: counted, nothing to share.
  usage = usage_ok(*ledger, 100, 200, 1000);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].api_key, "team-c");
  EXPECT_EQ(usage[0].requests, 1);
  EXPECT_EQ(usage[0].cost_share, 0);

  EXPECT_TRUE(usage_ok(*ledger, 500, 600, 1000).empty());
  EXPECT_FALSE(ledger->usage_by_key(100, 50, 1000).is_ok());  // ends before it starts
}

TEST(KeyUsage, ADeploymentNobodyUsedIsInNoRow) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  run_instance(*ledger, "i1", "warm", 0.01, 0, 100);
  run_instance(*ledger, "i2", "llava", 0.01, 0, 10);
  request(*ledger, "llava", "team-a", "interactive", 1, 1, 5);
  const auto usage = usage_ok(*ledger, 0, 100, 100);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].deployment, "llava");
  EXPECT_NEAR(usage[0].cost_share, 0.1, 1e-12);
}

TEST(KeyUsage, CostsJsonListsTheKeys) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.db"));
  ASSERT_TRUE(ledger);
  run_instance(*ledger, "i1", "llava", 0.001, 0, 800);
  request(*ledger, "llava", "team-a", "interactive", 200, 100, 10);
  request(*ledger, "llava", "team-b", "batch", 60, 40, 20);
  auto text = ledger->costs_json(0, 1000, 1000);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  const auto j = nlohmann::json::parse(*text);
  ASSERT_EQ(j["keys"].size(), 2u) << *text;
  const auto& a = j["keys"][0];
  EXPECT_EQ(a["api_key"], "team-a");
  EXPECT_EQ(a["deployment"], "llava");
  EXPECT_EQ(a["class"], "interactive");
  EXPECT_EQ(a["requests"], 1);
  EXPECT_EQ(a["prompt_tokens"], 200);
  EXPECT_EQ(a["completion_tokens"], 100);
  EXPECT_NEAR(a["cost_share"].get<double>(), 0.6, 1e-12);
  const auto& b = j["keys"][1];
  EXPECT_EQ(b["api_key"], "team-b");
  EXPECT_EQ(b["class"], "batch");
  EXPECT_NEAR(b["cost_share"].get<double>(), 0.2, 1e-12);
  EXPECT_NEAR(j["total_cost"].get<double>(), 0.8, 1e-12);
}

TEST(KeyUsage, MigratesAVersion2File) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version2_ledger(path);
  ASSERT_EQ(query_text(path, "SELECT version FROM schema_version"), "2");

  auto ledger = open_ok(path);
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->schema_version(), CostLedger::kSchemaVersion);
  EXPECT_EQ(query_text(path, "SELECT group_concat(version) FROM schema_version"),
            std::to_string(CostLedger::kSchemaVersion));
  // The old rows take the defaults.
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM requests WHERE api_key = '' AND class = 'interactive'"),
            "3");
  // Nothing else changed: the phases and costs of version 2 read as before.
  auto report = ledger->report(0, 1000, 1000);
  ASSERT_TRUE(report.is_ok()) << report.status().message();
  ASSERT_EQ(report->deployments.size(), 2u);
  EXPECT_NEAR(report->deployments[0].cost, 0.2, 1e-12);
  EXPECT_DOUBLE_EQ(report->deployments[0].starting_seconds, 10);
  EXPECT_EQ(report->deployments[0].requests, 3);

  auto usage = usage_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(usage.size(), 1u);  // "quiet" served nobody
  EXPECT_EQ(usage[0].api_key, "");
  EXPECT_EQ(usage[0].deployment, "old");
  EXPECT_EQ(usage[0].cls, "interactive");
  EXPECT_EQ(usage[0].requests, 3);
  EXPECT_EQ(usage[0].prompt_tokens, 26);
  EXPECT_NEAR(usage[0].cost_share, 0.2, 1e-12);

  // New requests carry their key next to the old keyless ones: 40 old tokens, 120 new.
  request(*ledger, "old", "team-a", "batch", 100, 20, 150);
  usage = usage_ok(*ledger, 0, 1000, 1000);
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].api_key, "");
  EXPECT_NEAR(usage[0].cost_share, 0.2 * 40 / 160, 1e-12);
  EXPECT_EQ(usage[1].api_key, "team-a");
  EXPECT_EQ(usage[1].cls, "batch");
  EXPECT_NEAR(usage[1].cost_share, 0.2 * 120 / 160, 1e-12);

  ledger.reset();
  ledger = open_ok(path);  // a second open finds the current version and migrates nothing
  ASSERT_TRUE(ledger);
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM schema_version"), "1");
  EXPECT_EQ(usage_ok(*ledger, 0, 1000, 1000).size(), 2u);
}

TEST(KeyUsage, ReadsAVersion2FileWithoutMigratingIt) {
  TempDir dir;
  const std::string path = dir.file("ledger.db");
  write_version2_ledger(path);
  auto reader = open_ro_ok(path);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->schema_version(), 2);

  const auto usage = usage_ok(*reader, 0, 1000, 1000);
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].api_key, "");
  EXPECT_EQ(usage[0].deployment, "old");
  EXPECT_EQ(usage[0].cls, "interactive");
  EXPECT_EQ(usage[0].requests, 3);
  EXPECT_EQ(usage[0].completion_tokens, 14);
  EXPECT_NEAR(usage[0].cost_share, 0.2, 1e-12);
  // A window with only the zero-token request: shared by requests, here all of it to one key.
  const auto late = usage_ok(*reader, 135, 200, 1000);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].requests, 1);
  EXPECT_NEAR(late[0].cost_share, 0.002 * 65, 1e-12);

  auto text = reader->costs_json(0, 1000, 1000);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  EXPECT_EQ(nlohmann::json::parse(*text)["keys"][0]["class"], "interactive");

  EXPECT_FALSE(reader->record_request("old", "team-a", "batch", 1, 1, 200, 0, 300).is_ok());
  EXPECT_EQ(query_text(path, "SELECT version FROM schema_version"), "2");
  EXPECT_EQ(query_text(path, "SELECT count(*) FROM pragma_table_info('requests') WHERE name = 'api_key'"),
            "0");
}

}  // namespace
}  // namespace zs::platform
