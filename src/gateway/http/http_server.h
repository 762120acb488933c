#pragma once
// Asynchronous HTTP/1.1 server (Boost.Asio/Beast behind a pimpl): a few I/O threads serve
// any number of connections, so thousands of idle or slowly streaming clients cost memory,
// not threads. Keep-alive, chunked streaming (SSE), body and header limits, timeouts against
// clients that send slowly or never, disconnect detection, and a graceful stop.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/status.h"
#include "gateway/http/router.h"

namespace zs::gateway {

struct HttpServerOptions {
  // "127.0.0.1:PORT" (PORT 0 picks a free one; see HttpServer::port()) or "unix:/path.sock".
  std::string address = "127.0.0.1:0";
  // Threads running handlers and socket I/O. Handlers never block, so 1-2 suffice.
  int io_threads = 1;
  // A larger request body answers 413 (before reading it when Content-Length says so).
  size_t max_body_bytes = size_t{32} << 20;
  // Request line plus headers; larger answers 431.
  size_t max_header_bytes = size_t{64} << 10;
  // From the first byte of a request to the end of its headers (slowloris).
  std::chrono::milliseconds header_timeout{10'000};
  // From the end of the headers to the end of the body.
  std::chrono::milliseconds body_timeout{60'000};
  // How long a connection may wait for its next request (keep-alive) or its first.
  std::chrono::milliseconds idle_timeout{75'000};
  // One write making no progress this long means the client stopped reading: close.
  std::chrono::milliseconds write_timeout{60'000};
  // Connections beyond this are answered 503 and closed.
  size_t max_connections = 10'000;
};

class HttpServer {
 public:
  // Binds, listens and starts the I/O threads. A stale Unix socket file at the path is
  // replaced; any other file there is an error.
  static core::Result<std::unique_ptr<HttpServer>> start(const HttpServerOptions& options,
                                                         Router router);
  ~HttpServer();  // stop() with no grace, if not stopped yet
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops accepting, closes idle connections, lets requests in flight finish (their
  // responses carry Connection: close) for up to `grace`, then closes the rest (their
  // writers see client_gone()) and joins the I/O threads. Call it from outside the I/O
  // threads. Idempotent.
  void stop(std::chrono::milliseconds grace);

  // The bound address, usable by a client: "127.0.0.1:41234" or "unix:/path.sock".
  std::string address() const;
  // The bound TCP port; 0 for a Unix socket.
  int port() const;
  // Open connections right now.
  size_t connection_count() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zs::gateway
