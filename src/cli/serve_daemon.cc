#include "cli/serve_daemon.h"
#include "cli/serve_slurm.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <utility>

#include "core/log.h"
#include "core/mapped_file.h"
#include "core/mutex.h"
#include "engine/gguf/gguf_file.h"
#include "engine/model/model_config.h"
#include "engine/model/random_model.h"
#include "gateway/fetch/http_image_fetcher.h"
#include "gateway/http/http_client.h"
#include "gateway/hub/model_store.h"
#include "platform/models/model_ref.h"
#include "platform/autoscale/policy_state_store.h"
#include "platform/metrics/process_memory.h"
#include "worker/worker.h"
#include "worker/worker_protocol.h"

namespace zs::cli {

using core::Result;
using core::Status;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Where this process reaches its own listener: a wildcard bind is reached over loopback.
std::string loopback_address(const std::string& bound) {
  if (bound.rfind("0.0.0.0:", 0) == 0) return "127.0.0.1:" + bound.substr(8);
  if (bound.rfind("[::]:", 0) == 0) return "[::1]:" + bound.substr(5);
  return bound;
}

std::string self_executable() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "zeroserve";
}

std::string default_dir(const char* xdg, const char* fallback) {
  if (const char* v = std::getenv(xdg); v && *v) return std::string(v) + "/zeroserve";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/" + fallback + "/zeroserve";
}

// What each builtin deployment's model serves, read from its GGUF header; deployments of
// other runtimes (or unreadable files) are left out: the gateway passes their answers on.
std::map<std::string, gateway::openai::ModelKind> deployment_kinds(const platform::Config& config) {
  std::map<std::string, gateway::openai::ModelKind> kinds;
  for (const auto& d : config.deployments) {
    if (d.runtime == platform::RuntimeKind::kCommand) continue;
    std::string model = d.model;
    if (platform::is_model_ref(model)) {  // known once pulled (a reload then tells)
      auto ref = platform::parse_model_ref(model);
      auto m = ref ? gateway::hub::ModelStore::in_cache_dir(config.gateway.cache_dir).find(*ref)
                   : core::Result<gateway::hub::StoredModel>(ref.status());
      if (!m) continue;
      model = m->path;
    }
    auto file = engine::GgufFile::open(model);
    if (!file) continue;
    auto c = engine::ModelConfig::from_gguf(*file.value());
    if (!c) continue;
    kinds[d.name] = c->is_encoder() ? gateway::openai::ModelKind::kEmbedding : gateway::openai::ModelKind::kChat;
  }
  return kinds;
}

}  // namespace

namespace {
constexpr uint64_t kProcessBytes = 64ull << 20;  // an instance process itself, beyond its model
constexpr double kPullStartTimeoutS = 6 * 3600;  // a first start that pulls its model from the hub

// The pending reason each deployment's gauge shows, so that a changed reason's old series
// drops to 0 (metrics collectors may run on several threads at once).
struct PendingShown {
  core::Mutex mutex;
  std::map<std::string, std::string> reason GUARDED_BY(mutex);  // deployment -> reason shown
};
}  // namespace

Result<uint64_t> estimate_instance_memory(const std::string& model, const std::string& mmproj, int ctx) {
  auto file = engine::GgufFile::open(model);
  if (!file) return file.status();
  uint64_t bytes = file.value()->file_size();
  auto config = engine::ModelConfig::from_gguf(*file.value());
  if (config && config->is_encoder()) {
    // No KV cache: the encoder's pass buffers, sized as the worker sizes them.
    const auto& c = config.value();
    const uint64_t rows = static_cast<uint64_t>(std::max(worker::WorkerOptions{}.embed_rows, c.n_ctx_train));
    bytes += rows * (7 * static_cast<uint64_t>(c.n_embd) + 2 * static_cast<uint64_t>(c.n_ff)) * sizeof(float);
  } else if (config) {
    const auto& c = config.value();
    bytes += static_cast<uint64_t>(ctx) * c.n_layer * c.kv_dim() * 2 * sizeof(uint16_t);  // f16 K and V
    bytes += static_cast<uint64_t>(256) * (4 * c.n_embd + 2 * c.n_ff + c.n_vocab) * sizeof(float);  // step buffers
  }
  if (!mmproj.empty()) bytes += std::filesystem::file_size(mmproj) * 2;  // weights + encoder activations
  return bytes + kProcessBytes;
}

