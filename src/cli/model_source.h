#pragma once
// Where `zeroserve serve` gets its models when they are not plain paths (docs/models.md):
//   - `serve --model M [--mmproj P]`: one deployment, no YAML; hf: names are pulled first
//     (in the foreground, with a progress bar);
//   - `serve` with neither --config nor --model (the first run): a small real model from
//     the hub when it is stored or the hub answers within a few seconds, else the built-in
//     random-weight model with one line saying why;
//   - deployments naming `model: hf:...` in a config: the daemon passes the name to the
//     worker, which pulls it at the first start; PullWatch reports that download's progress.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "gateway/hub/model_store.h"
#include "gateway/server/gateway_server.h"
#include "platform/config/config.h"

namespace zs::cli {

// The model the first run serves when the hub can be reached.
inline constexpr const char* kFirstRunModel = "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M";

// A deployment name for a model path or hf: name: "hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M"
// -> "qwen2.5-0.5b-instruct-q4_k_m", "/m/TinyStories-656K-Q8_0.gguf" -> "tinystories-656k-q8_0".
std::string default_model_name(const std::string& model);

// The configuration of `serve --model M [--mmproj P]`.
core::Result<platform::Config> single_model_config(const std::string& model, const std::string& mmproj,
                                                   const std::string& cache_dir, const gateway::hub::HubOptions& hub);

// The configuration of `serve` without --config or --model.
core::Result<platform::Config> first_run_config(const std::string& cache_dir, const gateway::hub::HubOptions& hub);

// The downloads that deployments naming hf: models wait for, read from the store's files.
// Thread-safe: set() on reload, progress() from the gateway's threads.
class PullWatch {
 public:
  // Takes the hf: names of each deployment's model, mmproj and draft_model.
  void set(const platform::Config& config) EXCLUDES(mutex_);
  std::optional<gateway::ModelPullNote> progress(const std::string& deployment) const EXCLUDES(mutex_);

 private:
  mutable core::Mutex mutex_;
  std::string cache_dir_ GUARDED_BY(mutex_);
  std::map<std::string, std::vector<platform::ModelRef>> refs_ GUARDED_BY(mutex_);
};

// For a builtin deployment: its model, mmproj and draft model as paths where the store holds
// them (hf: names it does not hold stay names, for the worker to pull), whether any is still
// to be pulled, and the memory an instance needs (from the hub's file sizes while not pulled).
struct ResolvedModels {
  std::string model, mmproj, draft_model;
  bool pending_pull = false;
  std::optional<uint64_t> pending_memory_bytes;  // set when the model itself is not stored
};
core::Result<ResolvedModels> resolve_deployment_models(const platform::DeploymentConfig& d, const std::string& cache_dir,
                                                       const gateway::hub::HubOptions& hub);

}  // namespace zs::cli
