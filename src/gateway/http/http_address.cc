#include "gateway/http/http_address.h"

#include <charconv>

namespace zs::gateway {

std::string HttpAddress::to_string() const {
  if (is_unix) return "unix:" + path;
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

core::Result<HttpAddress> parse_http_address(const std::string& text) {
  HttpAddress a;
  const std::string kUnix = "unix:";
  if (text.rfind(kUnix, 0) == 0) {
    a.is_unix = true;
    a.path = text.substr(kUnix.size());
    if (a.path.empty()) return core::Status::invalid_argument("address '" + text + "': empty Unix socket path");
    // sockaddr_un::sun_path holds 108 bytes including the terminating NUL.
    if (a.path.size() > 107) {
      return core::Status::invalid_argument("address '" + text + "': Unix socket path longer than 107 bytes");
    }
    return a;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return core::Status::invalid_argument("address '" + text + "': expected HOST:PORT or unix:/path");
  }
  std::string host = text.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']') return core::Status::invalid_argument("address '" + text + "': unclosed '['");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return core::Status::invalid_argument("address '" + text + "': write IPv6 hosts in brackets, [::1]:8080");
  }
  std::string port_text = text.substr(colon + 1);
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535) {
    return core::Status::invalid_argument("address '" + text + "': port must be a number in 0..65535");
  }
  a.host = host;
  a.port = port;
  return a;
}

}  // namespace zs::gateway
