#pragma once
// Where a server listens or a client connects: "HOST:PORT" (IPv4, "[IPv6]", or "localhost";
// port 0 = any free port when listening) or "unix:/path/to.sock" (a Unix domain socket).
#include <string>

#include "core/status.h"

namespace zs::gateway {

struct HttpAddress {
  bool is_unix = false;
  std::string host;  // without brackets; "localhost" is kept as written
  int port = 0;
  std::string path;  // Unix socket path

  std::string to_string() const;
};

core::Result<HttpAddress> parse_http_address(const std::string& text);

}  // namespace zs::gateway
