// All of the server's Beast/Asio code lives in this one file (it compiles slowly).
//
// Each connection runs on its own strand. Responses are written as raw bytes (the header is
// formatted here, bodies are framed by hand for chunked encoding); Beast only parses requests.
// While a handler computes or streams, one read stays pending on the socket: it sees the
// client leave (EOF/reset) at once, and when the response is done the same read serves as the
// keep-alive wait for the next request.
#include "gateway/http/http_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "core/mutex.h"
#include "gateway/http/http_address.h"
#include "gateway/openai/openai_error.h"

namespace zs::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ErrorCode = boost::system::error_code;

namespace {

constexpr std::string_view kComponent = "http";
// Read size while waiting for the next request or watching for a disconnect.
constexpr size_t kReadChunk = 4096;
// Pipelined bytes buffered while a response is in progress; beyond, reading pauses.
constexpr size_t kMaxPipelinedBytes = 64 << 10;
// After a server-side close, unread request bytes are drained for this long so that the
// client gets to read the response instead of a reset (e.g. the rest of a 413 body).
constexpr auto kLingerTime = std::chrono::seconds(3);
// One gathered write carries at most this many bytes.
constexpr size_t kMaxWriteBatch = 1 << 20;

using Protocol = asio::generic::stream_protocol;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<Protocol, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;
using Acceptor = asio::basic_socket_acceptor<Protocol, Strand>;

std::string reason_phrase(int status) {
  auto r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  if (r.empty() || r == "<unknown-status>") return "Unknown";
  return std::string(r);
}

// A header value must not break the message framing.
std::string sanitize_field(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
  return out;
}

std::string endpoint_string(const Protocol::endpoint& ep) {
  const sockaddr* sa = ep.data();
  if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
    asio::ip::tcp::endpoint tcp;
    std::memcpy(tcp.data(), sa, std::min<size_t>(ep.size(), tcp.capacity()));
    tcp.resize(ep.size());
    std::string host = tcp.address().to_string();
    if (tcp.address().is_v6()) host = "[" + host + "]";
    return host + ":" + std::to_string(tcp.port());
  }
  return "unix";
}

struct ServerCore;
class ConnWriter;

// One accepted connection. Everything except post_from_writer() runs on strand_.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<ServerCore> core, Socket socket, uint64_t id, bool reject);
  ~Connection();

  uint64_t id() const { return id_; }
  const Strand& strand() const { return strand_; }
  void start();
  // Server stop: close if idle, otherwise close after the current response.
  void begin_shutdown();
  void force_close() { close(); }

  // Called from any thread by writers. Returns false once the connection is closed.
  template <typename Fn>
  bool post_from_writer(Fn&& fn) {
    core::MutexLock lock(post_mu_);
    if (post_closed_) return false;
    asio::post(strand_, std::forward<Fn>(fn));
    return true;
  }

  void on_respond(uint64_t seq, int status, std::string content_type, std::string body,
                  HttpHeaders headers, size_t accounted);
  void on_start_stream(uint64_t seq, int status, std::string content_type, HttpHeaders headers);
  void on_write(uint64_t seq, std::string data, size_t accounted);
  void on_end(uint64_t seq);
  void on_writer_released(uint64_t seq);

 private:
  enum class Phase { kIdle, kReading, kHandling, kLingering, kClosed };
  enum class Resp { kNone, kStreaming, kEnding, kDone };
  struct OutItem {
    std::string bytes;
    size_t accounted = 0;  // bytes of the writer's queued_bytes() this item carries
  };

  void read_more();
  void on_read_more(ErrorCode ec, size_t n);
  void begin_request();
  void on_header(ErrorCode ec);
  void on_body(ErrorCode ec);
  void dispatch_request();
  // Answers a request that never reached a handler (too many connections, a malformed or
  // oversized request) with the HTTP status of `status`'s code, or with `http_status` where HTTP
  // has a status of its own for the case (431 for oversized headers), and closes the connection.
  void fail_request(const core::Status& status, const std::string& code, int http_status = 0);
  std::string response_head(int status, const std::string& content_type, const HttpHeaders& extra,
                            std::optional<size_t> content_length);
  void send_response(int status, const std::string& content_type, std::string body,
                     const HttpHeaders& headers, size_t accounted);
  void enqueue(std::string bytes, size_t accounted);
  void write_next();
  void on_written(ErrorCode ec);
  void maybe_complete();
  void on_response_complete();
  void linger_close();
  void on_linger_read(ErrorCode ec, size_t n);
  void arm_read_timer(std::chrono::steady_clock::duration d);
  void cancel_read_timer();
  void close();
  void notify_gone();
  std::shared_ptr<ConnWriter> current_writer() const { return writer_.lock(); }

  // Declared first so that it is destroyed last: it owns the io_context the socket uses.
  std::shared_ptr<ServerCore> core_;
  Strand strand_;
  Socket socket_;
  Timer read_timer_;
  Timer write_timer_;
  uint64_t id_;
  bool reject_;
  std::string remote_;

  // Writers on other threads post to the strand under post_mu_; everything else below is
  // touched on the strand only.
  core::Mutex post_mu_;
  bool post_closed_ GUARDED_BY(post_mu_) = false;

  Phase phase_ = Phase::kIdle;
  bool reading_ = false;
  bool writing_ = false;
  bool stopping_ = false;
  uint64_t read_timer_gen_ = 0;
  uint64_t write_timer_gen_ = 0;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::array<char, 4096> discard_{};
  size_t linger_budget_ = 0;

  // The response in progress.
  uint64_t seq_ = 0;
  std::weak_ptr<ConnWriter> writer_;
  Resp resp_ = Resp::kNone;
  bool keep_alive_ = true;
  bool chunked_ = false;
  bool head_ = false;
  int version_ = 11;
  std::deque<OutItem> out_;
  std::vector<OutItem> in_flight_;
};

