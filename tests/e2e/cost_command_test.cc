// `zeroserve cost` as a user runs it: a ledger written through the library, read by the real
// binary in each output format; and per API key, from a ledger `zeroserve serve` wrote.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "e2e/serve_fixture.h"
#include "platform/ledger/cost_ledger.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"

namespace zs {
namespace {

using nlohmann::json;
using platform::CostLedger;
using platform::InstancePhase;
using zs::testing::run_command;
using zs::testing::shell_quote;
using zs::testing::zeroserve;

constexpr double kT0 = 1767600000;  // 2026-01-05T08:00:00Z
constexpr const char* kWindow = " --since 2026-01-05T08:00:00Z --until 2026-01-05T09:00:00Z";

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const auto zs_st_ = (expr);                             \
    ASSERT_TRUE(zs_st_.is_ok()) << #expr << ": " << zs_st_.message(); \
  } while (0)

// Two deployments in the hour from kT0, every instance stopped:
//   llava (0.001/s): i1 [0, 600) cold, i2 [300, 500); 800 instance-s, peak 2, idle 290 s,
//                    starting 30 s, 4 requests.
//   qwen (0.0005/s): q1 [1000, 1300) cold; 300 instance-s, peak 1, idle 0, 2 requests.
void write_ledger(const std::string& path) {
  auto ledger_or = CostLedger::open(path);
  ASSERT_TRUE(ledger_or.is_ok()) << ledger_or.status().message();
  auto& l = *ledger_or.value();
  ASSERT_OK(l.instance_started("i1", "llava", "gpu0", 0.001, 0, kT0, true));
  ASSERT_OK(l.instance_state("i1", InstancePhase::kIdle, kT0 + 20));
  ASSERT_OK(l.instance_state("i1", InstancePhase::kReady, kT0 + 100));
  ASSERT_OK(l.instance_started("i2", "llava", "gpu0", 0.001, 0, kT0 + 300, false));
  ASSERT_OK(l.instance_state("i2", InstancePhase::kReady, kT0 + 310));
  ASSERT_OK(l.instance_state("i1", InstancePhase::kIdle, kT0 + 400));
  ASSERT_OK(l.instance_state("i2", InstancePhase::kIdle, kT0 + 480));
  ASSERT_OK(l.instance_state("i2", InstancePhase::kDraining, kT0 + 500));
  ASSERT_OK(l.instance_stopped("i2", kT0 + 500));
  ASSERT_OK(l.instance_state("i1", InstancePhase::kDraining, kT0 + 590));
  ASSERT_OK(l.instance_stopped("i1", kT0 + 600));
  for (double at : {kT0 + 100, kT0 + 200, kT0 + 350, kT0 + 420}) {
    ASSERT_OK(l.record_request("llava", "", "interactive", 100, 25, 200, 0.5, at));
  }
  ASSERT_OK(l.instance_started("q1", "qwen", "cpu0", 0.0005, 0, kT0 + 1000, true));
  ASSERT_OK(l.instance_state("q1", InstancePhase::kReady, kT0 + 1030));
  ASSERT_OK(l.instance_stopped("q1", kT0 + 1300));
  ASSERT_OK(l.record_request("qwen", "", "interactive", 10, 5, 200, 30, kT0 + 1030));
  ASSERT_OK(l.record_request("qwen", "", "interactive", 10, 5, 500, 0, kT0 + 1100));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

class CostCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    ledger_ = dir_.file("state/zeroserve/ledger.sqlite");
    write_ledger(ledger_);
  }
  zs::testing::CommandResult cost(const std::string& args) {
    return run_command(zeroserve() + " cost --ledger " + shell_quote(ledger_) + args + " 2>&1");
  }
  zs::testing::TempDir dir_;
  std::string ledger_;
};

