// The client's Beast/Asio code. Synchronous calls run asynchronous operations on a private
// io_context until they finish or their deadline passes; then the socket is closed, which
// is the only portable way to bound a blocking socket operation.
#include "gateway/http/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <cstring>
#include <limits>
#include <optional>

#include "gateway/http/http_address.h"

namespace zs::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Protocol = asio::generic::stream_protocol;

struct HttpClient::Impl {
  std::string address;
  asio::io_context io;
  Protocol::socket socket{io};
  beast::flat_buffer buffer;
  bool open = false;
  bool delivered = false;  // see request_delivered()

  // Runs the operation `start` begins until it completes or `deadline` passes.
  template <typename Start>
  ErrorCode run(Start&& start, Clock::time_point deadline, bool* timed_out) {
    ErrorCode result;
    bool done = false;
    start([&result, &done](ErrorCode ec, auto&&...) {
      result = ec;
      done = true;
    });
    io.restart();
    while (!done && Clock::now() < deadline) {
      if (io.run_one_until(deadline) == 0 && io.stopped()) break;
    }
    *timed_out = false;
    if (!done) {
      *timed_out = true;
      ErrorCode ignored;
      socket.close(ignored);
      open = false;
      io.restart();
      while (!done) io.run_one();  // the handler completes with operation_aborted
    }
    return result;
  }

  core::Status fail(const std::string& what, ErrorCode ec, bool timed_out) {
    ErrorCode ignored;
    socket.close(ignored);
    open = false;
    if (timed_out) return core::Status::deadline_exceeded(address + ": timed out " + what);
    return core::Status::unavailable(address + ": " + what + ": " + ec.message());
  }

  core::Status send(const std::string& method, const std::string& target, const std::string& body,
                    const HttpHeaders& headers, Clock::time_point deadline);

  template <typename Parser>
  void copy_head(const Parser& parser, HttpResponse* out) {
    const auto& msg = parser.get();
    out->status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      out->headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
  }
};

namespace {

core::Result<Protocol::endpoint> resolve(const HttpAddress& addr) {
  if (addr.is_unix) return Protocol::endpoint(asio::local::stream_protocol::endpoint(addr.path));
  ErrorCode ec;
  std::string host = addr.host == "localhost" ? "127.0.0.1" : addr.host;
  auto ip = asio::ip::make_address(host, ec);
  if (!ec) return Protocol::endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(addr.port)));
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  auto results = resolver.resolve(addr.host, std::to_string(addr.port), ec);
  if (ec || results.empty()) {
    return core::Status::unavailable("cannot resolve '" + addr.host + "': " +
                               (ec ? ec.message() : std::string("no address")));
  }
  return Protocol::endpoint(results.begin()->endpoint());
}

}  // namespace

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() { close(); }

bool HttpClient::is_open() const { return impl_->open; }
bool HttpClient::request_delivered() const { return impl_->delivered; }

void HttpClient::close() {
  ErrorCode ignored;
  impl_->socket.close(ignored);
  impl_->open = false;
}

core::Result<std::unique_ptr<HttpClient>> HttpClient::connect(const std::string& address,
                                                              std::chrono::milliseconds timeout) {
  // Asio reports resource exhaustion (e.g. no file descriptor left for its reactor) by
  // throwing; callers get a Status like every other failure.
  try {
    return connect_unchecked(address, timeout);
  } catch (const std::exception& e) {
    return core::Status::unavailable("cannot connect to " + address + ": " + e.what());
  }
}