struct ServerCore {
  explicit ServerCore(HttpServerOptions o, Router r)
      : options(std::move(o)), router(std::move(r)) {}

  const HttpServerOptions options;
  const Router router;
  asio::io_context io;
  std::atomic<bool> stopping{false};

  mutable core::Mutex mu;
  core::CondVar cv;  // conns emptied, or an I/O thread ended (HttpServer::Impl::threads_running)
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> conns GUARDED_BY(mu);  // open connections

  bool idle() const REQUIRES(mu) { return conns.empty(); }

  void add(uint64_t id, const std::shared_ptr<Connection>& c) {
    core::MutexLock lock(mu);
    conns.emplace(id, c);
  }
  void remove(uint64_t id) {
    core::MutexLock lock(mu);
    conns.erase(id);
    cv.notify_all();
  }
  size_t count() const {
    core::MutexLock lock(mu);
    return conns.size();
  }
  std::vector<std::shared_ptr<Connection>> snapshot() const {
    core::MutexLock lock(mu);
    std::vector<std::shared_ptr<Connection>> out;
    for (const auto& [id, w] : conns) {
      if (auto c = w.lock()) out.push_back(std::move(c));
    }
    return out;
  }
};

class ConnWriter final : public ResponseWriter {
 public:
  ConnWriter(std::shared_ptr<Connection> conn, uint64_t seq) : conn_(std::move(conn)), seq_(seq) {}

  ~ConnWriter() override {
    conn_->post_from_writer([c = conn_, seq = seq_] { c->on_writer_released(seq); });
  }

  void respond(int status, std::string content_type, std::string body,
               HttpHeaders extra_headers) override {
    if (!transition(State::kNone, State::kDone, "respond")) return;
    size_t n = body.size();
    queued_ += n;
    bool posted = conn_->post_from_writer([c = conn_, seq = seq_, status, ct = std::move(content_type),
                                           b = std::move(body), h = std::move(extra_headers), n]() mutable {
      c->on_respond(seq, status, std::move(ct), std::move(b), std::move(h), n);
    });
    if (!posted) queued_ -= n;
  }

  void start_stream(int status, std::string content_type, HttpHeaders extra_headers) override {
    if (!transition(State::kNone, State::kStreaming, "start_stream")) return;
    conn_->post_from_writer([c = conn_, seq = seq_, status, ct = std::move(content_type),
                             h = std::move(extra_headers)]() mutable {
      c->on_start_stream(seq, status, std::move(ct), std::move(h));
    });
  }