TEST_F(CostCommand, JsonHasEveryFigure) {
  auto r = cost(std::string(kWindow) + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["from"], kT0);
  EXPECT_EQ(j["to"], kT0 + 3600);
  EXPECT_EQ(j["from_utc"], "2026-01-05T08:00:00Z");
  EXPECT_EQ(j["ledger"], ledger_);
  ASSERT_EQ(j["deployments"].size(), 2u);
  const json& llava = j["deployments"][0];
  EXPECT_EQ(llava["deployment"], "llava");
  EXPECT_DOUBLE_EQ(llava["instance_seconds"].get<double>(), 800);
  EXPECT_NEAR(llava["cost"].get<double>(), 0.8, 1e-9);
  EXPECT_EQ(llava["requests"], 4);
  EXPECT_EQ(llava["prompt_tokens"], 400);
  EXPECT_EQ(llava["completion_tokens"], 100);
  EXPECT_NEAR(llava["cost_per_1k_requests"].get<double>(), 200, 1e-9);
  EXPECT_EQ(llava["cold_starts"], 1);
  EXPECT_DOUBLE_EQ(llava["starting_seconds"].get<double>(), 30);
  EXPECT_DOUBLE_EQ(llava["idle_seconds"].get<double>(), 290);
  EXPECT_NEAR(llava["idle_share"].get<double>(), 290.0 / 800, 1e-12);
  EXPECT_EQ(llava["peak_instances"], 2);
  EXPECT_NEAR(llava["always_on_cost"].get<double>(), 2 * 3600 * 0.001, 1e-9);
  EXPECT_NEAR(llava["saving"].get<double>(), 7.2 - 0.8, 1e-9);
  const json& qwen = j["deployments"][1];
  EXPECT_EQ(qwen["deployment"], "qwen");
  EXPECT_NEAR(qwen["cost"].get<double>(), 0.15, 1e-9);
  EXPECT_EQ(qwen["requests"], 2);
  EXPECT_EQ(qwen["peak_instances"], 1);
  EXPECT_NEAR(qwen["always_on_cost"].get<double>(), 1.8, 1e-9);
  const json& total = j["total"];
  EXPECT_NEAR(total["cost"].get<double>(), 0.95, 1e-9);
  EXPECT_EQ(total["requests"], 6);
  EXPECT_EQ(total["cold_starts"], 2);
  EXPECT_EQ(total["peak_instances"], 3);
  EXPECT_NEAR(total["always_on_cost"].get<double>(), 9.0, 1e-9);
  EXPECT_NEAR(total["saving"].get<double>(), 8.05, 1e-9);
  // Reading a ledger no daemon holds leaves no -wal/-shm files behind.
  EXPECT_FALSE(std::filesystem::exists(ledger_ + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(ledger_ + "-shm"));
}

TEST_F(CostCommand, CsvHasAHeaderARowPerDeploymentAndATotal) {
  auto r = cost(std::string(kWindow) + " --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = split(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  const auto header = split(lines[0], ',');
  EXPECT_EQ(lines[0],
            "deployment,instance_seconds,cost,requests,prompt_tokens,completion_tokens,"
            "cost_per_1k_requests,cold_starts,starting_seconds,idle_seconds,idle_share,"
            "peak_instances,always_on_cost,saving,busy_seconds,sleeping_seconds");
  auto field = [&](const std::string& line, const std::string& name) {
    const auto cells = split(line, ',');
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i)
      if (header[i] == name) return cells[i];
    return std::string("?");
  };
  EXPECT_EQ(field(lines[1], "deployment"), "llava");
  EXPECT_EQ(field(lines[1], "instance_seconds"), "800");
  EXPECT_NEAR(std::stod(field(lines[1], "cost")), 0.8, 1e-9);
  EXPECT_EQ(field(lines[1], "requests"), "4");
  EXPECT_EQ(field(lines[1], "idle_share"), "0.3625");
  EXPECT_EQ(field(lines[1], "peak_instances"), "2");
  EXPECT_EQ(field(lines[1], "busy_seconds"), "470");  // i1 [100, 400), i2 [310, 480)
  EXPECT_EQ(field(lines[1], "sleeping_seconds"), "0");
  EXPECT_NEAR(std::stod(field(lines[1], "always_on_cost")), 7.2, 1e-9);
  EXPECT_EQ(field(lines[2], "deployment"), "qwen");
  EXPECT_EQ(field(lines[2], "cold_starts"), "1");
  EXPECT_EQ(field(lines[3], "deployment"), "TOTAL");
  EXPECT_NEAR(std::stod(field(lines[3], "saving")), 8.05, 1e-9);
}

TEST_F(CostCommand, TableShowsEachDeploymentAndTheTotal) {
  auto r = cost(kWindow);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("cost from 2026-01-05T08:00:00Z to 2026-01-05T09:00:00Z (1h 0m)"),
            std::string::npos) << r.out;
  for (const char* header : {"DEPLOYMENT", "INSTANCE-S", "COST/1K-REQ", "COLD-STARTS", "IDLE",
                             "PEAK", "ALWAYS-ON", "SAVING"}) {
    EXPECT_NE(r.out.find(header), std::string::npos) << header << "\n" << r.out;
  }
  // The first llava and TOTAL lines are the cost table's; the phase table follows.
  std::string llava, total;
  for (const auto& line : split(r.out, '\n')) {
    if (line.rfind("llava", 0) == 0 && llava.empty()) llava = line;
    if (line.rfind("TOTAL", 0) == 0 && total.empty()) total = line;
  }
  ASSERT_FALSE(llava.empty()) << r.out;
  for (const char* cell : {"800.0", "0.8000", "200.0000", "36.2%", "7.2000", "6.4000 (89%)"}) {
    EXPECT_NE(llava.find(cell), std::string::npos) << cell << " in: " << llava;
  }
  ASSERT_FALSE(total.empty()) << r.out;
  for (const char* cell : {"1100.0", "0.9500", "9.0000", "8.0500 (89%)"}) {
    EXPECT_NE(total.find(cell), std::string::npos) << cell << " in: " << total;
  }
}

