#include "platform/config/config.h"
#include "platform/config/units.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace zs::platform {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kGiB = 1ull << 30;

// A machine with 16 GiB and only the variables a test names.
ConfigEnvironment test_env(std::map<std::string, std::string> vars = {{"HOME", "/home/u"}}) {
  ConfigEnvironment env;
  env.getenv = [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  env.physical_memory_bytes = 16 * kGiB;
  return env;
}

core::Result<Config> parse(const std::string& yaml, const ConfigEnvironment& env = test_env()) {
  return parse_config(yaml, "zeroserve.yaml", "/etc/zs", env);
}

Config parse_ok(const std::string& yaml, const ConfigEnvironment& env = test_env()) {
  auto r = parse(yaml, env);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r.value() : Config{};
}

std::vector<std::string> key_strings(const Config& c) {
  std::vector<std::string> out;
  for (const auto& k : c.gateway.api_keys) out.push_back(k.key);
  return out;
}

std::string error_of(const std::string& yaml) {
  auto r = parse(yaml);
  EXPECT_FALSE(r.is_ok()) << "expected an error for:\n" << yaml;
  return r.is_ok() ? "" : r.status().message();
}

constexpr const char* kMinimal = R"(deployments:
  - name: smol
    model: smol.gguf
)";

// ---- every field ----------------------------------------------------------------------

TEST(ParseConfig, ReadsEveryField) {
  const Config c = parse_ok(R"(gateway:
  listen: 0.0.0.0:9000
  api_keys: [k1, {key: k2, admin: true}]
  allow_private_image_urls: true
  max_image_bytes: 8MiB
  image_fetch_timeout: 2500ms
  state_dir: state
  cache_dir: /var/cache/zs
devices:
  - name: gpu0
    kind: cuda
    memory: 80GiB
    price_per_second: 0.0011
  - name: cpu0
    kind: cpu
    memory: 64GB
    price_per_hour: 0.36
deployments:
  - name: llava-1.6_q4
    model: models/llava.gguf
    mmproj: models/mmproj.gguf
    runtime: builtin
    min_instances: 1
    max_instances: 3
    keep_alive: 10m
    slots: 8
    ctx: 8192
    threads: 6
    max_queue: 32
    request_timeout: 2m
    start_timeout: 45s
    memory: 6.5GiB
    device: gpu0
    priority: 5
    ttft_objective: 500ms
    autoscale:
      policy: fixed
      target_concurrency: 2.5
      stable_window: 2m
      panic_window: 10s
    env:
      OMP_NUM_THREADS: 6
      EMPTY:
  - name: qwen
    runtime: command
    command: llama-server --host {host} --port {port} -m {model} --mmproj {mmproj}
    model: /models/qwen.gguf
    mmproj: /models/qwen-mmproj.gguf
    device: cpu0
    keep_alive: forever
)");
  EXPECT_EQ(c.source, "zeroserve.yaml");
  EXPECT_EQ(c.gateway.listen, "0.0.0.0:9000");
  EXPECT_EQ(key_strings(c), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(c.gateway.allow_private_image_urls);
  EXPECT_EQ(c.gateway.max_image_bytes, 8ull << 20);
  EXPECT_DOUBLE_EQ(c.gateway.image_fetch_timeout_s, 2.5);
  EXPECT_EQ(c.gateway.state_dir, "/etc/zs/state");
  EXPECT_EQ(c.gateway.cache_dir, "/var/cache/zs");

  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_EQ(c.devices[0].name, "gpu0");
  EXPECT_EQ(c.devices[0].kind, "cuda");
  EXPECT_EQ(c.devices[0].memory_bytes, 80 * kGiB);
  EXPECT_DOUBLE_EQ(c.devices[0].price_per_second, 0.0011);
  EXPECT_EQ(c.devices[1].name, "cpu0");
  EXPECT_EQ(c.devices[1].kind, "cpu");
  EXPECT_EQ(c.devices[1].memory_bytes, 64000000000u);
  EXPECT_DOUBLE_EQ(c.devices[1].price_per_second, 0.0001);
  EXPECT_TRUE(c.warnings.empty());

  ASSERT_EQ(c.deployments.size(), 2u);
  const DeploymentConfig& d = c.deployments[0];
  EXPECT_EQ(d.name, "llava-1.6_q4");
  EXPECT_EQ(d.model, "/etc/zs/models/llava.gguf");
  EXPECT_EQ(d.mmproj, "/etc/zs/models/mmproj.gguf");
  EXPECT_EQ(d.runtime, RuntimeKind::kBuiltin);
  EXPECT_EQ(d.command, "");
  EXPECT_EQ(d.min_instances, 1);
  EXPECT_EQ(d.max_instances, 3);
  EXPECT_DOUBLE_EQ(d.keep_alive_s, 600);
  EXPECT_EQ(d.slots, 8);
  EXPECT_EQ(d.ctx, 8192);
  EXPECT_EQ(d.threads, 6);
  EXPECT_EQ(d.max_queue, 32);
  EXPECT_DOUBLE_EQ(d.request_timeout_s, 120);
  EXPECT_DOUBLE_EQ(d.start_timeout_s, 45);
  ASSERT_TRUE(d.memory_bytes.has_value());
  EXPECT_EQ(*d.memory_bytes, 13 * kGiB / 2);
  EXPECT_EQ(d.device, "gpu0");
  EXPECT_EQ(d.priority, 5);
  EXPECT_DOUBLE_EQ(d.ttft_objective_s, 0.5);
  EXPECT_EQ(d.autoscale.policy, "fixed");
  EXPECT_DOUBLE_EQ(d.autoscale.options.target_concurrency, 2.5);
  EXPECT_DOUBLE_EQ(d.autoscale.options.stable_window_s, 120);
  EXPECT_DOUBLE_EQ(d.autoscale.options.panic_window_s, 10);
  EXPECT_EQ(d.env, (std::map<std::string, std::string>{{"OMP_NUM_THREADS", "6"}, {"EMPTY", ""}}));
  EXPECT_EQ(d.source_line, 19);

  const DeploymentConfig& q = c.deployments[1];
  EXPECT_EQ(q.runtime, RuntimeKind::kCommand);
  EXPECT_EQ(q.command, "llama-server --host {host} --port {port} -m {model} --mmproj {mmproj}");
  EXPECT_EQ(q.model, "/models/qwen.gguf");
  EXPECT_EQ(q.mmproj, "/models/qwen-mmproj.gguf");
  EXPECT_EQ(q.device, "cpu0");
  EXPECT_DOUBLE_EQ(q.keep_alive_s, DeploymentConfig::kKeepAliveForever);
  EXPECT_EQ(q.source_line, 44);

  EXPECT_EQ(c.find("qwen"), &c.deployments[1]);
  EXPECT_EQ(c.find("nope"), nullptr);
  EXPECT_EQ(c.device("cpu0"), &c.devices[1]);
  EXPECT_EQ(c.device("gpu9"), nullptr);
}

// ---- defaults -------------------------------------------------------------------------

TEST(ParseConfig, FillsEveryDefault) {
  const Config c = parse_ok(kMinimal);
  EXPECT_EQ(c.gateway.listen, "127.0.0.1:8080");
  EXPECT_TRUE(c.gateway.api_keys.empty());
  EXPECT_FALSE(c.gateway.allow_private_image_urls);
  EXPECT_EQ(c.gateway.max_image_bytes, 20ull << 20);
  EXPECT_DOUBLE_EQ(c.gateway.image_fetch_timeout_s, 10);
  EXPECT_EQ(c.gateway.state_dir, "/home/u/.local/state/zeroserve");
  EXPECT_EQ(c.gateway.cache_dir, "/home/u/.cache/zeroserve");

  ASSERT_EQ(c.devices.size(), 1u);
  EXPECT_EQ(c.devices[0].name, "cpu0");
  EXPECT_EQ(c.devices[0].kind, "cpu");
  EXPECT_EQ(c.devices[0].memory_bytes, static_cast<uint64_t>(16 * kGiB * 0.8));
  EXPECT_DOUBLE_EQ(c.devices[0].price_per_second, 0);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("no devices declared: using cpu0 (cpu, 12.8 GiB"), std::string::npos)
      << c.warnings[0];
  EXPECT_NE(c.warnings[0].find("price_per_second"), std::string::npos);

  ASSERT_EQ(c.deployments.size(), 1u);
  const DeploymentConfig& d = c.deployments[0];
  const DeploymentConfig defaults;
  EXPECT_EQ(d.name, "smol");
  EXPECT_EQ(d.model, "/etc/zs/smol.gguf");
  EXPECT_EQ(d.mmproj, "");
  EXPECT_EQ(d.runtime, RuntimeKind::kBuiltin);
  EXPECT_EQ(d.min_instances, 0);
  EXPECT_EQ(d.max_instances, 1);
  EXPECT_DOUBLE_EQ(d.keep_alive_s, 300);
  EXPECT_EQ(d.slots, 4);
  EXPECT_EQ(d.ctx, 4096);
  EXPECT_EQ(d.threads, 0);
  EXPECT_EQ(d.max_queue, 64);
  EXPECT_DOUBLE_EQ(d.request_timeout_s, 300);
  EXPECT_DOUBLE_EQ(d.start_timeout_s, 0);
  EXPECT_FALSE(d.memory_bytes.has_value());
  EXPECT_EQ(d.device, "cpu0");
  EXPECT_EQ(d.priority, 0);
  EXPECT_DOUBLE_EQ(d.ttft_objective_s, 0);
  EXPECT_EQ(d.autoscale.policy, "hybrid");
  EXPECT_DOUBLE_EQ(d.autoscale.options.target_concurrency, 0);
  EXPECT_DOUBLE_EQ(d.autoscale.options.stable_window_s, 60);
  EXPECT_DOUBLE_EQ(d.autoscale.options.panic_window_s, 6);
  EXPECT_TRUE(d.env.empty());
  EXPECT_EQ(d.source_line, 2);
  EXPECT_EQ(defaults.keep_alive_s, d.keep_alive_s);
}