  bool write(std::string chunk) override {
    {
      core::MutexLock lock(mu_);
      if (state_ != State::kStreaming || gone_) return false;
    }
    if (chunk.empty()) return true;
    size_t n = chunk.size();
    queued_ += n;
    bool posted = conn_->post_from_writer([c = conn_, seq = seq_, d = std::move(chunk), n]() mutable {
      c->on_write(seq, std::move(d), n);
    });
    if (!posted) {
      queued_ -= n;
      return false;
    }
    return true;
  }

  void end() override {
    if (!transition(State::kStreaming, State::kDone, "end")) return;
    conn_->post_from_writer([c = conn_, seq = seq_] { c->on_end(seq); });
  }

  bool client_gone() const override {
    core::MutexLock lock(mu_);
    return gone_;
  }

  void on_client_gone(std::function<void()> cb) override {
    {
      core::MutexLock lock(mu_);
      if (!gone_) {
        gone_callbacks_.push_back(std::move(cb));
        return;
      }
    }
    cb();
  }

  size_t queued_bytes() const override { return queued_.load(); }

  // From the connection's strand.
  void mark_gone() {
    std::vector<std::function<void()>> cbs;
    {
      core::MutexLock lock(mu_);
      if (gone_) return;
      gone_ = true;
      cbs.swap(gone_callbacks_);
    }
    for (auto& cb : cbs) {
      try {
        cb();
      } catch (const std::exception& e) {
        core::log_warn(kComponent, std::string("on_client_gone callback threw: ") + e.what());
      }
    }
  }
  void sent(size_t n) { queued_ -= n; }

 private:
  enum class State { kNone, kStreaming, kDone };

  bool transition(State from, State to, const char* what) {
    core::MutexLock lock(mu_);
    if (state_ != from) {
      core::log_debug(kComponent, std::string("ResponseWriter::") + what + " out of order, ignored");
      return false;
    }
    state_ = to;
    return true;
  }

  std::shared_ptr<Connection> conn_;
  uint64_t seq_;
  mutable core::Mutex mu_;  // never held while a callback runs
  State state_ GUARDED_BY(mu_) = State::kNone;
  bool gone_ GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> gone_callbacks_ GUARDED_BY(mu_);
  std::atomic<size_t> queued_{0};
};

Connection::Connection(std::shared_ptr<ServerCore> core, Socket socket, uint64_t id, bool reject)
    : core_(std::move(core)),
      strand_(socket.get_executor()),
      socket_(std::move(socket)),
      read_timer_(strand_),
      write_timer_(strand_),
      id_(id),
      reject_(reject) {
  ErrorCode ec;
  auto ep = socket_.remote_endpoint(ec);
  remote_ = ec ? "unknown" : endpoint_string(ep);
}

Connection::~Connection() {
  core_->remove(id_);  // normally done by close(); harmless twice
}

void Connection::start() {
  if (reject_) {
    phase_ = Phase::kHandling;
    fail_request(core::Status::unavailable("the server has too many open connections; retry later"), "overloaded");
    return;
  }
  arm_read_timer(core_->options.idle_timeout);
  read_more();
}

void Connection::begin_shutdown() {
  stopping_ = true;
  // An idle connection is closed gracefully (FIN, then whatever the client still sends is read
  // and discarded), never reset.
  if (phase_ == Phase::kIdle) linger_close();
  // Otherwise the response in progress goes out with Connection: close (if not started yet)
  // and the connection closes after it.
  keep_alive_ = false;
}

void Connection::read_more() {
  if (reading_ || phase_ == Phase::kClosed) return;
  if (buffer_.size() >= kMaxPipelinedBytes) return;
  reading_ = true;
  socket_.async_read_some(buffer_.prepare(kReadChunk),
                          [self = shared_from_this()](ErrorCode ec, size_t n) {
                            self->on_read_more(ec, n);
                          });
}

void Connection::on_read_more(ErrorCode ec, size_t n) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (phase_ == Phase::kLingering) return on_linger_read(ec, 0);
  if (ec) {
    // EOF or reset: the client left, whether idle or waiting for its response. (A client
    // that half-closes after its request is taken as gone too, as proxies commonly do.)
    if (phase_ == Phase::kHandling) {
      core::log_debug(kComponent, remote_ + ": client disconnected during the response (" +
                                      ec.message() + ")");
    }
    close();
    return;
  }
  buffer_.commit(n);
  if (phase_ == Phase::kIdle) {
    begin_request();
  } else if (phase_ == Phase::kHandling && buffer_.size() == 0) {
    read_more();
  }
  // With pipelined bytes buffered, watching pauses until the response is done: the bytes
  // belong to the next request.
}