// The table's second part: instance seconds per phase for each deployment.
TEST_F(CostCommand, TableShowsWhereTheInstanceTimeWent) {
  auto r = cost(kWindow);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* header : {"BUSY-S", "IDLE-S", "SLEEPING-S", "STARTING-S"}) {
    EXPECT_NE(r.out.find(header), std::string::npos) << header << "\n" << r.out;
  }
  std::vector<std::string> llava;
  for (const auto& line : split(r.out, '\n'))
    if (line.rfind("llava", 0) == 0) llava.push_back(line);
  ASSERT_EQ(llava.size(), 2u) << r.out;
  // INSTANCE-S, BUSY-S, IDLE-S, SLEEPING-S, STARTING-S.
  std::vector<std::string> cells;
  std::stringstream ss(llava[1]);
  for (std::string c; ss >> c;) cells.push_back(c);
  EXPECT_EQ(cells, (std::vector<std::string>{"llava", "800.0", "470.0", "290.0", "0.0", "30.0"}))
      << llava[1];
}

TEST_F(CostCommand, TimesInEveryForm) {
  // Unix time and an ISO time with an offset name the same window as kWindow.
  auto a = cost(" --since 1767600000 --until 2026-01-05T10:00:00+01:00 --format json");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(json::parse(a.out)["to"], kT0 + 3600);
  EXPECT_NEAR(json::parse(a.out)["total"]["always_on_cost"].get<double>(), 9.0, 1e-9);
  // Without --since the window starts at the first record.
  auto b = cost(" --until 2026-01-05T09:00:00Z --format json");
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_EQ(json::parse(b.out)["from"], kT0);
  // A window that clips runs: [08:05, 08:10) is [300, 600) of the hour.
  auto c = cost(" --since 2026-01-05T08:05:00Z --until 2026-01-05T08:10:00Z --format json");
  ASSERT_EQ(c.exit_code, 0) << c.out;
  const json d = json::parse(c.out)["deployments"];
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0]["instance_seconds"].get<double>(), 300 + 200);  // i1, i2
  EXPECT_DOUBLE_EQ(d[0]["idle_seconds"].get<double>(), 190 + 20);
  EXPECT_DOUBLE_EQ(d[0]["starting_seconds"].get<double>(), 10);  // i2 [300, 310)
  EXPECT_EQ(d[0]["peak_instances"], 2);
  EXPECT_EQ(d[0]["cold_starts"], 0);  // i1 started before the window
  // Date only: midnight UTC.
  auto e = cost(" --since 2026-01-05 --until 2026-01-06 --format json");
  ASSERT_EQ(e.exit_code, 0) << e.out;
  EXPECT_EQ(json::parse(e.out)["from"], kT0 - 8 * 3600);
}