TEST(ParseConfig, DeploymentDeviceDefaultsToTheFirstDevice) {
  const Config c = parse_ok(R"(devices:
  - {name: gpu0, kind: cuda, memory: 24GiB}
  - {name: cpu1, kind: cpu}
deployments:
  - {name: a, model: a.gguf}
)");
  EXPECT_EQ(c.deployments[0].device, "gpu0");
  // A declared cpu device without memory gets the same 80% of physical memory.
  EXPECT_EQ(c.devices[1].memory_bytes, static_cast<uint64_t>(16 * kGiB * 0.8));
  EXPECT_DOUBLE_EQ(c.devices[0].price_per_second, 0);
}

TEST(ParseConfig, StateAndCacheDirsFollowXdg) {
  Config c = parse_ok(kMinimal, test_env({{"HOME", "/home/u"},
                                          {"XDG_STATE_HOME", "/xdg/state"},
                                          {"XDG_CACHE_HOME", "/xdg/cache"}}));
  EXPECT_EQ(c.gateway.state_dir, "/xdg/state/zeroserve");
  EXPECT_EQ(c.gateway.cache_dir, "/xdg/cache/zeroserve");
  // The XDG spec says relative values are to be ignored.
  c = parse_ok(kMinimal, test_env({{"HOME", "/home/u"}, {"XDG_STATE_HOME", "rel"}, {"XDG_CACHE_HOME", ""}}));
  EXPECT_EQ(c.gateway.state_dir, "/home/u/.local/state/zeroserve");
  EXPECT_EQ(c.gateway.cache_dir, "/home/u/.cache/zeroserve");
  // Without HOME they live next to the configuration file.
  c = parse_ok(kMinimal, test_env({}));
  EXPECT_EQ(c.gateway.state_dir, "/etc/zs/.zeroserve/state");
  EXPECT_EQ(c.gateway.cache_dir, "/etc/zs/.zeroserve/cache");
}

TEST(ParseConfig, MergesApiKeysFromTheEnvironment) {
  const std::string yaml = R"(gateway:
  api_keys: [sk-a, sk-b]
deployments:
  - {name: a, model: a.gguf}
)";
  Config c = parse_ok(yaml, test_env({{"ZEROSERVE_API_KEYS", " sk-b, sk-c ,,sk-d"}}));
  EXPECT_EQ(key_strings(c), (std::vector<std::string>{"sk-a", "sk-b", "sk-c", "sk-d"}));
  c = parse_ok(kMinimal, test_env({{"ZEROSERVE_API_KEYS", "only"}}));
  EXPECT_EQ(key_strings(c), (std::vector<std::string>{"only"}));
  c = parse_ok(yaml, test_env({{"ZEROSERVE_API_KEYS", ""}}));
  EXPECT_EQ(key_strings(c), (std::vector<std::string>{"sk-a", "sk-b"}));
}

TEST(ParseConfig, EveryPolicyKnobIsSettable) {
  const Config c = parse_ok(R"(deployments:
  - name: a
    model: a.gguf
    autoscale:
      policy: histogram
      evaluation_interval: 500ms
      prewarm_lead: 1m
      scale_down_delay: 30s
      rules_queue_threshold: 10
      histogram_bin: 30s
      histogram_range: 2h
      histogram_tail_percentile: 95
      hybrid_cold_start_cost: 10m
      hybrid_scale_in_delay: 30s
      hybrid_range: 8h
      predictive_min_weeks: 3
)", test_env({}));
  const PolicyOptions& o = c.deployments[0].autoscale.options;
  EXPECT_EQ(c.deployments[0].autoscale.policy, "histogram");
  EXPECT_DOUBLE_EQ(o.evaluation_interval_s, 0.5);
  EXPECT_DOUBLE_EQ(o.prewarm_lead_s, 60);
  EXPECT_DOUBLE_EQ(o.scale_down_delay_s, 30);
  EXPECT_DOUBLE_EQ(o.rules_queue_threshold, 10);
  EXPECT_DOUBLE_EQ(o.histogram_bin_s, 30);
  EXPECT_DOUBLE_EQ(o.histogram_range_s, 7200);
  EXPECT_DOUBLE_EQ(o.histogram_tail_percentile, 95);
  EXPECT_DOUBLE_EQ(o.hybrid_cold_start_cost_s, 600);
  EXPECT_DOUBLE_EQ(o.hybrid_scale_in_delay_s, 30);
  EXPECT_DOUBLE_EQ(o.hybrid_range_s, 8 * 3600);
  EXPECT_DOUBLE_EQ(o.predictive_min_weeks, 3);
  EXPECT_DOUBLE_EQ(o.stable_window_s, PolicyOptions{}.stable_window_s);  // untouched knobs keep their defaults
}

