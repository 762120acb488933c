#pragma once
// One thread that runs posted tasks in order: for work that must leave an I/O thread but
// must not run concurrently with itself (e.g. an encoder with scratch buffers).
#include <deque>
#include <functional>
#include <thread>

#include "core/mutex.h"

namespace zs::core {

class SerialExecutor {
 public:
  SerialExecutor();
  ~SerialExecutor();  // runs what is queued, then joins
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  void post(std::function<void()> task) EXCLUDES(mutex_);
  size_t pending() const EXCLUDES(mutex_);

 private:
  void loop() EXCLUDES(mutex_);
  mutable Mutex mutex_;
  CondVar wake_;
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mutex_);
  bool stop_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace zs::core
