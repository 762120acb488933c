// HttpClient::request_delivered: whether a server may have read a whole request, which decides
// whether the gateway may send a failed request to another instance. Real sockets (TCP and
// unix) and a raw server that misbehaves the way a dying worker does.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "gateway/http/http_client.h"
#include "test_util/temp_dir.h"

namespace zs::gateway {
namespace {

// One listening socket (TCP on loopback, or unix) whose first connection gets `behave`.
class RawServer {
 public:
  explicit RawServer(bool unix_socket, const std::string& path = "") {
    if (unix_socket) {
      fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un a{};
      a.sun_family = AF_UNIX;
      std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      address_ = "unix:" + path;
    } else {
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
      getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
      address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    }
    EXPECT_EQ(listen(fd_, 4), 0);
  }
  ~RawServer() {
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  const std::string& address() const { return address_; }
  void serve_one(std::function<void(int)> behave) {
    thread_ = std::thread([this, behave] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      behave(c);
      close(c);
    });
  }

 private:
  int fd_ = -1;
  std::string address_;
  std::thread thread_;
};

// Waits until the request's first bytes have arrived, reads `n` bytes at most, and returns
// (the caller closes the socket with the rest unread: a reset).
void read_some(int c, size_t n) {
  pollfd p{c, POLLIN, 0};
  poll(&p, 1, 30000);
  std::string buf(n, '\0');
  if (n > 0) (void)!read(c, buf.data(), n);
}

// Reads a whole request (headers and a Content-Length body) and returns.
void read_request(int c) {
  std::string in;
  char buf[65536];
  size_t need = std::string::npos;
  while (need == std::string::npos || in.size() < need) {
    const ssize_t n = read(c, buf, sizeof buf);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
    const size_t end = in.find("\r\n\r\n");
    if (need == std::string::npos && end != std::string::npos) {
      const size_t at = in.find("Content-Length: ");
      need = end + 4 + (at == std::string::npos ? 0 : std::stoul(in.substr(at + 16)));
    }
  }
}

class Delivery : public ::testing::TestWithParam<bool> {
 protected:
  testing::TempDir dir_;
};

TEST_P(Delivery, ARequestCutWhileBeingWrittenWasNotDelivered) {
  RawServer s(GetParam(), dir_.file("s.sock"));
  s.serve_one([](int c) { read_some(c, 4096); });  // a worker dying while the body arrives
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok()) << client.status().message();
  auto r = client.value()->request("POST", "/v1/completions", std::string(16u << 20, 'x'));
  EXPECT_FALSE(r.is_ok());
  EXPECT_FALSE(client.value()->request_delivered());
}

TEST_P(Delivery, ARequestLeftUnreadByAServerThatResetsWasNotDelivered) {
  RawServer s(GetParam(), dir_.file("s.sock"));
  s.serve_one([](int c) { read_some(c, 0); });  // dies with the whole request unread
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok()) << client.status().message();
  auto r = client.value()->request("POST", "/v1/completions", R"({"prompt":"hi"})");
  EXPECT_FALSE(r.is_ok());
  EXPECT_FALSE(client.value()->request_delivered());
}

TEST_P(Delivery, ARequestReadWholeByAServerThatThenDiesWasDelivered) {
  RawServer s(GetParam(), dir_.file("s.sock"));
  s.serve_one([](int c) { read_request(c); });  // read it, then died before answering
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok()) << client.status().message();
  auto r = client.value()->request("POST", "/v1/completions", R"({"prompt":"hi"})");
  EXPECT_FALSE(r.is_ok());
  EXPECT_TRUE(client.value()->request_delivered());
}

TEST_P(Delivery, AStreamedRequestLeftUnreadWasNotDeliveredAndOneReadWholeWas) {
  {
    RawServer s(GetParam(), dir_.file("s.sock"));
    s.serve_one([](int c) { read_some(c, 0); });
    auto client = HttpClient::connect(s.address());
    ASSERT_TRUE(client.is_ok());
    auto r = client.value()->stream("POST", "/v1/completions", R"({"stream":true})", {},
                                    [](std::string_view) { return true; });
    EXPECT_FALSE(r.is_ok());
    EXPECT_FALSE(client.value()->request_delivered());
  }
  RawServer s(GetParam(), dir_.file("s2.sock"));
  s.serve_one([](int c) { read_request(c); });
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok());
  auto r = client.value()->stream("POST", "/v1/completions", R"({"stream":true})", {},
                                  [](std::string_view) { return true; });
  EXPECT_FALSE(r.is_ok());
  EXPECT_TRUE(client.value()->request_delivered());
}

TEST_P(Delivery, AnAnsweredRequestWasDelivered) {
  RawServer s(GetParam(), dir_.file("s.sock"));
  s.serve_one([](int c) {
    read_request(c);
    const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    (void)!write(c, answer.data(), answer.size());
  });
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok());
  auto r = client.value()->request("POST", "/v1/completions", R"({"prompt":"hi"})");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(client.value()->request_delivered());
}

TEST_P(Delivery, AStreamedRequestAnsweredWithAContentLengthBodyGetsTheBody) {
  RawServer s(GetParam(), dir_.file("s.sock"));
  s.serve_one([](int c) {  // an error answer to a stream: a plain JSON body, not events
    read_request(c);
    const std::string answer =
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"error\":1}";
    (void)!write(c, answer.data(), answer.size());
  });
  auto client = HttpClient::connect(s.address());
  ASSERT_TRUE(client.is_ok());
  std::string body;
  auto r = client.value()->stream("POST", "/v1/completions", R"({"stream":true})", {}, [&](std::string_view chunk) {
    body += chunk;
    return true;
  });
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(body, "{\"error\":1}");
}

INSTANTIATE_TEST_SUITE_P(HttpClient, Delivery, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "UnixSocket" : "Tcp"; });

}  // namespace
}  // namespace zs::gateway
