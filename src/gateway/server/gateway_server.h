#pragma once
// The serverless front door (`zeroserve serve`): the OpenAI API routed by the `model` field
// to deployments of the fleet. A request for a deployment with no free instance waits in the
// fleet's queue while one starts; streaming requests that wait receive SSE comment lines
// with the start's progress so that clients and proxies do not time out. Responses are
// proxied chunk by chunk from the worker, pausing the upstream read while the client is
// slow (back-pressure). /v1/embeddings is routed the same way (never streamed); a request
// to a deployment whose model serves the other kind (known from its GGUF) is refused with
// 400 before it can cause a cold start.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mutex.h"
#include "core/status.h"
#include "gateway/http/http_server.h"
#include "gateway/openai/openai_request.h"
#include "platform/config/config.h"
#include "platform/fleet/fleet.h"
#include "platform/metrics/metrics_registry.h"
#include "platform/quota/quota_book.h"

namespace zs::gateway {

class ImageFetcher;
class BatchApi;
class ConsoleApi;

struct GatewayOptions {
  std::string listen = "127.0.0.1:8080";
  std::vector<platform::ApiKeyConfig> api_keys;  // empty: open (a warning is logged at start)
  size_t max_body_bytes = size_t{64} << 20;
  std::chrono::milliseconds stream_keepalive{2000};  // SSE comments while waiting for a start
  std::chrono::milliseconds quiet_wait{800};         // a stream waits this long before opening
  size_t max_buffered_bytes = size_t{1} << 20;       // per client, before upstream reads pause
  size_t max_connections = 100'000;                  // beyond it new connections get 503
};

// What the gateway reports per request for metering.
struct RequestRecord {
  std::string deployment;
  std::string api_key;  // the key's name; "" when the API is open
  platform::RequestClass cls = platform::RequestClass::kInteractive;
  int status = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double queue_seconds = 0;
  bool cold_start = false;
};

// A model download a deployment's start waits for (see set_pull_progress).
struct ModelPullNote {
  std::string file;
  uint64_t done = 0;
  uint64_t total = 0;  // 0 when unknown
};

class GatewayServer {
 public:
  using RecordFn = std::function<void(const RequestRecord&)>;
  // Renders /admin/costs over [from, to) (unix seconds) as JSON.
  using CostsFn = std::function<core::Result<std::string>(double from, double to)>;
  // Re-reads the configuration (POST /admin/reload); may block.
  using ReloadFn = std::function<core::Status()>;

  static core::Result<std::unique_ptr<GatewayServer>> start(GatewayOptions options, platform::Fleet& fleet,
                                                            platform::MetricsRegistry& metrics, RecordFn record,
                                                            CostsFn costs_json, ImageFetcher* fetcher);
  ~GatewayServer();

  std::string address() const { return server_->address(); }
  void set_api_keys(std::vector<platform::ApiKeyConfig> keys) EXCLUDES(mutex_);
  // What each deployment's model serves (chat or embedding). Deployments left out are not
  // known: their requests go through and the instance's own answer is passed on.
  void set_deployment_kinds(std::map<std::string, openai::ModelKind> kinds) EXCLUDES(mutex_);
  // The model download a deployment's start is waiting for, if any: shown in the SSE comments
  // of requests waiting for that start and as "pull" in /admin/deployments. Called on the
  // keepalive and request threads with no lock of the gateway held; must not block for long.
  using PullProgressFn = std::function<std::optional<ModelPullNote>(const std::string& deployment)>;
  void set_pull_progress(PullProgressFn fn) EXCLUDES(mutex_);
  // Serves /v1/files and /v1/batches from `api` (not owned; it must outlive the server); null
  // answers 404 there. Like every setter here it may be called while the server already
  // serves: start() listens at once.
  void set_batch_api(BatchApi* api) EXCLUDES(mutex_);
  // Serves POST /admin/reload; unset answers 404 there.
  void set_reload(ReloadFn fn) EXCLUDES(mutex_);
  // A bearer token the server gives its own batch runner: batch class, no quotas.
  const std::string& internal_key() const { return internal_key_; }
  // Stops accepting; in-flight proxied requests finish within grace.
  void stop(std::chrono::milliseconds grace);

