#pragma once
// The http(s) URLs the image fetcher accepts, parsed strictly: a URL the gateway cannot read
// one way only is refused rather than guessed at, so the host that is checked is the host
// that is contacted.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace zs::gateway {

struct ImageUrl {
  std::string scheme;  // "http" or "https" (lowercase)
  std::string host;    // lowercase; an IPv6 literal without its brackets
  uint16_t port = 0;   // explicit or the scheme's default
  std::string target;  // path and query as sent in the request line ("/a/b.png?x=1"); never empty
  bool host_is_ipv6 = false;

  bool is_https() const { return scheme == "https"; }
  bool has_default_port() const { return port == (is_https() ? 443 : 80); }
  // "host", "host:8080", "[::1]:8080": the Host header value.
  std::string authority() const;
  // "scheme://authority/target", without the fragment.
  std::string to_string() const;
};

// Longer URLs are refused (no image host needs them; they only bloat logs and requests).
inline constexpr size_t kMaxImageUrlBytes = 8192;

// Accepts "http://" and "https://" URLs with a host (name, IPv4, or [IPv6] without zone), an
// optional port, path and query; drops the fragment. Refuses user info ("user@host"), other
// schemes, control characters and malformed authorities, each with a message naming why.
// Spaces and non-ASCII bytes in the path and query are percent-encoded, as browsers do.
core::Result<ImageUrl> parse_image_url(std::string_view url);

// The URL a redirect's Location names, relative to `base`: absolute ("https://h/x"),
// scheme-relative ("//h/x"), absolute-path ("/x") or relative-path ("x", "../x").
core::Result<ImageUrl> resolve_redirect(const ImageUrl& base, std::string_view location);

}  // namespace zs::gateway