Result<platform::Config> default_config(const std::string& cache_dir) {
  const std::string model = cache_dir + "/models/zeroserve-tiny-q8_0.gguf";
  if (!std::filesystem::exists(model)) {
    std::error_code ec;
    std::filesystem::create_directories(cache_dir + "/models", ec);
    auto preset = engine::find_model_preset("tiny");
    ZS_RETURN_IF_ERROR(engine::write_random_model(preset.value(), engine::FileType::kQ8_0, model + ".tmp"));
    std::filesystem::rename(model + ".tmp", model);
  }
  const std::string yaml = "deployments:\n  - name: zeroserve-tiny\n    model: " + model +
                           "\n    min_instances: 0\n    max_instances: 2\n    keep_alive: 300s\n    slots: 4\n    ctx: 2048\n"
                           // so that a batch job submitted to the demo runs without interactive traffic
                           "    batch_max_instances: 1\n";
  auto config = platform::parse_config(yaml, "<built-in default>", cache_dir);
  if (!config) return config.status();
  core::log_info("serve", "no --config given: serving the built-in deployment 'zeroserve-tiny' (random weights, " + model +
                              "). To serve a real model: zeroserve serve --model PATH or hf:OWNER/REPO:QUANT (docs/models.md), "
                              "or --config zeroserve.yaml (docs/configuration.md).");
  return config;
}

Result<platform::Config> ServeDaemon::read_config() const {
  gateway::hub::HubOptions hub = gateway::hub::HubOptions::from_environment();
  hub.offline |= options_.offline;
  const std::string cache_dir = default_dir("XDG_CACHE_HOME", ".cache");
  Result<platform::Config> config = !options_.config_path.empty() ? platform::load_config(options_.config_path)
                                    : !options_.model.empty()     ? single_model_config(options_.model, options_.mmproj, cache_dir, hub)
                                                                  : first_run_config(cache_dir, hub);
  if (!config) return config.status();
  ZS_RETURN_IF_ERROR(platform::validate_files(config.value()));
  if (!options_.listen.empty()) config->gateway.listen = options_.listen;
  for (const auto& w : config->warnings) core::log_warn("config", w);
  return config;
}

static std::vector<std::string> worker_argv(const std::string& exe, const platform::DeploymentConfig& d, uint64_t max_body) {
  std::vector<std::string> argv = {exe, "worker", "--model", d.model, "--name", d.name, "--slots",
                                   std::to_string(d.slots), "--ctx", std::to_string(d.ctx)};
  if (!d.mmproj.empty()) argv.insert(argv.end(), {"--mmproj", d.mmproj});
  if (d.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(d.threads)});
  // The gateway's limit, so that the worker never refuses a body the gateway accepted.
  argv.insert(argv.end(), {"--max-body-bytes", std::to_string(max_body)});
  if (d.matryoshka) argv.push_back("--matryoshka");
  if (d.max_image_tokens > 0) argv.insert(argv.end(), {"--max-image-tokens", std::to_string(d.max_image_tokens)});
  if (!d.speculative.empty())
    argv.insert(argv.end(), {"--speculative", d.speculative, "--draft-tokens", std::to_string(d.draft_tokens)});
  if (!d.draft_model.empty()) argv.insert(argv.end(), {"--draft-model", d.draft_model});
  return argv;
}

