// set_run_span: a run's time replaced by its runtime's own record (a cluster scheduler's start
// and end of the job), checked against the phases as plain intervals clipped to that span.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "ledger_test_util.h"
#include "platform/ledger/cost_ledger.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace ledger_test;
using zs::testing::TempDir;
using S = InstancePhase;

constexpr double kT0 = 1'800'000'000;

DeploymentCost only(CostLedger& ledger, double now) {
  auto r = ledger.costs(kT0 - 1000, kT0 + 1000, now);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r.is_ok() ? r->size() : 0u, 1u);
  return r.is_ok() && !r->empty() ? (*r)[0] : DeploymentCost{};
}

// A job submitted at 0, pending in the scheduler until 3, ready at 5, busy 5..20, idle 20..30,
// draining 30..32; the fleet saw it stop at 33 (one poll after the job ended at 31.5).
std::unique_ptr<CostLedger> one_job(const TempDir& dir) {
  auto ledger = open_ok(dir.file("ledger.sqlite"));
  EXPECT_TRUE(ledger->instance_started("tiny-1", "tiny", "zs", 2.0, 0.0, kT0, true).is_ok());
  EXPECT_TRUE(ledger->instance_state("tiny-1", S::kReady, kT0 + 5).is_ok());
  EXPECT_TRUE(ledger->instance_state("tiny-1", S::kIdle, kT0 + 20).is_ok());
  EXPECT_TRUE(ledger->instance_state("tiny-1", S::kDraining, kT0 + 30).is_ok());
  EXPECT_TRUE(ledger->instance_stopped("tiny-1", kT0 + 33).is_ok());
  return ledger;
}

TEST(RunSpan, BillsTheSchedulersSpanAndClipsThePhasesToIt) {
  TempDir dir;
  auto ledger = one_job(dir);
  EXPECT_DOUBLE_EQ(only(*ledger, kT0 + 100).instance_seconds, 33);
  ASSERT_TRUE(ledger->set_run_span("tiny-1", kT0 + 3, kT0 + 31).is_ok());
  const DeploymentCost d = only(*ledger, kT0 + 100);
  EXPECT_DOUBLE_EQ(d.instance_seconds, 28);
  EXPECT_DOUBLE_EQ(d.cost, 56);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 2) << "pending in the scheduler (0..3) is not billed";
  EXPECT_DOUBLE_EQ(d.busy_seconds, 15);
  EXPECT_DOUBLE_EQ(d.idle_seconds, 10);
  EXPECT_EQ(d.cold_starts, 1);
}

TEST(RunSpan, StretchesTheEdgePhasesWhenTheSchedulersSpanIsWider) {
  TempDir dir;
  auto ledger = one_job(dir);
  // The scheduler's clock ran ahead: its span starts before the fleet's and ends after.
  ASSERT_TRUE(ledger->set_run_span("tiny-1", kT0 - 1, kT0 + 35).is_ok());
  const DeploymentCost d = only(*ledger, kT0 + 100);
  EXPECT_DOUBLE_EQ(d.instance_seconds, 36);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 6);
  EXPECT_DOUBLE_EQ(d.busy_seconds + d.idle_seconds + d.starting_seconds, 31) << "draining 30..35 is in none";
}

TEST(RunSpan, ARunThatNeverBecameReadyInTheSpanIsOneStartingPhase) {
  TempDir dir;
  auto ledger = one_job(dir);
  ASSERT_TRUE(ledger->set_run_span("tiny-1", kT0 + 40, kT0 + 42).is_ok());
  const DeploymentCost d = only(*ledger, kT0 + 100);
  EXPECT_DOUBLE_EQ(d.instance_seconds, 2);
  EXPECT_DOUBLE_EQ(d.starting_seconds, 2);
}

TEST(RunSpan, ClosesARunStillOpen) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.sqlite"));
  ASSERT_TRUE(ledger->instance_started("tiny-1", "tiny", "zs", 1.0, 0.0, kT0, false).is_ok());
  ASSERT_TRUE(ledger->instance_state("tiny-1", S::kIdle, kT0 + 2).is_ok());
  ASSERT_TRUE(ledger->set_run_span("tiny-1", kT0 + 1, kT0 + 11).is_ok());
  EXPECT_DOUBLE_EQ(only(*ledger, kT0 + 100).instance_seconds, 10);
  // Closed: a new run of the same id may open.
  EXPECT_TRUE(ledger->instance_started("tiny-1", "tiny", "zs", 1.0, 0.0, kT0 + 50, false).is_ok());
}

TEST(RunSpan, ChangesOnlyTheLatestRunOfTheInstance) {
  TempDir dir;
  auto ledger = open_ok(dir.file("ledger.sqlite"));
  ASSERT_TRUE(ledger->instance_started("tiny-1", "tiny", "zs", 1.0, 0.0, kT0, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("tiny-1", kT0 + 10).is_ok());
  ASSERT_TRUE(ledger->instance_started("tiny-1", "tiny", "zs", 1.0, 0.0, kT0 + 20, false).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("tiny-1", kT0 + 30).is_ok());
  ASSERT_TRUE(ledger->set_run_span("tiny-1", kT0 + 21, kT0 + 26).is_ok());
  EXPECT_DOUBLE_EQ(only(*ledger, kT0 + 100).instance_seconds, 15);
}

TEST(RunSpan, RefusesUnknownInstancesAndBadTimesWithCodes) {
  TempDir dir;
  auto ledger = one_job(dir);
  auto unknown = ledger->set_run_span("nope-1", kT0, kT0 + 1);
  EXPECT_EQ(unknown.code(), core::StatusCode::kNotFound) << unknown.message();
  EXPECT_EQ(ledger->set_run_span("tiny-1", kT0 + 5, kT0 + 4).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->set_run_span("tiny-1", kT0, std::nan("")).code(), core::StatusCode::kInvalidArgument);
  // Nothing changed.
  EXPECT_DOUBLE_EQ(only(*ledger, kT0 + 100).instance_seconds, 33);
}

}  // namespace
}  // namespace zs::platform
