#include "gateway/hub/model_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/log.h"

namespace zs::gateway::hub {

namespace fs = std::filesystem;
using core::Result;
using core::Status;
using platform::ModelRef;

// ---------------------------------------------------------------------------------------
// Small helpers: hashing, files, the hub's headers
// ---------------------------------------------------------------------------------------

namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) { EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr); }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// An ETag's value without quotes and weak prefix, lower case.
std::string etag_value(std::string v) {
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoull(s);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Writes `text` to `path` through a temporary file and rename().
Status write_atomically(const std::string& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      return Status::resource_exhausted("cannot write " + path + " (disk full?)");
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    fs::remove(tmp, ec);
    return Status::internal("cannot rename " + tmp + " to " + path + ": " + std::strerror(e));
  }
  return Status::ok();
}

struct RefEntry {
  std::string sha256;
  uint64_t size = 0;
};

std::optional<RefEntry> read_ref_file(const std::string& path) {
  std::ifstream in(path);
  RefEntry e;
  std::string blob;
  if (!(in >> blob >> e.size) || blob.rfind("sha256-", 0) != 0) return std::nullopt;
  e.sha256 = blob.substr(7);
  if (!is_sha256_hex(e.sha256)) return std::nullopt;
  return e;
}

std::string ref_text(const std::string& sha256, uint64_t size) { return "sha256-" + sha256 + " " + std::to_string(size) + "\n"; }

// An exclusive flock on a file, released when destroyed (or the process ends).
class FileLock {
 public:
  static Result<std::unique_ptr<FileLock>> acquire(const std::string& path, const std::function<void()>& on_wait) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::internal("cannot open the lock file " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (on_wait) on_wait();
      while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
          const int e = errno;
          ::close(fd);
          return Status::internal("cannot lock " + path + ": " + std::strerror(e));
        }
      }
    }
    return std::unique_ptr<FileLock>(new FileLock(fd));
  }
  ~FileLock() { ::close(fd_); }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

Status status_for_http(int status, const std::string& what, const HubOptions& hub) {
  if (status == 401 || status == 403)
    return Status::unauthenticated(what + ": the hub answered " + std::to_string(status) +
                                   (hub.token.empty() ? " (a gated or private repository: set HF_TOKEN to a token that may read it)"
                                                      : " (the token in HF_TOKEN may not read it)"));
  if (status == 404)
    return Status::not_found(what + ": the hub answered 404 (no such repository, revision or file" +
                             std::string(hub.token.empty() ? "; a private repository needs HF_TOKEN" : "") + ")");
  if (status == 429) return Status::resource_exhausted(what + ": the hub answered 429 (rate limited; try again later)");
  return Status::upstream_failed(what + ": the hub answered " + std::to_string(status));
}

HttpHeaders auth_headers(const HubOptions& hub) {
  HttpHeaders h;
  if (!hub.token.empty()) h.emplace_back("Authorization", "Bearer " + hub.token);
  return h;
}

Status offline_refusal(const ModelRef& ref) {
  return Status::not_found(ref.to_string() + " is not in the model store and offline mode is on (--offline or "
                           "ZEROSERVE_OFFLINE=1): run `zeroserve pull " + ref.to_string() + "` while online");
}

// What the hub says a file is: its content's SHA-256 (when it reports one) and size.
struct RemoteFile {
  std::string sha256;  // empty when the hub reported none (not an LFS file)
  uint64_t size = 0;   // 0 when unknown
};