core::Result<std::unique_ptr<HttpClient>> HttpClient::connect_unchecked(const std::string& address,
                                                                        std::chrono::milliseconds timeout) {
  auto addr = parse_http_address(address);
  if (!addr) return addr.status();
  auto endpoint = resolve(addr.value());
  if (!endpoint) return endpoint.status().with_context(address);
  auto impl = std::make_unique<Impl>();
  impl->address = address;
  bool timed_out = false;
  ErrorCode ec = impl->run(
      [&](auto handler) { impl->socket.async_connect(endpoint.value(), std::move(handler)); },
      Clock::now() + timeout, &timed_out);
  if (ec || timed_out) return impl->fail("connecting", ec, timed_out);
  if (!addr->is_unix) {
    ErrorCode ignored;
    impl->socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  }
  impl->open = true;
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

core::Status HttpClient::Impl::send(const std::string& method, const std::string& target,
                                    const std::string& body, const HttpHeaders& headers,
                                    Clock::time_point deadline) {
  delivered = false;
  if (!open) return core::Status::unavailable(address + ": the connection is closed");
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(bhttp::field::host, address.rfind("unix:", 0) == 0 ? "localhost" : address);
  req.set(bhttp::field::user_agent, "zeroserve");
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    req.set(k, v);
    has_type = has_type || iequals(k, "Content-Type");
  }
  if (!body.empty() && !has_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bool timed_out = false;
  ErrorCode ec = run([&](auto handler) { bhttp::async_write(socket, req, std::move(handler)); },
                     deadline, &timed_out);
  if (timed_out) return fail("sending the request", ec, true);
  // A server refusing the request (413) may close before reading all of it; its answer
  // can still be read, so a failed write is reported only when no response follows.
  if (ec) return core::Status::unavailable(ec.message());
  delivered = true;
  return core::Status::ok();
}

core::Result<HttpResponse> HttpClient::request(const std::string& method, const std::string& target,
                                               const std::string& body, const HttpHeaders& headers,
                                               std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  auto deadline = Clock::now() + timeout;
  core::Status sent = m.send(method, target, body, headers, deadline);
  if (!sent && !m.open) return sent;
  bhttp::response_parser<bhttp::string_body> parser;
  // No limit, spelled as the largest one: Boost 1.81's parser compares a Content-Length with
  // an unset limit (boost::none) as exceeding it.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (method == "HEAD") parser.skip(true);
  bool timed_out = false;
  ErrorCode ec = m.run([&](auto handler) { bhttp::async_read(m.socket, m.buffer, parser, std::move(handler)); },
                       deadline, &timed_out);
  if (ec == asio::error::connection_reset && !parser.got_some()) m.delivered = false;
  if (ec || timed_out) {
    if (!sent) {
      (void)m.fail("reading the response", ec, timed_out);
      return sent.with_context(m.address + ": sending the request");
    }
    return m.fail("reading the response", ec, timed_out);
  }
  HttpResponse out;
  m.copy_head(parser, &out);
  out.body = std::move(parser.get().body());
  if (!parser.get().keep_alive() || !sent) close();
  return out;
}

core::Result<HttpResponse> HttpClient::stream(const std::string& method, const std::string& target,
                                              const std::string& body, const HttpHeaders& headers,
                                              const ChunkCallback& on_chunk,
                                              std::chrono::milliseconds timeout,
                                              const std::function<void(const HttpResponse& head)>& on_head) {
  Impl& m = *impl_;
  core::Status sent = m.send(method, target, body, headers, Clock::now() + timeout);
  if (!sent && !m.open) return sent;
  bhttp::response_parser<bhttp::buffer_body> parser;
  // No limit, spelled as the largest one: Boost 1.81's parser compares a Content-Length with
  // an unset limit (boost::none) as exceeding it.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  bool timed_out = false;
  ErrorCode ec = m.run(
      [&](auto handler) { bhttp::async_read_header(m.socket, m.buffer, parser, std::move(handler)); },
      Clock::now() + timeout, &timed_out);
  if (ec == asio::error::connection_reset && !parser.got_some()) m.delivered = false;
  if (ec || timed_out) return m.fail("reading the response headers", ec, timed_out);
  HttpResponse out;
  m.copy_head(parser, &out);
  if (on_head) on_head(out);
  std::array<char, 16 << 10> buf;
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    ec = m.run([&](auto handler) { bhttp::async_read_some(m.socket, m.buffer, parser, std::move(handler)); },
               Clock::now() + timeout, &timed_out);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec || timed_out) return m.fail("reading the response body", ec, timed_out);
    size_t n = buf.size() - parser.get().body().size;
    if (n > 0 && !on_chunk(std::string_view(buf.data(), n))) {
      close();  // hang up mid-stream
      return out;
    }
  }
  if (!parser.get().keep_alive() || !sent) close();
  return out;
}

core::Result<HttpResponse> http_request(const std::string& method, const std::string& address,
                                        const std::string& target, const std::string& body,
                                        const HttpHeaders& headers, std::chrono::milliseconds timeout) {
  auto client = HttpClient::connect(address, timeout);
  if (!client) return client.status();
  return client.value()->request(method, target, body, headers, timeout);
}

core::Result<HttpResponse> http_stream(const std::string& method, const std::string& address,
                                       const std::string& target, const std::string& body,
                                       const HttpHeaders& headers, const ChunkCallback& on_chunk,
                                       std::chrono::milliseconds timeout) {
  auto client = HttpClient::connect(address, timeout);
  if (!client) return client.status();
  return client.value()->stream(method, target, body, headers, on_chunk, timeout);
}

}  // namespace zs::gateway
