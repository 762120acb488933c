#include "platform/placement/placement.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace zs::platform {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

std::vector<DeviceConfig> devices() {
  return {{"gpu0", "cuda", 16 * kGiB, 0.001}, {"cpu0", "cpu", 32 * kGiB, 0.0001}};
}

TEST(Placement, ReserveAndReleaseAccountPerDevice) {
  Placement p(devices());
  EXPECT_EQ(p.capacity("gpu0"), 16 * kGiB);
  EXPECT_EQ(p.free("gpu0"), 16 * kGiB);
  EXPECT_EQ(p.used("gpu0"), 0u);

  auto r = p.reserve("llava-1", "gpu0", 6 * kGiB);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r.value(), "gpu0");
  ASSERT_TRUE(p.reserve("llava-2", "gpu0", 4 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("qwen-1", "cpu0", 8 * kGiB).is_ok());
  EXPECT_EQ(p.used("gpu0"), 10 * kGiB);
  EXPECT_EQ(p.free("gpu0"), 6 * kGiB);
  EXPECT_EQ(p.used("cpu0"), 8 * kGiB);
  EXPECT_EQ(p.device_of("llava-2"), "gpu0");
  EXPECT_EQ(p.device_of("qwen-1"), "cpu0");

  p.release("llava-1");
  EXPECT_EQ(p.used("gpu0"), 4 * kGiB);
  EXPECT_EQ(p.device_of("llava-1"), "");
  p.release("llava-1");  // twice is harmless
  p.release("never-reserved");
  EXPECT_EQ(p.used("gpu0"), 4 * kGiB);
  p.release("llava-2");
  p.release("qwen-1");
  EXPECT_EQ(p.used("gpu0"), 0u);
  EXPECT_EQ(p.used("cpu0"), 0u);

  // Unknown devices read as empty rather than failing.
  EXPECT_EQ(p.used("tpu0"), 0u);
  EXPECT_EQ(p.free("tpu0"), 0u);
  EXPECT_EQ(p.capacity("tpu0"), 0u);
}

TEST(Placement, MoveTakesAReservationToAnotherDeviceOnlyWhenItFits) {
  Placement p(devices());
  ASSERT_TRUE(p.reserve("a-1", "gpu0", 12 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("b-1", "cpu0", 24 * kGiB).is_ok());
  EXPECT_EQ(p.kind("gpu0"), "cuda");
  EXPECT_EQ(p.kind("cpu0"), "cpu");
  EXPECT_EQ(p.kind("tpu9"), "");

  const core::Status full = p.move("a-1", "cpu0");  // 8 GiB free there
  EXPECT_TRUE(full.is_resource_exhausted()) << full.message();
  EXPECT_EQ(p.device_of("a-1"), "gpu0");
  EXPECT_EQ(p.used("gpu0"), 12 * kGiB);

  p.release("b-1");
  ASSERT_TRUE(p.move("a-1", "cpu0").is_ok());
  EXPECT_EQ(p.device_of("a-1"), "cpu0");
  EXPECT_EQ(p.used("gpu0"), 0u);
  EXPECT_EQ(p.used("cpu0"), 12 * kGiB);
  EXPECT_TRUE(p.move("a-1", "cpu0").is_ok()) << "already there";
  EXPECT_TRUE(p.move("a-1", "tpu9").is_not_found());
  EXPECT_TRUE(p.move("nobody", "gpu0").is_not_found());
  p.release("a-1");
  EXPECT_EQ(p.used("cpu0"), 0u);
}

TEST(Placement, ExactFitSucceedsAndOneByteMoreFails) {
  Placement p(devices());
  ASSERT_TRUE(p.reserve("a", "gpu0", 16 * kGiB).is_ok());
  EXPECT_EQ(p.free("gpu0"), 0u);
  EXPECT_FALSE(p.reserve("b", "gpu0", 1).is_ok());
  EXPECT_TRUE(p.reserve("c", "gpu0", 0).is_ok());
}

TEST(Placement, RefusalSaysWhatIsNeededAndWhatIsFree) {
  Placement p({{"cpu0", "cpu", 16 * kGiB, 0}});
  const uint64_t used = 16 * kGiB - 3435973837ull;  // leaves 3.2 GiB
  ASSERT_TRUE(p.reserve("big", "cpu0", used).is_ok());
  auto r = p.reserve("llava-1", "cpu0", 19 * kGiB / 2);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "deployment needs 9.5 GiB but device cpu0 has 3.2 GiB free of 16 GiB");
  EXPECT_EQ(p.used("cpu0"), used);  // a refusal reserves nothing
  EXPECT_EQ(p.device_of("llava-1"), "");
}