Result<std::vector<platform::DeploymentSpec>> ServeDaemon::specs_for(const platform::Config& config) const {
  std::vector<platform::DeploymentSpec> specs;
  gateway::hub::HubOptions hub = gateway::hub::HubOptions::from_environment();
  hub.offline |= options_.offline;
  for (const auto& configured : config.deployments) {
    // hf: names become the stored files' paths; one not stored yet stays a name that the
    // worker pulls at its first start (cli/model_source.h).
    platform::DeploymentConfig d = configured;
    bool pending_pull = false;
    std::optional<uint64_t> pending_memory;
    if (d.runtime == platform::RuntimeKind::kBuiltin) {
      auto resolved = resolve_deployment_models(d, config.gateway.cache_dir, hub);
      if (!resolved) return resolved.status().with_context("deployment '" + d.name + "'");
      d.model = resolved->model;
      d.mmproj = resolved->mmproj;
      d.draft_model = resolved->draft_model;
      pending_pull = resolved->pending_pull;
      pending_memory = resolved->pending_memory_bytes;
    }
    uint64_t memory_bytes = 0;
    if (d.memory_bytes) {
      memory_bytes = *d.memory_bytes;
    } else if (pending_memory) {
      memory_bytes = *pending_memory;
    } else {
      auto est = estimate_instance_memory(d.model, platform::is_model_ref(d.mmproj) ? "" : d.mmproj, d.ctx);
      if (!est) return est.status().with_context("deployment '" + d.name + "'");
      memory_bytes = est.value();
      if (!d.draft_model.empty() && !platform::is_model_ref(d.draft_model)) {  // the draft model's weights, cache and buffers, in the same process
        auto draft = estimate_instance_memory(d.draft_model, "", d.ctx);
        if (!draft) return draft.status().with_context("deployment '" + d.name + "' (draft_model)");
        memory_bytes += draft.value() - kProcessBytes;
      }
    }
    const auto* dev = config.device(d.device);
    if (d.runtime == platform::RuntimeKind::kSlurm) {
      specs.push_back(slurm_spec(config, d, memory_bytes, dev, self_exe_, worker_argv(self_exe_, d, max_body_bytes_)));
      continue;
    }
    platform::DeploymentSpec s = platform::scheduling_spec(d, memory_bytes, dev ? dev->price_per_second : 0);
    s.sleep_price_per_second = dev ? dev->sleep_price_per_second : 0;
    s.env = d.env;
    // A first start that downloads the model may take as long as the download.
    if (pending_pull) s.start_timeout_s = std::max(s.start_timeout_s, kPullStartTimeoutS);
    if (d.runtime == platform::RuntimeKind::kBuiltin) {
      s.uses_unix_socket = true;
      s.announces_ready = true;
      const std::string exe = self_exe_;
      const uint64_t max_body = max_body_bytes_;
      const std::string cache_dir = config.gateway.cache_dir;
      s.command = [exe, d, max_body, cache_dir](const std::string& address, int) -> Result<std::vector<std::string>> {
        std::vector<std::string> argv = worker_argv(exe, d, max_body);
        argv.insert(argv.begin() + 6, {"--listen", address});  // after --name, where it always was
        argv.insert(argv.end(), {"--cache-dir", cache_dir});
        return argv;
      };
      s.fingerprint = "builtin|" + configured.model + "|" + configured.mmproj + "|" + std::to_string(d.slots) + "|" +
                      std::to_string(d.ctx) + "|" + std::to_string(d.threads) + (d.matryoshka ? "|matryoshka" : "") +
                      "|" + std::to_string(d.max_image_tokens) + "|" + d.speculative + ":" + std::to_string(d.draft_tokens) + ":" + configured.draft_model;
    } else {
      s.uses_unix_socket = false;
      s.announces_ready = false;
      s.command = [d](const std::string&, int port) {
        return platform::expand_command(d.command, {{"port", std::to_string(port)},
                                                    {"host", "127.0.0.1"},
                                                    {"model", d.model},
                                                    {"mmproj", d.mmproj}});
      };
      s.fingerprint = "command|" + d.command + "|" + d.model + "|" + d.mmproj;
    }
    for (const auto& [k, v] : d.env) s.fingerprint += "|" + k + "=" + v;
    specs.push_back(std::move(s));
  }
  return specs;
}