TEST(ParseConfig, ApiKeysWithNamesClassesAndLimits) {
  const std::string yaml = R"(gateway:
  api_keys:
    - sk-plain
    - key: sk-team
      name: team-a
      priority: batch
      requests_per_minute: 60
      tokens_per_minute: 10000
      max_concurrent: 4
  batch_concurrency: 3
deployments:
  - {name: a, model: a.gguf, max_instances: 3, batch_max_instances: 2}
)";
  Config c = parse_ok(yaml, test_env({{"ZEROSERVE_API_KEYS", "sk-env"}}));
  ASSERT_EQ(c.gateway.api_keys.size(), 3u);
  EXPECT_EQ(c.gateway.api_keys[0].name, "key-1");  // never the secret itself
  EXPECT_EQ(c.gateway.api_keys[0].default_class, RequestClass::kInteractive);
  const ApiKeyConfig& team = c.gateway.api_keys[1];
  EXPECT_EQ(team.key, "sk-team");
  EXPECT_EQ(team.name, "team-a");
  EXPECT_EQ(team.default_class, RequestClass::kBatch);
  EXPECT_DOUBLE_EQ(team.requests_per_minute, 60);
  EXPECT_DOUBLE_EQ(team.tokens_per_minute, 10000);
  EXPECT_EQ(team.max_concurrent, 4);
  EXPECT_EQ(c.gateway.api_keys[2].name, "key-3");
  EXPECT_EQ(c.gateway.batch_concurrency, 3);
  EXPECT_EQ(c.deployments[0].batch_max_instances, 2);
  EXPECT_EQ(parse_ok(kMinimal, test_env({})).deployments[0].batch_max_instances, 0);
}

TEST(ParseConfig, AnApiKeyIsAnAdminOnlyWhenItsEntrySaysAdminTrue) {
  const std::string yaml = R"(gateway:
  api_keys:
    - sk-plain
    - {key: sk-ops, name: ops, admin: true}
    - {key: sk-team, name: team, admin: false}
deployments:
  - {name: a, model: a.gguf}
)";
  Config c = parse_ok(yaml, test_env({{"ZEROSERVE_API_KEYS", "sk-env"}}));
  ASSERT_EQ(c.gateway.api_keys.size(), 4u);
  EXPECT_FALSE(c.gateway.api_keys[0].admin);
  EXPECT_TRUE(c.gateway.api_keys[1].admin);
  EXPECT_FALSE(c.gateway.api_keys[2].admin);
  EXPECT_FALSE(c.gateway.api_keys[3].admin);  // keys from the environment are never admins
  for (const auto& w : c.warnings) EXPECT_EQ(w.find("admin"), std::string::npos) << w;
}

TEST(ParseConfig, KeysWithoutAnAdminAmongThemGiveAWarningThatTheAdminApiIsClosed) {
  Config c = parse_ok("gateway:\n  api_keys: [sk-a]\ndeployments:\n  - {name: a, model: a.gguf}\n", test_env({}));
  auto admin_warnings = [](const Config& config) {
    return std::count_if(config.warnings.begin(), config.warnings.end(),
                         [](const std::string& w) { return w.find("no key has admin: true") != std::string::npos; });
  };
  EXPECT_EQ(admin_warnings(c), 1);
  EXPECT_EQ(admin_warnings(parse_ok(kMinimal, test_env({}))), 0);  // no keys: the API is open, nothing to warn about
}

TEST(ParseConfig, MatryoshkaIsAnOptionalBooleanOffByDefault) {
  EXPECT_FALSE(parse_ok(kMinimal, test_env({})).deployments[0].matryoshka);
  EXPECT_TRUE(parse_ok("deployments:\n  - {name: e, model: e.gguf, matryoshka: true}\n", test_env({}))
                  .deployments[0]
                  .matryoshka);
  EXPECT_NE(error_of("deployments:\n  - {name: e, model: e.gguf, matryoshka: maybe}\n").find("deployments[0].matryoshka"),
            std::string::npos);
}

TEST(ParseConfig, MaxImageTokensIsAnOptionalNonNegativeIntegerZeroByDefault) {
  EXPECT_EQ(parse_ok(kMinimal, test_env({})).deployments[0].max_image_tokens, 0);
  EXPECT_EQ(parse_ok("deployments:\n  - {name: v, model: v.gguf, max_image_tokens: 1024}\n", test_env({}))
                .deployments[0]
                .max_image_tokens,
            1024);
  EXPECT_NE(error_of("deployments:\n  - {name: v, model: v.gguf, max_image_tokens: -1}\n")
                .find("deployments[0].max_image_tokens"),
            std::string::npos);
}

TEST(ParseConfig, SpeculativeIsOffByDefaultAndTakesAMethodOrAMap) {
  const auto d = parse_ok(kMinimal, test_env({})).deployments[0];
  EXPECT_EQ(d.speculative, "");
  EXPECT_EQ(d.draft_tokens, 4);
  EXPECT_EQ(parse_ok("deployments:\n  - {name: s, model: s.gguf, speculative: prompt-lookup}\n", test_env({}))
                .deployments[0]
                .speculative,
            "prompt-lookup");
  const auto m = parse_ok("deployments:\n  - {name: s, model: s.gguf, speculative: {draft_tokens: 6}}\n", test_env({}))
                     .deployments[0];
  EXPECT_EQ(m.speculative, "prompt-lookup");
  EXPECT_EQ(m.draft_tokens, 6);
  EXPECT_EQ(parse_ok("deployments:\n  - {name: s, model: s.gguf, speculative: off}\n", test_env({})).deployments[0].speculative,
            "");
  EXPECT_EQ(error_of("deployments:\n  - {name: s, model: s.gguf, speculative: prompt-lokup}\n"),
            "zeroserve.yaml:2: deployments[0].speculative: unknown method \"prompt-lokup\"; known: prompt-lookup, "
            "draft-model, or off (did you mean prompt-lookup?)");
  const auto dm = parse_ok("deployments:\n  - {name: s, model: s.gguf, speculative: {draft_model: small.gguf}}\n",
                           test_env({}))
                      .deployments[0];
  EXPECT_EQ(dm.speculative, "draft-model");
  EXPECT_EQ(std::filesystem::path(dm.draft_model).filename(), "small.gguf");
  EXPECT_NE(error_of("deployments:\n  - {name: s, model: s.gguf, speculative: {method: draft-model}}\n")
                .find("needs draft_model"),
            std::string::npos);
  EXPECT_NE(error_of("deployments:\n  - {name: s, model: s.gguf, speculative: draft-model}\n").find("needs a map"),
            std::string::npos);
  EXPECT_NE(error_of("deployments:\n  - {name: s, model: s.gguf, speculative: {method: prompt-lookup, draft_model: x.gguf}}\n")
                .find("deployments[0].speculative.draft_model: only used with method: draft-model"),
            std::string::npos);
  EXPECT_NE(error_of("deployments:\n  - {name: s, model: s.gguf, speculative: {draft_tokens: 40}}\n")
                .find("deployments[0].speculative.draft_tokens: must be between 1 and 16, got 40"),
            std::string::npos);
  EXPECT_NE(error_of("deployments:\n  - {name: s, command: \"srv --port {port}\", speculative: prompt-lookup}\n")
                .find("only for the builtin runtime"),
            std::string::npos);
}

