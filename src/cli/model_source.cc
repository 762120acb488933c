#include "cli/model_source.h"

#include <cctype>

#include "cli/model_cli.h"
#include "cli/serve_daemon.h"
#include "core/log.h"

namespace zs::cli {

using core::Result;
using core::Status;
using gateway::hub::HubOptions;
using gateway::hub::ModelStore;

namespace {

// A YAML single-quoted scalar.
std::string yaml_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// Resolves an hf: name in the foreground (the store, else a pull with a progress display).
Result<std::string> pull_in_foreground(const std::string& name, const std::string& cache_dir, const HubOptions& hub) {
  if (!platform::is_model_ref(name)) return name;
  auto ref = platform::parse_model_ref(name);
  if (!ref) return ref.status();
  ProgressPrinter printer(ref->to_string());
  auto m = ModelStore::in_cache_dir(cache_dir).ensure(*ref, hub, [&](const gateway::hub::PullProgress& p) { printer(p); });
  printer.finish();
  if (!m) return m.status();
  return m->path;
}

Result<platform::Config> one_deployment(const std::string& name, const std::string& model, const std::string& mmproj,
                                        const std::string& cache_dir, const std::string& source) {
  std::string yaml = "gateway:\n  cache_dir: " + yaml_quoted(cache_dir) + "\ndeployments:\n  - name: " + name +
                     "\n    model: " + yaml_quoted(model) + "\n";
  if (!mmproj.empty()) yaml += "    mmproj: " + yaml_quoted(mmproj) + "\n";
  yaml += "    min_instances: 0\n    max_instances: 2\n    keep_alive: 300s\n    slots: 4\n    ctx: 4096\n"
          "    batch_max_instances: 1\n";
  return platform::parse_config(yaml, source, cache_dir);
}

}  // namespace

std::string default_model_name(const std::string& model) {
  std::string base;
  if (auto ref = platform::parse_model_ref(model); ref && platform::is_model_ref(model)) {
    if (ref->quant.empty()) {
      base = ref->file.substr(ref->file.rfind('/') + 1);
    } else {
      base = ref->repo;
      const std::string upper_suffix = "-GGUF";
      if (base.size() > upper_suffix.size()) {
        std::string tail = base.substr(base.size() - upper_suffix.size());
        for (char& c : tail) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (tail == upper_suffix) base.resize(base.size() - upper_suffix.size());
      }
      base += "-" + ref->quant;
    }
  } else {
    base = model.substr(model.rfind('/') + 1);
  }
  if (base.size() > 5 && base.compare(base.size() - 5, 5, ".gguf") == 0) base.resize(base.size() - 5);
  std::string out;
  for (char c : base) {
    const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out += (std::isalnum(static_cast<unsigned char>(l)) || l == '.' || l == '_' || l == '-') ? l : '-';
  }
  while (!out.empty() && !std::isalnum(static_cast<unsigned char>(out.front()))) out.erase(out.begin());
  return out.empty() ? "model" : out;
}

Result<platform::Config> single_model_config(const std::string& model, const std::string& mmproj, const std::string& cache_dir,
                                             const HubOptions& hub) {
  auto model_path = pull_in_foreground(model, cache_dir, hub);
  if (!model_path) return model_path.status().with_context("--model");
  auto mmproj_path = pull_in_foreground(mmproj, cache_dir, hub);
  if (!mmproj_path) return mmproj_path.status().with_context("--mmproj");
  const std::string name = default_model_name(model);
  auto config = one_deployment(name, *model_path, *mmproj_path, cache_dir, "<--model>");
  if (config) core::log_info("serve", "serving " + model + " as deployment '" + name + "'");
  return config;
}

Result<platform::Config> first_run_config(const std::string& cache_dir, const HubOptions& hub) {
  auto ref = platform::parse_model_ref(kFirstRunModel);
  ModelStore store = ModelStore::in_cache_dir(cache_dir);
  auto stored = store.find(*ref);
  std::string why;
  if (!stored && hub.offline) {
    why = "offline mode (--offline or ZEROSERVE_OFFLINE=1)";
  } else if (!stored) {
    // A hub that cannot be reached is told apart within seconds (a DNS lookup stuck in the
    // system resolver included), so that the quick start stays quick offline.
    HubOptions quick = hub;
    quick.http.connect_timeout = std::chrono::seconds(3);
    Status reach = gateway::hub::check_reachable(hub.endpoint + "/", quick.http, std::chrono::seconds(3));
    if (!reach) {
      why = "the hub at " + hub.endpoint + " cannot be reached (" + reach.message() + ")";
    } else {
      core::log_info("serve", std::string("no --config or --model given: pulling ") + kFirstRunModel + " (once; then served from " +
                                  store.root() + ")");
      ProgressPrinter printer(kFirstRunModel);
      stored = store.pull(*ref, quick, [&](const gateway::hub::PullProgress& p) { printer(p); });
      printer.finish();
      if (!stored) why = "pulling " + std::string(kFirstRunModel) + " failed: " + stored.status().message();
    }
  }
  if (stored) {
    auto config = one_deployment(default_model_name(kFirstRunModel), stored->path, "", cache_dir, "<first run>");
    if (config)
      core::log_info("serve", std::string("no --config or --model given: serving ") + kFirstRunModel + " as deployment '" +
                                  default_model_name(kFirstRunModel) + "'");
    return config;
  }
  core::log_warn("serve", "serving the built-in random-weight model 'zeroserve-tiny' instead of " + std::string(kFirstRunModel) +
                              ": " + why + ". Serve a real model with --model PATH|hf:OWNER/REPO:QUANT (docs/models.md).");
  return default_config(cache_dir);
}

void PullWatch::set(const platform::Config& config) {
  std::map<std::string, std::vector<platform::ModelRef>> refs;
  for (const auto& d : config.deployments)
    for (const std::string* name : {&d.model, &d.mmproj, &d.draft_model})
      if (platform::is_model_ref(*name))
        if (auto r = platform::parse_model_ref(*name)) refs[d.name].push_back(*r);
  core::MutexLock lock(mutex_);
  cache_dir_ = config.gateway.cache_dir;
  refs_ = std::move(refs);
}

std::optional<gateway::ModelPullNote> PullWatch::progress(const std::string& deployment) const {
  std::vector<platform::ModelRef> refs;
  std::string cache_dir;
  {
    core::MutexLock lock(mutex_);
    auto it = refs_.find(deployment);
    if (it == refs_.end()) return std::nullopt;
    refs = it->second;
    cache_dir = cache_dir_;
  }
  ModelStore store = ModelStore::in_cache_dir(cache_dir);
  for (const auto& r : refs)
    if (auto p = store.progress(r)) return gateway::ModelPullNote{p->file, p->done, p->total};
  return std::nullopt;
}

Result<ResolvedModels> resolve_deployment_models(const platform::DeploymentConfig& d, const std::string& cache_dir,
                                                 const HubOptions& hub) {
  ResolvedModels out;
  out.model = d.model;
  out.mmproj = d.mmproj;
  out.draft_model = d.draft_model;
  ModelStore store = ModelStore::in_cache_dir(cache_dir);
  for (std::string* name : {&out.model, &out.mmproj, &out.draft_model}) {
    if (!platform::is_model_ref(*name)) continue;
    auto ref = platform::parse_model_ref(*name);
    if (!ref) return ref.status();
    if (auto m = store.find(*ref)) {
      *name = m->path;
      continue;
    }
    out.pending_pull = true;
    if (hub.offline) return Status::not_found(*name + " is not in the model store (" + store.root() + ") and offline mode is on: pull it first (zeroserve pull " + *name + ")");
    if (name == &out.model && !d.memory_bytes) {
      auto size = gateway::hub::remote_file_size(*ref, hub);
      if (!size) return size.status().with_context("sizing " + *name + " before its first pull (or set memory: for the deployment)");
      // The weights plus a quarter for the KV cache and buffers; known exactly once pulled.
      out.pending_memory_bytes = *size + *size / 4 + (uint64_t{256} << 20);
    }
  }
  return out;
}

}  // namespace zs::cli
