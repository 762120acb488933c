#pragma once
// `zeroserve serve` composed: configuration -> fleet of instances -> gateway, with the cost
// ledger metering every instance-second. Lives in cli/ because it wires every layer.
#include <memory>
#include <set>
#include <string>

#include "core/status.h"
#include "gateway/batch/batch_runner.h"
#include "gateway/fetch/image_fetcher.h"
#include "gateway/server/batch_api.h"
#include "gateway/server/gateway_server.h"
#include "platform/autoscale/policy_state_store.h"
#include "platform/batch/batch_store.h"
#include "platform/config/config.h"
#include "platform/fleet/fleet.h"
#include "platform/ledger/cost_ledger.h"
#include "platform/metrics/metrics_registry.h"
#include "cli/model_source.h"

namespace zs::cli {

struct ServeOptions {
  std::string config_path;  // empty: --model, else the first run's model (cli/model_source.h)
  std::string listen;       // overrides the config's gateway.listen
  std::string model;        // `serve --model`: a path or an hf: name, without a config file
  std::string mmproj;
  bool offline = false;     // never contact the hub (also ZEROSERVE_OFFLINE=1)
};

class ServeDaemon {
 public:
  static core::Result<std::unique_ptr<ServeDaemon>> start(const ServeOptions& options);
  ~ServeDaemon();

  std::string address() const { return gateway_->address(); }
  // Re-reads the configuration; on error keeps the running one and returns the error.
  core::Status reload();
  void shutdown();

 private:
  ServeDaemon() = default;
  core::Result<platform::Config> read_config() const;
  core::Result<std::vector<platform::DeploymentSpec>> specs_for(const platform::Config& config) const;

  ServeOptions options_;
  // gateway.max_body_bytes as the gateway was started with (a reload keeps it: the listener's
  // limit is fixed), passed to every builtin worker.
  uint64_t max_body_bytes_ = 0;
  std::string self_exe_;
  platform::MetricsRegistry metrics_;
  std::unique_ptr<platform::CostLedger> ledger_;
  std::unique_ptr<platform::PolicyStateStore> policy_store_;
  std::unique_ptr<platform::Fleet> fleet_;
  std::unique_ptr<gateway::GatewayServer> gateway_;
  std::unique_ptr<gateway::ImageFetcher> fetcher_;
  std::unique_ptr<platform::BatchStore> batch_store_;
  std::unique_ptr<gateway::BatchRunner> batch_runner_;
  std::unique_ptr<gateway::BatchApi> batch_api_;
  PullWatch pulls_;  // downloads of hf: models that deployments' first starts wait for
  // Model files whose page cache was prepared (MappedFile::prepare_page_cache) before the
  // first worker mapped them; a reload prepares only new ones.
  std::set<std::string> prepared_files_;
  void prepare_model_files(const platform::Config& config);
};

// The deployment served when no configuration is given: a small model generated on first
// run into the cache directory.
core::Result<platform::Config> default_config(const std::string& cache_dir);

// Memory an instance needs: the GGUF file (mapped) plus its KV cache and working buffers.
core::Result<uint64_t> estimate_instance_memory(const std::string& model, const std::string& mmproj, int ctx);

}  // namespace zs::cli
