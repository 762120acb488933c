#pragma once
// One thread that runs posted tasks in order: for work that must leave an I/O thread but
// must not run concurrently with itself (e.g. an encoder with scratch buffers).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace zs::core {

class SerialExecutor {
 public:
  SerialExecutor();
  ~SerialExecutor();  // runs what is queued, then joins
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  void post(std::function<void()> task);
  size_t pending() const;

 private:
  void loop();
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zs::core