TEST(ConfigErrors, ApiKeyMapsAndBatchLimits) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {name: x}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].key: required");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, priority: urgent}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].priority: must be interactive or batch, got \"urgent\"");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, requests_per_minute: -1}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].requests_per_minute: must be >= 0");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, name: a}\n    - {key: j, name: a}\n" + deployments),
            "zeroserve.yaml:4: gateway.api_keys[1].name: \"a\" names another key too");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, quota: 5}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].quota: unknown key; valid keys here: key, name, priority, "
            "requests_per_minute, tokens_per_minute, max_concurrent, admin");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, admin: yes please}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].admin: must be true or false, got \"yes please\"");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - {key: k, admn: true}\n" + deployments),
            "zeroserve.yaml:3: gateway.api_keys[0].admn: unknown key (did you mean admin?); valid keys here: key, name, "
            "priority, requests_per_minute, tokens_per_minute, max_concurrent, admin");
  EXPECT_EQ(error_of("deployments:\n  - {name: a, model: a.gguf, max_instances: 2, batch_max_instances: 3}\n"),
            "zeroserve.yaml:2: deployments[0].batch_max_instances: must be <= max_instances (2)");
  EXPECT_EQ(error_of("gateway:\n  batch_concurrency: 0\n" + deployments),
            "zeroserve.yaml:2: gateway.batch_concurrency: must be >= 1");
}

TEST(ParseConfig, ResolvesModelPathsAgainstTheConfigFolder) {
  const Config c = parse_ok(R"(deployments:
  - {name: a, model: a.gguf, mmproj: ./proj/../p.gguf}
  - {name: b, model: ../models/b.gguf}
  - {name: c, model: /abs/c.gguf}
  - {name: d, model: ~/models/d.gguf}
)");
  EXPECT_EQ(c.deployments[0].model, "/etc/zs/a.gguf");
  EXPECT_EQ(c.deployments[0].mmproj, "/etc/zs/p.gguf");
  EXPECT_EQ(c.deployments[1].model, "/etc/models/b.gguf");
  EXPECT_EQ(c.deployments[2].model, "/abs/c.gguf");
  EXPECT_EQ(c.deployments[3].model, "/home/u/models/d.gguf");
  // With no base folder, relative paths stay relative (to the working directory).
  auto r = parse_config(kMinimal, "x.yaml", "", test_env());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->deployments[0].model, "smol.gguf");
}

TEST(ParseConfig, KeepAliveForms) {
  auto keep_alive = [](const std::string& v) {
    return parse_ok("deployments:\n  - {name: a, model: a.gguf, keep_alive: " + v + "}\n").deployments[0].keep_alive_s;
  };
  EXPECT_DOUBLE_EQ(keep_alive("-1"), -1);
  EXPECT_DOUBLE_EQ(keep_alive("forever"), -1);
  EXPECT_DOUBLE_EQ(keep_alive("Forever"), -1);
  EXPECT_DOUBLE_EQ(keep_alive("0"), 0);
  EXPECT_DOUBLE_EQ(keep_alive("90"), 90);
  EXPECT_DOUBLE_EQ(keep_alive("1h"), 3600);
  EXPECT_DOUBLE_EQ(keep_alive("250ms"), 0.25);
}

TEST(ParseConfig, SleepAfterFormsDefaultsAndRuntimes) {
  auto sleep_after = [](const std::string& v) {
    return parse_ok("deployments:\n  - {name: a, model: a.gguf, sleep_after: " + v + "}\n").deployments[0].sleep_after_s;
  };
  EXPECT_DOUBLE_EQ(sleep_after("never"), DeploymentConfig::kNeverSleep);
  EXPECT_DOUBLE_EQ(sleep_after("-1"), DeploymentConfig::kNeverSleep);
  EXPECT_DOUBLE_EQ(sleep_after("0"), 0);
  EXPECT_DOUBLE_EQ(sleep_after("45s"), 45);
  EXPECT_DOUBLE_EQ(parse_ok(kMinimal).deployments[0].sleep_after_s, DeploymentConfig::kDefaultSleepAfterS);
  // Another runtime's server cannot be put to sleep: never by default, and refused when asked.
  EXPECT_DOUBLE_EQ(parse_ok("deployments:\n  - {name: a, command: 'srv --port {port}'}\n").deployments[0].sleep_after_s,
                   DeploymentConfig::kNeverSleep);
  EXPECT_DOUBLE_EQ(
      parse_ok("deployments:\n  - {name: a, command: 'srv --port {port}', sleep_after: never}\n").deployments[0].sleep_after_s,
      DeploymentConfig::kNeverSleep);
  EXPECT_EQ(error_of("deployments:\n  - {name: a, command: 'srv --port {port}', sleep_after: 10s}\n"),
            "zeroserve.yaml:2: deployments[0].sleep_after: only local builtin workers can sleep (runtime: builtin); "
            "this runtime's instances cannot be put to sleep");
  EXPECT_EQ(error_of("deployments:\n  - {name: a, model: a.gguf, sleep_after: soon}\n"),
            "zeroserve.yaml:2: deployments[0].sleep_after: must be " + std::string(kDurationUnitsHelp) +
                ", or -1 / \"never\" to never sleep, got \"soon\"");
}