void Connection::begin_request() {
  phase_ = Phase::kReading;
  arm_read_timer(core_->options.header_timeout);
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<size_t>(core_->options.max_header_bytes, UINT32_MAX)));
  parser_->body_limit(core_->options.max_body_bytes);
  reading_ = true;
  bhttp::async_read_header(socket_, buffer_, *parser_,
                           [self = shared_from_this()](ErrorCode ec, size_t) { self->on_header(ec); });
}

void Connection::on_header(ErrorCode ec) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    phase_ = Phase::kHandling;
    if (ec == bhttp::error::header_limit) {
      fail_request(core::Status::too_large("request headers exceed " +
                                           std::to_string(core_->options.max_header_bytes) + " bytes"),
                   "headers_too_large", 431);
    } else if (ec == bhttp::error::body_limit) {  // Content-Length says so up front
      fail_request(core::Status::too_large("request body exceeds the limit of " +
                                           std::to_string(core_->options.max_body_bytes) + " bytes"),
                   "request_too_large");
    } else if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
               ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
    } else {
      fail_request(core::Status::invalid_argument("malformed HTTP request: " + ec.message()), "bad_request");
    }
    return;
  }
  auto& msg = parser_->get();
  version_ = msg.version();
  auto length = parser_->content_length();
  if (length && *length > core_->options.max_body_bytes) {
    phase_ = Phase::kHandling;
    fail_request(core::Status::too_large("request body of " + std::to_string(*length) +
                                         " bytes exceeds the limit of " +
                                         std::to_string(core_->options.max_body_bytes) + " bytes"),
                 "request_too_large");
    return;
  }
  auto expect = msg[bhttp::field::expect];
  if (version_ >= 11 && iequals(std::string_view(expect.data(), expect.size()), "100-continue")) {
    enqueue("HTTP/1.1 100 Continue\r\n\r\n", 0);
  }
  arm_read_timer(core_->options.body_timeout);
  reading_ = true;
  bhttp::async_read(socket_, buffer_, *parser_,
                    [self = shared_from_this()](ErrorCode ec, size_t) { self->on_body(ec); });
}

void Connection::on_body(ErrorCode ec) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  cancel_read_timer();
  if (ec) {
    phase_ = Phase::kHandling;
    if (ec == bhttp::error::body_limit) {
      fail_request(core::Status::too_large("request body exceeds the limit of " +
                                           std::to_string(core_->options.max_body_bytes) + " bytes"),
                   "request_too_large");
    } else if (ec == bhttp::error::partial_message || ec == asio::error::eof ||
               ec == asio::error::connection_reset || ec == asio::error::operation_aborted) {
      close();
    } else {
      fail_request(core::Status::invalid_argument("malformed HTTP request body: " + ec.message()), "bad_request");
    }
    return;
  }
  dispatch_request();
}

void Connection::dispatch_request() {
  auto msg = parser_->release();
  parser_.reset();
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.version = msg.version();
  req.remote = remote_;
  for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  req.body = std::move(msg.body());

  phase_ = Phase::kHandling;
  resp_ = Resp::kNone;
  keep_alive_ = msg.keep_alive() && !stopping_;
  head_ = req.method == "HEAD";
  ++seq_;
  auto writer = std::make_shared<ConnWriter>(shared_from_this(), seq_);
  writer_ = writer;
  if (buffer_.size() == 0) read_more();  // watch for the client leaving
  try {
    core_->router.dispatch(req, writer);
  } catch (const std::exception& e) {
    core::log_error(kComponent, req.method + " " + req.target + ": handler threw: " + e.what());
    openai::respond_error(*writer, core::Status::internal("internal error: " + std::string(e.what())), "",
                          "internal_error");
  }
}

void Connection::fail_request(const core::Status& status, const std::string& code, int http_status) {
  cancel_read_timer();
  keep_alive_ = false;
  ++seq_;
  writer_.reset();
  resp_ = Resp::kNone;
  send_response(http_status ? http_status : openai::http_error_for(status.code()).status, "application/json",
                openai::openai_error_json(status, "", code), {}, 0);
}

