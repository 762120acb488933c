#pragma once
// Plain HTTP message types shared by the server, the client and handlers; no Beast here so
// that handler code compiles fast.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zs::gateway {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// ASCII case-insensitive comparison, as HTTP field names need.
bool iequals(std::string_view a, std::string_view b);

// Value of the first header named `name` (case-insensitive), or "" when absent.
std::string find_header(const HttpHeaders& headers, std::string_view name);

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path and query ("/v1/models?x=1")
  std::string body;
  HttpHeaders headers;
  int version = 11;  // 10 or 11
  std::string remote;  // peer address, for logs ("127.0.0.1:53122" or "unix")

  std::string header(std::string_view name) const { return find_header(headers, name); }
  // The target without its query string.
  std::string_view path() const;
  // The query string after '?', or "".
  std::string_view query() const;
};

// The value of the query parameter `name` in `query` (form-encoded: '+' and %XX decoded), or
// "" when absent.
std::string query_param(std::string_view query, std::string_view name);

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;

  std::string header(std::string_view name) const { return find_header(headers, name); }
};

}  // namespace zs::gateway
