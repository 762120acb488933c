#pragma once
// The deployment configuration: one YAML file declares the gateway, the devices and every
// deployment (docs/configuration.md documents each field). Loading parses and validates it
// completely, so that the daemon never starts with a configuration it would trip over later;
// every error names the file, the line and the field.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "platform/autoscale/scaling_policy.h"

namespace zs::platform {

struct DeviceConfig {
  std::string name;
  std::string kind;  // "cpu" | "cuda"
  uint64_t memory_bytes = 0;
  double price_per_second = 0;  // USD per second of instance time on this device
  // USD per second of a sleeping instance (its host memory). Default: kDefaultSleepPriceShare
  // of price_per_second.
  double sleep_price_per_second = 0;
};

// A sleeping instance keeps its weights in host memory and nothing else: it is billed this
// share of the running price unless the device names its own sleep price.
inline constexpr double kDefaultSleepPriceShare = 0.1;

// kSlurm: the builtin worker as a Slurm job on a node of the cluster (the `cluster:` section).
enum class RuntimeKind { kBuiltin, kCommand, kSlurm };

// The `cluster:` section: how `runtime: slurm` deployments reach Slurm (docs/cluster.md).
// Devices and their memory describe local placement only; a Slurm job asks for resources
// (--cpus-per-task from threads, --mem from the deployment's memory, --gres=gpu:1 when its
// device is cuda) and Slurm places it.
struct ClusterConfig {
  bool configured = false;  // the section is present
  int source_line = 0;
  std::string partition;  // empty: the cluster's default partition
  std::string account;
  std::string qos;
  double time_limit_s = 0;                 // a job's --time; 0 = the partition's limit
  std::vector<std::string> sbatch_options;  // passed to sbatch as given (e.g. --exclusive)
  std::string slurm_conf;                  // SLURM_CONF for sbatch/squeue/scancel; empty = Slurm's default
  // A folder on a file system both this machine and the nodes see (NFS, ...): each instance's
  // token, heartbeat and announced address (docs/cluster.md says why a folder, not a call).
  std::string shared_dir;
  std::string zeroserve_path;      // zeroserve on the nodes; empty = the path of this executable
  double heartbeat_limit_s = 30;   // a job whose gateway is silent this long ends itself
  double poll_s = 1;               // seconds between squeue polls per instance
  // An instance this close to its job's end (the time limit) gets a replacement and drains;
  // at most half the job's time limit, so that a job always serves for half of it.
  double replace_before_s = 600;
  std::map<std::string, double> price_per_second;  // partition -> USD per instance-second
};

struct AutoscaleConfig {
  std::string policy = kDefaultScalingPolicy;  // one of known_autoscale_policies()
  // Every knob of every policy; YAML names them as the fields are named, durations without
  // the "_s" suffix (stable_window: 60s). docs/autoscaling.md explains each.
  PolicyOptions options;
};

struct DeploymentConfig {
  std::string name;    // [a-z0-9][a-z0-9._-]*, unique; the `model` field of API requests routes to it
  std::string model;   // path to a GGUF, resolved against the config file's folder
  std::string mmproj;  // optional vision projector, resolved likewise
  RuntimeKind runtime = RuntimeKind::kBuiltin;
  // kCommand: the start command of any OpenAI-compatible server, with {port} (required),
  // {model}, {mmproj} and {host} placeholders.
  std::string command;
  int min_instances = 0;
  int max_instances = 1;
  double keep_alive_s = 300;  // idle seconds before scale-in; kKeepAliveForever pins instances
  // Idle seconds before an instance sleeps (gives back its KV cache and threads, keeps its
  // process and weights; the next request wakes it in milliseconds); kNeverSleep: never.
  // Builtin workers only: another runtime's server cannot be asked to sleep.
  double sleep_after_s = kDefaultSleepAfterS;
  int slots = 4;              // concurrent sequences per instance
  int ctx = 4096;             // KV positions per instance
  int threads = 0;            // 0 = the runtime's default
  int max_queue = 64;         // waiting requests per deployment and request class
  int batch_max_instances = 0;  // instances batch requests may start (0: never a cold start for them)
  double request_timeout_s = 300;
  double start_timeout_s = 0;            // 0 = derived from the model size
  std::optional<uint64_t> memory_bytes;  // nullopt = estimated by the daemon (GGUF size + KV cache)
  std::string device;                    // always set after parsing (default: the first device)
  int priority = 0;                      // higher first when devices are contended
  double ttft_objective_s = 0;           // 0 = none
  AutoscaleConfig autoscale;
  std::map<std::string, std::string> env;  // extra environment for the instance process
  // Embedding models: trained Matryoshka-style, so requests may ask for fewer `dimensions`
  // (no GGUF metadata says so; the builtin worker gets --matryoshka).
  bool matryoshka = false;
  // Vision models: image tokens one image may become (0 = only the context limits it);
  // `detail: low` in a request caps it at 256. The builtin worker gets --max-image-tokens.
  int max_image_tokens = 0;
  // Speculative decoding (builtin runtime): "" = off, "prompt-lookup" (drafts copied from the
  // prompt and the output so far) or "draft-model" (draft_model: a smaller GGUF with the same
  // vocabulary, resolved like `model`); up to draft_tokens per sequence and step.
  std::string speculative;
  std::string draft_model;
  int draft_tokens = 4;
  int source_line = 0;                     // 1-based line of this entry, for later messages

