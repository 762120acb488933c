#pragma once
// The HTTP(S) client that downloads models from a Hugging Face-style hub (or a mirror):
// one request per call on a fresh connection, redirects followed, HTTPS verified against the
// system's CA store (TLS 1.2 at least, SNI set), through HTTPS_PROXY / HTTP_PROXY (CONNECT for
// https, absolute-form for http) unless NO_PROXY names the host. The Authorization header goes
// to the first host only, never to a host a redirect leads to (a CDN's signed URL).
//
// Threading: hub_request() blocks the calling thread; concurrent calls are safe (each runs on
// its own io_context). Every wait is bounded: the connect (and TLS handshake) by
// connect_timeout, each read and write by io_timeout. Failures are Status values:
// kUnavailable (cannot connect or resolve: offline), kDeadlineExceeded, kUpstreamFailed (a
// broken or malformed answer), kInvalidArgument (an unusable URL).
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "gateway/http/http_types.h"

namespace zs::gateway::hub {

struct HubHttpOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{60'000};
  std::string https_proxy;  // "http://host:port"; empty: none
  std::string http_proxy;
  std::string no_proxy;     // comma-separated host suffixes ("localhost,.internal"), "*" for all
  int max_redirects = 5;

  // HTTPS_PROXY/https_proxy, HTTP_PROXY/http_proxy, NO_PROXY/no_proxy from the environment.
  static HubHttpOptions from_environment();
};

struct HubRequest {
  std::string method = "GET";  // GET or HEAD
  std::string url;             // absolute http(s) URL
  HttpHeaders headers;         // sent to every hop, except Authorization (first host only)
  bool follow_redirects = true;
  // Receives the body of the final 2xx answer piece by piece; returning false stops the read
  // (the call then returns the headers with `stopped` set). Null: the body is collected in
  // the response, up to `max_body_bytes`.
  std::function<bool(std::string_view)> on_body;
  uint64_t max_body_bytes = uint64_t{16} << 20;
};

struct HubResponse {
  int status = 0;
  HttpHeaders headers;           // of the final answer
  HttpHeaders first_headers;     // of the first answer (the hub's own, before a redirect)
  std::string body;              // when no on_body was given, or the body of a non-2xx answer
  std::string final_url;
  bool stopped = false;          // on_body returned false
  uint64_t body_bytes = 0;       // bytes handed to on_body
  bool body_complete = false;    // the whole body arrived (its length as announced)

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

core::Result<HubResponse> hub_request(const HubRequest& request, const HubHttpOptions& options);

}  // namespace zs::gateway::hub

namespace zs::gateway::hub {

// Whether a TCP connection to the URL's host (or its proxy) opens within `timeout`. The
// attempt runs on a thread of its own that is left behind when the time is up, so a DNS
// lookup stuck in the system resolver cannot hold the caller longer than `timeout`.
// kUnavailable (or kDeadlineExceeded) says why not.
core::Status check_reachable(const std::string& url, const HubHttpOptions& options, std::chrono::milliseconds timeout);

}  // namespace zs::gateway::hub
