#include "gateway/fetch/image_url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace zs::gateway {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Long URLs (signed query strings) are shortened in messages so that errors stay readable.
std::string shown(std::string_view url) {
  constexpr size_t kShown = 200;
  if (url.size() <= kShown) return std::string(url);
  return std::string(url.substr(0, kShown)) + "...";
}

core::Status bad(std::string_view url, const std::string& why) {
  return core::Status::invalid_argument("invalid image URL '" + shown(url) + "': " + why);
}

bool is_host_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_'; }

// Percent-encodes what may not appear raw in a request line; refuses control characters,
// which could split the request (CR/LF) or confuse the server.
core::Result<std::string> encode_target(std::string_view url, std::string_view target) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(target.size());
  for (char ch : target) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return bad(url, "it contains a control character");
    if (c >= 0x80 || c == ' ' || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
        c == '|' || c == '}') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// Resolves "." and ".." segments of an absolute path (RFC 3986 section 5.2.4).
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> segs;
  size_t pos = 1;  // path starts with '/'
  bool trailing_slash = false;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    trailing_slash = false;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      trailing_slash = true;
    } else if (seg == ".") {
      trailing_slash = true;
    } else {
      segs.push_back(seg);
    }
    pos = next + 1;
  }
  std::string out;
  for (auto s : segs) {
    out += '/';
    out += s;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

}  // namespace

std::string ImageUrl::authority() const {
  std::string out = host_is_ipv6 ? "[" + host + "]" : host;
  if (!has_default_port()) out += ":" + std::to_string(port);
  return out;
}

std::string ImageUrl::to_string() const { return scheme + "://" + authority() + target; }

core::Result<ImageUrl> parse_image_url(std::string_view url) {
  if (url.empty()) return core::Status::invalid_argument("invalid image URL: it is empty");
  if (url.size() > kMaxImageUrlBytes) {
    return bad(url, "it is " + std::to_string(url.size()) + " bytes long, over the limit of " +
                        std::to_string(kMaxImageUrlBytes));
  }
  size_t colon = url.find(':');
  if (colon == std::string_view::npos || colon == 0) return bad(url, "it has no scheme");
  std::string scheme = lower(url.substr(0, colon));
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return bad(url, "it has no scheme");
    }
  }
  if (scheme != "http" && scheme != "https") {
    return bad(url, "unsupported scheme '" + scheme + "' (only http and https URLs are fetched)");
  }
  if (url.substr(colon + 1, 2) != "//") return bad(url, "expected '//' after '" + scheme + ":'");

  std::string_view rest = url.substr(colon + 3);
  size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view after = auth_end == std::string_view::npos ? "" : rest.substr(auth_end);

  if (authority.find('@') != std::string_view::npos) {
    return bad(url, "user info ('user@host') is not allowed in image URLs");
  }
  if (authority.empty()) return bad(url, "it has no host");

  ImageUrl out;
  out.scheme = scheme;
  std::string_view port_text;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad(url, "'[' without a closing ']' in the host");
    std::string literal(authority.substr(1, close - 1));
    if (literal.find('%') != std::string::npos) {
      return bad(url, "IPv6 zone identifiers are not allowed");
    }
    std::array<uint8_t, 16> bytes{};
    if (::inet_pton(AF_INET6, literal.c_str(), bytes.data()) != 1) {
      return bad(url, "'" + literal + "' is not an IPv6 address");
    }
    out.host = lower(literal);
    out.host_is_ipv6 = true;
    std::string_view tail = authority.substr(close + 1);
    if (!tail.empty()) {
      if (tail.front() != ':') return bad(url, "unexpected characters after ']'");
      port_text = tail.substr(1);
    }
  } else {
    size_t port_colon = authority.rfind(':');
    std::string_view host = authority.substr(0, port_colon);
    if (port_colon != std::string_view::npos) port_text = authority.substr(port_colon + 1);
    if (host.empty()) return bad(url, "it has no host");
    for (char c : host) {
      if (!is_host_char(c)) {
        return bad(url, "the host '" + std::string(host) + "' contains a character not allowed in a host name");
      }
    }
    if (host.size() > 253 + 1) return bad(url, "the host name is too long");
    out.host = lower(host);
  }

  if (port_text.empty()) {
    out.port = out.is_https() ? 443 : 80;  // "host:" with no digits means the default too
  } else {
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return bad(url, "the port '" + std::string(port_text) + "' is not a number");
    }
    int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return bad(url, "the port " + std::to_string(port) + " is out of range");
    out.port = static_cast<uint16_t>(port);
  }

  std::string_view target = after.substr(0, after.find('#'));
  auto encoded = encode_target(url, target);
  if (!encoded) return encoded.status();
  out.target = std::move(encoded).value();
  if (out.target.empty() || out.target.front() == '?') out.target.insert(0, "/");
  return out;
}

core::Result<ImageUrl> resolve_redirect(const ImageUrl& base, std::string_view location) {
  // Leading and trailing blanks are tolerated in Location, as browsers do.
  while (!location.empty() && (location.front() == ' ' || location.front() == '\t')) location.remove_prefix(1);
  while (!location.empty() && (location.back() == ' ' || location.back() == '\t')) location.remove_suffix(1);
  if (location.empty()) return core::Status::invalid_argument("the redirect has an empty Location");

  if (location.substr(0, 2) == "//") return parse_image_url(base.scheme + ":" + std::string(location));
  // A scheme is letters, digits, '+', '-', '.' before the first ':' that precedes any '/?#'.
  size_t colon = location.find(':');
  size_t delim = location.find_first_of("/?#");
  if (colon != std::string_view::npos && colon < delim && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(location.front()))) {
    return parse_image_url(location);
  }

  std::string_view path_and_query = location.substr(0, location.find('#'));
  std::string target;
  if (path_and_query.empty()) {
    target = base.target;
  } else if (path_and_query.front() == '/') {
    target = std::string(path_and_query);
  } else if (path_and_query.front() == '?') {
    target = base.target.substr(0, base.target.find('?')) + std::string(path_and_query);
  } else {
    std::string base_path = base.target.substr(0, base.target.find('?'));
    target = base_path.substr(0, base_path.rfind('/') + 1) + std::string(path_and_query);
  }
  size_t q = target.find('?');
  std::string path = remove_dot_segments(std::string_view(target).substr(0, q));
  if (q != std::string::npos) path += target.substr(q);
  ImageUrl next = base;
  next.target.clear();
  // Re-parse the result so that the target gets the same checks and encoding as any URL.
  return parse_image_url(next.scheme + "://" + next.authority() + path);
}

}  // namespace zs::gateway
