#pragma once
// Fetches http(s) images for workers, which have no network, without letting a request's
// URL reach what only the gateway can reach (server-side request forgery):
//   - the host is resolved once, every address it resolves to is checked (loopback, private,
//     link-local incl. cloud metadata, CGNAT, multicast, ...; see address_classifier.h),
//     and the connection goes to those checked addresses, never to a second lookup that a
//     rebinding DNS server could answer differently;
//   - every redirect hop is parsed and checked the same way, up to max_redirects;
//   - HTTPS verifies the peer certificate against the system store and the host name (SNI
//     set), TLS 1.2 at least;
//   - only a 200 with an image/* Content-Type is accepted, the body is bounded by max_bytes
//     (refused from Content-Length before reading, aborted while streaming), and the whole
//     fetch, redirects included, by timeout.
// fetch() blocks the calling thread (call it off the I/O threads); concurrent calls on one
// fetcher are safe, each runs on its own private io_context (and so its own lookup thread).
// One caveat on the timeout: a system DNS lookup stuck inside getaddrinfo cannot be
// interrupted, so fetch() then returns its "timed out" error only once the system resolver
// gives up (resolv.conf timeout x attempts).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/fetch/image_fetcher.h"

namespace zs::gateway {

struct HttpImageFetcherOptions {
  uint64_t max_bytes = uint64_t{20} << 20;
  // Bounds the whole fetch: lookup, connects, TLS, every redirect and the body.
  std::chrono::milliseconds timeout{10'000};
  // Lets URLs reach loopback, private and other non-public addresses (tests, a trusted
  // image store on the local network). Config: gateway.allow_private_image_urls.
  bool allow_private = false;
  int max_redirects = 3;
  // Turns a host name into IP address literals. Empty: the system resolver. Tests use it to
  // stand in for DNS; its answers are checked like any other. Called on the fetching
  // threads, possibly concurrently; its time counts against `timeout` only afterwards.
  std::function<core::Result<std::vector<std::string>>(const std::string& host)> resolver;
};

class HttpImageFetcher : public ImageFetcher {
 public:
  explicit HttpImageFetcher(HttpImageFetcherOptions options = {});
  ~HttpImageFetcher() override;
  HttpImageFetcher(const HttpImageFetcher&) = delete;
  HttpImageFetcher& operator=(const HttpImageFetcher&) = delete;

  // The image's bytes and its media type (the Content-Type without parameters, lowercase).
  // Every failure is an error naming the URL and the reason.
  core::Result<FetchedImage> fetch(const std::string& url) override;

  const HttpImageFetcherOptions& options() const { return options_; }

 private:
  struct Impl;
  HttpImageFetcherOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zs::gateway