// A deployment whose instance slept: its sleeping seconds cost the sleep price, and every
// format shows them.
TEST(CostCommandSleep, ShowsSleepingSecondsAndBillsThemAtTheSleepPrice) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("ledger.sqlite");
  {
    // s1 at 0.01/s, asleep at 0.001/s: starting [0, 10), ready [10, 60), idle [60, 100),
    // sleeping [100, 1000), ready [1000, 1100), stopped at 1100.
    auto l = CostLedger::open(path);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    ASSERT_OK((*l)->instance_started("s1", "sleepy", "gpu0", 0.01, 0.001, kT0, true));
    ASSERT_OK((*l)->instance_state("s1", InstancePhase::kReady, kT0 + 10));
    ASSERT_OK((*l)->instance_state("s1", InstancePhase::kIdle, kT0 + 60));
    ASSERT_OK((*l)->instance_state("s1", InstancePhase::kSleeping, kT0 + 100));
    ASSERT_OK((*l)->instance_state("s1", InstancePhase::kReady, kT0 + 1000));
    ASSERT_OK((*l)->instance_stopped("s1", kT0 + 1100));
    ASSERT_OK((*l)->record_request("sleepy", "", "interactive", 10, 10, 200, 0, kT0 + 20));
  }
  const double cost = 1100 * 0.01 - 900 * (0.01 - 0.001);
  const std::string base = zeroserve() + " cost --ledger " + shell_quote(path) + kWindow;

  auto js = run_command(base + " --format json");
  ASSERT_EQ(js.exit_code, 0) << js.out;
  const json d = json::parse(js.out)["deployments"][0];
  EXPECT_DOUBLE_EQ(d["instance_seconds"].get<double>(), 1100);
  EXPECT_DOUBLE_EQ(d["sleeping_seconds"].get<double>(), 900);
  EXPECT_DOUBLE_EQ(d["busy_seconds"].get<double>(), 150);
  EXPECT_DOUBLE_EQ(d["idle_seconds"].get<double>(), 40);
  EXPECT_DOUBLE_EQ(d["starting_seconds"].get<double>(), 10);
  EXPECT_NEAR(d["cost"].get<double>(), cost, 1e-9);
  EXPECT_NEAR(d["always_on_cost"].get<double>(), 3600 * 0.01, 1e-9);  // never asleep

  auto csv = run_command(base + " --format csv");
  ASSERT_EQ(csv.exit_code, 0) << csv.out;
  const auto lines = split(csv.out, '\n');
  ASSERT_EQ(lines.size(), 3u) << csv.out;
  const auto header = split(lines[0], ',');
  const auto row = split(lines[1], ',');
  ASSERT_EQ(header.size(), row.size()) << csv.out;
  EXPECT_EQ(header.back(), "sleeping_seconds");
  EXPECT_EQ(row.back(), "900");

  auto table = run_command(base);
  ASSERT_EQ(table.exit_code, 0) << table.out;
  std::vector<std::string> rows;
  for (const auto& line : split(table.out, '\n'))
    if (line.rfind("sleepy", 0) == 0) rows.push_back(line);
  ASSERT_EQ(rows.size(), 2u) << table.out;
  char cost_text[32];
  std::snprintf(cost_text, sizeof cost_text, "%.4f", cost);
  EXPECT_NE(rows[0].find(cost_text), std::string::npos) << rows[0];
  std::vector<std::string> cells;
  std::stringstream ss(rows[1]);
  for (std::string c; ss >> c;) cells.push_back(c);
  EXPECT_EQ(cells, (std::vector<std::string>{"sleepy", "1100.0", "150.0", "40.0", "900.0", "10.0"}))
      << rows[1];
}

