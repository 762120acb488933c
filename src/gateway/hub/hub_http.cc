// The hub client's Asio/Beast code: each call runs its operations one after another on a
// private io_context; each operation runs until done or its timeout, which closes the socket
// (and so ends the operation).
#include "gateway/hub/hub_http.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <thread>
#include <optional>

#include "core/mutex.h"
#include "gateway/fetch/image_url.h"

namespace zs::gateway::hub {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using core::Result;
using core::Status;

namespace {

// ---------------------------------------------------------------------------------------
// Helpers: proxies from the environment, redirects, the TLS context
// ---------------------------------------------------------------------------------------

constexpr size_t kMaxHeaderBytes = size_t{64} << 10;

std::string env_either(const char* upper, const char* lower) {
  if (const char* v = std::getenv(upper); v && *v) return v;
  if (const char* v = std::getenv(lower); v && *v) return v;
  return "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool bypasses_proxy(const std::string& host, const std::string& no_proxy) {
  size_t begin = 0;
  while (begin <= no_proxy.size()) {
    size_t end = no_proxy.find(',', begin);
    if (end == std::string::npos) end = no_proxy.size();
    std::string entry = no_proxy.substr(begin, end - begin);
    while (!entry.empty() && entry.front() == ' ') entry.erase(entry.begin());
    while (!entry.empty() && entry.back() == ' ') entry.pop_back();
    entry = lower(entry);
    if (entry == "*") return true;
    if (!entry.empty()) {
      if (entry.front() == '.') entry.erase(entry.begin());
      if (host == entry || (host.size() > entry.size() && host.compare(host.size() - entry.size(), entry.size(), entry) == 0 &&
                            host[host.size() - entry.size() - 1] == '.'))
        return true;
    }
    begin = end + 1;
  }
  return false;
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One TLS context for every call: loading the system store is not free, and OpenSSL lets
// connections share a context across threads.
ssl::context* tls_context(std::string& error) {
  static std::once_flag once;
  static std::optional<ssl::context> ctx;
  static std::string ctx_error;
  std::call_once(once, [] {
    try {
      ctx.emplace(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
      ctx->set_verify_mode(ssl::verify_peer);
      ErrorCode ec;
      ctx->set_default_verify_paths(ec);
      if (ec) {
        ctx_error = "loading the system's CA certificates: " + ec.message();
        ctx.reset();
      }
    } catch (const std::exception& e) {
      ctx_error = e.what();
      ctx.reset();
    }
  });
  error = ctx_error;
  return ctx ? &*ctx : nullptr;
}

// ---------------------------------------------------------------------------------------
// One call: connect (through a proxy), TLS, one exchange per hop
// ---------------------------------------------------------------------------------------

class Session {
 public:
  Session(const HubHttpOptions& options) : options_(options) {}

  Result<HubResponse> run(const HubRequest& request);

 private:
  // Runs the operation `start` begins until it completes or `timeout` passes; then the
  // socket is closed, which completes it with an error.
  template <typename Start>
  ErrorCode timed(std::chrono::milliseconds timeout, Start&& start) {
    ErrorCode result;
    bool done = false;
    start([&result, &done](ErrorCode ec, auto&&...) {
      result = ec;
      done = true;
    });
    io_.restart();
    io_.run_for(timeout);
    if (!done) {
      timed_out_ = true;
      ErrorCode ignored;
      if (resolver_) resolver_->cancel();
      if (stream_) stream_->next_layer().close(ignored);
      io_.restart();
      io_.run();
    }
    return result;
  }

  Status error_at(const std::string& what, const ErrorCode& ec, std::chrono::milliseconds timeout) {
    if (timed_out_) return Status::deadline_exceeded(label_ + ": timed out " + what + " (after " +
                                                     std::to_string(timeout.count()) + " ms)");
    return Status::upstream_failed(label_ + ": " + what + ": " + ec.message());
  }

  Status connect(const ImageUrl& url);
  template <typename Stream>
  Result<HubResponse> exchange(Stream& stream, const ImageUrl& url, const HubRequest& request, bool send_auth,
                               bool via_http_proxy);

  const HubHttpOptions& options_;
  asio::io_context io_;
  std::optional<tcp::resolver> resolver_;
  std::optional<ssl::stream<tcp::socket>> stream_;
  bool timed_out_ = false;
  std::string label_;
};

Status Session::connect(const ImageUrl& url) {
  std::string proxy_text = url.is_https() ? options_.https_proxy : options_.http_proxy;
  if (!proxy_text.empty() && bypasses_proxy(url.host, options_.no_proxy)) proxy_text.clear();
  std::optional<ImageUrl> proxy;
  if (!proxy_text.empty()) {
    if (proxy_text.find("://") == std::string::npos) proxy_text = "http://" + proxy_text;
    auto p = parse_image_url(proxy_text);
    if (!p) return Status::invalid_argument("the proxy '" + proxy_text + "' is not usable: " + p.status().message());
    if (p->is_https()) return Status::invalid_argument("the proxy '" + proxy_text + "' must be an http:// proxy");
    proxy = std::move(p).value();
  }
  const ImageUrl& first = proxy ? *proxy : url;
  std::string tls_error;
  ssl::context* tls = tls_context(tls_error);
  if (url.is_https() && !tls) return Status::unavailable(label_ + ": HTTPS is unavailable: " + tls_error);
  // A plain connection uses the stream's socket alone; the context is then never used.
  static ssl::context plain_ctx(ssl::context::tls_client);
  stream_.emplace(io_, tls ? *tls : plain_ctx);

  resolver_.emplace(io_);
  tcp::resolver::results_type endpoints;
  ErrorCode ec = timed(options_.connect_timeout, [&](auto handler) {
    resolver_->async_resolve(first.host, std::to_string(first.port),
                             [&endpoints, handler = std::move(handler)](ErrorCode e, tcp::resolver::results_type r) mutable {
                               endpoints = std::move(r);
                               handler(e);
                             });
  });
  resolver_.reset();
  if (ec || timed_out_)
    return Status::unavailable(label_ + ": cannot resolve " + first.host + (proxy ? " (the proxy)" : "") + ": " +
                               (timed_out_ ? std::string("timed out") : ec.message()) + " (offline?)");
  ec = timed(options_.connect_timeout, [&](auto handler) {
    asio::async_connect(stream_->next_layer(), endpoints, std::move(handler));
  });
  if (ec || timed_out_)
    return Status::unavailable(label_ + ": cannot connect to " + first.authority() + (proxy ? " (the proxy)" : "") + ": " +
                               (timed_out_ ? std::string("timed out") : ec.message()) + " (offline?)");
  ErrorCode ignored;
  stream_->next_layer().set_option(tcp::no_delay(true), ignored);

  if (proxy && url.is_https()) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::connect, url.authority(), 11};
    req.set(bhttp::field::host, url.authority());
    ec = timed(options_.connect_timeout, [&](auto h) { bhttp::async_write(stream_->next_layer(), req, std::move(h)); });
    if (ec) return error_at("sending CONNECT to the proxy", ec, options_.connect_timeout);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::empty_body> parser;
    parser.skip(true);
    ec = timed(options_.connect_timeout,
               [&](auto h) { bhttp::async_read_header(stream_->next_layer(), buffer, parser, std::move(h)); });
    if (ec) return error_at("reading the proxy's answer to CONNECT", ec, options_.connect_timeout);
    if (parser.get().result_int() != 200)
      return Status::unavailable(label_ + ": the proxy " + proxy->authority() + " refused CONNECT " + url.authority() +
                                 " with " + std::to_string(parser.get().result_int()));
  }
  if (url.is_https()) {
    ErrorCode not_literal;
    (void)asio::ip::make_address(url.host, not_literal);
    if (not_literal && !SSL_set_tlsext_host_name(stream_->native_handle(), url.host.c_str()))
      return Status::internal(label_ + ": cannot set the TLS server name");
    stream_->set_verify_mode(ssl::verify_peer);
    stream_->set_verify_callback(ssl::host_name_verification(url.host));
    ec = timed(options_.connect_timeout, [&](auto h) { stream_->async_handshake(ssl::stream_base::client, std::move(h)); });
    if (ec) {
      std::string why = timed_out_ ? "timed out" : ec.message();
      const long verify = SSL_get_verify_result(stream_->native_handle());
      if (verify != X509_V_OK) why += ": " + std::string(X509_verify_cert_error_string(verify));
      return Status::unavailable(label_ + ": TLS handshake with " + url.authority() + " failed: " + why);
    }
  }
  return Status::ok();
}

template <typename Stream>
Result<HubResponse> Session::exchange(Stream& stream, const ImageUrl& url, const HubRequest& request, bool send_auth,
                                      bool via_http_proxy) {
  const bool head = request.method == "HEAD";
  bhttp::request<bhttp::empty_body> req{head ? bhttp::verb::head : bhttp::verb::get,
                                        via_http_proxy ? url.to_string() : url.target, 11};
  req.set(bhttp::field::host, url.authority());
  req.set(bhttp::field::user_agent, "zeroserve");
  req.set(bhttp::field::connection, "close");
  for (const auto& [k, v] : request.headers) {
    if (!send_auth && iequals(k, "Authorization")) continue;
    req.set(k, v);
  }
  ErrorCode ec = timed(options_.io_timeout, [&](auto h) { bhttp::async_write(stream, req, std::move(h)); });
  if (ec) return error_at("sending the request", ec, options_.io_timeout);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (head) parser.skip(true);
  ec = timed(options_.io_timeout, [&](auto h) { bhttp::async_read_header(stream, buffer, parser, std::move(h)); });
  if (ec) return error_at("reading the answer's headers", ec, options_.io_timeout);

  HubResponse out;
  out.status = parser.get().result_int();
  for (const auto& f : parser.get()) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  if (head || (is_redirect(static_cast<unsigned>(out.status)) && request.follow_redirects)) {
    out.body_complete = true;
    return out;  // Connection: close ends whatever body follows
  }
  const bool sink = request.on_body && out.status >= 200 && out.status < 300;
  std::array<char, 64 << 10> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    // read_some: each piece is handed on as it arrives (progress stays current).
    ec = timed(options_.io_timeout, [&](auto h) { bhttp::async_read_some(stream, buffer, parser, std::move(h)); });
    if (ec == bhttp::error::need_buffer) ec = {};
    const size_t got = chunk.size() - parser.get().body().size;
    if (got > 0) {
      if (sink) {
        out.body_bytes += got;
        if (!request.on_body(std::string_view(chunk.data(), got))) {
          out.stopped = true;
          return out;
        }
      } else if (out.body.size() + got <= request.max_body_bytes) {
        out.body.append(chunk.data(), got);
      } else if (out.status >= 200 && out.status < 300) {
        return Status::upstream_failed(label_ + ": the answer is over " + std::to_string(request.max_body_bytes) + " bytes");
      }
    }
    if ((ec == ssl::error::stream_truncated || ec == asio::error::eof) && !parser.chunked() && !parser.content_length()) {
      ErrorCode eof_ec;
      parser.put_eof(eof_ec);
      if (!eof_ec) break;
    }
    if (ec == bhttp::error::partial_message || ec == asio::error::eof || ec == ssl::error::stream_truncated)
      return Status::upstream_failed(label_ + ": the connection closed after " +
                                     std::to_string(sink ? out.body_bytes : out.body.size()) +
                                     " bytes of the body, before it was complete");
    if (ec) return error_at("reading the body", ec, options_.io_timeout);
  }
  out.body_complete = true;
  return out;
}

Result<HubResponse> Session::run(const HubRequest& request) {
  auto parsed = parse_image_url(request.url);
  if (!parsed) return Status::invalid_argument("'" + request.url + "' is not a usable URL: " + parsed.status().message());
  ImageUrl current = std::move(parsed).value();
  const std::string first_host = current.host;
  const uint16_t first_port = current.port;
  HttpHeaders first_headers;
  for (int hop = 0;; ++hop) {
    label_ = request.method + " " + current.to_string();
    timed_out_ = false;
    ZS_RETURN_IF_ERROR(connect(current));
    const bool via_http_proxy = !current.is_https() && !options_.http_proxy.empty() &&
                                !bypasses_proxy(current.host, options_.no_proxy);
    const bool send_auth = current.host == first_host && current.port == first_port;
    auto answer = current.is_https() ? exchange(*stream_, current, request, send_auth, via_http_proxy)
                                     : exchange(stream_->next_layer(), current, request, send_auth, via_http_proxy);
    ErrorCode ignored;
    stream_->next_layer().close(ignored);
    stream_.reset();
    if (!answer) return answer.status();
    if (hop == 0) first_headers = answer->headers;
    if (!request.follow_redirects || !is_redirect(static_cast<unsigned>(answer->status))) {
      answer->first_headers = first_headers;
      answer->final_url = current.to_string();
      return answer;
    }
    const std::string location = answer->header("Location");
    if (location.empty()) return Status::upstream_failed(label_ + ": a redirect (" + std::to_string(answer->status) + ") without a Location");
    if (hop >= options_.max_redirects)
      return Status::upstream_failed(label_ + ": more than " + std::to_string(options_.max_redirects) + " redirects");
    auto next = resolve_redirect(current, location);
    if (!next) return Status::upstream_failed(label_ + ": redirected to an unusable location: " + next.status().message());
    current = std::move(next).value();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// The public functions
// ---------------------------------------------------------------------------------------

HubHttpOptions HubHttpOptions::from_environment() {
  HubHttpOptions o;
  o.https_proxy = env_either("HTTPS_PROXY", "https_proxy");
  o.http_proxy = env_either("HTTP_PROXY", "http_proxy");
  o.no_proxy = env_either("NO_PROXY", "no_proxy");
  return o;
}

Result<HubResponse> hub_request(const HubRequest& request, const HubHttpOptions& options) {
  Session session(options);
  return session.run(request);
}

}  // namespace zs::gateway::hub

namespace zs::gateway::hub {

core::Status check_reachable(const std::string& url, const HubHttpOptions& options, std::chrono::milliseconds timeout) {
  struct Shared {
    core::Mutex mutex;  // held only to hand the answer over
    core::CondVar cv;
    bool done GUARDED_BY(mutex) = false;
    Status status GUARDED_BY(mutex) = Status::ok();
  };
  auto shared = std::make_shared<Shared>();
  HubHttpOptions o = options;
  o.connect_timeout = timeout;
  std::thread([shared, url, o] {
    Status s = Status::ok();
    auto parsed = parse_image_url(url);
    if (!parsed) {
      s = Status::invalid_argument("'" + url + "' is not a usable URL: " + parsed.status().message());
    } else {
      // A HEAD of the endpoint's root: connecting (and the TLS handshake) is what is checked.
      HubRequest req;
      req.method = "HEAD";
      req.url = url;
      req.follow_redirects = false;
      auto r = hub_request(req, o);
      if (!r && (r.status().is_unavailable() || r.status().code() == core::StatusCode::kDeadlineExceeded)) s = r.status();
    }
    core::MutexLock lock(shared->mutex);
    shared->status = s;
    shared->done = true;
    shared->cv.notify_all();
  }).detach();
  const auto deadline = std::chrono::steady_clock::now() + timeout + std::chrono::milliseconds(500);
  core::MutexLock lock(shared->mutex);
  while (!shared->done && shared->cv.wait_until(shared->mutex, deadline)) {
  }
  if (!shared->done)
    return Status::deadline_exceeded("no answer from " + url + " within " + std::to_string(timeout.count()) + " ms");
  return shared->status;
}

}  // namespace zs::gateway::hub
