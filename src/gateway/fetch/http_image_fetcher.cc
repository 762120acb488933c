// The fetcher's Asio/Beast code. Each fetch runs its operations one after another on a
// private io_context; one timer armed for the whole fetch closes the socket (and cancels a
// pending lookup) when it expires, which ends whatever operation is waiting.
#include "gateway/fetch/http_image_fetcher.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <limits>
#include <optional>

#include "gateway/fetch/address_classifier.h"
#include "gateway/fetch/image_url.h"

namespace zs::gateway {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

namespace {

// Larger response headers are refused; no image host needs more.
constexpr size_t kMaxHeaderBytes = size_t{64} << 10;
constexpr const char* kAllowPrivateHint = "(set gateway.allow_private_image_urls to allow)";

std::string shown(std::string_view url) {
  constexpr size_t kShown = 200;
  if (url.size() <= kShown) return std::string(url);
  return std::string(url.substr(0, kShown)) + "...";
}

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string format_bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 20) && n % (uint64_t{1} << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= (uint64_t{1} << 10) && n % (uint64_t{1} << 10) == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

AddressKind classify(const asio::ip::address& a) {
  if (a.is_v4()) return classify_ipv4(a.to_v4().to_bytes());
  return classify_ipv6(a.to_v6().to_bytes());
}

bool is_redirect(unsigned status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// What one request/response exchange produced: the image or where to go next.
struct Hop {
  bool redirect = false;
  std::string location;
  FetchedImage image;
};

// One call to fetch(): a private io_context, one deadline for everything.
class FetchSession {
 public:
  FetchSession(const HttpImageFetcherOptions& options, ssl::context* tls, const std::string& tls_error)
      : options_(options), tls_ctx_(tls), tls_error_(tls_error), timer_(io_) {}

  core::Result<FetchedImage> run(const std::string& url);

 private:
  // Runs the operation `start` begins until its handler has run. The deadline timer's
  // handler may run meanwhile; it aborts the operation, which then completes.
  template <typename Start>
  ErrorCode wait(Start&& start) {
    ErrorCode result;
    bool done = false;
    start([&result, &done](ErrorCode ec, auto&&...) {
      result = ec;
      done = true;
    });
    while (!done) {
      if (io_.stopped()) io_.restart();
      io_.run_one();
    }
    return result;
  }

  void on_deadline() {
    timed_out_ = true;
    ErrorCode ignored;
    if (resolver_) resolver_->cancel();
    if (plain_) plain_->close(ignored);
    if (tls_) tls_->lowest_layer().close(ignored);
  }

  core::Status error(const std::string& why) const { return core::Status::error("fetching " + label_ + ": " + why); }
  core::Status timeout(const std::string& during) const {
    return error("timed out after " + format_duration(options_.timeout) + " (" + during + ")");
  }

  core::Result<std::vector<tcp::endpoint>> resolve_checked(const ImageUrl& url);
  core::Result<Hop> fetch_hop(const ImageUrl& url);
  template <typename Stream>
  core::Result<Hop> exchange(Stream& stream, const ImageUrl& url);
  core::Status tls_handshake(const ImageUrl& url);

  const HttpImageFetcherOptions& options_;
  ssl::context* tls_ctx_;         // null when the TLS context could not be set up...
  const std::string& tls_error_;  // ...and then why
  asio::io_context io_;
  asio::steady_timer timer_;
  bool timed_out_ = false;
  std::string label_;  // the URL of this hop (and where the chain began) for messages
  // The I/O objects of the hop in progress, for the deadline to abort.
  std::optional<tcp::resolver> resolver_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
};

core::Result<FetchedImage> FetchSession::run(const std::string& url) {
  auto parsed = parse_image_url(url);
  if (!parsed) return parsed.status();
  ImageUrl current = std::move(parsed).value();
  const std::string first = shown(current.to_string());
  label_ = first;

  timer_.expires_after(options_.timeout);
  timer_.async_wait([this](ErrorCode ec) {
    if (!ec) on_deadline();
  });

  for (int redirects = 0;; ++redirects) {
    auto hop = fetch_hop(current);
    if (!hop) return hop.status();
    if (!hop->redirect) return std::move(hop->image);
    if (redirects >= options_.max_redirects) {
      return error("more than " + std::to_string(options_.max_redirects) + " redirects (the last to '" +
                   shown(hop->location) + "')");
    }
    auto next = resolve_redirect(current, hop->location);
    if (!next) return error("redirected to an unusable location: " + next.status().message());
    current = std::move(next).value();
    label_ = shown(current.to_string()) + " (redirected from " + first + ")";
  }
}

core::Result<std::vector<tcp::endpoint>> FetchSession::resolve_checked(const ImageUrl& url) {
  // One lookup per hop: the addresses checked here are the only ones connected to, so a DNS
  // server answering differently the second time (rebinding) gains nothing.
  std::vector<asio::ip::address> addresses;
  ErrorCode ec;
  auto literal = asio::ip::make_address(url.host, ec);
  bool is_literal = !ec;
  if (is_literal) {
    addresses.push_back(literal);
  } else if (options_.resolver) {
    auto answers = options_.resolver(url.host);
    if (!answers) return error("cannot resolve '" + url.host + "': " + answers.status().message());
    for (const auto& text : *answers) {
      ErrorCode parse_ec;
      auto a = asio::ip::make_address(text, parse_ec);
      if (parse_ec) return error("cannot resolve '" + url.host + "': '" + text + "' is not an IP address");
      addresses.push_back(a);
    }
  } else {
    resolver_.emplace(io_);
    tcp::resolver::results_type results;
    ErrorCode resolve_ec = wait([&](auto handler) {
      resolver_->async_resolve(
          url.host, std::to_string(url.port), tcp::resolver::numeric_service | tcp::resolver::address_configured,
          [&results, handler = std::move(handler)](ErrorCode e, tcp::resolver::results_type r) mutable {
            results = std::move(r);
            handler(e);
          });
    });
    resolver_.reset();
    if (timed_out_) return timeout("resolving '" + url.host + "'");
    if (resolve_ec) return error("cannot resolve '" + url.host + "': " + resolve_ec.message());
    for (const auto& entry : results) addresses.push_back(entry.endpoint().address());
  }
  if (addresses.empty()) return error("cannot resolve '" + url.host + "': no address");

  if (!options_.allow_private) {
    for (const auto& a : addresses) {
      AddressKind kind = classify(a);
      if (kind == AddressKind::kPublic) continue;
      std::string why = is_literal ? a.to_string() + " is " + std::string(describe(kind))
                                   : url.host + " resolves to " + a.to_string() + ", " + std::string(describe(kind));
      return core::Status::error("refusing to fetch " + label_ + ": " + why + " " + kAllowPrivateHint);
    }
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& a : addresses) endpoints.emplace_back(a, url.port);
  return endpoints;
}

core::Result<Hop> FetchSession::fetch_hop(const ImageUrl& url) {
  auto endpoints = resolve_checked(url);
  if (!endpoints) return endpoints.status();
  if (url.is_https() && !tls_ctx_) return error("HTTPS is unavailable: " + tls_error_);

  tcp::socket* socket;
  if (url.is_https()) {
    tls_.emplace(io_, *tls_ctx_);
    socket = &tls_->next_layer();
  } else {
    plain_.emplace(io_);
    socket = &plain_.value();
  }
  struct Reset {  // the hop's sockets go before the next hop (or the end) begins
    FetchSession* s;
    ~Reset() {
      s->plain_.reset();
      s->tls_.reset();
    }
  } reset{this};

  ErrorCode ec = wait([&](auto handler) { asio::async_connect(*socket, *endpoints, std::move(handler)); });
  if (timed_out_) return timeout("connecting to " + url.authority());
  if (ec) return error("cannot connect to " + url.authority() + ": " + ec.message());
  ErrorCode ignored;
  socket->set_option(tcp::no_delay(true), ignored);

  if (url.is_https()) {
    ZS_RETURN_IF_ERROR(tls_handshake(url));
    return exchange(*tls_, url);
  }
  return exchange(*plain_, url);
}

core::Status FetchSession::tls_handshake(const ImageUrl& url) {
  ErrorCode not_literal;
  (void)asio::ip::make_address(url.host, not_literal);
  // SNI carries host names only (RFC 6066); certificates for IP literals are still checked.
  if (not_literal && !SSL_set_tlsext_host_name(tls_->native_handle(), url.host.c_str())) {
    return error("cannot set the TLS server name '" + url.host + "'");
  }
  tls_->set_verify_mode(ssl::verify_peer);
  tls_->set_verify_callback(ssl::host_name_verification(url.host));
  ErrorCode ec = wait([&](auto handler) { tls_->async_handshake(ssl::stream_base::client, std::move(handler)); });
  if (timed_out_) return timeout("TLS handshake with " + url.authority());
  if (ec) {
    std::string why = ec.message();
    long verify = SSL_get_verify_result(tls_->native_handle());
    if (verify != X509_V_OK) {
      why += ": " + std::string(X509_verify_cert_error_string(verify));
    } else if (why.find("certificate verify failed") != std::string::npos) {
      why += ": the certificate is not valid for '" + url.host + "'";
    }
    return error("TLS handshake with " + url.authority() + " failed: " + why);
  }
  return core::Status::ok();
}

template <typename Stream>
core::Result<Hop> FetchSession::exchange(Stream& stream, const ImageUrl& url) {
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, url.target, 11};
  req.set(bhttp::field::host, url.authority());
  req.set(bhttp::field::user_agent, "zeroserve-image-fetcher");
  req.set(bhttp::field::accept, "image/*");
  // No Accept-Encoding: the body must arrive as the image's own bytes.
  req.set(bhttp::field::connection, "close");
  ErrorCode ec = wait([&](auto handler) { bhttp::async_write(stream, req, std::move(handler)); });
  if (timed_out_) return timeout("sending the request");
  if (ec) return error("sending the request: " + ec.message());

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
  // max_bytes is enforced below, with a clearer message. Not boost::none: Beast 1.74
  // compares a Content-Length against an empty optional as "over the limit".
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  ec = wait([&](auto handler) { bhttp::async_read_header(stream, buffer, parser, std::move(handler)); });
  if (timed_out_) return timeout("waiting for the response headers");
  if (ec == bhttp::error::header_limit) {
    return error("the response headers exceed " + format_bytes(kMaxHeaderBytes));
  }
  if (ec) return error("reading the response headers: " + ec.message());

  const auto& head = parser.get();
  unsigned status = head.result_int();
  if (is_redirect(status)) {
    auto location = head.find(bhttp::field::location);
    if (location == head.end() || location->value().empty()) {
      return error("the server answered " + std::to_string(status) + " without a Location header");
    }
    Hop hop;
    hop.redirect = true;
    hop.location = std::string(location->value());
    return hop;  // the body is not read: Connection: close ends it
  }
  if (status != 200) {
    std::string reason(head.reason());
    if (reason.empty()) reason = std::string(bhttp::obsolete_reason(head.result()));
    return error("the server answered " + std::to_string(status) + (reason.empty() ? "" : " " + reason) +
                 " (expected 200)");
  }

  auto type_field = head.find(bhttp::field::content_type);
  if (type_field == head.end()) return error("the response has no Content-Type (expected image/*)");
  std::string_view type_value(type_field->value().data(), type_field->value().size());
  std::string mime = lower(trim(type_value.substr(0, type_value.find(';'))));
  if (mime.rfind("image/", 0) != 0 || mime.size() == 6) {
    return error("the response is " + (mime.empty() ? std::string("of an empty Content-Type") : mime) +
                 ", not an image (expected image/*)");
  }
  auto encoding = head.find(bhttp::field::content_encoding);
  if (encoding != head.end() && lower(trim(std::string(encoding->value()))) != "identity") {
    return error("the response is compressed (Content-Encoding: " + std::string(encoding->value()) +
                 "), which is not supported for images");
  }
  if (auto length = parser.content_length(); length && *length > options_.max_bytes) {
    return error("the image is " + std::to_string(*length) + " bytes (Content-Length), over the limit of " +
                 format_bytes(options_.max_bytes));
  }

  FetchedImage image;
  image.mime_type = std::move(mime);
  if (auto length = parser.content_length()) image.bytes.reserve(static_cast<size_t>(*length));
  std::array<char, 64 << 10> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    ec = wait([&](auto handler) { bhttp::async_read(stream, buffer, parser, std::move(handler)); });
    if (timed_out_) return timeout("reading the body after " + std::to_string(image.bytes.size()) + " bytes");
    if (ec == bhttp::error::need_buffer) ec = {};
    size_t got = chunk.size() - parser.get().body().size;
    if (image.bytes.size() + got > options_.max_bytes) {
      return error("the image exceeds the limit of " + format_bytes(options_.max_bytes) + " (stopped reading at " +
                   std::to_string(image.bytes.size() + got) + " bytes)");
    }
    image.bytes.append(chunk.data(), got);
    if (ec == ssl::error::stream_truncated && !parser.chunked() && !parser.content_length()) {
      // A body delimited by the end of the connection, closed without TLS close_notify
      // (common): take the end as the end.
      ErrorCode eof_ec;
      parser.put_eof(eof_ec);
      if (!eof_ec) break;
    }
    if (ec == bhttp::error::partial_message) {
      return error("the connection closed after " + std::to_string(image.bytes.size()) +
                   " bytes, before the body was complete");
    }
    if (ec) return error("reading the body: " + ec.message());
  }
  if (image.bytes.empty()) return error("the response body is empty");
  return Hop{false, "", std::move(image)};
}

}  // namespace

struct HttpImageFetcher::Impl {
  std::optional<ssl::context> tls;
  std::string tls_error;
};

HttpImageFetcher::HttpImageFetcher(HttpImageFetcherOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  // One context for all fetches: loading the system's certificate store is not free, and
  // OpenSSL lets connections share a context across threads.
  try {
    impl_->tls.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(impl_->tls->native_handle(), TLS1_2_VERSION);
    impl_->tls->set_verify_mode(ssl::verify_peer);
    ErrorCode ec;
    impl_->tls->set_default_verify_paths(ec);
    if (ec) {
      impl_->tls_error = "loading the system's CA certificates: " + ec.message();
      impl_->tls.reset();
    }
  } catch (const std::exception& e) {
    impl_->tls_error = e.what();
    impl_->tls.reset();
  }
}

HttpImageFetcher::~HttpImageFetcher() = default;

core::Result<FetchedImage> HttpImageFetcher::fetch(const std::string& url) {
  FetchSession session(options_, impl_->tls ? &*impl_->tls : nullptr, impl_->tls_error);
  return session.run(url);
}

}  // namespace zs::gateway