TEST(CostCommandRelative, DurationsMeanThatLongAgo) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("ledger.sqlite");
  const double now = unix_now();
  {
    auto l = CostLedger::open(path);
    ASSERT_TRUE(l.is_ok()) << l.status().message();
    ASSERT_OK((*l)->instance_started("r1", "recent", "gpu0", 0.01, 0, now - 7200, true));
    ASSERT_OK((*l)->instance_stopped("r1", now - 5400));
    ASSERT_OK((*l)->record_request("recent", "", "interactive", 1, 1, 200, 0, now - 600));
  }
  auto hour = run_command(zeroserve() + " cost --ledger " + shell_quote(path) + " --since 1h --format json");
  ASSERT_EQ(hour.exit_code, 0) << hour.out;
  json j = json::parse(hour.out);
  ASSERT_EQ(j["deployments"].size(), 1u);
  EXPECT_EQ(j["deployments"][0]["requests"], 1);
  EXPECT_DOUBLE_EQ(j["deployments"][0]["instance_seconds"].get<double>(), 0);
  auto three = run_command(zeroserve() + " cost --ledger " + shell_quote(path) + " --since 3h --until 30m --format json");
  ASSERT_EQ(three.exit_code, 0) << three.out;
  j = json::parse(three.out);
  EXPECT_NEAR(j["deployments"][0]["instance_seconds"].get<double>(), 1800, 1e-3);
  EXPECT_EQ(j["deployments"][0]["requests"], 0);  // 10 minutes ago is after --until 30m
  EXPECT_NEAR(j["to"].get<double>(), now - 1800, 60);
}

TEST_F(CostCommand, FindsTheLedgerInTheStateDirectory) {
  const std::string state = dir_.file("state/zeroserve");
  auto by_flag = run_command(zeroserve() + " cost --state-dir " + shell_quote(state) + kWindow + " --format csv");
  ASSERT_EQ(by_flag.exit_code, 0) << by_flag.out;
  EXPECT_NE(by_flag.out.find("\nllava,"), std::string::npos) << by_flag.out;
  // The daemon's default: $XDG_STATE_HOME/zeroserve/ledger.sqlite.
  auto by_env = run_command("XDG_STATE_HOME=" + shell_quote(dir_.file("state")) + " " + zeroserve() +
                            " cost --format csv" + kWindow);
  ASSERT_EQ(by_env.exit_code, 0) << by_env.out;
  EXPECT_EQ(by_env.out, by_flag.out);
}

TEST_F(CostCommand, ReadingLeavesARunningDaemonsInstancesAlone) {
  // A writer (the daemon) holds the ledger with a live instance while the command reads.
  auto writer = CostLedger::open(ledger_);
  ASSERT_TRUE(writer.is_ok()) << writer.status().message();
  const double now = unix_now();
  ASSERT_OK((*writer)->instance_started("live", "llava", "gpu0", 0.001, 0, now - 100, false));
  ASSERT_OK((*writer)->instance_state("live", InstancePhase::kIdle, now - 90));
  ASSERT_OK((*writer)->heartbeat(now - 2));
  auto r = cost(" --since 10m --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["deployments"].size(), 1u);
  EXPECT_NEAR(j["deployments"][0]["instance_seconds"].get<double>(), 100, 30);  // up to now
  EXPECT_NEAR(j["deployments"][0]["idle_seconds"].get<double>(), 90, 30);
  // Had the command recovered the file, this instance would be closed already.
  EXPECT_TRUE((*writer)->instance_stopped("live", unix_now()).is_ok());
}

TEST_F(CostCommand, BadArgumentsAreClearErrors) {
  auto r = cost(" --since yesterday");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--since: cannot read 'yesterday' as a time"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2026-11-25T08:00:00Z"), std::string::npos) << r.out;  // shows the forms

  r = cost(" --until 2026-02-30T00:00:00Z");  // no such day
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("--until"), std::string::npos) << r.out;
  r = cost(" --since 2026-01-05T08:00:00");  // no zone: refused rather than guessed
  EXPECT_EQ(r.exit_code, 1) << r.out;

  r = cost(" --since 2026-01-05T09:00:00Z --until 2026-01-05T08:00:00Z");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("is after --until"), std::string::npos) << r.out;

  r = cost(" --format xml");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("xml"), std::string::npos) << r.out;

  r = run_command(zeroserve() + " cost --ledger " + shell_quote(ledger_) + " --state-dir " +
                  shell_quote(dir_.file("state")) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("excludes"), std::string::npos) << r.out;

  const std::string missing = dir_.file("elsewhere/ledger.sqlite");
  r = run_command(zeroserve() + " cost --ledger " + shell_quote(missing) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("no cost ledger at " + missing), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("zeroserve serve"), std::string::npos) << r.out;

  const std::string not_ledger = dir_.file("notes.txt");
  run_command("echo hello > " + shell_quote(not_ledger));
  r = run_command(zeroserve() + " cost --ledger " + shell_quote(not_ledger) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(not_ledger), std::string::npos) << r.out;
}

