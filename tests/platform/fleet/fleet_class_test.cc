// The fleet's request classes, with real child processes as instances (a shell that
// announces itself ready and sleeps): no HTTP is involved, only leases.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "platform/fleet/fleet.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace std::chrono_literals;

// Collects what acquire() answers, for waiting on it from the test thread.
struct Outcome {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Lease> lease;
  std::optional<AcquireFailure> failure;

  Fleet::Done done() {
    return [this](const Lease* l, const AcquireFailure* f) {
      std::lock_guard<std::mutex> lock(mutex);
      if (l) lease = *l;
      if (f) failure = *f;
      cv.notify_all();
    };
  }
  bool wait(std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return lease || failure; });
  }
  bool answered() {
    std::lock_guard<std::mutex> lock(mutex);
    return lease || failure;
  }
};

DeploymentSpec sleeper(const std::string& name, int slots, int batch_max_instances, int min_instances = 0) {
  DeploymentSpec s;
  s.name = name;
  s.command = [](const std::string&, int) -> core::Result<std::vector<std::string>> {
    return std::vector<std::string>{"/bin/sh", "-c", "echo 'ready x'; exec sleep 600"};
  };
  s.slots = slots;
  s.max_instances = 2;
  s.min_instances = min_instances;
  s.batch_max_instances = batch_max_instances;
  s.max_queue = 2;
  s.policy = "fixed";
  s.fingerprint = name;
  return s;
}

struct Decisions {
  std::mutex mutex;
  std::vector<std::string> seen;  // "action: reason"
  bool contains(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& s : seen)
      if (s.find(needle) != std::string::npos) return true;
    return false;
  }
};