TEST(ParseConfig, SleepPriceDefaultsToAShareOfThePriceOrIsGiven) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  auto device = [&](const std::string& fields) {
    return parse_ok("devices:\n  - {name: c, kind: cpu, memory: 1GiB, " + fields + "}\n" + deployments).devices[0];
  };
  EXPECT_DOUBLE_EQ(device("price_per_second: 0.01").sleep_price_per_second, 0.01 * kDefaultSleepPriceShare);
  EXPECT_DOUBLE_EQ(device("price_per_hour: 36").sleep_price_per_second, 0.01 * kDefaultSleepPriceShare);
  EXPECT_DOUBLE_EQ(device("price_per_second: 0.01, sleep_price_per_second: 0.002").sleep_price_per_second, 0.002);
  EXPECT_DOUBLE_EQ(device("price_per_second: 0.01, sleep_price_per_hour: 3.6").sleep_price_per_second, 0.001);
  EXPECT_EQ(error_of("devices:\n  - {name: c, kind: cpu, sleep_price_per_second: 1, sleep_price_per_hour: 1}\n" +
                     deployments),
            "zeroserve.yaml:2: devices[0].sleep_price_per_hour: set either sleep_price_per_second or "
            "sleep_price_per_hour, not both");
  EXPECT_EQ(error_of("devices:\n  - {name: c, kind: cpu, sleep_price_per_second: -1}\n" + deployments),
            "zeroserve.yaml:2: devices[0].sleep_price_per_second: must be >= 0");
}

TEST(ParseConfig, CommandImpliesTheCommandRuntime) {
  const Config c = parse_ok(R"(deployments:
  - name: ext
    command: vllm serve /m --port {port}
)");
  EXPECT_EQ(c.deployments[0].runtime, RuntimeKind::kCommand);
  EXPECT_EQ(c.deployments[0].model, "");
  // JSON in arguments is not mistaken for placeholders.
  parse_ok(R"(deployments:
  - name: ext
    command: 'srv --port {port} --extra {"a": 1} {}'
)");
}

TEST(ParseConfig, BooleansAndNulls) {
  const Config c = parse_ok(R"(gateway:
  allow_private_image_urls: yes
  state_dir:
deployments:
  - name: a
    model: a.gguf
    mmproj:
    memory: ~
)");
  EXPECT_TRUE(c.gateway.allow_private_image_urls);
  EXPECT_EQ(c.gateway.state_dir, "/home/u/.local/state/zeroserve");
  EXPECT_EQ(c.deployments[0].mmproj, "");
  EXPECT_FALSE(c.deployments[0].memory_bytes.has_value());
}

TEST(ParseConfig, MergeKeysShareSettings) {
  const Config c = parse_ok(R"(deployments:
  - &base
    name: a
    model: a.gguf
    slots: 2
    keep_alive: 1m
  - <<: *base
    name: b
    slots: 8
  - name: c
    <<: [{ctx: 1024}, {ctx: 2048, threads: 3}]
    model: c.gguf
)");
  ASSERT_EQ(c.deployments.size(), 3u);
  EXPECT_EQ(c.deployments[1].name, "b");
  EXPECT_EQ(c.deployments[1].model, "/etc/zs/a.gguf");
  EXPECT_EQ(c.deployments[1].slots, 8);  // explicit keys win, even after the merge
  EXPECT_DOUBLE_EQ(c.deployments[1].keep_alive_s, 60);
  EXPECT_EQ(c.deployments[2].ctx, 1024);  // the first merged map wins
  EXPECT_EQ(c.deployments[2].threads, 3);
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    <<: 3\n"),
            "zeroserve.yaml:4: deployments[0].<<: a merge key takes a map or a list of maps (e.g. <<: *defaults), "
            "got \"3\"");
}

TEST(ParseConfig, WarnsWhenTargetConcurrencyExceedsSlots) {
  const Config c = parse_ok(R"(devices:
  - {name: cpu0, kind: cpu, memory: 8GiB}
deployments:
  - name: a
    model: a.gguf
    slots: 2
    autoscale: {target_concurrency: 3}
)");
  EXPECT_EQ(c.warnings, (std::vector<std::string>{
                            "zeroserve.yaml:4: deployments[0]: autoscale.target_concurrency (3) exceeds slots (2): "
                            "requests will wait inside busy instances before more instances start"}));
}

// ---- validation errors: exact location and message ---------------------------------------

TEST(ConfigErrors, MaxBelowMin) {
  EXPECT_EQ(error_of(R"(gateway:
  listen: 127.0.0.1:8080
devices:
  - name: cpu0
    kind: cpu
    memory: 16GiB
deployments:
  - name: a
    model: a.gguf
  - name: b
    min_instances: 2
    max_instances: 1
    model: b.gguf
)"),
            "zeroserve.yaml:12: deployments[1].max_instances: must be >= min_instances (2)");
  EXPECT_EQ(error_of(R"(deployments:
  - name: b
    model: b.gguf
    min_instances: 3
)"),
            "zeroserve.yaml:4: deployments[0].min_instances: must be <= max_instances (1, the default; raise "
            "max_instances too)");
  EXPECT_EQ(error_of("deployments:\n  - {name: b, model: b.gguf, max_instances: 0}\n"),
            "zeroserve.yaml:2: deployments[0].max_instances: must be >= 1");
  EXPECT_EQ(error_of("deployments:\n  - name: b\n    model: b.gguf\n    min_instances: -1\n"),
            "zeroserve.yaml:4: deployments[0].min_instances: must be >= 0");
}

TEST(ConfigErrors, NumericLimits) {
  struct Case {
    const char* field;
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"slots", "0", "must be >= 1"},
      {"ctx", "15", "must be >= 16"},
      {"threads", "-2", "must be >= 0"},
      {"max_queue", "-1", "must be >= 0"},
      {"request_timeout", "0", "must be > 0"},
      {"slots", "four", "must be a whole number, got \"four\""},
      {"slots", "2.5", "must be a whole number, got \"2.5\""},
      {"slots", "[1]", "must be a whole number, got a list"},
      {"priority", "high", "must be a whole number, got \"high\""},
      {"memory", "8 gigs",
       "must be a number of bytes or a size such as \"512MiB\", \"8GiB\", \"1.5GB\", got \"8 gigs\""},
      {"memory", "0", "must be > 0 (leave it out to have it estimated)"},
      {"start_timeout", "soon",
       "must be a number of seconds or a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", got \"soon\""},
      {"keep_alive", "-5",
       "must be a number of seconds or a duration such as \"250ms\", \"30s\", \"5m\", \"1h\", or -1 / \"forever\" "
       "to never scale in, got \"-5\""},
      {"device", "{a: 1}", "must be text, got a map"},
  };
  for (const Case& c : cases) {
    const std::string yaml = std::string("deployments:\n  - name: a\n    model: a.gguf\n    ") + c.field + ": " +
                             c.value + "\n";
    const std::string field = c.field;
    EXPECT_EQ(error_of(yaml), "zeroserve.yaml:4: deployments[0]." + field + ": " + c.message) << yaml;
  }
}

