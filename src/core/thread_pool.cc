#include "core/thread_pool.h"

#include <sched.h>

#include <algorithm>

namespace zs::core {
namespace {
// Busy-wait briefly (a decode step's next job usually follows within microseconds), then
// yield the core (other processes, or more threads than cores), then sleep.
constexpr int kPauseSpins = 2000;
constexpr int kYieldSpins = 2000;

constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kShared = uint64_t{1} << 30;
constexpr uint64_t kStopped = uint64_t{1} << 29;  // park(): always with kClosed
constexpr uint64_t kJoinedMask = kStopped - 1;

inline uint32_t generation_of(uint64_t ticket) { return static_cast<uint32_t>(ticket >> 32); }

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) { start_workers(); }

ThreadPool::~ThreadPool() { park(); }

void ThreadPool::start_workers() {
  // A new worker starts from the current generation, so it never joins a job that is over.
  const uint32_t seen = generation_of(ticket_.load());
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i, seen] { worker_loop(i, seen); });
}

void ThreadPool::park() {
  if (workers_.empty()) return;
  {
    MutexLock lock(mutex_);
    ticket_.store((static_cast<uint64_t>(generation_of(ticket_.load()) + 1) << 32) | kClosed | kStopped);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

int ThreadPool::default_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::run(const std::function<void(int, int)>& fn) { dispatch(fn, false); }

void ThreadPool::run_shared(const std::function<void(int, int)>& fn) { dispatch(fn, true); }

void ThreadPool::dispatch(const std::function<void(int, int)>& fn, bool shared) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  if (workers_.empty()) start_workers();  // parked
  job_ = &fn;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t next = static_cast<uint64_t>(generation_of(ticket_.load(std::memory_order_relaxed)) + 1) << 32;
  {
    MutexLock lock(mutex_);
    ticket_.store(next | (shared ? kShared : 0), std::memory_order_release);
  }
  wake_.notify_all();
  fn(0, n_threads_);
  // Shared jobs: close the ticket so that late workers skip, and wait only for those that
  // joined. Other jobs: every worker joins.
  const int expected = shared ? static_cast<int>(ticket_.fetch_or(kClosed, std::memory_order_acq_rel) & kJoinedMask)
                              : n_threads_ - 1;
  for (int spins = 0; done_.load(std::memory_order_acquire) != expected; ++spins) {
    if (spins < kPauseSpins) cpu_relax();
    else sched_yield();
  }
  job_ = nullptr;
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain,
                              int chunks_per_thread) {
  if (n <= 0) return;
  const int64_t chunks = std::min<int64_t>(static_cast<int64_t>(n_threads_) * std::max(chunks_per_thread, 1),
                                           n / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  struct Split {
    const std::function<void(int64_t, int64_t)>* fn;
    int64_t n, chunk;
    std::atomic<int64_t> next{0};
  } split{&fn, n, (n + chunks - 1) / chunks};
  // One pointer captured: fits std::function's inline storage, so dispatching allocates nothing.
  run_shared([s = &split](int, int) {
    for (int64_t b; (b = s->next.fetch_add(s->chunk, std::memory_order_relaxed)) < s->n;)
      (*s->fn)(b, std::min(s->n, b + s->chunk));
  });
}

void ThreadPool::worker_loop(int index, uint32_t seen) {
  for (;;) {
    int spins = 0;
    while (generation_of(ticket_.load(std::memory_order_acquire)) == seen && spins < kPauseSpins + kYieldSpins) {
      if (spins < kPauseSpins) cpu_relax();
      else sched_yield();
      ++spins;
    }
    if (generation_of(ticket_.load(std::memory_order_acquire)) == seen) {
      MutexLock lock(mutex_);
      while (generation_of(ticket_.load()) == seen) wake_.wait(mutex_);
    }
    // Join the newest job unless the caller has closed it; the compare-exchange fails if
    // the ticket moved on (another worker joined, the job was closed, or a newer job began).
    uint64_t t = ticket_.load(std::memory_order_acquire);
    bool joined = false;
    while (!(t & kClosed)) {
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    // Decided from the one word loaded: a separate stop flag read before it could miss a
    // park() that came in between, and the worker would wait for a generation that never comes.
    if (t & kStopped) return;
    seen = generation_of(t);
    if (!joined) continue;
    (*job_)(index, n_threads_);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

}  // namespace zs::core