class FleetClassTest : public ::testing::Test {
 protected:
  void start(std::vector<DeploymentSpec> specs) {
    FleetEvents ev;
    ev.decision = [this](const std::string& d, const std::string& action, const std::string& reason) {
      std::lock_guard<std::mutex> lock(decisions_.mutex);
      decisions_.seen.push_back(d + " " + action + ": " + reason);
    };
    fleet_ = std::make_unique<Fleet>(std::vector<DeviceConfig>{{"cpu0", "cpu", 0, 0}}, dir_.file("run"),
                                     [](const std::string&) { return true; }, ev);
    fleet_->set_deployments(std::move(specs));
  }
  DeploymentStatus status(const std::string& name) {
    for (const auto& s : fleet_->status())
      if (s.name == name) return s;
    return {};
  }
  void wait_ready(const std::string& name, int n) {
    for (int i = 0; i < 1000 && status(name).instances_ready < n; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(status(name).instances_ready, n);
  }

  testing::TempDir dir_;
  Decisions decisions_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(FleetClassTest, InteractiveRequestsUseSlotsThatBatchRequestsHold) {
  start({sleeper("m", 1, 0, 1)});
  wait_ready("m", 1);
  Outcome b1, b2, i1;
  fleet_->acquire("m", RequestClass::kBatch, b1.done());
  ASSERT_TRUE(b1.wait());
  ASSERT_TRUE(b1.lease);
  EXPECT_EQ(b1.lease->cls, RequestClass::kBatch);
  fleet_->acquire("m", RequestClass::kBatch, b2.done());  // the only slot is taken: waits
  fleet_->acquire("m", RequestClass::kInteractive, i1.done());
  ASSERT_TRUE(i1.wait());
  ASSERT_TRUE(i1.lease);
  EXPECT_EQ(i1.lease->instance_id, b1.lease->instance_id);
  EXPECT_EQ(status("m").in_flight, 2);
  EXPECT_EQ(status("m").batch_in_flight, 1);
  fleet_->release(*i1.lease);
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(b2.answered());  // batch takes only a slot nobody uses
  EXPECT_EQ(status("m").batch_queued, 1);
  fleet_->release(*b1.lease);
  ASSERT_TRUE(b2.wait());
  ASSERT_TRUE(b2.lease);
  fleet_->release(*b2.lease);
}

TEST_F(FleetClassTest, InteractiveRequestsGoBeforeBatchRequestsThatWaitedLonger) {
  start({sleeper("m", 1, 0, 1)});
  wait_ready("m", 1);
  Outcome i0, b1, i2;
  fleet_->acquire("m", RequestClass::kInteractive, i0.done());
  ASSERT_TRUE(i0.wait());
  fleet_->acquire("m", RequestClass::kBatch, b1.done());
  fleet_->acquire("m", RequestClass::kInteractive, i2.done());
  fleet_->release(*i0.lease);
  ASSERT_TRUE(i2.wait());
  EXPECT_TRUE(i2.lease);
  EXPECT_FALSE(b1.answered());
  fleet_->release(*i2.lease);
  ASSERT_TRUE(b1.wait());
  EXPECT_TRUE(b1.lease);
  fleet_->release(*b1.lease);
}

TEST_F(FleetClassTest, BatchRequestsNeverColdStartByDefault) {
  start({sleeper("m", 2, 0)});
  Outcome b1, i1;
  fleet_->acquire("m", RequestClass::kBatch, b1.done());
  std::this_thread::sleep_for(300ms);  // fifteen control ticks
  EXPECT_EQ(status("m").instances_starting + status("m").instances_ready, 0);
  EXPECT_FALSE(b1.answered());
  EXPECT_EQ(status("m").batch_queued, 1);
  // Interactive demand starts an instance; the batch request then fills its free slot.
  fleet_->acquire("m", RequestClass::kInteractive, i1.done());
  ASSERT_TRUE(i1.wait());
  ASSERT_TRUE(i1.lease);
  EXPECT_GE(i1.lease->cold_start_ms, 0);
  ASSERT_TRUE(b1.wait());
  ASSERT_TRUE(b1.lease);
  EXPECT_TRUE(decisions_.contains("m scale_out: interactive requests waiting"));
  EXPECT_FALSE(decisions_.contains("batch requests waiting"));
  fleet_->release(*i1.lease);
  fleet_->release(*b1.lease);
}

TEST_F(FleetClassTest, BatchRequestsStartUpToBatchMaxInstances) {
  start({sleeper("m", 1, 1)});
  Outcome b1, b2;
  fleet_->acquire("m", RequestClass::kBatch, b1.done());
  ASSERT_TRUE(b1.wait());
  ASSERT_TRUE(b1.lease);
  fleet_->acquire("m", RequestClass::kBatch, b2.done());
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(status("m").instances_ready + status("m").instances_starting, 1);  // not a second one
  EXPECT_FALSE(b2.answered());
  EXPECT_TRUE(decisions_.contains("m scale_out: batch requests waiting (batch_max_instances 1)"));
  fleet_->release(*b1.lease);
  ASSERT_TRUE(b2.wait());
  fleet_->release(*b2.lease);
}

TEST_F(FleetClassTest, EachClassHasItsOwnQueueLimit) {
  start({sleeper("m", 1, 0)});
  Outcome b1, b2, b3, i1;
  fleet_->acquire("m", RequestClass::kBatch, b1.done());
  fleet_->acquire("m", RequestClass::kBatch, b2.done());
  fleet_->acquire("m", RequestClass::kBatch, b3.done());  // max_queue is 2
  ASSERT_TRUE(b3.wait(1s));
  ASSERT_TRUE(b3.failure);
  EXPECT_EQ(b3.failure->status.code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(b3.failure->status.message().find("2 batch requests waiting"), std::string::npos) << b3.failure->status.message();
  // A full batch queue does not turn interactive requests away.
  fleet_->acquire("m", RequestClass::kInteractive, i1.done());
  ASSERT_TRUE(i1.wait());
  EXPECT_TRUE(i1.lease);
  fleet_->release(*i1.lease);
  ASSERT_TRUE(b1.wait());
  fleet_->release(*b1.lease);
  ASSERT_TRUE(b2.wait());
  fleet_->release(*b2.lease);
}

TEST_F(FleetClassTest, AClosedClassFailsItsWaitersAndEveryLaterRequestButTheOtherClassIsServed) {
  start({sleeper("m", 1, 0, 1)});
  wait_ready("m", 1);
  Outcome i1, b1, b2, i2;
  fleet_->acquire("m", RequestClass::kInteractive, i1.done());
  ASSERT_TRUE(i1.wait());
  ASSERT_TRUE(i1.lease);
  fleet_->acquire("m", RequestClass::kBatch, b1.done());  // the only slot is taken: waits
  EXPECT_FALSE(b1.answered());
  fleet_->close_class(RequestClass::kBatch, "the server is shutting down");
  ASSERT_TRUE(b1.wait(1s));
  ASSERT_TRUE(b1.failure);
  EXPECT_EQ(b1.failure->status.code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(b1.failure->retry_after_s, 5);
  // A batch request that arrives later fails at once, even with a slot free: it cannot wait
  // behind the close (and hold a drain).
  fleet_->release(*i1.lease);
  fleet_->acquire("m", RequestClass::kBatch, b2.done());
  ASSERT_TRUE(b2.answered());
  ASSERT_TRUE(b2.failure);
  EXPECT_EQ(b2.failure->status.message(), "the server is shutting down");
  EXPECT_EQ(status("m").batch_queued, 0);
  // Interactive requests are not affected.
  fleet_->acquire("m", RequestClass::kInteractive, i2.done());
  ASSERT_TRUE(i2.wait());
  ASSERT_TRUE(i2.lease);
  fleet_->release(*i2.lease);
}

}  // namespace
}  // namespace zs::platform
