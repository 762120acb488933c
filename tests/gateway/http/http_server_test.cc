// The HTTP server and client over real sockets on 127.0.0.1 (port 0) and a Unix socket.
#include "gateway/http/http_server.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <sys/un.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "gateway/http/http_client.h"
#include "gateway/http/sse.h"
#include "gateway/http/test_support.h"
#include "test_util/temp_dir.h"

namespace zs::gateway {
namespace {

using testing::Latch;
using testing::RawSocket;
using testing::Workers;
using testing::eventually;
using namespace std::chrono_literals;

std::unique_ptr<HttpServer> start_server(Router router, HttpServerOptions options = {}) {
  auto server = HttpServer::start(options, std::move(router));
  EXPECT_TRUE(server.is_ok()) << server.status().message();
  return server.is_ok() ? std::move(server).value() : nullptr;
}

// Echoes method, path, the X-Test header and the body.
void add_echo(Router& router) {
  router.add("POST", "/echo", [](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    nlohmann::json j = {{"method", req.method}, {"path", std::string(req.path())},
                        {"query", std::string(req.query())}, {"x_test", req.header("x-TEST")},
                        {"body", req.body}, {"remote", req.remote}};
    w->respond_json(200, j.dump(), {{"X-Reply", "yes"}});
  });
  router.add("GET", "/remote", [](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    w->respond(200, "text/plain", req.remote);
  });
}

nlohmann::json body_json(const HttpResponse& r) { return nlohmann::json::parse(r.body); }

TEST(HttpServerTest, RoundTripOverTcp) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->address(), "127.0.0.1:" + std::to_string(server->port()));

  auto r = http_request("POST", server->address(), "/echo?a=1", R"({"hello":"world"})", {{"X-Test", "42"}});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "application/json");
  EXPECT_EQ(r->header("x-reply"), "yes");
  auto j = body_json(r.value());
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["path"], "/echo");
  EXPECT_EQ(j["query"], "a=1");
  EXPECT_EQ(j["x_test"], "42");
  EXPECT_EQ(j["body"], R"({"hello":"world"})");
}

TEST(HttpServerTest, RoundTripOverUnixSocket) {
  testing::TempDir dir;
  Router router;
  add_echo(router);
  HttpServerOptions options;
  options.address = "unix:" + dir.file("gw.sock");
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);
  EXPECT_EQ(server->address(), options.address);
  EXPECT_EQ(server->port(), 0);
  auto r = http_request("POST", server->address(), "/echo", "abc");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r.value())["body"], "abc");
  server->stop(1s);
  EXPECT_FALSE(std::filesystem::exists(dir.file("gw.sock")));  // the socket file is removed
}

TEST(HttpServerTest, StaleUnixSocketIsReplacedButLiveOnesAndOtherFilesAreNot) {
  testing::TempDir dir;
  HttpServerOptions options;
  std::string path = dir.file("gw.sock");
  options.address = "unix:" + path;
  {
    // A crashed server leaves its socket file behind: bound, nobody listening.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ::close(fd);
    ASSERT_TRUE(std::filesystem::exists(path));
    auto first = start_server(Router{}, options);
    ASSERT_TRUE(first);
    // A live server keeps its path.
    auto second = HttpServer::start(options, Router{});
    ASSERT_FALSE(second.is_ok());
    EXPECT_NE(second.status().message().find("already"), std::string::npos) << second.status().message();
    EXPECT_TRUE(http_request("GET", first->address(), "/").is_ok());
  }
  std::string plain = dir.file("plain");
  { std::ofstream(plain) << "not a socket"; }
  options.address = "unix:" + plain;
  auto refused = HttpServer::start(options, Router{});
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("not a socket"), std::string::npos);
}

TEST(HttpServerTest, BadAddressesAreRefused) {
  for (std::string address : {"127.0.0.1", "127.0.0.1:99999", "example.com:80", "unix:", "::1:80"}) {
    HttpServerOptions options;
    options.address = address;
    auto server = HttpServer::start(options, Router{});
    EXPECT_FALSE(server.is_ok()) << address;
  }
}

