// The fleet learns of an instance's exit as it happens (its pidfd), not at its next tick, and
// sends no request to an instance whose exit it has seen; a request waiting for a start gets
// the instance as it announces itself ready (its stdout), not at the next tick either. Instances are real child processes
// (a shell that announces itself ready and sleeps), killed with SIGKILL.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "platform/fleet/fleet.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using namespace std::chrono_literals;

// The children of this test process (any of its threads may have forked them).
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    for (pid_t pid; in >> pid;) out.push_back(pid);
  }
  closedir(dir);
  return out;
}

// What the fleet reported, in order.
struct Events {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::string> seen;  // "started <id>", "stopped <id>"

  FleetEvents callbacks() {
    FleetEvents ev;
    ev.instance_started = [this](const std::string& id, const DeploymentSpec&, bool) { add("started " + id); };
    ev.instance_stopped = [this](const std::string& id, const std::optional<RunSpan>&) { add("stopped " + id); };
    return ev;
  }
  void add(const std::string& e) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(e);
    cv.notify_all();
  }
  bool wait_for(const std::string& e, std::chrono::milliseconds limit = 60s) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, limit, [&] { return std::find(seen.begin(), seen.end(), e) != seen.end(); });
  }
  std::vector<std::string> all() {
    std::lock_guard<std::mutex> lock(mutex);
    return seen;
  }
};

DeploymentSpec sleeper(int min_instances) {
  DeploymentSpec s;
  s.name = "m";
  s.command = [](const std::string&, int) -> core::Result<std::vector<std::string>> {
    return std::vector<std::string>{"/bin/sh", "-c", "echo 'ready x'; exec sleep 600"};
  };
  s.slots = 1;
  s.min_instances = min_instances;
  s.max_instances = 1;
  s.policy = "fixed";
  s.fingerprint = "m";
  return s;
}

struct Answer {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Lease> lease;
  bool failed = false;
  Fleet::Done done() {
    return [this](const Lease* l, const AcquireFailure*) {
      std::lock_guard<std::mutex> lock(mutex);
      if (l) lease = *l;
      else failed = true;
      cv.notify_all();
    };
  }
  bool wait() {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, 60s, [&] { return lease || failed; });
  }
};

TEST(FleetExits, AnInstanceKilledWithSigkillIsReportedExitedWithoutWaitingForATick) {
  testing::TempDir dir;
  Events events;
  // A tick far longer than the test: only the exit itself can wake the fleet.
  Fleet fleet({{"cpu0", "cpu", 0, 0}}, dir.file("run"), [](const std::string&) { return true; }, events.callbacks(),
              std::chrono::hours(1));
  fleet.set_deployments({sleeper(1)});  // wakes the control thread once: it starts m-1
  ASSERT_TRUE(events.wait_for("started m-1"));
  const std::vector<pid_t> pids = children();
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);
  ASSERT_TRUE(events.wait_for("stopped m-1")) << "the exit was not reported before the next tick";
  EXPECT_EQ(events.all(), (std::vector<std::string>{"started m-1", "stopped m-1"}));
  EXPECT_TRUE(children().empty()) << "the killed instance was reaped";
}

TEST(FleetExits, NoRequestGoesToAnInstanceWhoseExitWasSeen) {
  testing::TempDir dir;
  Events events;
  Fleet fleet({{"cpu0", "cpu", 0, 0}}, dir.file("run"), [](const std::string&) { return true; }, events.callbacks());
  fleet.set_deployments({sleeper(0)});
  Answer first;
  fleet.acquire("m", RequestClass::kInteractive, first.done());
  ASSERT_TRUE(first.wait());
  ASSERT_TRUE(first.lease);
  EXPECT_EQ(first.lease->instance_id, "m-1");
  EXPECT_FALSE(fleet.instance_gone(*first.lease));
  fleet.release(*first.lease);
  const std::vector<pid_t> pids = children();
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);
  ASSERT_TRUE(events.wait_for("stopped m-1"));
  // A lease handed out before the exit is known gone (the gateway sends its request elsewhere).
  EXPECT_TRUE(fleet.instance_gone(*first.lease));
  Answer second;
  fleet.acquire("m", RequestClass::kInteractive, second.done());
  ASSERT_TRUE(second.wait());
  ASSERT_TRUE(second.lease);
  EXPECT_EQ(second.lease->instance_id, "m-2");
  fleet.release(*second.lease);
  EXPECT_EQ(events.all(), (std::vector<std::string>{"started m-1", "stopped m-1", "started m-2"}));
}

TEST(FleetReady, ARequestWaitingForAStartGetsTheInstanceAsItAnnouncesItselfNotOnTheNextTick) {
  testing::TempDir dir;
  Events events;
  // A tick far longer than the test: only the "ready" line can wake the fleet.
  Fleet fleet({{"cpu0", "cpu", 0, 0}}, dir.file("run"), [](const std::string&) { return true; }, events.callbacks(),
              std::chrono::hours(1));
  DeploymentSpec spec = sleeper(0);
  spec.announces_ready = true;
  spec.command = [](const std::string&, int) -> core::Result<std::vector<std::string>> {
    return std::vector<std::string>{"/bin/sh", "-c", "sleep 0.3; echo 'loading'; sleep 0.2; echo 'ready x'; exec sleep 600"};
  };
  fleet.set_deployments({spec});
  Answer answer;
  fleet.acquire("m", RequestClass::kInteractive, answer.done());  // wakes the control thread: it starts m-1
  ASSERT_TRUE(answer.wait()) << "the ready instance was not handed out before the next tick";
  ASSERT_TRUE(answer.lease);
  EXPECT_EQ(answer.lease->instance_id, "m-1");
  fleet.release(*answer.lease);
}

}  // namespace
}  // namespace zs::platform
