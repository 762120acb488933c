#pragma once
// The handler's side of one HTTP response. Handlers get it as a shared_ptr and may keep it
// after they return: long work runs on other threads, which later call respond() or stream
// with start_stream()/write()/end(). Every method is thread-safe and never blocks on the
// network; the data is handed to the connection's I/O thread.
//
// A response is either one respond() call, or start_stream() followed by any number of
// write() calls and one end(). Calls out of that order are ignored (and return false where a
// result exists). A writer released without a response answers 500; a stream released
// without end() is cut off by closing the connection, so the client sees it incomplete.
#include <cstddef>
#include <functional>
#include <string>

#include "gateway/http/http_types.h"

namespace zs::gateway {

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // A complete response with Content-Length.
  virtual void respond(int status, std::string content_type, std::string body,
                       HttpHeaders extra_headers = {}) = 0;

  // Starts a streamed response (chunked transfer encoding on HTTP/1.1). For
  // text/event-stream, Cache-Control: no-cache is added unless given.
  virtual void start_stream(int status, std::string content_type = "text/event-stream",
                            HttpHeaders extra_headers = {}) = 0;

  // Queues `chunk` for the client. Returns false once the client has gone or when no stream
  // was started; the data is then dropped.
  virtual bool write(std::string chunk) = 0;

  // Finishes a streamed response.
  virtual void end() = 0;

  // True once the peer disconnected (or the connection was closed by the server stopping).
  // Detected while the handler is still computing as well as while streaming.
  virtual bool client_gone() const = 0;

  // Calls `cb` once when the client goes; at once (on the calling thread) if it already has.
  // Otherwise it runs on an I/O thread, so it must be quick and must not block.
  virtual void on_client_gone(std::function<void()> cb) = 0;

  // Bytes handed to write()/respond() that the client has not received yet. Producers slow
  // down when it grows (a client reading slowly), instead of buffering without bound.
  virtual size_t queued_bytes() const = 0;

  // Convenience: a JSON body.
  void respond_json(int status, std::string json, HttpHeaders extra_headers = {}) {
    respond(status, "application/json", std::move(json), std::move(extra_headers));
  }
};

}  // namespace zs::gateway