TEST(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::connect(server->address());
  ASSERT_TRUE(client.is_ok()) << client.status().message();
  std::string first_remote;
  for (int i = 0; i < 10; ++i) {
    auto r = client.value()->request(i % 2 ? "POST" : "GET", i % 2 ? "/echo" : "/remote",
                                     "n=" + std::to_string(i));
    ASSERT_TRUE(r.is_ok()) << i << ": " << r.status().message();
    ASSERT_EQ(r->status, 200);
    if (i == 0) first_remote = r->body;
    if (i % 2 == 0) {
      EXPECT_EQ(r->body, first_remote);  // same client port: same connection
    }
    EXPECT_TRUE(client.value()->is_open());
  }
  EXPECT_EQ(server->connection_count(), 1u);
}

TEST(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::connect(server->address());
  ASSERT_TRUE(client.is_ok());
  auto r = client.value()->request("GET", "/nope");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 404);
  auto j = body_json(r.value());
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("/nope"), std::string::npos);

  r = client.value()->request("DELETE", "/echo");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("Allow"), "POST");
  EXPECT_EQ(body_json(r.value())["error"]["code"], "method_not_allowed");
  // Errors keep the connection usable.
  r = client.value()->request("POST", "/echo", "still here");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerTest, FallbackTakesUnknownPaths) {
  Router router;
  router.set_fallback([](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    w->respond(200, "text/plain", "fallback " + req.target);
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto r = http_request("GET", server->address(), "/any/thing");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->body, "fallback /any/thing");
}

TEST(HttpServerTest, BodyOverTheLimitIs413) {
  Router router;
  add_echo(router);
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);

  auto ok = http_request("POST", server->address(), "/echo", std::string(1000, 'a'));
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  EXPECT_EQ(ok->status, 200);

  auto r = http_request("POST", server->address(), "/echo", std::string(1001, 'a'));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 413);
  auto j = body_json(r.value());
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["code"], "request_too_large");
  EXPECT_EQ(r->header("Connection"), "close");

  // A chunked body has no Content-Length up front: the limit applies while reading.
  RawSocket s = RawSocket::tcp(server->port());
  ASSERT_TRUE(s.ok());
  std::string chunk(600, 'b');
  char size_line[16];
  std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk.size());
  s.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  s.send(std::string(size_line) + chunk + "\r\n" + size_line + chunk + "\r\n0\r\n\r\n");
  std::string reply = s.read_until("\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
}

TEST(HttpServerTest, LargeBodyWithinTheDefaultLimit) {
  Router router;
  router.add("POST", "/size", [](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
    w->respond(200, "text/plain", std::to_string(req.body.size()));
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto r = http_request("POST", server->address(), "/size", std::string(8 << 20, 'x'));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->body, std::to_string(8 << 20));
  auto big = http_request("POST", server->address(), "/size", std::string((32 << 20) + 1, 'x'));
  ASSERT_TRUE(big.is_ok()) << big.status().message();
  EXPECT_EQ(big->status, 413);
}

TEST(HttpServerTest, ExpectContinueGets100BeforeTheBody) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  ASSERT_TRUE(s.ok());
  s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = s.read_until("\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  s.send("hello");
  std::string reply = s.read_until("hello");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
}

TEST(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  ASSERT_TRUE(s.ok());
  std::string req1 = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none";
  std::string req2 = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo";
  std::string req3 = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree";
  s.send(req1 + req2 + req3);
  bool closed = false;
  std::string all = s.read_to_eof(&closed);
  EXPECT_TRUE(closed);
  size_t p1 = all.find("\"one\""), p2 = all.find("\"two\""), p3 = all.find("\"three\"");
  ASSERT_NE(p1, std::string::npos) << all;
  ASSERT_NE(p2, std::string::npos) << all;
  ASSERT_NE(p3, std::string::npos) << all;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);
}

TEST(HttpServerTest, MalformedRequestIs400) {
  auto server = start_server(Router{});
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  s.send("THIS IS NOT HTTP\r\n\r\n");
  bool closed = false;
  std::string reply = s.read_to_eof(&closed);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_TRUE(closed);
}

TEST(HttpServerTest, OversizedHeadersAre431) {
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  auto server = start_server(Router{}, options);
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  s.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  std::string reply = s.read_until("\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 431", 0), 0u) << reply;
}