Result<std::unique_ptr<ServeDaemon>> ServeDaemon::start(const ServeOptions& options) {
  std::unique_ptr<ServeDaemon> d(new ServeDaemon());
  d->options_ = options;
  d->self_exe_ = self_executable();
  auto config = d->read_config();
  if (!config) return config.status();
  d->max_body_bytes_ = config->gateway.max_body_bytes;
  auto specs = d->specs_for(config.value());
  if (!specs) return specs.status();
  const std::string state_dir =
      config->gateway.state_dir.empty() ? default_dir("XDG_STATE_HOME", ".local/state") : config->gateway.state_dir;
  auto ledger = platform::CostLedger::open(state_dir + "/ledger.sqlite");
  if (!ledger) return ledger.status();
  d->ledger_ = std::move(ledger.value());
  platform::CostLedger* l = d->ledger_.get();
  // Jobs outlive a serve killed with SIGKILL: a restarted one cancels what its predecessor
  // left, and bills their runs as Slurm recorded them.
  if (config->cluster.configured) cancel_leftover_jobs(config->cluster, config->gateway.state_dir, l);

  platform::FleetEvents events;
  events.instance_started = [l](const std::string& id, const platform::DeploymentSpec& spec, bool for_request) {
    Status s = l->instance_started(id, spec.name, spec.device, spec.price_per_second, spec.sleep_price_per_second,
                                   unix_now(), for_request);
    if (!s) core::log_error("ledger", s.message());
  };
  platform::MetricsRegistry* metrics = &d->metrics_;
  events.instance_phase = [metrics, l](const std::string& id, platform::InstancePhase phase, double start_s) {
    if (phase != platform::InstancePhase::kStarting) {
      Status s = l->instance_state(id, phase, unix_now());
      if (!s) core::log_warn("ledger", s.message());
    }
    if (start_s > 0)
      metrics->histogram("zs_instance_start_seconds", "Time from spawning an instance to ready (cold start).",
                         platform::MetricsRegistry::exponential_buckets(0.01, 2, 14))
          .observe(start_s);
  };
  events.instance_stopped = [l](const std::string& id, const std::optional<platform::RunSpan>& ran) {
    Status s = l->instance_stopped(id, unix_now());
    // A cluster job's own start and end (Slurm's) replace what the fleet saw.
    if (s && ran) s = l->set_run_span(id, ran->started_at, ran->stopped_at);
    if (!s) core::log_error("ledger", s.message());
  };
  events.heartbeat = [l] { (void)l->heartbeat(unix_now()); };
  events.decision = [metrics](const std::string& deployment, const std::string& action, const std::string&) {
    metrics->counter("zs_autoscale_decisions_total", "Scaling decisions (scale_out, scale_in, prewarm, evict) by deployment.",
                     {{"deployment", deployment}, {"action", action}})
        .add();
  };
  auto store = platform::PolicyStateStore::open(state_dir + "/policy_state.sqlite");
  if (!store) return store.status();
  d->policy_store_ = std::move(store.value());
  platform::PolicyStateStore* ps = d->policy_store_.get();
  events.load_policy_state = [ps](const std::string& dep, const std::string& policy) { return ps->load(dep, policy); };
  events.save_policy_state = [ps](const std::string& dep, const std::string& policy, const std::string& state) {
    core::Status s = ps->save(dep, policy, state);
    if (!s) core::log_warn("autoscale", s.message());
  };
  events.sleep = [](const std::string& address) -> Status {
    auto r = gateway::http_request("POST", address, worker::kSleepPath, "", {}, std::chrono::seconds(30));
    if (!r) return r.status();
    if (r->status == 200) return Status::ok();
    const std::string why = "the worker answered " + std::to_string(r->status) + ": " + r->body;
    return r->status == 409 ? Status::failed_precondition(why) : Status::unavailable(why);
  };
  // Where a cold start's time went; the wait of the requests behind it is
  // zs_gateway_cold_start_wait_seconds.
  auto start_phase = [metrics](const char* phase) -> platform::Histogram& {
    return metrics->histogram("zs_instance_start_phase_seconds",
                              "Where a cold start's time went: spawn (process start before loading), load "
                              "(map, parse, tokenizer, engine) and first_pass (the first forward pass of the "
                              "fresh process, its warm-up).",
                              platform::MetricsRegistry::exponential_buckets(0.001, 2, 16), {{"phase", phase}});
  };
  events.start_breakdown = [start_phase](const std::string&, double spawn_s, double load_s) {
    start_phase("spawn").observe(spawn_s);
    start_phase("load").observe(load_s);
  };
  events.first_pass = [start_phase](const std::string&, double seconds, int) {
    start_phase("first_pass").observe(seconds);
  };
  auto probe = [](const std::string& address) {
    auto r = gateway::http_request("GET", address, "/health", "", {}, std::chrono::seconds(2));
    return r.is_ok() && r->status == 200;
  };
  d->fleet_ = std::make_unique<platform::Fleet>(config->devices, state_dir + "/run-" + std::to_string(getpid()), probe,
                                                events);
  d->prepare_model_files(config.value());
  d->fleet_->set_deployments(std::move(specs.value()));

  gateway::HttpImageFetcherOptions fo;
  fo.max_bytes = config->gateway.max_image_bytes;
  fo.timeout = std::chrono::milliseconds(static_cast<int64_t>(config->gateway.image_fetch_timeout_s * 1000));
  fo.allow_private = config->gateway.allow_private_image_urls;
  d->fetcher_ = std::make_unique<gateway::HttpImageFetcher>(fo);
  gateway::GatewayOptions go;
  go.listen = config->gateway.listen;
  go.api_keys = config->gateway.api_keys;
  go.max_body_bytes = config->gateway.max_body_bytes;
  auto record = [l](const gateway::RequestRecord& r) {
    (void)l->record_request(r.deployment, r.api_key, platform::request_class_name(r.cls), r.prompt_tokens,
                            r.completion_tokens, r.status, r.queue_seconds, unix_now());
  };
  auto costs = [l](double from, double to) { return l->costs_json(from, to, unix_now()); };
  auto gw = gateway::GatewayServer::start(go, *d->fleet_, d->metrics_, record, costs, d->fetcher_.get());
  if (!gw) return gw.status();
  d->gateway_ = std::move(gw.value());
  d->gateway_->set_deployment_kinds(deployment_kinds(config.value()));
  d->gateway_->set_reload([daemon = d.get()] { return daemon->reload(); });
  d->pulls_.set(config.value());
  d->gateway_->set_pull_progress([pulls = &d->pulls_](const std::string& name) { return pulls->progress(name); });

  auto batches = platform::BatchStore::open(state_dir + "/batches.sqlite");
  if (!batches) return batches.status();
  d->batch_store_ = std::move(batches.value());
  gateway::BatchRunnerOptions bo;
  bo.gateway_address = loopback_address(d->gateway_->address());
  bo.internal_key = d->gateway_->internal_key();
  bo.concurrency = config->gateway.batch_concurrency;
  d->batch_runner_ = std::make_unique<gateway::BatchRunner>(*d->batch_store_, bo, d->metrics_);
  d->batch_api_ = std::make_unique<gateway::BatchApi>(
      *d->batch_store_, *d->batch_runner_, [fleet = d->fleet_.get()](const std::string& m) { return fleet->has_deployment(m); },
      go.max_body_bytes);
  d->gateway_->set_batch_api(d->batch_api_.get());
  d->batch_runner_->start();  // resumes the jobs a previous run left in progress
  platform::track_process_memory(d->metrics_);
  static constexpr const char* kPendingHelp = "1 while an instance's Slurm job is pending, labelled with Slurm's reason.";
  auto pending_shown = std::make_shared<PendingShown>();
  d->metrics_.on_collect([fleet = d->fleet_.get(), m = &d->metrics_, l, pending_shown] {
    for (const auto& dev : fleet->device_memory()) {
      m->gauge("zs_device_memory_used_bytes", "Memory reserved by instances.", {{"device", dev.device}}).set(static_cast<double>(dev.used));
      m->gauge("zs_device_memory_total_bytes", "Memory budget of the device.", {{"device", dev.device}}).set(static_cast<double>(dev.capacity));
    }
    if (auto total = l->total_cost(0, unix_now() + 1, unix_now()))
      m->gauge("zs_cost_total_dollars", "Cost of all instance time metered so far.").set(total.value());
    for (const auto& s : fleet->status()) {
      m->gauge("zs_deployment_instances", "Instances by state.", {{"deployment", s.name}, {"state", "ready"}}).set(s.instances_ready);
      m->gauge("zs_deployment_instances", "Instances by state.", {{"deployment", s.name}, {"state", "starting"}}).set(s.instances_starting);
      m->gauge("zs_deployment_queued_requests", "Requests waiting for an instance.", {{"deployment", s.name}}).set(s.queued);
      m->gauge("zs_deployment_in_flight_requests", "Requests being served.", {{"deployment", s.name}}).set(s.in_flight);
      m->gauge("zs_deployment_batch_queued_requests", "Batch-class requests waiting for a free slot.", {{"deployment", s.name}}).set(s.batch_queued);
      m->gauge("zs_deployment_batch_in_flight_requests", "Batch-class requests being served.", {{"deployment", s.name}}).set(s.batch_in_flight);
      m->gauge("zs_deployment_cold_starts", "Instances started for a waiting request (cumulative).", {{"deployment", s.name}}).set(static_cast<double>(s.cold_starts));
      m->gauge("zs_deployment_crashes", "Instances that exited unexpectedly (cumulative).", {{"deployment", s.name}}).set(static_cast<double>(s.crashes));
      // Slurm instances: 1 while one waits in Slurm's queue, labelled with Slurm's reason.
      // The series of the previous reason drops to 0 when the reason changes.
      const std::string pending = fleet->pending_reason(s.name);
      std::string previous;
      {
        core::MutexLock lock(pending_shown->mutex);
        previous = std::exchange(pending_shown->reason[s.name], pending);
      }
      if (!previous.empty() && previous != pending)
        m->gauge("zs_deployment_pending_in_slurm", kPendingHelp, {{"deployment", s.name}, {"reason", previous}}).set(0);
      if (!pending.empty())
        m->gauge("zs_deployment_pending_in_slurm", kPendingHelp, {{"deployment", s.name}, {"reason", pending}}).set(1);
    }
  });
  return d;
}

