#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

namespace zs::core {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(n);
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "threads " << threads << " n " << n;
    }
  }
}

TEST(ThreadPool, ParallelForMakesNoChunkSmallerThanTheGrainAndRunsASingleChunkOnTheCaller) {
  ThreadPool pool(4);
  const auto caller = std::this_thread::get_id();
  for (int64_t n : {1, 5, 99, 100, 101, 399, 400, 401, 1000}) {
    for (int64_t grain : {1, 100, 1000}) {
     for (int per_thread : {1, 3}) {
      core::Mutex mu;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      bool off_caller = false;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        core::MutexLock lock(mu);
        chunks.emplace_back(b, e);
        off_caller |= std::this_thread::get_id() != caller;
      }, grain, per_thread);
      std::sort(chunks.begin(), chunks.end());
      // The simple rule: chunks of ceil(n / c) indices (the last one shorter), where c =
      // min(threads x per_thread, floor(n / grain)), at least 1.
      const int64_t c = std::max<int64_t>(1, std::min<int64_t>(4 * per_thread, n / grain));
      const int64_t size = (n + c - 1) / c, want_chunks = (n + size - 1) / size;
      ASSERT_EQ(static_cast<int64_t>(chunks.size()), want_chunks) << "n " << n << " grain " << grain;
      int64_t next = 0;
      for (size_t i = 0; i < chunks.size(); ++i) {
        ASSERT_EQ(chunks[i].first, next);
        if (i + 1 < chunks.size()) ASSERT_GE(chunks[i].second - chunks[i].first, grain) << "n " << n << " grain " << grain;
        next = chunks[i].second;
      }
      ASSERT_EQ(next, n);
      if (want_chunks == 1) ASSERT_FALSE(off_caller) << "n " << n << " grain " << grain;
     }
    }
  }
}

TEST(ThreadPool, RunGivesEachThreadItsIndexAndManyRunsComplete) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 2000; ++round) {
    std::vector<int> seen(4, 0);
    pool.run([&](int t, int nt) {
      ASSERT_EQ(nt, 4);
      seen[t] = 1;
      total.fetch_add(1);
    });
    for (int t = 0; t < 4; ++t) ASSERT_EQ(seen[t], 1);
  }
  EXPECT_EQ(total.load(), 8000);
}

TEST(ThreadPool, RunSharedCompletesClaimedWorkAndLeavesNoThreadInside) {
  ThreadPool pool(3);
  std::atomic<int> inside{0};
  for (int round = 0; round < 3000; ++round) {
    constexpr int kUnits = 17;
    std::atomic<int> next{0};
    std::vector<std::atomic<int>> hits(kUnits);
    pool.run_shared([&](int, int) {
      inside.fetch_add(1);
      for (int u; (u = next.fetch_add(1)) < kUnits;) hits[u].fetch_add(1);
      inside.fetch_sub(1);
    });
    // Whoever joined has left; whoever did not join never will for this job.
    ASSERT_EQ(inside.load(), 0) << "round " << round;
    for (int u = 0; u < kUnits; ++u) ASSERT_EQ(hits[u].load(), 1) << "round " << round << " unit " << u;
  }
  // Plain runs after shared ones still reach every thread.
  std::vector<int> seen(3, 0);
  pool.run([&](int t, int) { seen[t] = 1; });
  EXPECT_EQ(seen, (std::vector<int>{1, 1, 1}));
}

TEST(ThreadPool, AParkedPoolHasNoWorkerThreadsAndTheNextRunBringsThemBack) {
  auto threads_of_this_process = [] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n += e.is_directory() ? 1 : 0;
    return n;
  };
  // A joined thread can stay listed for a moment (join returns once the thread has left its
  // code, before the kernel drops its entry): poll for the count, up to a few seconds.
  auto settled_count = [&](int want) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int n = threads_of_this_process();
    while (n != want && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      n = threads_of_this_process();
    }
    return n;
  };
  const int base = threads_of_this_process();
  ThreadPool pool(4);
  EXPECT_EQ(threads_of_this_process(), base + 3);
  for (int round = 0; round < 3; ++round) {
    pool.park();
    EXPECT_TRUE(pool.parked());
    EXPECT_EQ(settled_count(base), base);
    std::vector<std::atomic<int>> seen(4);
    for (int i = 0; i < 50; ++i) pool.run([&](int t, int n) {
      EXPECT_EQ(n, 4);
      seen[t].fetch_add(1);
    });
    EXPECT_FALSE(pool.parked());
    for (int t = 0; t < 4; ++t) EXPECT_EQ(seen[t].load(), 50) << "thread " << t << " after park " << round;
  }
}

// Pools made, used once and destroyed, several at a time on few cores (the engine's kernel
// tests do this): a worker that was descheduled between its checks must still see park()'s
// stop, or the destructor's join waits forever. A stall is reported instead of hanging.
TEST(ThreadPool, ShortLivedPoolsAlwaysJoinTheirWorkersUnderPreemption) {
  constexpr int kLoops = 4, kPoolsPerLoop = 5000;
  std::atomic<int> made{0}, wrong{0};
  std::vector<std::thread> loops;
  for (int l = 0; l < kLoops; ++l)
    loops.emplace_back([&] {
      for (int i = 0; i < kPoolsPerLoop; ++i) {
        ThreadPool pool(8);
        std::atomic<int> units{0};
        // A job every worker joins, one they may skip, or none before the pool goes.
        if (i % 3 == 0) {
          pool.run([&](int, int) { units.fetch_add(1); });
          if (units.load() != 8) wrong.fetch_add(1);
        } else if (i % 3 == 1) {
          pool.run_shared([&](int, int) { units.fetch_add(1); });
          if (units.load() < 1 || units.load() > 8) wrong.fetch_add(1);
        }
        made.fetch_add(1);
      }
    });
  int last = -1;
  auto progress_at = std::chrono::steady_clock::now();
  while (made.load() < kLoops * kPoolsPerLoop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int now = made.load();
    if (now != last) {
      last = now;
      progress_at = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - progress_at > std::chrono::seconds(30)) {
      // The loops cannot be joined; report and leave rather than wait for the CTest timeout.
      std::fprintf(stderr, "no pool finished for 30 s after %d of %d: a worker missed park()\n", now,
                   kLoops * kPoolsPerLoop);
      std::_Exit(1);
    }
  }
  for (auto& t : loops) t.join();
  EXPECT_EQ(wrong.load(), 0) << "pools whose job did not run on the threads it should have";
}

TEST(ThreadPool, DefaultThreadsIsPositive) { EXPECT_GE(ThreadPool::default_threads(), 1); }

}  // namespace
}  // namespace zs::core
