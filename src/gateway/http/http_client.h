#pragma once
// A small synchronous HTTP/1.1 client (Beast behind a pimpl) for tests, health checks and
// the gateway's proxying to workers: one connection, requests one after another on it
// (keep-alive), every wait bounded by a timeout, and a streaming read that can hang up
// mid-response (the server sees the client leave).
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "gateway/http/http_types.h"

namespace zs::gateway {

// Receives each piece of a streamed body as it arrives (pieces do not follow the server's
// chunk boundaries). Returning false hangs up: the connection is closed at once.
using ChunkCallback = std::function<bool(std::string_view chunk)>;

class HttpClient {
 public:
  // Connects to "HOST:PORT" or "unix:/path.sock".
  static core::Result<std::unique_ptr<HttpClient>> connect(
      const std::string& address, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response, all within `timeout`. A body without a
  // Content-Type header in `headers` is sent as application/json.
  core::Result<HttpResponse> request(const std::string& method, const std::string& target,
                                     const std::string& body = "", const HttpHeaders& headers = {},
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends one request and hands the response body to `on_chunk` piece by piece. `timeout`
  // bounds sending and each wait for data, not the whole stream. Returns the status and
  // headers (body empty); a hang-up by `on_chunk` still returns them.
  // `on_head`, when set, sees the status and headers before the first piece of the body.
  core::Result<HttpResponse> stream(const std::string& method, const std::string& target,
                                    const std::string& body, const HttpHeaders& headers,
                                    const ChunkCallback& on_chunk,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                    const std::function<void(const HttpResponse& head)>& on_head = {});

  // False once the server closed the connection, an error or timeout happened, or close().
  bool is_open() const;
  // Whether the server may have read the whole of the last request() or stream(). False when
  // the connection broke while the request was being written (reset or closed by the peer),
  // or when the peer reset it before any byte of the answer with part of the request still
  // unread (a socket closed with unread data is reset, one whose data was all read is closed
  // with an end of stream): then the server cannot have acted on the request, and it is safe
  // to send elsewhere. True otherwise, once the request was written.
  bool request_delivered() const;
  void close();

 private:
  struct Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  static core::Result<std::unique_ptr<HttpClient>> connect_unchecked(const std::string& address,
                                                                     std::chrono::milliseconds timeout);
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection.
core::Result<HttpResponse> http_request(const std::string& method, const std::string& address,
                                        const std::string& target, const std::string& body = "",
                                        const HttpHeaders& headers = {},
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

// One streamed request on a fresh connection.
core::Result<HttpResponse> http_stream(const std::string& method, const std::string& address,
                                       const std::string& target, const std::string& body,
                                       const HttpHeaders& headers, const ChunkCallback& on_chunk,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace zs::gateway