 private:
  struct Pending;
  // Who sent a request: the key's name ("" when the API is open) and its default class.
  struct Caller {
    std::string key_name;
    platform::RequestClass default_class = platform::RequestClass::kInteractive;
    bool internal = false;
    bool admin = false;  // may call /admin/* (any caller when the API is open)
  };
  GatewayServer(GatewayOptions options, platform::Fleet& fleet, platform::MetricsRegistry& metrics, RecordFn record,
                CostsFn costs_json, ImageFetcher* fetcher);
  Router routes();
  // Answers 401 itself and returns nullopt when the request carries no valid key.
  std::optional<Caller> authenticate(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  bool authorized(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w) {
    return authenticate(req, w).has_value();
  }
  // authenticate() and, whenever keys are configured, an admin key; answers 401 itself otherwise.
  bool admin_authorized(const HttpRequest& req, const std::shared_ptr<ResponseWriter>& w);
  // Checks the caller's quotas; answers 429 naming the limit and returns false when refused.
  bool admit(const Caller& caller, const std::string& deployment, const std::shared_ptr<ResponseWriter>& w);
  void handle_inference(const HttpRequest& req, std::shared_ptr<ResponseWriter> w, const std::string& endpoint);
  static bool has_remote_images(const nlohmann::json& body);
  // Replaces remote image URLs by data URLs; on failure answers the client and returns false.
  bool fetch_remote_images(Pending& p, nlohmann::json& body);
  void enqueue(std::shared_ptr<Pending> p, int order);
  // Sends a request whose instance could not be reached (it never got the request) back to the
  // fleet's queue, marking that instance unreachable; false when it must fail instead (too many
  // attempts, stopping, or the client left).
  bool retry_elsewhere(const std::shared_ptr<Pending>& p, const platform::Lease& lease, const std::string& error);
  void on_lease(std::shared_ptr<Pending> p, const platform::Lease* lease, const platform::AcquireFailure* failure);
  void proxy(std::shared_ptr<Pending> p, platform::Lease lease);
  // The X-Zeroserve-Start (and, for a cold start, X-Zeroserve-Cold-Start-Ms) headers of an
  // answer, counted in the start metrics; `worker_wake_ms` is the worker's kWakeMsHeader.
  HttpHeaders start_headers_for(const std::string& deployment, const platform::Lease& lease,
                                const std::string& worker_wake_ms);
  void keepalive_loop();
  void count(const std::string& deployment, int status);

  GatewayOptions options_;
  platform::Fleet& fleet_;
  platform::MetricsRegistry& metrics_;
  RecordFn record_;
  CostsFn costs_json_;
  std::unique_ptr<ConsoleApi> console_;  // created by start(), thread-safe itself
  ImageFetcher* fetcher_;
  std::unique_ptr<HttpServer> server_;
  mutable core::Mutex mutex_;  // taken before a Pending's own mutex, never after
  std::vector<platform::ApiKeyConfig> api_keys_ GUARDED_BY(mutex_);
  std::map<std::string, openai::ModelKind> kinds_ GUARDED_BY(mutex_);
  std::vector<std::weak_ptr<Pending>> waiting_streams_ GUARDED_BY(mutex_);  // for keepalive_loop
  PullProgressFn pull_progress_ GUARDED_BY(mutex_);  // copied out before calling
  ReloadFn reload_ GUARDED_BY(mutex_);                // copied out before calling
  BatchApi* batch_api_ GUARDED_BY(mutex_) = nullptr;  // read out before calling
  const std::string internal_key_;
  platform::QuotaBook quotas_;  // thread-safe itself
  std::atomic<int> proxies_{0};
  // When the last body of kLargeBody bytes or more arrived (steady-clock ticks; 0: none yet):
  // keepalive_loop returns free memory to the OS while such bodies come and go.
  std::atomic<int64_t> last_large_body_{0};
  std::atomic<bool> stopping_{false};
  std::thread keepalive_;
};

}  // namespace zs::gateway