Status ServeDaemon::reload() {
  auto config = read_config();
  if (!config) return config.status();
  auto specs = specs_for(config.value());
  if (!specs) return specs.status();
  gateway_->set_deployment_kinds(deployment_kinds(config.value()));
  pulls_.set(config.value());
  prepare_model_files(config.value());
  fleet_->set_deployments(std::move(specs.value()));
  gateway_->set_api_keys(config->gateway.api_keys);
  core::log_info("serve", "configuration reloaded: " + std::to_string(config->deployments.size()) + " deployments");
  return Status::ok();
}

void ServeDaemon::prepare_model_files(const platform::Config& config) {
  for (const auto& d : config.deployments) {
    if (d.runtime != platform::RuntimeKind::kBuiltin) continue;  // a cluster node has its own page cache
    for (const std::string* file : {&d.model, &d.mmproj, &d.draft_model}) {
      if (file->empty() || platform::is_model_ref(*file) || !prepared_files_.insert(*file).second) continue;
      const auto began = std::chrono::steady_clock::now();
      if (Status s = core::MappedFile::prepare_page_cache(*file); !s) {
        core::log_warn("serve", "preparing " + *file + ": " + s.message());
        continue;
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
      if (ms >= 50) core::log_info("serve", "prepared the page cache of " + *file + " in " + std::to_string(static_cast<int>(ms)) + " ms");
    }
  }
}

void ServeDaemon::shutdown() {
  // Batch items being generated finish and are recorded while the gateway still serves them;
  // those still waiting for a slot, or still on their way to the fleet, give way at once (they
  // run again at the next start).
  if (batch_runner_) {
    batch_runner_->halt();
    if (fleet_) fleet_->close_class(platform::RequestClass::kBatch, "the server is shutting down");
    batch_runner_->stop(std::chrono::seconds(30));
  }
  if (gateway_) {
    gateway_->set_batch_api(nullptr);
    gateway_->stop(std::chrono::seconds(30));
  }
  batch_api_.reset();
  batch_runner_.reset();
  if (fleet_) fleet_->shutdown(std::chrono::seconds(30));
}

ServeDaemon::~ServeDaemon() { shutdown(); }

}  // namespace zs::cli