TEST(HttpServerTest, SlowHeadersAreCutOff) {
  HttpServerOptions options;
  options.header_timeout = 200ms;
  auto server = start_server(Router{}, options);
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  ASSERT_TRUE(s.send("GET / HTTP/1.1\r\nHost: x\r\n"));  // never finishes the headers
  bool closed = false;
  s.read_to_eof(&closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(eventually([&] { return server->connection_count() == 0; }));
}

TEST(HttpServerTest, IdleConnectionsTimeOut) {
  HttpServerOptions options;
  options.idle_timeout = 100ms;
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);
  auto client = HttpClient::connect(server->address());
  ASSERT_TRUE(client.is_ok());
  ASSERT_TRUE(client.value()->request("GET", "/remote").is_ok());
  EXPECT_TRUE(eventually([&] { return server->connection_count() == 0; }));
}

TEST(HttpServerTest, Http10GetsAClosedResponse) {
  Router router;
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  s.send("GET /remote HTTP/1.0\r\n\r\n");
  bool closed = false;
  std::string reply = s.read_to_eof(&closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(reply.find("Content-Length:"), std::string::npos) << reply;
}

TEST(HttpServerTest, HandlerThatDropsTheWriterGets500) {
  Router router;
  router.add("GET", "/forgot", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {});
  router.add("GET", "/throws", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {
    throw std::runtime_error("boom");
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::connect(server->address());
  ASSERT_TRUE(client.is_ok());
  auto r = client.value()->request("GET", "/forgot");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(body_json(r.value())["error"]["type"], "server_error");
  r = client.value()->request("GET", "/throws");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("boom"), std::string::npos);
}

TEST(HttpServerTest, ResponseFromAnotherThreadLater) {
  Workers workers;
  Router router;
  router.add("GET", "/later", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    workers.run([w] {
      std::this_thread::sleep_for(20ms);
      w->respond(201, "text/plain", "made later");
      w->respond(500, "text/plain", "ignored: already responded");
    });
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto client = HttpClient::connect(server->address());
  ASSERT_TRUE(client.is_ok());
  for (int i = 0; i < 3; ++i) {
    auto r = client.value()->request("GET", "/later");
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->status, 201);
    EXPECT_EQ(r->body, "made later");
  }
}

TEST(HttpServerTest, SseStreamOf100EventsArrivesInOrder) {
  Workers workers;
  Router router;
  router.add("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->start_stream(200);
    workers.run([w] {
      w->write(sse_comment("keep-alive"));
      for (int i = 0; i < 100; ++i) {
        EXPECT_TRUE(w->write(sse_event(nlohmann::json{{"i", i}}.dump())));
      }
      w->write(sse_event("[DONE]"));
      w->end();
      EXPECT_FALSE(w->write("after end"));
    });
  });
  HttpServerOptions options;
  options.io_threads = 2;
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);

  for (int round = 0; round < 2; ++round) {  // twice: the stream ends cleanly for keep-alive
    auto client = HttpClient::connect(server->address());
    ASSERT_TRUE(client.is_ok());
    SseParser parser;
    std::vector<std::string> events;
    auto r = client.value()->stream("POST", "/stream", "{}", {}, [&](std::string_view chunk) {
      parser.feed(chunk);
      for (auto& e : parser.take_events()) events.push_back(std::move(e));
      return true;
    });
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("Content-Type"), "text/event-stream");
    EXPECT_EQ(r->header("Cache-Control"), "no-cache");
    EXPECT_EQ(r->header("Transfer-Encoding"), "chunked");
    ASSERT_EQ(events.size(), 101u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(nlohmann::json::parse(events[i])["i"], i);
    EXPECT_EQ(events[100], "[DONE]");
    EXPECT_TRUE(client.value()->is_open());
    auto again = client.value()->request("POST", "/stream", "{}");
    ASSERT_TRUE(again.is_ok());
    EXPECT_NE(again->body.find("[DONE]"), std::string::npos);
  }
}

