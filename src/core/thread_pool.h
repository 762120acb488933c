#pragma once
// A fixed pool of compute threads for the engine's kernels. The caller takes part as thread 0.
// Workers spin briefly before sleeping because a decode step dispatches hundreds of small
// jobs per token and a futex wake-up per job would cost more than the jobs themselves.
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "core/mutex.h"

namespace zs::core {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread and returns when all are done.
  // Not re-entrant: one run at a time per pool.
  void run(const std::function<void(int, int)>& fn);

  // Like run(), for jobs whose threads claim work from shared counters, so that any subset
  // of them that includes the caller completes it: once the caller's fn returns, workers
  // that have not started yet skip this job instead of being waited for. A worker that the
  // OS has descheduled (other processes on the cores) then no longer stalls every step.
  void run_shared(const std::function<void(int, int)>& fn);

  // Splits [0, n) into contiguous chunks of ceil(n / c) indices (the last one shorter), where
  // c = min(threads x chunks_per_thread, n / grain) but at least 1, so that no chunk but the
  // last is smaller than `grain`, and calls fn(begin, end) once per chunk. Chunks are claimed
  // in order, as in run_shared(): a worker that has not started when the caller runs out of
  // chunks is not waited for, so fn must not depend on which thread runs a chunk; more chunks
  // per thread even out indices of unequal cost. With one chunk, fn runs on the calling thread
  // without waking anyone (the small steps of a small model's decode).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1,
                    int chunks_per_thread = 1);

  // Stops and joins the worker threads (an idle instance gives its threads back); the next
  // run() starts them again. Call it from the thread that calls run(), between runs.
  void park();
  bool parked() const { return n_threads_ > 1 && workers_.empty(); }

  // Default thread count: the number of cores this process may use.
  static int default_threads();

 private:
  void dispatch(const std::function<void(int, int)>& fn, bool shared);
  void start_workers();
  void worker_loop(int index, uint32_t seen);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  // One word per job, so that a worker cannot join a job other than the one it saw:
  // generation << 32 | kClosed | kShared | kStopped | number of workers that joined.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};  // workers that joined and finished
  // Guards no field: the ticket is atomic. Storing a new ticket under it, and a worker checking
  // the ticket under it before sleeping, keeps a wake-up from being lost between the two.
  Mutex mutex_;
  CondVar wake_;
};

}  // namespace zs::core
