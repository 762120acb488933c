#pragma once
// The local store of models pulled from a Hugging Face-style hub, and the pull itself.
//
// Layout under `root` (the config's cache_dir + "/hub"):
//   blobs/sha256-<hex>            a complete, verified file, named by its content
//   blobs/sha256-<hex>.partial    a download in progress (resumed with an HTTP Range request)
//   blobs/sha256-<hex>.lock       held (flock) by the process downloading that blob
//   refs/OWNER/REPO/REV/FILE      "sha256-<hex> <size>": which blob a name points at
//   refs/OWNER/REPO/REV/FILE.pulling   the same, while that name's blob is being downloaded
// A blob appears only by rename() after its SHA-256 matched (never half-written); a ref only
// by rename() after its blob. Two processes pulling the same file download it once: the
// second waits on the lock and then finds the blob.
//
// Threading: every method may be called from any thread and any process at once; pull()
// blocks for the download (call it off request threads; it holds no mutex). Failures:
// kUnavailable (offline, or the hub unreachable), kUnauthenticated (401/403: HF_TOKEN),
// kNotFound (no such repository, file or quantization; not in the store when offline),
// kUpstreamFailed (checksum mismatch, broken download), kResourceExhausted (disk full; the
// partial file is kept for a later resume), kInvalidArgument (a bad name).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "gateway/hub/hub_http.h"
#include "platform/models/model_ref.h"

namespace zs::gateway::hub {

// The real hub; ZEROSERVE_HF_ENDPOINT overrides it (a mirror, or a test's loopback server).
inline constexpr const char* kDefaultHubEndpoint = "https://huggingface.co";
inline constexpr const char* kHubEndpointEnv = "ZEROSERVE_HF_ENDPOINT";
// "1" (or any value but "0"/"false"): never contact the hub. `serve --offline` sets it for its
// workers.
inline constexpr const char* kOfflineEnv = "ZEROSERVE_OFFLINE";

struct HubOptions {
  std::string endpoint = kDefaultHubEndpoint;  // no trailing slash
  std::string token;                           // HF_TOKEN; sent as "Authorization: Bearer"
  bool offline = false;                        // never contact the hub
  HubHttpOptions http;
  int max_attempts = 5;  // a download cut off is resumed this many times while it makes progress

  // ZEROSERVE_HF_ENDPOINT, HF_TOKEN, ZEROSERVE_OFFLINE=1 (or HF_HUB_OFFLINE=1), the proxies.
  static HubOptions from_environment();
};

struct PullProgress {
  std::string file;     // the file's name in its repository
  uint64_t done = 0;    // bytes on disk so far (resumed bytes included)
  uint64_t total = 0;   // 0 when unknown
  uint64_t resumed_from = 0;
  bool waiting_for_other = false;  // another process holds the download's lock
};
using ProgressFn = std::function<void(const PullProgress&)>;

struct StoredModel {
  std::string name;    // canonical "hf:owner/repo/file[@rev]"
  std::string path;    // the blob
  std::string sha256;  // hex
  uint64_t size = 0;
};

class ModelStore {
 public:
  explicit ModelStore(std::string root);
  // `cache_dir` + "/hub".
  static ModelStore in_cache_dir(const std::string& cache_dir);

  const std::string& root() const { return root_; }

  // The stored file a name points at, without contacting the hub; a QUANT name picks among
  // the stored files of that repository and revision. kNotFound when not stored.
  core::Result<StoredModel> find(const platform::ModelRef& ref) const;

  // Asks the hub which file and content the name means now, downloads it unless the store
  // holds it, and points the name at it.
  core::Result<StoredModel> pull(const platform::ModelRef& ref, const HubOptions& hub, const ProgressFn& progress = {}) const;

  // find(), else pull() (unless offline: then kNotFound saying so).
  core::Result<StoredModel> ensure(const platform::ModelRef& ref, const HubOptions& hub,
                                   const ProgressFn& progress = {}) const;

  // Every stored name, sorted.
  std::vector<StoredModel> list() const;

  // Removes the name (a QUANT name: the file it picks) and its blob when no other name points
  // at it. Returns what was removed; kNotFound when the name is not stored.
  core::Result<std::vector<StoredModel>> remove(const platform::ModelRef& ref) const;

  // A download of this name in progress in any process, from the files on disk.
  std::optional<PullProgress> progress(const platform::ModelRef& ref) const;

 private:
  std::string ref_path(const platform::ModelRef& file_ref) const;
  std::string blob_path(const std::string& sha256) const;

  std::string root_;
};

// The repository's file names at a revision (GET /api/models/{repo}/tree/{rev}?recursive=true).
core::Result<std::vector<std::string>> list_repo_files(const platform::ModelRef& ref, const HubOptions& hub);

// The size of the file a name means on the hub now (a QUANT name lists the repository).
core::Result<uint64_t> remote_file_size(const platform::ModelRef& ref, const HubOptions& hub);

// A path as is; an "hf:" name through the store (ensure()). Messages name the deployment
// field or flag through the caller's with_context.
core::Result<std::string> resolve_model_path(const std::string& path_or_name, const std::string& cache_dir,
                                             const HubOptions& hub, const ProgressFn& progress = {});

// "1.2 GiB", "640 KiB", "12 B".
std::string format_size(uint64_t bytes);

}  // namespace zs::gateway::hub