TEST(HttpServerTest, ClientDisconnectMidStreamIsDetected) {
  Workers workers;
  Latch gone_callback;
  std::promise<std::shared_ptr<ResponseWriter>> writer_promise;
  std::atomic<int> writes_accepted{0};
  Latch producer_done;
  Router router;
  router.add("POST", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->on_client_gone([&] { gone_callback.open(); });
    w->start_stream(200);
    writer_promise.set_value(w);
    workers.run([&, w] {
      // Produce until the client is gone; bounded so a broken server cannot hang the test.
      for (int i = 0; i < 200000; ++i) {
        if (!w->write(sse_event("{\"token\":" + std::to_string(i) + "}"))) break;
        ++writes_accepted;
        std::this_thread::sleep_for(1ms);
      }
      producer_done.open();
    });
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);

  int events_seen = 0;
  SseParser parser;
  auto r = http_stream("POST", server->address(), "/stream", "{}", {}, [&](std::string_view chunk) {
    parser.feed(chunk);
    events_seen += static_cast<int>(parser.take_events().size());
    return events_seen < 3;  // hang up after a few events
  });
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_GE(events_seen, 3);

  EXPECT_TRUE(gone_callback.wait());
  auto w = writer_promise.get_future().get();
  EXPECT_TRUE(w->client_gone());
  EXPECT_FALSE(w->write("more"));
  EXPECT_TRUE(producer_done.wait());
  EXPECT_LT(writes_accepted.load(), 200000);
  // A callback registered after the fact runs at once.
  bool late = false;
  w->on_client_gone([&] { late = true; });
  EXPECT_TRUE(late);
  EXPECT_TRUE(eventually([&] { return server->connection_count() == 0; }));
}

TEST(HttpServerTest, ClientDisconnectBeforeTheFirstByteIsDetected) {
  Latch handler_called;
  Latch gone_callback;
  std::shared_ptr<ResponseWriter> held;
  std::mutex mu;
  Router router;
  router.add("POST", "/slow", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    {
      std::lock_guard<std::mutex> lock(mu);
      held = w;  // "computing": no response yet
    }
    w->on_client_gone([&] { gone_callback.open(); });
    handler_called.open();
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  {
    RawSocket s = RawSocket::tcp(server->port());
    s.send("POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    ASSERT_TRUE(handler_called.wait());
  }  // the client hangs up while the handler computes
  EXPECT_TRUE(gone_callback.wait());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_TRUE(held->client_gone());
  held->respond(200, "text/plain", "too late");  // harmless
  held.reset();
}

TEST(HttpServerTest, QueuedBytesShowASlowReader) {
  Latch written;
  std::promise<std::shared_ptr<ResponseWriter>> writer_promise;
  Router router;
  constexpr size_t kChunk = 4 << 20;
  constexpr int kChunks = 16;  // 64 MiB: far more than socket buffers hold
  router.add("GET", "/big", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->start_stream(200, "application/octet-stream");
    for (int i = 0; i < kChunks; ++i) w->write(std::string(kChunk, 'z'));
    w->end();
    writer_promise.set_value(w);
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  RawSocket s = RawSocket::tcp(server->port());
  s.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
  auto w = writer_promise.get_future().get();
  // The client has not read: most of the data must still be queued on the server.
  EXPECT_GT(w->queued_bytes(), 0u);
  size_t received = 0;
  while (received < kChunk * kChunks) {
    std::string more = s.read_some();
    if (more.empty()) break;
    received += more.size();
  }
  EXPECT_GE(received, kChunk * kChunks);
  EXPECT_TRUE(eventually([&] { return w->queued_bytes() == 0; }));
}

TEST(HttpServerTest, ThousandIdleKeepAliveConnectionsOnOneThread) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 4096 && lim.rlim_max >= 4096) {
    lim.rlim_cur = 4096;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 2100) GTEST_SKIP() << "needs 2100 file descriptors, have " << lim.rlim_cur;

  Router router;
  add_echo(router);
  HttpServerOptions options;
  options.io_threads = 1;
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);
  constexpr int kClients = 1000;
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto c = HttpClient::connect(server->address());
    ASSERT_TRUE(c.is_ok()) << i << ": " << c.status().message();
    auto r = c.value()->request("POST", "/echo", std::to_string(i));
    ASSERT_TRUE(r.is_ok()) << i << ": " << r.status().message();
    ASSERT_EQ(r->status, 200);
    clients.push_back(std::move(c).value());
  }
  EXPECT_EQ(server->connection_count(), static_cast<size_t>(kClients));
  // All of them are still served, in a different order.
  for (int i = kClients - 1; i >= 0; --i) {
    auto r = clients[i]->request("POST", "/echo", "again " + std::to_string(i));
    ASSERT_TRUE(r.is_ok()) << i << ": " << r.status().message();
    EXPECT_EQ(body_json(r.value())["body"], "again " + std::to_string(i));
  }
  clients.clear();
  EXPECT_TRUE(eventually([&] { return server->connection_count() == 0; }));
}