Result<RemoteFile> head_file(const ModelRef& ref, const HubOptions& hub) {
  const std::string url = hub.endpoint + "/" + ref.repo_id() + "/resolve/" + ref.revision + "/" + ref.file;
  HubRequest req;
  req.method = "HEAD";
  req.url = url;
  req.headers = auth_headers(hub);
  req.follow_redirects = false;
  auto r = hub_request(req, hub.http);
  if (!r) return r.status().with_context("asking the hub about " + ref.to_string());
  const bool redirect = r->status >= 300 && r->status < 400;
  if (redirect && r->header("X-Linked-Etag").empty()) {  // a renamed repository: ask where it went
    req.follow_redirects = true;
    r = hub_request(req, hub.http);
    if (!r) return r.status().with_context("asking the hub about " + ref.to_string());
  }
  if (r->status >= 400) return status_for_http(r->status, ref.to_string(), hub);
  RemoteFile f;
  const std::string linked = etag_value(r->header("X-Linked-Etag"));
  const std::string etag = etag_value(r->header("ETag"));
  if (is_sha256_hex(linked)) f.sha256 = linked;
  else if (is_sha256_hex(etag)) f.sha256 = etag;
  if (auto n = parse_u64(r->header("X-Linked-Size"))) f.size = *n;
  else if (!(r->status >= 300 && r->status < 400))
    if (auto n2 = parse_u64(r->header("Content-Length"))) f.size = *n2;
  return f;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Options and listing the repository
// ---------------------------------------------------------------------------------------

HubOptions HubOptions::from_environment() {
  HubOptions o;
  std::string endpoint = env(kHubEndpointEnv);
  if (!endpoint.empty()) {
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    o.endpoint = endpoint;
  }
  o.token = env("HF_TOKEN");
  const std::string off = env(kOfflineEnv).empty() ? env("HF_HUB_OFFLINE") : env(kOfflineEnv);
  o.offline = !off.empty() && off != "0" && off != "false";
  o.http = HubHttpOptions::from_environment();
  return o;
}

Result<std::vector<std::string>> list_repo_files(const ModelRef& ref, const HubOptions& hub) {
  if (hub.offline) return offline_refusal(ref);
  HubRequest req;
  req.url = hub.endpoint + "/api/models/" + ref.repo_id() + "/tree/" + ref.revision + "?recursive=true";
  req.headers = auth_headers(hub);
  auto r = hub_request(req, hub.http);
  const std::string what = "listing the files of " + ref.repo_id() + "@" + ref.revision;
  if (!r) return r.status().with_context(what);
  if (r->status != 200) return status_for_http(r->status, what, hub);
  auto doc = nlohmann::json::parse(r->body, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) return Status::upstream_failed(what + ": the hub's answer is not a JSON array");
  std::vector<std::string> files;
  for (const auto& e : doc) {
    if (!e.is_object() || !e.contains("path") || !e["path"].is_string()) continue;
    if (e.contains("type") && e["type"] != "file") continue;
    files.push_back(e["path"].get<std::string>());
  }
  return files;
}

std::string format_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

ModelStore::ModelStore(std::string root) : root_(std::move(root)) {}

ModelStore ModelStore::in_cache_dir(const std::string& cache_dir) { return ModelStore(cache_dir + "/hub"); }

std::string ModelStore::ref_path(const ModelRef& r) const {
  return root_ + "/refs/" + r.owner + "/" + r.repo + "/" + r.revision + "/" + r.file;
}

std::string ModelStore::blob_path(const std::string& sha256) const { return root_ + "/blobs/sha256-" + sha256; }

// The file a name means: itself, or for OWNER/REPO:QUANT the repository's file of that
// quantization (listed from the hub).
static Result<ModelRef> resolve_file(const ModelRef& asked, const HubOptions& hub) {
  if (asked.quant.empty()) return asked;
  auto files = list_repo_files(asked, hub);
  if (!files) return files.status();
  auto picked = platform::pick_quant_file(*files, asked.quant);
  if (!picked) return picked.status().with_context(asked.to_string());
  return asked.with_file(*picked);
}

Result<StoredModel> ModelStore::find(const ModelRef& ref) const {
  ModelRef file_ref = ref;
  if (!ref.quant.empty()) {
    const std::string dir = root_ + "/refs/" + ref.owner + "/" + ref.repo + "/" + ref.revision;
    std::vector<std::string> files;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      const std::string rel = fs::relative(it->path(), dir).string();
      if (rel.size() > 5 && rel.compare(rel.size() - 5, 5, ".gguf") == 0) files.push_back(rel);
    }
    auto picked = platform::pick_quant_file(files, ref.quant);
    if (!picked) return Status::not_found(ref.to_string() + " is not in the model store (" + root_ + ")");
    file_ref = ref.with_file(*picked);
  }
  auto entry = read_ref_file(ref_path(file_ref));
  if (!entry) return Status::not_found(ref.to_string() + " is not in the model store (" + root_ + ")");
  StoredModel m{file_ref.to_string(), blob_path(entry->sha256), entry->sha256, entry->size};
  std::error_code ec;
  if (!fs::exists(m.path, ec))
    return Status::not_found(ref.to_string() + " points at " + m.path + ", which is gone: pull it again");
  return m;
}

