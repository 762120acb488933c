#pragma once
// A mutex, a scoped lock and a condition variable that Clang's thread-safety analysis
// understands (core/thread_annotations.h). Same cost as std::mutex, std::lock_guard and
// std::condition_variable, which they wrap.
//
//   class Queue {
//    public:
//     void push(int v) EXCLUDES(mu_) {
//       core::MutexLock lock(mu_);
//       items_.push_back(v);
//       ready_.notify_one();
//     }
//     int pop() EXCLUDES(mu_) {
//       core::MutexLock lock(mu_);
//       while (items_.empty()) ready_.wait(mu_);
//       return take_locked();
//     }
//    private:
//     int take_locked() REQUIRES(mu_);
//     core::Mutex mu_;
//     core::CondVar ready_;
//     std::deque<int> items_ GUARDED_BY(mu_);
//   };
//
// Waits are written as loops around wait()/wait_until() (not with a predicate lambda): the
// analysis checks the loop's condition against the lock, but cannot see a lambda run under it.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/thread_annotations.h"

namespace zs::core {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the lock is held where it cannot see it (a callback run under it).
  void assert_held() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope. unlock()/lock() release and retake it within the scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A condition variable for core::Mutex. Every wait needs the mutex held and returns with it
// held; like any condition variable it may wake spuriously, so waits sit in a loop.
class CondVar {
 public:
  void wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller still holds it
  }
  // Returns false once `deadline` passed.
  template <typename Clock, typename Duration>
  bool wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  template <typename Rep, typename Period>
  bool wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    return wait_until(mu, std::chrono::steady_clock::now() + timeout);
  }
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace zs::core