TEST(ConfigErrors, UnknownKeysSuggestTheIntendedOne) {
  EXPECT_EQ(error_of(R"(deployments:
  - name: a
    model: a.gguf
    keepalive: 5m
)"),
            "zeroserve.yaml:4: deployments[0].keepalive: unknown key (did you mean keep_alive?); valid keys here: "
            "name, model, mmproj, runtime, command, min_instances, max_instances, keep_alive, sleep_after, slots, ctx, "
            "threads, "
            "max_queue, request_timeout, start_timeout, memory, device, priority, ttft_objective, autoscale, env, "
            "batch_max_instances, matryoshka, max_image_tokens, speculative");
  EXPECT_EQ(error_of("deployment:\n  - {name: a, model: a.gguf}\n"),
            "zeroserve.yaml:1: deployment: unknown key (did you mean deployments?); valid keys here: gateway, devices, "
            "deployments, cluster");
  EXPECT_EQ(error_of("gateway:\n  listen_addr: x\ndeployments:\n  - {name: a, model: a.gguf}\n"),
            "zeroserve.yaml:2: gateway.listen_addr: unknown key (did you mean listen?); valid keys here: listen, "
            "api_keys, allow_private_image_urls, max_image_bytes, max_body_bytes, image_fetch_timeout, state_dir, cache_dir, "
            "batch_concurrency");
  EXPECT_EQ(error_of("devices:\n  - {name: g, kind: cuda, memory: 1GiB, colour: red}\ndeployments:\n  - {name: a, model: a.gguf}\n"),
            "zeroserve.yaml:2: devices[0].colour: unknown key; valid keys here: name, kind, memory, price_per_second, "
            "price_per_hour, sleep_price_per_second, sleep_price_per_hour");
  EXPECT_EQ(error_of(R"(deployments:
  - name: a
    model: a.gguf
    autoscale:
      target: 2
)"),
            "zeroserve.yaml:5: deployments[0].autoscale.target: unknown key (did you mean target_concurrency?); valid "
            "keys here: policy, "
            "target_concurrency, evaluation_interval, prewarm_lead, stable_window, panic_window, panic_threshold, "
            "scale_down_delay, max_scale_up_rate, max_scale_down_rate, rules_queue_threshold, rules_queue_window, "
            "rules_high_utilization, rules_high_for, rules_ttft_factor, rules_scale_out_fraction, "
            "rules_scale_out_cooldown, rules_low_utilization, rules_scale_in_fraction, rules_scale_in_interval, "
            "rules_warm_fraction, histogram_bin, histogram_range, histogram_head_percentile, "
            "histogram_tail_percentile, histogram_margin, histogram_cv_threshold, histogram_min_samples, "
            "histogram_max_oob_fraction, hybrid_cold_start_cost, hybrid_scale_in_delay, hybrid_range, "
            "predictive_threshold, predictive_history_weight, predictive_min_weeks");
  EXPECT_EQ(error_of("deployments:\n  - {name: a, model: a.gguf, max_instance: 2}\n").rfind(
                "zeroserve.yaml:2: deployments[0].max_instance: unknown key (did you mean max_instances?); ", 0),
            0u);
}

TEST(ConfigErrors, DuplicateKeysAndNames) {
  EXPECT_EQ(error_of(R"(deployments:
  - name: a
    slots: 2
    model: a.gguf
    slots: 3
)"),
            "zeroserve.yaml:5: deployments[0].slots: duplicate key (first set on line 3)");
  EXPECT_EQ(error_of(R"(deployments:
  - name: a
    model: a.gguf
  - name: b
    model: b.gguf
  - name: a
    model: c.gguf
)"),
            "zeroserve.yaml:6: deployments[2].name: \"a\" is already the name of deployments[0] (line 2)");
}

TEST(ConfigErrors, Names) {
  EXPECT_EQ(error_of("deployments:\n  - {name: Llava, model: a.gguf}\n"),
            "zeroserve.yaml:2: deployments[0].name: \"Llava\" is not a valid name: use lowercase letters, digits, "
            "'.', '_' and '-', starting with a letter or digit");
  EXPECT_EQ(error_of("deployments:\n  - {name: -x, model: a.gguf}\n"),
            "zeroserve.yaml:2: deployments[0].name: \"-x\" is not a valid name: use lowercase letters, digits, "
            "'.', '_' and '-', starting with a letter or digit");
  EXPECT_EQ(error_of("deployments:\n  - {name: 'a b', model: a.gguf}\n"),
            "zeroserve.yaml:2: deployments[0].name: \"a b\" is not a valid name: use lowercase letters, digits, "
            "'.', '_' and '-', starting with a letter or digit");
  EXPECT_EQ(error_of("deployments:\n  - model: a.gguf\n    slots: 2\n"),
            "zeroserve.yaml:2: deployments[0].name: required");
  EXPECT_EQ(error_of("deployments:\n  - name: {a: 1}\n    model: a.gguf\n"),
            "zeroserve.yaml:2: deployments[0].name: must be text, got a map");
}

TEST(ConfigErrors, Runtimes) {
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    slots: 2\n"),
            "zeroserve.yaml:2: deployments[0].model: required for the builtin runtime");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: ''\n"),
            "zeroserve.yaml:3: deployments[0].model: must not be empty");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    runtime: builtin\n    model: a.gguf\n    command: x {port}\n"),
            "zeroserve.yaml:5: deployments[0].command: only used with runtime: command (this deployment's runtime "
            "is builtin)");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    runtime: command\n    model: a.gguf\n"),
            "zeroserve.yaml:2: deployments[0].command: required for runtime: command (e.g. llama-server --port "
            "{port} -m {model})");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    runtime: docker\n"),
            "zeroserve.yaml:3: deployments[0].runtime: must be builtin, command or slurm, got \"docker\"");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    command: llama-server -m {model}\n"),
            "zeroserve.yaml:4: deployments[0].command: must contain {port}: the gateway picks the port each "
            "instance listens on");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    command: srv --port {prot} --port {port}\n"),
            "zeroserve.yaml:4: deployments[0].command: unknown placeholder {prot}; known: {port}, {model}, "
            "{mmproj}, {host}");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    command: srv --port {port} -m {model}\n"),
            "zeroserve.yaml:3: deployments[0].command: uses {model} but model is not set");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    command: srv --port {port} --mmproj {mmproj}\n"),
            "zeroserve.yaml:4: deployments[0].command: uses {mmproj} but mmproj is not set");
}