Result<StoredModel> ModelStore::ensure(const ModelRef& ref, const HubOptions& hub, const ProgressFn& progress) const {
  auto found = find(ref);
  if (found || !found.status().is_not_found()) return found;
  if (hub.offline) return offline_refusal(ref);
  return pull(ref, hub, progress);
}

Result<StoredModel> ModelStore::pull(const ModelRef& asked, const HubOptions& hub, const ProgressFn& progress) const {
  if (hub.offline) {
    auto found = find(asked);
    if (found) return found;
    return offline_refusal(asked);
  }
  auto resolved = resolve_file(asked, hub);
  if (!resolved) return resolved.status();
  const ModelRef ref = *resolved;
  auto remote = head_file(ref, hub);
  if (!remote) return remote.status();
  const std::string name = ref.to_string();
  std::error_code ec;
  fs::create_directories(root_ + "/blobs", ec);
  if (ec) return Status::internal("cannot create " + root_ + "/blobs: " + ec.message());

  // A blob is named by the hub's SHA-256; a file the hub reports none for is downloaded
  // under a name of its own and named by its content once complete.
  const bool verified = !remote->sha256.empty();
  const std::string key = verified ? remote->sha256 : "unverified-" + ref.owner + "--" + ref.repo + "--" + ref.revision;
  if (verified && fs::exists(blob_path(remote->sha256))) {
    ZS_RETURN_IF_ERROR(write_atomically(ref_path(ref), ref_text(remote->sha256, remote->size)));
    return StoredModel{name, blob_path(remote->sha256), remote->sha256, remote->size};
  }

  PullProgress p;
  p.file = ref.file;
  p.total = remote->size;
  auto lock = FileLock::acquire(root_ + "/blobs/sha256-" + key + ".lock", [&] {
    p.waiting_for_other = true;
    if (progress) progress(p);
  });
  if (!lock) return lock.status();
  p.waiting_for_other = false;
  if (verified && fs::exists(blob_path(remote->sha256))) {  // the other process finished it
    ZS_RETURN_IF_ERROR(write_atomically(ref_path(ref), ref_text(remote->sha256, remote->size)));
    return StoredModel{name, blob_path(remote->sha256), remote->sha256, remote->size};
  }
  const std::string pulling = ref_path(ref) + ".pulling";
  const std::string partial = root_ + "/blobs/sha256-" + key + ".partial";
  ZS_RETURN_IF_ERROR(write_atomically(pulling, "sha256-" + key + " " + std::to_string(remote->size) + "\n"));
  struct RemovePulling {
    std::string path;
    ~RemovePulling() {
      std::error_code e;
      fs::remove(path, e);
    }
  } remove_pulling{pulling};

  int fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal("cannot open " + partial + ": " + std::strerror(errno));
  struct CloseFd {
    int fd;
    ~CloseFd() { ::close(fd); }
  } close_fd{fd};

  // What is already there is hashed again, so that the digest covers the whole file.
  Sha256 sha;
  uint64_t have = 0;
  {
    std::vector<char> buf(1 << 20);
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
      sha.update(buf.data(), static_cast<size_t>(n));
      have += static_cast<uint64_t>(n);
    }
  }
  if (remote->size > 0 && have > remote->size) {  // not this file's beginning: start over
    if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) return Status::internal("cannot truncate " + partial);
    sha = Sha256();
    have = 0;
  }
  p.resumed_from = have;
  p.done = have;
  if (progress) progress(p);

  const std::string url = hub.endpoint + "/" + ref.repo_id() + "/resolve/" + ref.revision + "/" + ref.file;
  Status write_error = Status::ok();
  Status last = Status::ok();
  for (int attempt = 0; attempt < std::max(1, hub.max_attempts); ++attempt) {
    if (remote->size > 0 && have == remote->size) break;
    const uint64_t before = have;
    HubRequest req;
    req.url = url;
    req.headers = auth_headers(hub);
    if (have > 0) req.headers.emplace_back("Range", "bytes=" + std::to_string(have) + "-");
    bool restarted = false;
    int answer_status = 0;
    req.on_body = [&](std::string_view chunk) {
      size_t off = 0;
      while (off < chunk.size()) {
        const ssize_t n = ::write(fd, chunk.data() + off, chunk.size() - off);
        if (n < 0) {
          if (errno == EINTR) continue;
          const int e = errno;
          if (e == ENOSPC || e == EFBIG || e == EDQUOT)
            write_error = Status::resource_exhausted("writing " + partial + " after " + std::to_string(have) +
                                                     " bytes: " + std::strerror(e) + " (free some space and pull again: the download resumes)");
          else
            write_error = Status::internal("writing " + partial + ": " + std::strerror(e));
          return false;
        }
        off += static_cast<size_t>(n);
      }
      sha.update(chunk.data(), chunk.size());
      have += chunk.size();
      p.done = have;
      if (progress) progress(p);
      return true;
    };
    // Knowing the answer's status before its body: a 200 to a Range request restarts.
    auto r = hub_request(req, hub.http);
    (void)restarted;
    (void)answer_status;
    if (!write_error) {
      // Whatever was written stays for a resume; the write error says so.
      return write_error.with_context("pulling " + name);
    }
    if (r && r->status == 416 && have > 0) {  // the range starts at the end: the partial file is whole
      break;
    }
    if (r && r->status >= 400) return status_for_http(r->status, "downloading " + name, hub);
    if (r && have > before && r->status == 200 && before > 0) {
      // The server ignored the Range and sent the file from its start: keep only that.
      const uint64_t fresh = have - before;
      std::vector<char> buf(1 << 20);
      Sha256 again;
      uint64_t moved = 0;
      while (moved < fresh) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), fresh - moved));
        if (::pread(fd, buf.data(), n, static_cast<off_t>(before + moved)) != static_cast<ssize_t>(n) ||
            ::pwrite(fd, buf.data(), n, static_cast<off_t>(moved)) != static_cast<ssize_t>(n))
          return Status::internal("rewriting " + partial);
        again.update(buf.data(), n);
        moved += n;
      }
      if (::ftruncate(fd, static_cast<off_t>(fresh)) != 0) return Status::internal("cannot truncate " + partial);
      ::lseek(fd, static_cast<off_t>(fresh), SEEK_SET);
      sha = std::move(again);
      have = fresh;
    }
    if (r && r->body_complete && r->status >= 200 && r->status < 300) {
      last = Status::ok();
      break;
    }
    last = r ? Status::upstream_failed("downloading " + name + ": the answer ended early") : r.status();
    if (have == before) break;  // no progress: give up
    if (!r && !r.status().is_unavailable() && r.status().code() != core::StatusCode::kUpstreamFailed &&
        r.status().code() != core::StatusCode::kDeadlineExceeded)
      break;
    if (!r) core::log_warn("pull", r.status().message() + "; resuming at byte " + std::to_string(have));
  }
  if (!last) return last.with_context("pulling " + name + " (" + std::to_string(have) + " bytes kept for a resume)");
  if (remote->size > 0 && have != remote->size)
    return Status::upstream_failed("pulling " + name + ": got " + std::to_string(have) + " bytes, the hub announced " +
                                   std::to_string(remote->size));
  const std::string digest = sha.hex();
  if (verified && digest != remote->sha256) {
    fs::remove(partial, ec);
    return Status::upstream_failed("pulling " + name + ": checksum mismatch: the hub reports SHA-256 " + remote->sha256 +
                                   ", the downloaded file has " + digest + "; the download was discarded");
  }
  if (!verified)
    core::log_warn("pull", "the hub reported no SHA-256 for " + name + " (not an LFS file); stored as downloaded, sha256 " + digest);
  if (::fsync(fd) != 0) return Status::resource_exhausted("cannot flush " + partial + " to disk: " + std::strerror(errno));
  const std::string blob = blob_path(digest);
  if (::rename(partial.c_str(), blob.c_str()) != 0)
    return Status::internal("cannot rename " + partial + " to " + blob + ": " + std::strerror(errno));
  if (int dir = ::open((root_ + "/blobs").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  ZS_RETURN_IF_ERROR(write_atomically(ref_path(ref), ref_text(digest, have)));
  return StoredModel{name, blob, digest, have};
}

std::vector<StoredModel> ModelStore::list() const {
  std::vector<StoredModel> out;
  const fs::path refs = root_ + "/refs";
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(refs, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string rel = fs::relative(it->path(), refs).string();
    if (rel.size() <= 5 || rel.compare(rel.size() - 5, 5, ".gguf") != 0) continue;
    // owner/repo/rev/file...
    std::vector<std::string> parts;
    std::stringstream ss(rel);
    for (std::string part; std::getline(ss, part, '/');) parts.push_back(part);
    if (parts.size() < 4) continue;
    auto entry = read_ref_file(it->path().string());
    if (!entry) continue;
    ModelRef r;
    r.owner = parts[0];
    r.repo = parts[1];
    r.revision = parts[2];
    for (size_t i = 3; i < parts.size(); ++i) r.file += (i > 3 ? "/" : "") + parts[i];
    out.push_back(StoredModel{r.to_string(), blob_path(entry->sha256), entry->sha256, entry->size});
  }
  std::sort(out.begin(), out.end(), [](const StoredModel& a, const StoredModel& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<StoredModel>> ModelStore::remove(const ModelRef& ref) const {
  auto found = find(ref);
  if (!found && found.status().is_not_found() && ref.quant.empty()) {
    // A name whose blob is gone: remove the name anyway.
    std::error_code ec;
    if (fs::remove(ref_path(ref), ec)) return std::vector<StoredModel>{};
  }
  if (!found) return found.status();
  auto file_ref = platform::parse_model_ref(found->name);
  if (!file_ref) return file_ref.status();
  std::error_code ec;
  fs::remove(ref_path(*file_ref), ec);
  bool shared = false;
  for (const auto& other : list())
    if (other.sha256 == found->sha256) shared = true;
  if (!shared) fs::remove(found->path, ec);
  return std::vector<StoredModel>{*found};
}

std::optional<PullProgress> ModelStore::progress(const ModelRef& ref) const {
  std::vector<std::string> candidates;
  if (ref.quant.empty()) {
    candidates.push_back(ref_path(ref) + ".pulling");
  } else {
    const std::string dir = root_ + "/refs/" + ref.owner + "/" + ref.repo + "/" + ref.revision;
    std::error_code ec;
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const std::string rel = fs::relative(it->path(), dir).string();
      if (rel.size() > 13 && rel.compare(rel.size() - 13, 13, ".gguf.pulling") == 0) files.push_back(rel.substr(0, rel.size() - 8));
    }
    auto picked = platform::pick_quant_file(files, ref.quant);
    if (!picked) return std::nullopt;
    candidates.push_back(dir + "/" + *picked + ".pulling");
  }
  for (const auto& c : candidates) {
    std::ifstream in(c);
    std::string blob;
    uint64_t total = 0;
    if (!(in >> blob >> total)) continue;
    PullProgress p;
    p.file = fs::path(c.substr(0, c.size() - 8)).filename().string();
    p.total = total;
    struct stat st {};
    if (::stat((root_ + "/blobs/" + blob + ".partial").c_str(), &st) == 0) p.done = static_cast<uint64_t>(st.st_size);
    return p;
  }
  return std::nullopt;
}

Result<uint64_t> remote_file_size(const ModelRef& asked, const HubOptions& hub) {
  if (hub.offline) return offline_refusal(asked);
  auto resolved = resolve_file(asked, hub);
  if (!resolved) return resolved.status();
  const ModelRef ref = *resolved;
  auto remote = head_file(ref, hub);
  if (!remote) return remote.status();
  return remote->size;
}

Result<std::string> resolve_model_path(const std::string& path_or_name, const std::string& cache_dir, const HubOptions& hub,
                                       const ProgressFn& progress) {
  if (!platform::is_model_ref(path_or_name)) return path_or_name;
  auto ref = platform::parse_model_ref(path_or_name);
  if (!ref) return ref.status();
  auto m = ModelStore::in_cache_dir(cache_dir).ensure(*ref, hub, progress);
  if (!m) return m.status();
  return m->path;
}

}  // namespace zs::gateway::hub
