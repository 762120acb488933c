#pragma once
// The web console's side of the gateway (docs/console.md): its page and scripts, embedded in
// the binary (console_assets.h), served at / and /console/...; and the compact JSON the page
// polls, at most once a second per open page:
//
//   GET /console/api/status?offset=&limit=&q=&state=  deployments (filtered by a substring of
//       the name and by state, then paged) with their instances and phases, queue depth by
//       class, in-flight requests, cold starts and the keep-alive countdown to scale-to-zero;
//       plus who the caller is (admin or not; never a key).
//   GET /console/api/series[?deployment=NAME]  the last hour in 10 s buckets, kept in memory
//       here: TTFT p50/p95 (streamed requests), tokens/s, requests, cold starts, queue depth by
//       class and in-flight requests; without a deployment, all of them together.
//
// Any valid API key may read these (the gateway authenticates before calling handle_api);
// admin actions stay on /admin/*.
//
// Threading: thread-safe. observe() runs on the gateway's proxy threads; a sampler thread of
// its own reads the fleet's status once a second (queue depth, in-flight, cold starts).
// `mutex_` guards the series and is held only to copy numbers in or out: the fleet is read
// before it is taken, and no I/O happens under it. Failures are answered to the client as
// OpenAI error objects (a 400 naming the query parameter).
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "gateway/http/http_types.h"
#include "gateway/http/response_writer.h"
#include "platform/fleet/fleet.h"

namespace zs::gateway {

// Who polls, as the gateway authenticated them.
struct ConsoleCaller {
  bool keys_required = false;  // API keys are configured: the console must send one
  bool admin = false;          // may use the admin actions (always true when keys are not required)
  std::string key_name;        // the key's configured name ("" when the API is open)
};

class ConsoleApi {
 public:
  static constexpr int kBucketSeconds = 10;
  static constexpr int kBuckets = 360;  // one hour
  static constexpr int kMaxPageSize = 200;

  explicit ConsoleApi(platform::Fleet& fleet);
  ~ConsoleApi();  // stops the sampler
  ConsoleApi(const ConsoleApi&) = delete;
  ConsoleApi& operator=(const ConsoleApi&) = delete;

  // One finished proxied request: its time to first streamed byte (< 0 when not streamed) and
  // the tokens it generated.
  void observe(const std::string& deployment, double ttft_s, int64_t completion_tokens) EXCLUDES(mutex_);

  // GET /, /console and /console/<page>: the page; /console/<file>: an embedded file.
  // Answers 404 for anything else under /console.
  static void serve_page(const HttpRequest& req, ResponseWriter& w);
  // GET /console/api/...; the caller is authenticated already.
  void handle_api(const HttpRequest& req, ResponseWriter& w, const ConsoleCaller& caller) EXCLUDES(mutex_);

  // The sampler's step, public so that it can be driven at a chosen time: records `status`
  // into the bucket of `unix_s`.
  void sample(const std::vector<platform::DeploymentStatus>& status, double unix_s) EXCLUDES(mutex_);

 private:
  struct Bucket {
    int64_t slot = -1;  // unix seconds / kBucketSeconds; -1: empty
    std::vector<float> ttft;  // seconds, at most kMaxTtftSamples
    int64_t requests = 0;
    int64_t completion_tokens = 0;
    int64_t cold_starts = 0;
    int queued_interactive = 0;  // the most seen in the bucket
    int queued_batch = 0;
    int in_flight = 0;
  };
  struct Series {
    std::array<Bucket, kBuckets> ring;
    uint64_t last_cold_starts = 0;  // the fleet's cumulative count at the last sample
    bool seen = false;              // last_cold_starts is set
  };
  static constexpr size_t kMaxTtftSamples = 512;

  Bucket& bucket_locked(Series& s, int64_t slot) REQUIRES(mutex_);
  void status(const HttpRequest& req, ResponseWriter& w, const ConsoleCaller& caller);
  void series(const HttpRequest& req, ResponseWriter& w) EXCLUDES(mutex_);
  void sampler();

  platform::Fleet& fleet_;
  core::Mutex mutex_;  // guards series_ only; never held around the fleet or I/O
  std::map<std::string, std::unique_ptr<Series>> series_ GUARDED_BY(mutex_);
  core::CondVar stop_cv_;  // with mutex_
  bool stop_ GUARDED_BY(mutex_) = false;
  std::thread sampler_;
};

}  // namespace zs::gateway