TEST_F(CostCommand, ByKeyInEveryFormat) {
  // write_ledger recorded every request without a key: one row per deployment under "".
  auto r = cost(std::string(kWindow) + " --by key --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["from"], kT0);
  EXPECT_EQ(j["ledger"], ledger_);
  ASSERT_EQ(j["keys"].size(), 2u) << r.out;
  EXPECT_EQ(j["keys"][0]["api_key"], "");
  EXPECT_EQ(j["keys"][0]["deployment"], "llava");
  EXPECT_EQ(j["keys"][0]["class"], "interactive");
  EXPECT_EQ(j["keys"][0]["requests"], 4);
  EXPECT_NEAR(j["keys"][0]["cost_share"].get<double>(), 0.8, 1e-9);
  EXPECT_EQ(j["keys"][1]["deployment"], "qwen");
  EXPECT_NEAR(j["keys"][1]["cost_share"].get<double>(), 0.15, 1e-9);
  EXPECT_EQ(j["total"]["requests"], 6);
  EXPECT_NEAR(j["total"]["cost_share"].get<double>(), 0.95, 1e-9);
  EXPECT_NEAR(j["total_cost"].get<double>(), 0.95, 1e-9);
  EXPECT_EQ(j["unattributed_cost"], 0);

  r = cost(std::string(kWindow) + " --by key --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto lines = split(r.out, '\n');
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0], "api_key,deployment,class,requests,prompt_tokens,completion_tokens,cost_share");
  EXPECT_EQ(lines[1].rfind(",llava,interactive,4,400,100,", 0), 0u) << lines[1];
  EXPECT_EQ(lines[3].rfind("TOTAL,,,6,420,110,", 0), 0u) << lines[3];

  // [08:10, 09:00): only qwen's run and requests; llava's runs ended at 08:10.
  r = cost(" --since 2026-01-05T08:10:00Z --until 2026-01-05T09:00:00Z --by key");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("usage by API key from 2026-01-05T08:10:00Z"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("llava"), std::string::npos) << r.out;
  std::string row;
  for (const auto& line : split(r.out, '\n'))
    if (line.rfind("(none)", 0) == 0) row = line;
  ASSERT_FALSE(row.empty()) << r.out;
  for (const char* cell : {"qwen", "interactive", "2", "20", "10", "0.1500"}) {
    EXPECT_NE(row.find(cell), std::string::npos) << cell << " in: " << row;
  }
  EXPECT_NE(r.out.find("COST-SHARE"), std::string::npos) << r.out;

  r = cost(" --by team");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("team"), std::string::npos) << r.out;
}