std::string Connection::response_head(int status, const std::string& content_type,
                                      const HttpHeaders& extra,
                                      std::optional<size_t> content_length) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  bool has_cache_control = false;
  for (const auto& [k, v] : extra) {
    // Framing is ours to decide.
    if (iequals(k, "Content-Length") || iequals(k, "Transfer-Encoding") || iequals(k, "Connection") ||
        iequals(k, "Content-Type")) {
      continue;
    }
    if (iequals(k, "Cache-Control")) has_cache_control = true;
    h += sanitize_field(k) + ": " + sanitize_field(v) + "\r\n";
  }
  if (!content_type.empty()) h += "Content-Type: " + sanitize_field(content_type) + "\r\n";
  if (!content_length && content_type.rfind("text/event-stream", 0) == 0) {
    if (!has_cache_control) h += "Cache-Control: no-cache\r\n";
    h += "X-Accel-Buffering: no\r\n";  // tells proxies in front not to buffer the stream
  }
  if (content_length) {
    h += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  } else if (chunked_) {
    h += "Transfer-Encoding: chunked\r\n";
  }
  if (!keep_alive_) {
    h += "Connection: close\r\n";
  } else if (version_ == 10) {
    h += "Connection: keep-alive\r\n";
  }
  h += "\r\n";
  return h;
}

void Connection::send_response(int status, const std::string& content_type, std::string body,
                               const HttpHeaders& headers, size_t accounted) {
  resp_ = Resp::kEnding;
  std::string bytes = response_head(status, content_type, headers, body.size());
  if (!head_) bytes += body;
  enqueue(std::move(bytes), accounted);
  maybe_complete();
}

void Connection::on_respond(uint64_t seq, int status, std::string content_type, std::string body,
                            HttpHeaders headers, size_t accounted) {
  if (seq != seq_ || resp_ != Resp::kNone || phase_ != Phase::kHandling) {
    if (auto w = current_writer(); w && seq == seq_) w->sent(accounted);
    return;
  }
  send_response(status, content_type, std::move(body), headers, accounted);
}

void Connection::on_start_stream(uint64_t seq, int status, std::string content_type,
                                 HttpHeaders headers) {
  if (seq != seq_ || resp_ != Resp::kNone || phase_ != Phase::kHandling) return;
  resp_ = Resp::kStreaming;
  // HTTP/1.0 has no chunked encoding: the end of the stream is the end of the connection.
  chunked_ = version_ >= 11;
  if (!chunked_) keep_alive_ = false;
  std::string head = response_head(status, content_type, headers, std::nullopt);
  enqueue(std::move(head), 0);
}

void Connection::on_write(uint64_t seq, std::string data, size_t accounted) {
  if (seq != seq_ || resp_ != Resp::kStreaming || phase_ != Phase::kHandling) {
    if (auto w = current_writer(); w && seq == seq_) w->sent(accounted);
    return;
  }
  if (head_) {
    if (auto w = current_writer()) w->sent(accounted);
    return;
  }
  if (chunked_) {
    char size_line[24];
    int len = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", data.size());
    std::string framed;
    framed.reserve(data.size() + len + 2);
    framed.append(size_line, len);
    framed += data;
    framed += "\r\n";
    enqueue(std::move(framed), accounted);
  } else {
    enqueue(std::move(data), accounted);
  }
}

void Connection::on_end(uint64_t seq) {
  if (seq != seq_ || resp_ != Resp::kStreaming || phase_ != Phase::kHandling) return;
  resp_ = Resp::kEnding;
  if (chunked_ && !head_) enqueue("0\r\n\r\n", 0);
  maybe_complete();
}

void Connection::on_writer_released(uint64_t seq) {
  if (seq != seq_ || phase_ != Phase::kHandling) return;
  if (resp_ == Resp::kNone) {
    core::log_error(kComponent, "handler released its ResponseWriter without responding");
    const core::Status none = core::Status::internal("the server produced no response");
    send_response(openai::http_error_for(none.code()).status, "application/json",
                  openai::openai_error_json(none, "", "internal_error"), {}, 0);
  } else if (resp_ == Resp::kStreaming) {
    core::log_warn(kComponent, "stream released without end(); closing the connection");
    close();
  }
}