TEST(Placement, PreferredDeviceIsStrict) {
  Placement p(devices());
  ASSERT_TRUE(p.reserve("a", "gpu0", 12 * kGiB).is_ok());
  // cpu0 has room, but a deployment pinned to gpu0 must not silently move there.
  auto r = p.reserve("b", "gpu0", 8 * kGiB);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "deployment needs 8 GiB but device gpu0 has 4 GiB free of 16 GiB");
  EXPECT_EQ(p.used("cpu0"), 0u);
}

TEST(Placement, NoPreferenceTakesTheFirstDeviceWithRoom) {
  Placement p(devices());
  EXPECT_EQ(p.reserve("a", "", 10 * kGiB).value(), "gpu0");
  EXPECT_EQ(p.reserve("b", "", 10 * kGiB).value(), "cpu0");
  EXPECT_EQ(p.reserve("c", "", 6 * kGiB).value(), "gpu0");
  auto r = p.reserve("d", "", 40 * kGiB);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(),
            "deployment needs 40 GiB but no device has room: gpu0 has 0 B free of 16 GiB, cpu0 has 22 GiB free of "
            "32 GiB");
}

TEST(Placement, RejectsUnknownDevicesAndDoubleReservations) {
  Placement p(devices());
  auto r = p.reserve("a", "gpu7", kGiB);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "no device named gpu7; devices: gpu0, cpu0");

  ASSERT_TRUE(p.reserve("a", "gpu0", kGiB).is_ok());
  r = p.reserve("a", "cpu0", kGiB);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "instance a already holds 1 GiB on device gpu0");
  EXPECT_EQ(p.used("cpu0"), 0u);
  EXPECT_EQ(p.used("gpu0"), kGiB);

  Placement none({});
  r = none.reserve("a", "", kGiB);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "no devices to place an instance on");
}

TEST(Placement, EvictionProposesLeastRecentlyReservedIdleInstances) {
  Placement p(devices());
  ASSERT_TRUE(p.reserve("old", "gpu0", 4 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("busy", "gpu0", 4 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("mid", "gpu0", 4 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("new", "gpu0", 2 * kGiB).is_ok());
  ASSERT_TRUE(p.reserve("elsewhere", "cpu0", 4 * kGiB).is_ok());
  // 2 GiB free on gpu0.
  auto idle = [](const std::string& id) { return id != "busy"; };

  EXPECT_TRUE(p.eviction_candidates("gpu0", 2 * kGiB, idle).empty());  // already fits
  EXPECT_EQ(p.eviction_candidates("gpu0", 5 * kGiB, idle), (std::vector<std::string>{"old"}));
  EXPECT_EQ(p.eviction_candidates("gpu0", 6 * kGiB, idle), (std::vector<std::string>{"old"}));
  // Skips the busy one, and stops as soon as there is room.
  EXPECT_EQ(p.eviction_candidates("gpu0", 7 * kGiB, idle), (std::vector<std::string>{"old", "mid"}));
  EXPECT_EQ(p.eviction_candidates("gpu0", 12 * kGiB, idle), (std::vector<std::string>{"old", "mid", "new"}));
  // Even evicting every idle instance leaves only 12 GiB: propose nothing rather than a
  // useless eviction.
  EXPECT_TRUE(p.eviction_candidates("gpu0", 13 * kGiB, idle).empty());
  EXPECT_TRUE(p.eviction_candidates("gpu0", 17 * kGiB, [](const std::string&) { return true; }).empty());
  EXPECT_TRUE(p.eviction_candidates("tpu0", kGiB, idle).empty());

  // Releasing and reserving again makes an instance the most recent.
  p.release("old");
  ASSERT_TRUE(p.reserve("old", "gpu0", 4 * kGiB).is_ok());
  EXPECT_EQ(p.eviction_candidates("gpu0", 5 * kGiB, idle), (std::vector<std::string>{"mid"}));
  EXPECT_EQ(p.eviction_candidates("gpu0", 7 * kGiB, idle), (std::vector<std::string>{"mid", "new"}));
}

TEST(Placement, IdlePredicateMayCallBackIntoPlacement) {
  Placement p(devices());
  ASSERT_TRUE(p.reserve("a", "gpu0", 10 * kGiB).is_ok());
  // The predicate is the caller's: it may consult the placement without deadlocking.
  auto idle = [&](const std::string& id) { return p.device_of(id) == "gpu0" && p.used("gpu0") > 0; };
  EXPECT_EQ(p.eviction_candidates("gpu0", 12 * kGiB, idle), (std::vector<std::string>{"a"}));
}

TEST(Placement, ConcurrentReservationsNeverOvercommit) {
  Placement p({{"gpu0", "cuda", 100, 0}});
  constexpr int kThreads = 8;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        if (p.reserve(id, "gpu0", 30).is_ok()) {
          EXPECT_LE(p.used("gpu0"), 100u);
          p.release(id);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(p.used("gpu0"), 0u);
  EXPECT_EQ(p.free("gpu0"), 100u);
}

}  // namespace
}  // namespace zs::platform