  static constexpr double kKeepAliveForever = -1;
  static constexpr double kNeverSleep = -1;
  static constexpr double kDefaultSleepAfterS = 30;
};

// Request classes: interactive requests are always served first; batch requests use free
// slots of running instances and start instances only up to a deployment's
// batch_max_instances.
enum class RequestClass { kInteractive, kBatch };
std::string_view request_class_name(RequestClass c);
std::optional<RequestClass> parse_request_class(std::string_view name);  // "interactive" | "batch"

// One API key and what it may use. Limits of 0 mean unlimited.
struct ApiKeyConfig {
  std::string key;
  std::string name;  // shown in logs, metrics and refusals instead of the secret; default "key-<n>"
  RequestClass default_class = RequestClass::kInteractive;  // when a request sends no X-Priority
  double requests_per_minute = 0;
  double tokens_per_minute = 0;  // prompt + completion tokens
  int max_concurrent = 0;        // requests in flight at once
  // May call the admin API (/admin/*: costs, deployments, pre-warm, scale, reload) and the
  // console's admin actions. Whenever keys are configured, /admin/* takes only such keys.
  bool admin = false;
  bool operator==(const ApiKeyConfig&) const = default;
};

struct GatewayConfig {
  std::string listen = "127.0.0.1:8080";
  std::vector<ApiKeyConfig> api_keys;  // the file's keys, then ZEROSERVE_API_KEYS's, deduplicated
  int batch_concurrency = 8;           // batch-job items in flight at once, over all jobs
  bool allow_private_image_urls = false;
  uint64_t max_image_bytes = 20ull << 20;
  // The one request body limit: enforced by the gateway before forwarding and passed to builtin
  // workers, so a worker never refuses what the gateway accepted. At least
  // min_body_bytes_for(max_image_bytes); when not configured, the larger of 64 MiB and that.
  uint64_t max_body_bytes = 64ull << 20;
  double image_fetch_timeout_s = 10;
  std::string state_dir;  // holds the SQLite ledger; default $XDG_STATE_HOME/zeroserve or ~/.local/state/zeroserve
  std::string cache_dir;  // default $XDG_CACHE_HOME/zeroserve or ~/.cache/zeroserve
};

// The smallest body limit that admits one image of `max_image_bytes` sent as a base64 data: URL
// (4/3 of its size) plus 1 MiB for the rest of the request.
inline uint64_t min_body_bytes_for(uint64_t max_image_bytes) {
  return (max_image_bytes + 2) / 3 * 4 + (1ull << 20);
}

struct Config {
  GatewayConfig gateway;
  ClusterConfig cluster;
  std::vector<DeviceConfig> devices;
  std::vector<DeploymentConfig> deployments;
  std::string source;  // the file it came from
  // Things worth a log line at start that are not errors (e.g. the default device is free).
  std::vector<std::string> warnings;

  const DeploymentConfig* find(std::string_view name) const;
  const DeviceConfig* device(std::string_view name) const;
};

// What parsing reads from the machine, so that tests can pin it down.
struct ConfigEnvironment {
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  uint64_t physical_memory_bytes = 0;

  static ConfigEnvironment system();  // the process environment and sysconf
};

// Reads, parses and validates `path`, including that model files exist.
core::Result<Config> load_config(const std::string& path);

// Parses and validates YAML text without touching model files. `source_name` prefixes every
// message; relative paths resolve against `base_dir`.
core::Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name,
                                  const std::string& base_dir);
core::Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name,
                                  const std::string& base_dir, const ConfigEnvironment& env);

// Checks that every model and mmproj file exists (a command runtime's model may also be a
// directory, as vLLM's are).
core::Status validate_files(const Config& config);

// Names of the autoscaling policies the platform implements.
const std::vector<std::string>& known_autoscale_policies();

}  // namespace zs::platform
