#pragma once
// A loopback HTTP server with the URL layout and headers of the Hugging Face hub, for pull
// tests (unit and end-to-end). It is the real protocol, served by the test:
//   HEAD/GET /{owner}/{repo}/resolve/{rev}/{file}  -> 302 to /cdn/{sha256}, with X-Linked-Etag
//                                                   (the SHA-256), X-Linked-Size, X-Repo-Commit
//   GET /cdn/{sha256}                               -> the bytes; Range: bytes=N- answers 206
//   GET /api/models/{owner}/{repo}/tree/{rev}       -> the repository's files as JSON
// A repository may require "Authorization: Bearer <token>" (401 otherwise); an unknown path is
// 404. Faults for tests: cut the connection after N body bytes (the first K downloads), hold a
// body halfway until released, announce a wrong SHA-256.
//
// Threading: one thread accepts, one thread per connection; the counters and settings are
// guarded by one mutex, so tests may change them while requests run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace zs::testing {

inline std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

class FakeHub {
 public:
  struct File {
    std::string content;
    std::string announced_sha;  // empty: the content's
  };

  FakeHub() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeHub() {
    release();
    stop_ = true;
    accept_thread_.join();
    ::close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> l(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  // Adds a file to "owner/repo" at every revision.
  void add(const std::string& repo, const std::string& file, std::string content, std::string announced_sha = "") {
    std::lock_guard<std::mutex> l(mu_);
    repos_[repo][file] = File{std::move(content), std::move(announced_sha)};
  }
  void require_token(const std::string& repo, const std::string& token) {
    std::lock_guard<std::mutex> l(mu_);
    tokens_[repo] = token;
  }
  // The next `times` downloads send `bytes` of the body, then close the connection.
  void cut_after(size_t bytes, int times = 1) {
    std::lock_guard<std::mutex> l(mu_);
    cut_bytes_ = bytes;
    cut_times_ = times;
  }
  // Downloads send `bytes` of the body, then wait for release() (or `heads` HEAD requests).
  void hold_after(size_t bytes, int until_heads = 0) {
    std::lock_guard<std::mutex> l(mu_);
    hold_bytes_ = bytes;
    hold_until_heads_ = until_heads;
    held_ = true;
  }
  void release() {
    std::lock_guard<std::mutex> l(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // Waits until a download is held at its hold point.
  void wait_until_holding() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return holding_ > 0; });
  }

  int downloads() const {  // GETs of /cdn/...
    std::lock_guard<std::mutex> l(mu_);
    return downloads_;
  }
  uint64_t body_bytes_sent() const {
    std::lock_guard<std::mutex> l(mu_);
    return body_bytes_;
  }
  std::vector<std::string> ranges() const {  // Range headers of downloads ("" when none)
    std::lock_guard<std::mutex> l(mu_);
    return ranges_;
  }
  std::vector<std::string> paths() const {
    std::lock_guard<std::mutex> l(mu_);
    return paths_;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> l(mu_);
      threads_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  static bool send_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  static std::string header_of(const std::string& head, const std::string& name) {
    std::string lower_head = head;
    for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string key = "\r\n" + name + ":";
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = lower_head.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    size_t end = head.find("\r\n", at);
    std::string v = head.substr(at, end - at);
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    return v;
  }

  void respond(int fd, int status, const std::string& reason, const std::vector<std::string>& headers,
               const std::string& body, bool head) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
    for (const auto& h : headers) out += h + "\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    if (!head) out += body;
    send_all(fd, out);
  }

  void serve(int fd) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<size_t>(n));
    }
    const std::string method = head.substr(0, head.find(' '));
    const size_t p0 = head.find(' ') + 1;
    std::string target = head.substr(p0, head.find(' ', p0) - p0);
    const bool is_head = method == "HEAD";
    {
      std::lock_guard<std::mutex> l(mu_);
      paths_.push_back(method + " " + target);
      if (is_head) ++heads_;
      cv_.notify_all();
    }
    const std::string auth = header_of(head, "Authorization");
    // A proxied request names the whole URL (absolute form): serve it as if it were ours.
    if (target.rfind("http://", 0) == 0) {
      const size_t slash = target.find('/', 7);
      target = slash == std::string::npos ? "/" : target.substr(slash);
    }
    const std::string path = target.substr(0, target.find('?'));

    if (path.rfind("/cdn/", 0) == 0) return serve_download(fd, path.substr(5), header_of(head, "Range"), is_head);

    // /api/models/{owner}/{repo}/tree/{rev}
    if (path.rfind("/api/models/", 0) == 0) {
      const std::string rest = path.substr(12);
      const size_t tree = rest.find("/tree/");
      const std::string repo = tree == std::string::npos ? rest : rest.substr(0, tree);
      std::lock_guard<std::mutex> l(mu_);
      if (!authorized(repo, auth)) return respond(fd, 401, "Unauthorized", {}, "{\"error\":\"unauthorized\"}", is_head);
      auto it = repos_.find(repo);
      if (it == repos_.end()) return respond(fd, 404, "Not Found", {}, "{\"error\":\"Repository not found\"}", is_head);
      nlohmann::json list = nlohmann::json::array();
      for (const auto& [name, f] : it->second)
        list.push_back({{"type", "file"}, {"path", name}, {"size", f.content.size()},
                        {"lfs", {{"oid", sha256_hex(f.content)}, {"size", f.content.size()}}}});
      return respond(fd, 200, "OK", {"Content-Type: application/json"}, list.dump(), is_head);
    }
    // /{owner}/{repo}/resolve/{rev}/{file}
    const size_t resolve = path.find("/resolve/");
    if (resolve != std::string::npos) {
      const std::string repo = path.substr(1, resolve - 1);
      const std::string rest = path.substr(resolve + 9);
      const std::string file = rest.substr(rest.find('/') + 1);
      std::lock_guard<std::mutex> l(mu_);
      if (!authorized(repo, auth)) return respond(fd, 401, "Unauthorized", {"X-Error-Code: GatedRepo"}, "unauthorized", is_head);
      auto it = repos_.find(repo);
      if (it == repos_.end() || !it->second.count(file))
        return respond(fd, 404, "Not Found", {"X-Error-Code: EntryNotFound"}, "not found", is_head);
      const File& f = it->second.at(file);
      const std::string sha = f.announced_sha.empty() ? sha256_hex(f.content) : f.announced_sha;
      cdn_[sha] = f.content;
      return respond(fd, 302, "Found",
                     {"Location: /cdn/" + sha, "X-Linked-Etag: \"" + sha + "\"",
                      "X-Linked-Size: " + std::to_string(f.content.size()), "X-Repo-Commit: 0123456789abcdef",
                      "ETag: \"" + sha + "\""},
                     "", is_head);
    }
    respond(fd, 404, "Not Found", {}, "not found", is_head);
  }

  bool authorized(const std::string& repo, const std::string& auth) const {
    auto t = tokens_.find(repo);
    return t == tokens_.end() || auth == "Bearer " + t->second;
  }

  void serve_download(int fd, const std::string& sha, const std::string& range, bool is_head) {
    std::string content;
    size_t cut = std::string::npos;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = cdn_.find(sha);
      if (it == cdn_.end()) return respond(fd, 404, "Not Found", {}, "not found", is_head);
      content = it->second;
      if (!is_head) {
        ++downloads_;
        ranges_.push_back(range);
        if (cut_times_ > 0) {
          cut = cut_bytes_;
          --cut_times_;
        }
      }
    }
    size_t start = 0;
    if (range.rfind("bytes=", 0) == 0) start = std::stoull(range.substr(6));
    if (start >= content.size() && !range.empty())
      return respond(fd, 416, "Range Not Satisfiable", {"Content-Range: bytes */" + std::to_string(content.size())}, "", is_head);
    std::string out = range.empty() ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 206 Partial Content\r\n";
    if (!range.empty())
      out += "Content-Range: bytes " + std::to_string(start) + "-" + std::to_string(content.size() - 1) + "/" +
             std::to_string(content.size()) + "\r\n";
    out += "Content-Length: " + std::to_string(content.size() - start) + "\r\nContent-Type: application/octet-stream\r\n"
           "Connection: close\r\n\r\n";
    if (!send_all(fd, out) || is_head) return;
    const std::string body = content.substr(start);
    size_t hold = std::string::npos;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (held_) hold = hold_bytes_;
    }
    size_t sent = 0;
    auto send_part = [&](size_t upto) {
      upto = std::min(upto, body.size());
      if (upto <= sent) return true;
      bool ok = send_all(fd, body.substr(sent, upto - sent));
      std::lock_guard<std::mutex> l(mu_);
      body_bytes_ += upto - sent;
      sent = upto;
      return ok;
    };
    if (cut != std::string::npos) {
      send_part(cut);
      return;  // closes with the body incomplete
    }
    if (hold != std::string::npos) {
      if (!send_part(hold)) return;
      std::unique_lock<std::mutex> l(mu_);
      ++holding_;
      cv_.notify_all();
      cv_.wait(l, [&] { return !held_ || (hold_until_heads_ > 0 && heads_ >= hold_until_heads_); });
      --holding_;
    }
    send_part(body.size());
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  std::map<std::string, std::map<std::string, File>> repos_;
  std::map<std::string, std::string> tokens_;
  std::map<std::string, std::string> cdn_;
  size_t cut_bytes_ = 0;
  int cut_times_ = 0;
  bool held_ = false;
  size_t hold_bytes_ = 0;
  int hold_until_heads_ = 0;
  int holding_ = 0;
  int heads_ = 0;
  int downloads_ = 0;
  uint64_t body_bytes_ = 0;
  std::vector<std::string> ranges_;
  std::vector<std::string> paths_;
};

}  // namespace zs::testing