// Requests through a real daemon with two keys, one of them batch by default, then read back
// per key by the command and by /admin/costs.
TEST(CostCommandServe, ReportsEachApiKeyTheDaemonServed) {
  using zs::testing::Serve;
  Serve s("devices:\n  - name: cpu0\n    kind: cpu\n    memory: 4GiB\n    price_per_second: 0.001\n"
          "gateway:\n  api_keys:\n    - {key: sk-a, name: team-a, admin: true}\n"
          "    - {key: sk-b, name: team-b, priority: batch}\n"
          "deployments:\n" +
          zs::testing::stories_deployment("story"));
  ASSERT_FALSE(s.address().empty()) << "the daemon did not start";
  const gateway::HttpHeaders a = {{"Authorization", "Bearer sk-a"}};
  const gateway::HttpHeaders b = {{"Authorization", "Bearer sk-b"}};
  // team-a first: its interactive request starts the instance that team-b's batch ones use.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(s.post(zs::testing::chat("story", 2), a).status, 200);
  ASSERT_EQ(s.post(zs::testing::chat("story", 2), b).status, 200);
  EXPECT_EQ(s.post(zs::testing::chat("story", 2), {{"Authorization", "Bearer wrong"}}).status, 401);

  // A request is written to the ledger just after its response is sent.
  json admin;
  EXPECT_TRUE(zs::testing::wait_for(
      [&] {
        auto r = gateway::http_request("GET", s.address(), "/admin/costs", "", a);
        if (!r.is_ok() || r->status != 200) return false;
        admin = json::parse(r->body);
        return admin["deployments"].size() == 1 && admin["deployments"][0]["requests"] == 4;
      },
      std::chrono::seconds(10)))
      << admin.dump();
  ASSERT_EQ(admin["keys"].size(), 2u) << admin.dump();
  // Only an admin key reads the admin API.
  auto refused = gateway::http_request("GET", s.address(), "/admin/costs", "", b);
  ASSERT_TRUE(refused.is_ok());
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "admin_key_required") << refused->body;
  EXPECT_EQ(admin["keys"][0]["api_key"], "team-a");
  EXPECT_EQ(admin["keys"][0]["class"], "interactive");
  EXPECT_EQ(admin["keys"][0]["requests"], 3);
  EXPECT_EQ(admin["keys"][1]["api_key"], "team-b");
  EXPECT_EQ(admin["keys"][1]["class"], "batch");
  EXPECT_EQ(admin["keys"][1]["requests"], 1);

  const std::string state = s.dir().file("state/zeroserve");
  auto r = run_command(zeroserve() + " cost --state-dir " + shell_quote(state) + " --by key --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["keys"].size(), 2u) << r.out;
  const json& ka = j["keys"][0];
  const json& kb = j["keys"][1];
  EXPECT_EQ(ka["api_key"], "team-a");
  EXPECT_EQ(ka["deployment"], "story");
  EXPECT_EQ(ka["class"], "interactive");
  EXPECT_EQ(ka["requests"], 3);
  EXPECT_EQ(kb["api_key"], "team-b");
  EXPECT_EQ(kb["deployment"], "story");
  EXPECT_EQ(kb["class"], "batch");
  EXPECT_EQ(kb["requests"], 1);
  // Same prompt, max_tokens and temperature 0: team-a sent three times team-b's tokens, and
  // gets three times its share of the instance time so far.
  const int64_t tokens_a = ka["prompt_tokens"].get<int64_t>() + ka["completion_tokens"].get<int64_t>();
  const int64_t tokens_b = kb["prompt_tokens"].get<int64_t>() + kb["completion_tokens"].get<int64_t>();
  ASSERT_GT(tokens_b, 0);
  EXPECT_EQ(tokens_a, 3 * tokens_b);
  EXPECT_GT(kb["cost_share"].get<double>(), 0);
  EXPECT_NEAR(ka["cost_share"].get<double>(), 3 * kb["cost_share"].get<double>(), 1e-9);
  EXPECT_EQ(j["total"]["requests"], 4);
  EXPECT_EQ(s.stop(), 0);
}

TEST(CostCommandEmpty, AnEmptyLedgerSaysSo) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("ledger.sqlite");
  ASSERT_TRUE(CostLedger::open(path).is_ok());
  auto r = run_command(zeroserve() + " cost --ledger " + shell_quote(path) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("no instance time and no requests"), std::string::npos) << r.out;
  r = run_command(zeroserve() + " cost --ledger " + shell_quote(path) + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(json::parse(r.out)["deployments"].empty());
}

}  // namespace
}  // namespace zs