TEST(HttpServerTest, GracefulStopLetsAnInFlightResponseFinish) {
  Workers workers;
  Latch handler_called;
  Latch release;
  Router router;
  router.add("GET", "/slow", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    handler_called.open();
    workers.run([&, w] {
      release.wait();
      w->respond(200, "text/plain", "finished");
    });
  });
  add_echo(router);
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  std::string address = server->address();

  // An idle keep-alive connection: closed by stop() at once.
  auto idle = HttpClient::connect(address);
  ASSERT_TRUE(idle.is_ok());
  ASSERT_TRUE(idle.value()->request("GET", "/remote").is_ok());
  ASSERT_EQ(server->connection_count(), 1u);

  auto slow = std::async(std::launch::async, [&] { return http_request("GET", address, "/slow"); });
  ASSERT_TRUE(handler_called.wait());
  auto stopper = std::async(std::launch::async, [&] { server->stop(60s); });

  // New connections are refused once stop() began...
  EXPECT_TRUE(eventually([&] { return !HttpClient::connect(address).is_ok(); }));
  // ...and the idle one was closed, leaving the one in flight.
  EXPECT_TRUE(eventually([&] { return server->connection_count() == 1; }));
  EXPECT_FALSE(idle.value()->request("GET", "/remote").is_ok());
  // The in-flight request is still waiting (stop() has not returned).
  EXPECT_EQ(stopper.wait_for(0s), std::future_status::timeout);

  release.open();
  auto r = slow.get();
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "finished");
  EXPECT_EQ(r->header("Connection"), "close");
  stopper.get();
  EXPECT_EQ(server->connection_count(), 0u);
}

TEST(HttpServerTest, StopAfterGraceClosesStuckStreams) {
  Latch handler_called;
  Latch gone;
  std::shared_ptr<ResponseWriter> held;
  Router router;
  router.add("GET", "/forever", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->start_stream(200);
    w->write(sse_event("first"));
    w->on_client_gone([&] { gone.open(); });
    held = w;
    handler_called.open();
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  std::string address = server->address();
  std::atomic<bool> got_first{false};
  auto client = std::async(std::launch::async, [&] {
    return http_stream("GET", address, "/forever", "", {}, [&](std::string_view) {
      got_first = true;
      return true;
    });
  });
  ASSERT_TRUE(handler_called.wait());
  server->stop(50ms);
  EXPECT_TRUE(gone.wait());
  EXPECT_TRUE(held->client_gone());
  EXPECT_FALSE(held->write("x"));
  auto r = client.get();
  EXPECT_FALSE(r.is_ok());  // the stream was cut off before its end
  held.reset();
}

TEST(HttpServerTest, TooManyConnectionsAre503) {
  Router router;
  add_echo(router);
  HttpServerOptions options;
  options.max_connections = 2;
  auto server = start_server(std::move(router), options);
  ASSERT_TRUE(server);
  auto a = HttpClient::connect(server->address());
  auto b = HttpClient::connect(server->address());
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  ASSERT_TRUE(a.value()->request("GET", "/remote").is_ok());
  ASSERT_TRUE(b.value()->request("GET", "/remote").is_ok());
  auto r = http_request("GET", server->address(), "/remote");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(body_json(r.value())["error"]["code"], "overloaded");
}

TEST(HttpClientTest, TimesOutAndReportsRefusedConnections) {
  Router router;
  std::vector<std::shared_ptr<ResponseWriter>> held;
  std::mutex mu;
  router.add("GET", "/hold", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(w);
  });
  auto server = start_server(std::move(router));
  ASSERT_TRUE(server);
  auto r = http_request("GET", server->address(), "/hold", "", {}, 100ms);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
  std::string address = server->address();
  server->stop(0ms);
  auto refused = http_request("GET", address, "/hold");
  EXPECT_FALSE(refused.is_ok());
}

}  // namespace
}  // namespace zs::gateway