void Connection::enqueue(std::string bytes, size_t accounted) {
  if (phase_ == Phase::kClosed) return;
  out_.push_back(OutItem{std::move(bytes), accounted});
  write_next();
}

void Connection::write_next() {
  if (writing_ || out_.empty() || phase_ == Phase::kClosed) return;
  std::vector<asio::const_buffer> buffers;
  size_t total = 0;
  while (!out_.empty() && (buffers.empty() || total + out_.front().bytes.size() <= kMaxWriteBatch)) {
    in_flight_.push_back(std::move(out_.front()));
    out_.pop_front();
    total += in_flight_.back().bytes.size();
  }
  // in_flight_ does not reallocate while the write runs: it is only touched on completion.
  for (const auto& item : in_flight_) buffers.emplace_back(asio::buffer(item.bytes));
  writing_ = true;
  uint64_t gen = ++write_timer_gen_;
  write_timer_.expires_after(core_->options.write_timeout);
  write_timer_.async_wait([self = shared_from_this(), gen](ErrorCode ec) {
    // The generation check drops an expiry that was already queued when the write finished.
    if (ec || gen != self->write_timer_gen_ || !self->writing_) return;
    core::log_debug(kComponent, self->remote_ + ": write timed out (client not reading)");
    self->close();
  });
  asio::async_write(socket_, buffers, [self = shared_from_this()](ErrorCode ec, size_t) {
    self->on_written(ec);
  });
}

void Connection::on_written(ErrorCode ec) {
  writing_ = false;
  ++write_timer_gen_;
  write_timer_.cancel();
  if (phase_ == Phase::kClosed) return;
  if (ec) {
    core::log_debug(kComponent, remote_ + ": write failed: " + ec.message());
    close();
    return;
  }
  size_t accounted = 0;
  for (const auto& item : in_flight_) accounted += item.accounted;
  in_flight_.clear();
  if (accounted > 0) {
    if (auto w = current_writer()) w->sent(accounted);
  }
  if (!out_.empty()) {
    write_next();
    return;
  }
  maybe_complete();
}

void Connection::maybe_complete() {
  if (resp_ == Resp::kEnding && !writing_ && out_.empty() && phase_ == Phase::kHandling) {
    on_response_complete();
  }
}

void Connection::on_response_complete() {
  resp_ = Resp::kDone;
  writer_.reset();
  if (!keep_alive_ || stopping_) {
    linger_close();
    return;
  }
  phase_ = Phase::kIdle;
  resp_ = Resp::kNone;
  chunked_ = false;
  if (buffer_.size() > 0) {
    begin_request();
    return;
  }
  // A large request may have grown the buffer; idle connections should not keep that.
  if (!reading_) buffer_.shrink_to_fit();
  arm_read_timer(core_->options.idle_timeout);
  read_more();  // no-op when the watch read is still pending: it now waits for the next request
}

void Connection::linger_close() {
  phase_ = Phase::kLingering;
  ErrorCode ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
  if (ec) {
    close();
    return;
  }
  linger_budget_ = core_->options.max_body_bytes + (size_t{1} << 20);
  arm_read_timer(kLingerTime);
  if (reading_) return;  // a pending watch read continues as the drain (see on_read_more)
  reading_ = true;
  socket_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](ErrorCode ec, size_t n) {
    self->on_linger_read(ec, n);
  });
}

void Connection::on_linger_read(ErrorCode ec, size_t n) {
  reading_ = false;
  if (phase_ == Phase::kClosed) return;
  if (ec || n >= linger_budget_) {
    close();
    return;
  }
  linger_budget_ -= n;
  reading_ = true;
  socket_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](ErrorCode ec, size_t n) {
    self->on_linger_read(ec, n);
  });
}

void Connection::arm_read_timer(std::chrono::steady_clock::duration d) {
  uint64_t gen = ++read_timer_gen_;
  read_timer_.expires_after(d);
  read_timer_.async_wait([self = shared_from_this(), gen](ErrorCode ec) {
    if (ec || gen != self->read_timer_gen_ || self->phase_ == Phase::kClosed) return;
    if (self->phase_ == Phase::kReading) {
      core::log_debug(kComponent, self->remote_ + ": request not received in time; closing");
    }
    self->close();
  });
}

void Connection::cancel_read_timer() {
  ++read_timer_gen_;
  read_timer_.cancel();
}

