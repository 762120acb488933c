#pragma once
// Helpers for the HTTP tests: background producer threads joined at scope end, a one-shot
// latch, and a raw POSIX socket for speaking byte-exact HTTP (partial headers, pipelining).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zs::testing {

// Threads standing in for the engine: handlers hand work to them. Joined on destruction.
class Workers {
 public:
  ~Workers() { join(); }
  void run(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back(std::move(fn));
  }
  void join() {
    std::vector<std::thread> ts;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ts.swap(threads_);
    }
    for (auto& t : ts) t.join();
  }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// Opens once; waiting is bounded so that a broken server fails the test instead of hanging.
class Latch {
 public:
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::seconds limit = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }
  bool is_open() {
    std::lock_guard<std::mutex> lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `cond` until true or the bound is reached (no timing is asserted: the bound only
// keeps a failing test from hanging).
inline bool eventually(const std::function<bool()>& cond, int tries = 3000) {
  for (int i = 0; i < tries; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class RawSocket {
 public:
  static RawSocket tcp(int port) {
    RawSocket s;
    s.fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) s.close();
    return s;
  }
  RawSocket() = default;
  RawSocket(RawSocket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RawSocket& operator=(RawSocket&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~RawSocket() { close(); }

  bool ok() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads what arrives within `limit`; "" on EOF, error or nothing in time.
  std::string read_some(int limit_ms = 30000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, limit_ms) <= 0) return "";
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Reads until `needle` has arrived (or EOF / the bound).
  std::string read_until(const std::string& needle, int limit_ms = 30000) {
    std::string out;
    while (out.find(needle) == std::string::npos) {
      std::string more = read_some(limit_ms);
      if (more.empty()) break;
      out += more;
    }
    return out;
  }
  // Reads until the server closes; returns everything read. *closed tells whether EOF came.
  std::string read_to_eof(bool* closed, int limit_ms = 30000) {
    std::string out;
    *closed = false;
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, limit_ms) <= 0) return out;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace zs::testing