TEST(ConfigErrors, Devices) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  EXPECT_EQ(error_of("devices:\n  - {name: g, kind: cuda}\n" + deployments),
            "zeroserve.yaml:2: devices[0].memory: required for cuda devices (e.g. memory: 80GiB)");
  EXPECT_EQ(error_of("devices:\n  - name: g\n    kind: cpu\n    memory: 0\n" + deployments),
            "zeroserve.yaml:4: devices[0].memory: must be > 0");
  EXPECT_EQ(error_of("devices:\n  - name: g\n    kind: cpu\n    price_per_second: -0.1\n" + deployments),
            "zeroserve.yaml:4: devices[0].price_per_second: must be >= 0");
  EXPECT_EQ(error_of("devices:\n  - name: g\n    kind: cpu\n    price_per_second: 1\n    price_per_hour: 1\n" +
                     deployments),
            "zeroserve.yaml:5: devices[0].price_per_hour: set either price_per_second or price_per_hour, not both");
  EXPECT_EQ(error_of("devices:\n  - name: g\n    kind: tpu\n" + deployments),
            "zeroserve.yaml:3: devices[0].kind: must be cpu or cuda, got \"tpu\"");
  EXPECT_EQ(error_of("devices:\n  - name: g\n" + deployments),
            "zeroserve.yaml:2: devices[0].kind: required: cpu or cuda");
  EXPECT_EQ(error_of("devices:\n  - {kind: cpu}\n" + deployments), "zeroserve.yaml:2: devices[0].name: required");
  EXPECT_EQ(error_of("devices:\n  - {name: g, kind: cpu}\n  - {name: g, kind: cpu}\n" + deployments),
            "zeroserve.yaml:3: devices[1].name: \"g\" is already the name of devices[0]");
  EXPECT_EQ(error_of("devices: []\n" + deployments),
            "zeroserve.yaml:1: devices: must be a list of devices (each with name, kind and memory), got an empty "
            "list");
  EXPECT_EQ(error_of("devices:\n  - cpu0\n" + deployments),
            "zeroserve.yaml:2: devices[0]: must be a map of fields, got \"cpu0\"");
}

TEST(ConfigErrors, DeviceReferences) {
  const std::string devices = "devices:\n  - {name: gpu0, kind: cuda, memory: 16GiB}\n  - {name: cpu0, kind: cpu}\n";
  EXPECT_EQ(error_of(devices + "deployments:\n  - name: a\n    model: a.gguf\n    device: gpu1\n"),
            "zeroserve.yaml:7: deployments[0].device: no device named \"gpu1\"; devices: gpu0, cpu0");
  EXPECT_EQ(error_of(devices + "deployments:\n  - name: a\n    model: a.gguf\n    memory: 20GiB\n"),
            "zeroserve.yaml:7: deployments[0].memory: 20 GiB does not fit device gpu0 (16 GiB)");
  // Always-on instances must fit together, or the daemon could never start them all.
  EXPECT_EQ(error_of(devices + R"(deployments:
  - name: a
    model: a.gguf
    memory: 6GiB
    min_instances: 1
  - name: b
    model: b.gguf
    memory: 4GiB
    min_instances: 3
    max_instances: 3
)"),
            "zeroserve.yaml:12: deployments[1].min_instances: 3 always-on instances need 12 GiB but device gpu0 has "
            "10 GiB of 16 GiB left after the min_instances of earlier deployments");
  // The same deployments fit when the second is allowed to scale to zero.
  parse_ok(devices + R"(deployments:
  - {name: a, model: a.gguf, memory: 6GiB, min_instances: 1}
  - {name: b, model: b.gguf, memory: 4GiB, max_instances: 3}
)");
}

TEST(ConfigErrors, Autoscale) {
  const std::string head = "deployments:\n  - name: a\n    model: a.gguf\n    autoscale:\n";
  EXPECT_EQ(error_of(head + "      policy: rps\n"),
            "zeroserve.yaml:5: deployments[0].autoscale.policy: unknown policy \"rps\"; known: hybrid, concurrency, rules, fixed, histogram, predictive");
  EXPECT_EQ(error_of(head + "      stable_window: 5s\n      panic_window: 10s\n"),
            "zeroserve.yaml:6: deployments[0].autoscale.panic_window: must be <= stable_window (got 10)");
  EXPECT_EQ(error_of(head + "      target_concurrency: -1\n"),
            "zeroserve.yaml:5: deployments[0].autoscale.target_concurrency: must be >= 0 (got -1)");
  EXPECT_EQ(error_of(head + "      stable_window: 0\n"),
            "zeroserve.yaml:5: deployments[0].autoscale.stable_window: must be > 0 (got 0)");
  EXPECT_EQ(error_of(head + "      policy: rules\n      rules_high_utilization: 1.5\n"),
            "zeroserve.yaml:6: deployments[0].autoscale.rules_high_utilization: must be between 0 and 1 (got 1.5)");
  EXPECT_EQ(error_of(head + "      rules_low_utilization: 0.9\n"),
            "zeroserve.yaml:5: deployments[0].autoscale.rules_low_utilization: must be < rules_high_utilization (got 0.9)");
  EXPECT_EQ(error_of(head + "      policy: hybrid\n      hybrid_range: 10s\n"),
            "zeroserve.yaml:6: deployments[0].autoscale.hybrid_range: must be at least one and at most 1e6 bins of "
            "histogram_bin (got 10)");
  EXPECT_EQ(error_of(head + "      histogram_bin: soon\n").rfind("zeroserve.yaml:5: deployments[0].autoscale.histogram_bin: ", 0), 0u);
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    autoscale: fixed\n"),
            "zeroserve.yaml:4: deployments[0].autoscale: must be a map of fields, got \"fixed\"");
  EXPECT_EQ(known_autoscale_policies(),
            (std::vector<std::string>{"hybrid", "concurrency", "rules", "fixed", "histogram", "predictive"}));
}

TEST(ConfigErrors, Gateway) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  EXPECT_EQ(error_of("gateway:\n  listen: 8080\n" + deployments),
            "zeroserve.yaml:2: gateway.listen: must be host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or "
            "[::1]:8080), got \"8080\"");
  EXPECT_EQ(error_of("gateway:\n  listen: 'localhost:99999'\n" + deployments),
            "zeroserve.yaml:2: gateway.listen: must be host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or "
            "[::1]:8080), got \"localhost:99999\"");
  parse_ok("gateway:\n  listen: '[::1]:0'\n" + deployments);
  EXPECT_EQ(error_of("gateway:\n  api_keys: sk-1\n" + deployments),
            "zeroserve.yaml:2: gateway.api_keys: must be a list of keys, got \"sk-1\"");
  EXPECT_EQ(error_of("gateway:\n  api_keys:\n    - sk-1\n    - ''\n" + deployments),
            "zeroserve.yaml:4: gateway.api_keys[1]: must be a non-empty key or a map with key and limits, got \"\"");
  EXPECT_EQ(error_of("gateway:\n  allow_private_image_urls: maybe\n" + deployments),
            "zeroserve.yaml:2: gateway.allow_private_image_urls: must be true or false, got \"maybe\"");
  EXPECT_EQ(error_of("gateway:\n  max_image_bytes: 0\n" + deployments),
            "zeroserve.yaml:2: gateway.max_image_bytes: must be > 0");
  EXPECT_EQ(error_of("gateway: [1]\n" + deployments), "zeroserve.yaml:1: gateway: must be a map of fields, got a list");
}

TEST(ConfigErrors, ABodyLimitTooSmallForTheLargestBase64ImageIsRefusedWithItsLine) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  // 3 MiB images need 4 MiB of base64 plus 1 MiB: 5 MiB.
  EXPECT_EQ(error_of("gateway:\n  max_body_bytes: 4MiB\n  max_image_bytes: 3MiB\n" + deployments),
            "zeroserve.yaml:2: gateway.max_body_bytes: must be >= 5242880 bytes to admit an image of max_image_bytes "
            "(3145728) base64-encoded (4/3 of it) plus 1 MiB for the rest of the request, got 4194304");
  parse_ok("gateway:\n  max_image_bytes: 3MiB\n  max_body_bytes: 5MiB\n" + deployments);
}