void Connection::close() {
  if (phase_ == Phase::kClosed) return;
  bool response_unfinished = phase_ == Phase::kHandling && resp_ != Resp::kDone;
  phase_ = Phase::kClosed;
  {
    core::MutexLock lock(post_mu_);
    post_closed_ = true;
  }
  ErrorCode ec;
  socket_.close(ec);
  ++read_timer_gen_;
  read_timer_.cancel();
  write_timer_.cancel();
  out_.clear();
  if (response_unfinished) notify_gone();
  writer_.reset();
  core_->remove(id_);
}

void Connection::notify_gone() {
  if (auto w = current_writer()) w->mark_gone();
}

}  // namespace

struct HttpServer::Impl {
  std::shared_ptr<ServerCore> core;
  std::optional<Strand> accept_strand;
  std::unique_ptr<Acceptor> acceptor;
  std::unique_ptr<Timer> accept_retry;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<int> threads_running{0};
  std::string address;
  int port = 0;
  std::string unix_path;
  std::atomic<uint64_t> next_id{0};
  // Held through the whole of stop() (its waits included): a second stop() waits for the first.
  core::Mutex stop_mu;
  bool stopped GUARDED_BY(stop_mu) = false;

  void do_accept();
  void on_accept(ErrorCode ec, Socket socket);
};

void HttpServer::Impl::do_accept() {
  acceptor->async_accept(asio::make_strand(core->io), [this](ErrorCode ec, Socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void HttpServer::Impl::on_accept(ErrorCode ec, Socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
  if (ec) {
    // Typically out of file descriptors: wait a little instead of spinning.
    core::log_warn(kComponent, "accept failed: " + ec.message());
    accept_retry->expires_after(std::chrono::milliseconds(100));
    accept_retry->async_wait([this](ErrorCode e) {
      if (!e && acceptor->is_open()) do_accept();
    });
    return;
  }
  if (core->stopping) {
    ErrorCode ignored;
    socket.close(ignored);
    return;
  }
  if (unix_path.empty()) {
    ErrorCode ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);  // stream tokens as they come
  }
  bool reject = core->count() >= core->options.max_connections;
  uint64_t id = ++next_id;
  auto conn = std::make_shared<Connection>(core, std::move(socket), id, reject);
  core->add(id, conn);
  asio::post(conn->strand(), [conn] { conn->start(); });
  do_accept();
}

}  // namespace zs::gateway

namespace zs::gateway {

namespace {

// Opens, binds and listens; fills in the bound address.
core::Status listen_on(const HttpAddress& addr, Acceptor& acceptor, std::string* bound, int* port) {
  ErrorCode ec;
  Protocol::endpoint endpoint;
  if (addr.is_unix) {
    struct stat st {};
    if (::lstat(addr.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return core::Status::error("cannot listen on unix:" + addr.path + ": a file that is not a socket is there");
      }
      // A socket nobody accepts on is left over from a crashed run: replace it. One that
      // accepts belongs to a live server: leave it alone.
      asio::io_context probe_io;
      asio::local::stream_protocol::socket probe(probe_io);
      ErrorCode probe_ec;
      probe.connect(asio::local::stream_protocol::endpoint(addr.path), probe_ec);
      if (!probe_ec) {
        return core::Status::error("cannot listen on unix:" + addr.path + ": a server is already listening there");
      }
      ::unlink(addr.path.c_str());
    }
    endpoint = Protocol::endpoint(asio::local::stream_protocol::endpoint(addr.path));
  } else {
    std::string host = addr.host == "localhost" ? "127.0.0.1" : addr.host;
    auto ip = asio::ip::make_address(host, ec);
    if (ec) return core::Status::error("cannot listen on " + addr.to_string() + ": '" + addr.host + "' is not an IP address");
    endpoint = Protocol::endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(addr.port)));
  }
  acceptor.open(endpoint.protocol(), ec);
  if (!ec && !addr.is_unix) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return core::Status::error("cannot listen on " + addr.to_string() + ": " + ec.message());
  if (addr.is_unix) {
    *bound = addr.to_string();
    *port = 0;
    return core::Status::ok();
  }
  auto local = acceptor.local_endpoint(ec);
  if (ec) return core::Status::error("cannot read the bound address: " + ec.message());
  asio::ip::tcp::endpoint tcp;
  std::memcpy(tcp.data(), local.data(), std::min<size_t>(local.size(), tcp.capacity()));
  tcp.resize(local.size());
  *port = tcp.port();
  HttpAddress b = addr;
  b.host = tcp.address().to_string();
  b.port = *port;
  *bound = b.to_string();
  return core::Status::ok();
}

}  // namespace

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(std::chrono::milliseconds(0)); }

