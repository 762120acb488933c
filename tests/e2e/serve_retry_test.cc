// End-to-end retry rules of `zeroserve serve`: a request that has not reached a worker is sent
// again (a connection reset while it was being written, or left unread), one that reached it
// is never sent twice. The instance is a `runtime: command` shell that only writes its port;
// the test plays its server on that port (raw sockets), misbehaving on purpose.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "gateway/http/http_client.h"
#include "serve_fixture.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::Serve;
using zs::testing::wait_for;

// Reads from `c` until the headers and a Content-Length body are in, or `limit` bytes at most.
std::string read_request(int c, size_t limit = std::string::npos) {
  std::string in;
  char buf[65536];
  size_t need = std::string::npos;
  while ((need == std::string::npos || in.size() < need) && in.size() < limit) {
    const ssize_t n = read(c, buf, std::min(sizeof buf, limit - in.size()));
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    const size_t end = in.find("\r\n\r\n");
    if (need == std::string::npos && end != std::string::npos) {
      size_t at = in.find("Content-Length: ");
      if (at == std::string::npos) at = in.find("content-length: ");
      need = end + 4 + (at == std::string::npos ? 0 : std::stoul(in.substr(at + 16)));
    }
  }
  return in;
}

void send_all(int c, const std::string& s) { (void)!write(c, s.data(), s.size()); }

const std::string kCompletion =
    R"({"id":"x","object":"chat.completion","created":0,"model":"fake","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})";

// The instance's server: answers /health, and hands the n-th POST's socket (n from 1) to `post`.
class FakeWorker {
 public:
  using Post = std::function<void(int socket, int n)>;
  FakeWorker(std::string port_file, Post post) : port_file_(std::move(port_file)), post_(std::move(post)) {
    thread_ = std::thread([this] { run(); });
  }
  ~FakeWorker() {
    stop_ = true;
    thread_.join();
  }
  int posts() const { return posts_; }

 private:
  void run() {
    int port = 0;
    while (!stop_ && port == 0) {
      std::ifstream in(port_file_);
      if (!(in >> port)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0) ADD_FAILURE() << "bind " << port;
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept(fd, nullptr, nullptr);
      if (c < 0) continue;
      pollfd r{c, POLLIN, 0};
      poll(&r, 1, 10000);
      char head[5] = {};
      (void)!recv(c, head, 4, MSG_PEEK);
      if (std::string(head) == "GET ") {
        read_request(c);
        send_all(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
      } else {
        post_(c, ++posts_);
      }
      close(c);  // with request bytes unread, this resets the connection
    }
    close(fd);
  }
  std::string port_file_;
  Post post_;
  std::atomic<bool> stop_{false};
  std::atomic<int> posts_{0};
  std::thread thread_;
};

std::string fake_config(const std::string& port_file) {
  // The model is only read for its size (the memory the instance takes).
  return "deployments:\n  - name: fake\n    model: " + zs::testing::golden_model("stories260K.gguf") +
         "\n    command: /bin/sh -c 'echo {port} > " + port_file +
         "; exec sleep 600'\n    max_instances: 1\n    slots: 2\n";
}

json chat_body(bool stream) {
  return {{"model", "fake"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
          {"max_tokens", 4}, {"stream", stream}};
}

std::string metrics(Serve& s) {
  auto m = gateway::http_request("GET", s.address(), "/metrics");
  return m.is_ok() ? m->body : "";
}

TEST(ServeRetry, ARequestWhoseConnectionIsResetWhileItIsWrittenIsSentAgain) {
  zs::testing::TempDir dir;
  FakeWorker worker(dir.file("port"), [](int c, int n) {
    if (n == 1) {
      read_request(c, 4096);  // dies while the body arrives: most of it is never read
      return;
    }
    read_request(c);
    send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(kCompletion.size()) + "\r\nConnection: close\r\n\r\n" + kCompletion);
  });
  Serve s(fake_config(dir.file("port")));
  json body = chat_body(false);
  body["user"] = std::string(24u << 20, 'u');  // far more than the socket buffers hold
  auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", body.dump(), {}, std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(worker.posts(), 2);
  EXPECT_EQ(metrics(s).find(R"(status="502")"), std::string::npos);
}

TEST(ServeRetry, AStreamLeftUnreadByAWorkerThatResetsIsSentAgain) {
  zs::testing::TempDir dir;
  FakeWorker worker(dir.file("port"), [](int c, int n) {
    if (n == 1) return;  // closes with the whole request unread: a reset
    read_request(c);
    send_all(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n");
  });
  Serve s(fake_config(dir.file("port")));
  std::string received;
  auto r = gateway::http_stream("POST", s.address(), "/v1/chat/completions", chat_body(true).dump(), {},
                                [&](std::string_view chunk) {
                                  received += chunk;
                                  return true;
                                },
                                std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(received.find("data: [DONE]"), std::string::npos) << received;
  EXPECT_EQ(received.find("\"error\""), std::string::npos) << received;
  EXPECT_EQ(worker.posts(), 2);
}

TEST(ServeRetry, ARequestTheWorkerReadAndThenLostIs502AndNeverSentAgain) {
  zs::testing::TempDir dir;
  FakeWorker worker(dir.file("port"), [](int c, int) { read_request(c); });  // read it all, then died
  Serve s(fake_config(dir.file("port")));
  auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", chat_body(false).dump(), {},
                                 std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 502) << r->body;
  const json err = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(err.contains("error")) << r->body;
  EXPECT_NE(err["error"]["message"].get<std::string>().find("failed while handling the request"), std::string::npos)
      << r->body;
  EXPECT_EQ(worker.posts(), 1);
  ASSERT_TRUE(wait_for([&] { return metrics(s).find(R"(status="502")") != std::string::npos; }, std::chrono::seconds(10)));
}

}  // namespace
}  // namespace zs