TEST(GatewayConfig, TheBodyLimitDefaultsTo64MiBOrWhatTheLargestImageNeeds) {
  const std::string deployments = "deployments:\n  - {name: a, model: a.gguf}\n";
  EXPECT_EQ(parse_ok(deployments).gateway.max_body_bytes, 64ull << 20);
  EXPECT_GE(parse_ok(deployments).gateway.max_body_bytes, min_body_bytes_for(20ull << 20));
  const Config big = parse_ok("gateway:\n  max_image_bytes: 60MiB\n" + deployments);
  EXPECT_EQ(big.gateway.max_body_bytes, min_body_bytes_for(60ull << 20));
  EXPECT_EQ(min_body_bytes_for(3), 4u + (1u << 20));
  EXPECT_EQ(min_body_bytes_for(4), 8u + (1u << 20));
}

TEST(ConfigErrors, Env) {
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    env: [A=1]\n"),
            "zeroserve.yaml:4: deployments[0].env: must be a map of VARIABLE: value, got a list");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    env:\n      A: 1\n      'B=C': 2\n"),
            "zeroserve.yaml:6: deployments[0].env.B=C: not a valid environment variable name");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n    model: a.gguf\n    env:\n      A: {x: 1}\n"),
            "zeroserve.yaml:5: deployments[0].env.A: must be text, got a map");
}

TEST(ConfigErrors, MissingOrEmptyDeployments) {
  EXPECT_EQ(error_of("gateway:\n  listen: 127.0.0.1:1\n"),
            "zeroserve.yaml: deployments: required: declare at least one deployment");
  EXPECT_EQ(error_of("deployments: []\n"),
            "zeroserve.yaml:1: deployments: must be a list of deployments (at least one), got an empty list");
  EXPECT_EQ(error_of("deployments:\n  name: a\n"),
            "zeroserve.yaml:1: deployments: must be a list of deployments (at least one), got a map");
  EXPECT_EQ(error_of(""), "zeroserve.yaml: the file is empty: declare at least one deployment");
  EXPECT_EQ(error_of("# only a comment\n"), "zeroserve.yaml: the file is empty: declare at least one deployment");
  EXPECT_EQ(error_of("- a\n- b\n"), "zeroserve.yaml:1: must be a map of fields, got a list");
}

TEST(ConfigErrors, MalformedYamlNamesLineAndColumn) {
  EXPECT_EQ(error_of("deployments:\n  - name: [a, b\n    model: x\n"),
            "zeroserve.yaml:3:10: invalid YAML: end of sequence flow not found");
  EXPECT_EQ(error_of("deployments:\n  - name: a\n   model: b\n"),
            "zeroserve.yaml:3:4: invalid YAML: end of sequence not found");
}

TEST(ConfigErrors, ReportsEveryErrorAtOnce) {
  EXPECT_EQ(error_of(R"(deployments:
  - name: a
    model: a.gguf
    slots: 0
  - name: B
    model: b.gguf
    ctx: 1
)"),
            "zeroserve.yaml:4: deployments[0].slots: must be >= 1\n"
            "zeroserve.yaml:5: deployments[1].name: \"B\" is not a valid name: use lowercase letters, digits, '.', "
            "'_' and '-', starting with a letter or digit\n"
            "zeroserve.yaml:7: deployments[1].ctx: must be >= 16");
}

// ---- files ------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "zs_config_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path_ + "/" + name;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

TEST(ValidateFiles, NamesTheMissingFile) {
  const Config c = parse_ok(R"(deployments:
  - name: a
    model: /nonexistent/a.gguf
  - name: b
    model: /nonexistent/b.gguf
    mmproj: /nonexistent/p.gguf
)");
  const core::Status s = validate_files(c);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(),
            "zeroserve.yaml:2: deployments[0].model (a): no such file: /nonexistent/a.gguf\n"
            "zeroserve.yaml:4: deployments[1].model (b): no such file: /nonexistent/b.gguf\n"
            "zeroserve.yaml:4: deployments[1].mmproj (b): no such file: /nonexistent/p.gguf");
}

TEST(ValidateFiles, DirectoriesOnlyForCommandRuntimes) {
  TempDir dir;
  fs::create_directories(dir.path() + "/hf-model");
  const auto c = parse_config(
      "deployments:\n  - {name: a, model: hf-model}\n  - {name: b, model: hf-model, command: 'vllm serve {model} "
      "--port {port}'}\n",
      "z.yaml", dir.path(), test_env());
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  const core::Status s = validate_files(c.value());
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(), "z.yaml:2: deployments[0].model (a): " + dir.path() + "/hf-model is a directory, not a GGUF file");
}

TEST(LoadConfig, ResolvesAgainstTheFileAndChecksModels) {
  TempDir dir;
  dir.write("models/a.gguf", "GGUF");
  dir.write("models/p.gguf", "GGUF");
  const std::string path = dir.write("conf/zeroserve.yaml", R"(deployments:
  - name: a
    model: ../models/a.gguf
    mmproj: ../models/p.gguf
)");
  auto c = load_config(path);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->source, path);
  EXPECT_EQ(c->deployments[0].model, dir.path() + "/models/a.gguf");
  EXPECT_EQ(c->deployments[0].mmproj, dir.path() + "/models/p.gguf");

  fs::remove(dir.path() + "/models/p.gguf");
  c = load_config(path);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().message(),
            path + ":2: deployments[0].mmproj (a): no such file: " + dir.path() + "/models/p.gguf");
}

TEST(LoadConfig, RelativeConfigPathsResolveToAbsoluteModelPaths) {
  TempDir dir;
  dir.write("m.gguf", "GGUF");
  dir.write("zeroserve.yaml", "deployments:\n  - {name: a, model: m.gguf}\n");
  const fs::path before = fs::current_path();
  fs::current_path(dir.path());
  auto c = load_config("zeroserve.yaml");
  fs::current_path(before);
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->source, "zeroserve.yaml");
  EXPECT_EQ(fs::path(c->deployments[0].model), fs::path(dir.path()) / "m.gguf");
}

TEST(LoadConfig, MissingFile) {
  auto c = load_config("/nonexistent/zeroserve.yaml");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().message(), "cannot read configuration /nonexistent/zeroserve.yaml: no such file");
}

TEST(LoadConfig, ErrorsNameTheFilePath) {
  TempDir dir;
  const std::string path = dir.write("zeroserve.yaml", "deployments:\n  - name: a\n    model: a.gguf\n    slots: 0\n");
  auto c = load_config(path);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().message(), path + ":4: deployments[0].slots: must be >= 1");
}

}  // namespace
}  // namespace zs::platform