core::Result<std::unique_ptr<HttpServer>> HttpServer::start(const HttpServerOptions& options,
                                                            Router router) {
  auto addr = parse_http_address(options.address);
  if (!addr) return addr.status();
  if (options.io_threads < 1) return core::Status::error("io_threads must be at least 1");
  auto impl = std::make_unique<Impl>();
  impl->core = std::make_shared<ServerCore>(options, std::move(router));
  impl->accept_strand.emplace(asio::make_strand(impl->core->io));
  impl->acceptor = std::make_unique<Acceptor>(*impl->accept_strand);
  impl->accept_retry = std::make_unique<Timer>(*impl->accept_strand);
  ZS_RETURN_IF_ERROR(listen_on(addr.value(), *impl->acceptor, &impl->address, &impl->port));
  if (addr->is_unix) impl->unix_path = addr->path;

  impl->work.emplace(asio::make_work_guard(impl->core->io));
  Impl* raw = impl.get();
  asio::post(*impl->accept_strand, [raw] { raw->do_accept(); });
  for (int i = 0; i < options.io_threads; ++i) {
    ++raw->threads_running;
    impl->threads.emplace_back([raw] {
      while (true) {
        try {
          raw->core->io.run();
          break;
        } catch (const std::exception& e) {
          core::log_error(kComponent, std::string("I/O thread: unexpected exception: ") + e.what());
        }
      }
      core::MutexLock lock(raw->core->mu);
      --raw->threads_running;
      raw->core->cv.notify_all();
    });
  }
  core::log_info(kComponent, "listening on " + impl->address);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::stop(std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  core::MutexLock stop_lock(m.stop_mu);
  if (m.stopped) return;
  m.stopped = true;
  for (const auto& t : m.threads) {
    if (t.get_id() == std::this_thread::get_id()) {
      core::log_error(kComponent, "HttpServer::stop called from an I/O thread; not waiting");
      m.core->stopping = true;
      return;
    }
  }
  ServerCore& core = *m.core;
  core.stopping = true;

  // Stop accepting, and wait until the acceptor is closed so that no connection slips in.
  std::promise<void> closed;
  asio::post(*m.accept_strand, [&m, &closed] {
    ErrorCode ec;
    m.acceptor->close(ec);
    m.accept_retry->cancel();
    closed.set_value();
  });
  closed.get_future().wait();

  for (const auto& c : core.snapshot()) asio::post(c->strand(), [c] { c->begin_shutdown(); });
  auto deadline = std::chrono::steady_clock::now() + grace;
  {
    core::MutexLock lock(core.mu);
    while (!core.idle() && core.cv.wait_until(core.mu, deadline)) {
    }
  }
  for (const auto& c : core.snapshot()) asio::post(c->strand(), [c] { c->force_close(); });
  {
    // Closing is immediate on each strand; bounded only in case a handler misbehaves.
    const auto closed_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    core::MutexLock lock(core.mu);
    while (!core.idle() && core.cv.wait_until(core.mu, closed_by)) {
    }
  }

  // With every socket closed, the threads run out of work and return.
  m.work.reset();
  {
    const auto ended_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    core::MutexLock lock(core.mu);
    while (m.threads_running != 0 && core.cv.wait_until(core.mu, ended_by)) {
    }
    if (m.threads_running != 0) {
      core::log_warn(kComponent, "I/O threads still busy after stop; stopping the io_context");
      core.io.stop();
    }
  }
  for (auto& t : m.threads) t.join();
  m.threads.clear();
  if (!m.unix_path.empty()) ::unlink(m.unix_path.c_str());
  core::log_info(kComponent, "stopped listening on " + m.address);
}

std::string HttpServer::address() const { return impl_->address; }
int HttpServer::port() const { return impl_->port; }
size_t HttpServer::connection_count() const { return impl_->core->count(); }

}  // namespace zs::gateway
