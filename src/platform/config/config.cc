#include "platform/config/config.h"

#include "platform/autoscale/scaling_policy.h"
#include "platform/models/model_ref.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "platform/config/units.h"

namespace zs::platform {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kNameRule =
    "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit";
// The default device takes this share of physical memory: the rest is left to the OS, the
// gateway and the page cache that keeps restarts fast.
constexpr double kDefaultCpuMemoryShare = 0.8;
constexpr std::string_view kDefaultDeviceName = "cpu0";
constexpr std::string_view kApiKeysEnv = "ZEROSERVE_API_KEYS";

bool valid_name(std::string_view s) {
  if (s.empty()) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(s[0])) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return lower_or_digit(c) || c == '.' || c == '_' || c == '-'; });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The valid key a typo most likely meant: the same letters without separators
// ("keepalive"), one extending the other ("keep_alive_s", "listen_addr"), or within two
// edits ("max_instance", "slot").
std::optional<std::string> suggest(std::string_view key, const std::vector<std::string_view>& valid) {
  auto squash = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c != '_' && c != '-') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  std::optional<std::string> best;
  size_t best_distance = 3;
  for (std::string_view v : valid) {
    const std::string sv = squash(v), sk = squash(key);
    if (sv == sk) return std::string(v);
    if (std::min(sv.size(), sk.size()) >= 4 && (sv.rfind(sk, 0) == 0 || sk.rfind(sv, 0) == 0)) {
      return std::string(v);
    }
    const size_t d = edit_distance(lower(key), v);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(v);
    }
  }
  return best;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return in_quotes(node.Scalar());
    default: return "nothing";
  }
}

// One key/value pair of a YAML map, with where it sits.
struct Entry {
  YAML::Node key;
  YAML::Node value;
  std::string path;  // "deployments[1].max_instances"
  int line = 0;      // 1-based line of the key
};

class Parser {
 public:
  Parser(std::string source, std::string base_dir, const ConfigEnvironment& env)
      : source_(std::move(source)), base_dir_(std::move(base_dir)), env_(env) {}

  core::Result<Config> parse(const std::string& text);

 private:
  // A map's entries after checking for unknown and duplicate keys. Null values count as
  // absent, so that `mmproj:` with nothing after it means "not set".
  class Fields {
   public:
    Fields(Parser& p, const YAML::Node& map, const std::string& path, std::vector<std::string_view> keys);
    const Entry* get(std::string_view key) const {
      for (const Entry& e : entries_) {
        if (e.key.Scalar() == key) return e.value.IsNull() ? nullptr : &e;
      }
      return nullptr;
    }

   private:
    std::vector<Entry> entries_;
  };

  void error(int line, const std::string& path, const std::string& message) {
    std::string out = source_;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!path.empty()) out += path + ": ";
    errors_.push_back(out + message);
  }
  void error(const Entry& e, const std::string& message) { error(e.line, e.path, message); }
  static int line_of(const YAML::Node& node) { return node.Mark().line >= 0 ? node.Mark().line + 1 : 0; }

  bool read_string(const Entry& e, std::string& out);
  bool read_int(const Entry& e, int& out);
  bool read_double(const Entry& e, double& out);
  bool read_bool(const Entry& e, bool& out);
  bool read_size(const Entry& e, uint64_t& out);
  bool read_duration(const Entry& e, double& out);
  bool read_path(const Entry& e, std::string& out);
  // A path, or a model name on the hub ("hf:OWNER/REPO:QUANT"), kept as written.
  bool read_model(const Entry& e, std::string& out);
  // Convenience: reads the field when present; false only when present and malformed.
  template <typename T, typename Fn>
  bool optional_field(const Fields& f, std::string_view key, T& out, Fn read) {
    const Entry* e = f.get(key);
    return !e || (this->*read)(*e, out);
  }

  void at_least(const Fields& f, std::string_view key, double value, double min) {
    if (const Entry* e = f.get(key); e && value < min) error(*e, "must be >= " + format_number(min));
  }
  void greater_than(const Fields& f, std::string_view key, double value, double min) {
    if (const Entry* e = f.get(key); e && !(value > min)) error(*e, "must be > " + format_number(min));
  }

  std::string resolve_path(const std::string& p) const;
  std::optional<std::string> getenv(const std::string& name) const {
    if (!env_.getenv) return std::nullopt;
    auto v = env_.getenv(name);
    if (v && v->empty()) return std::nullopt;
    return v;
  }

  void parse_gateway(const YAML::Node& node, GatewayConfig& out);
  void parse_cluster(const Entry& e, ClusterConfig& out);
  void parse_api_key(const YAML::Node& node, const std::string& path, GatewayConfig& gw);
  void parse_devices(const Entry* e, Config& config);
  void parse_deployments(const Entry* e, Config& config);
  // Returns the line to blame when the deployment's always-on instances do not fit.
  int parse_deployment(const YAML::Node& node, const std::string& path, const Config& config,
                       DeploymentConfig& d);
  void parse_autoscale(const Entry& e, AutoscaleConfig& out);
  // speculative: prompt-lookup | off, or {method, draft_model, draft_tokens}.
  void parse_speculative(const Entry& e, DeploymentConfig& d);
  void check_command(const Entry& e, const DeploymentConfig& d);

  std::string source_;
  std::string base_dir_;
  const ConfigEnvironment& env_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

Parser::Fields::Fields(Parser& p, const YAML::Node& map, const std::string& path,
                       std::vector<std::string_view> keys) {
  if (!map.IsMap()) {
    p.error(line_of(map), path, "must be a map of fields, got " + describe(map));
    return;
  }
  const std::vector<std::string> names(keys.begin(), keys.end());
  // YAML merge keys ("<<: *defaults") share settings between deployments. yaml-cpp leaves
  // them to the application; explicit keys win over merged ones, whatever their order.
  std::vector<YAML::Node> merges;
  auto add = [&](const YAML::Node& key, const YAML::Node& value, bool merged) {
    Entry e{key, value, "", line_of(key)};
    if (!key.IsScalar()) {
      p.error(e.line, path, "keys must be plain names, got " + describe(key));
      return;
    }
    const std::string& name = key.Scalar();
    e.path = path.empty() ? name : path + "." + name;
    if (!merged && name == "<<") {
      if (value.IsMap()) {
        merges.push_back(value);
      } else if (value.IsSequence() && std::all_of(value.begin(), value.end(), [](const YAML::Node& n) {
                   return n.IsMap();
                 })) {
        for (const YAML::Node& n : value) merges.push_back(n);
      } else {
        p.error(e, "a merge key takes a map or a list of maps (e.g. <<: *defaults), got " + describe(value));
      }
      return;
    }
    if (std::find(keys.begin(), keys.end(), name) == keys.end()) {
      std::string message = "unknown key";
      if (auto s = suggest(name, keys)) message += " (did you mean " + *s + "?)";
      p.error(e, message + "; valid keys here: " + join(names, ", "));
      return;
    }
    const auto dup = std::find_if(entries_.begin(), entries_.end(),
                                  [&](const Entry& o) { return o.key.Scalar() == name; });
    if (dup != entries_.end()) {
      if (!merged) p.error(e, "duplicate key (first set on line " + std::to_string(dup->line) + ")");
      return;
    }
    entries_.push_back(std::move(e));
  };
  for (auto it = map.begin(); it != map.end(); ++it) add(it->first, it->second, false);
  // In order: the first merged map that sets a key wins, as YAML's merge rules say.
  for (const YAML::Node& m : merges) {
    for (auto it = m.begin(); it != m.end(); ++it) add(it->first, it->second, true);
  }
}

bool Parser::read_string(const Entry& e, std::string& out) {
  if (!e.value.IsScalar()) {
    error(e, "must be text, got " + describe(e.value));
    return false;
  }
  out = e.value.Scalar();
  return true;
}

bool Parser::read_int(const Entry& e, int& out) {
  if (e.value.IsScalar()) {
    const std::string s = trim(e.value.Scalar());
    int v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) {
      out = v;
      return true;
    }
  }
  error(e, "must be a whole number, got " + describe(e.value));
  return false;
}

bool Parser::read_double(const Entry& e, double& out) {
  if (e.value.IsScalar()) {
    const std::string s = trim(e.value.Scalar());
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(v)) {
      out = v;
      return true;
    }
  }
  error(e, "must be a number, got " + describe(e.value));
  return false;
}

bool Parser::read_bool(const Entry& e, bool& out) {
  if (e.value.IsScalar()) {
    const std::string s = lower(trim(e.value.Scalar()));
    if (s == "true" || s == "yes" || s == "on") return out = true, true;
    if (s == "false" || s == "no" || s == "off") return out = false, true;
  }
  error(e, "must be true or false, got " + describe(e.value));
  return false;
}

bool Parser::read_size(const Entry& e, uint64_t& out) {
  if (e.value.IsScalar()) {
    if (auto v = parse_size(e.value.Scalar())) return out = *v, true;
  }
  error(e, "must be " + std::string(kSizeUnitsHelp) + ", got " + describe(e.value));
  return false;
}

bool Parser::read_duration(const Entry& e, double& out) {
  if (e.value.IsScalar()) {
    if (auto v = parse_duration(e.value.Scalar())) return out = *v, true;
  }
  error(e, "must be " + std::string(kDurationUnitsHelp) + ", got " + describe(e.value));
  return false;
}

bool Parser::read_path(const Entry& e, std::string& out) {
  std::string raw;
  if (!read_string(e, raw)) return false;
  out = raw.empty() ? raw : resolve_path(raw);
  return true;
}

bool Parser::read_model(const Entry& e, std::string& out) {
  std::string raw;
  if (!read_string(e, raw)) return false;
  if (!is_model_ref(raw)) return read_path(e, out);
  auto ref = parse_model_ref(raw);
  if (!ref) {
    error(e, ref.status().message());
    return false;
  }
  out = raw;
  return true;
}

std::string Parser::resolve_path(const std::string& p) const {
  fs::path path(p);
  if (p == "~" || p.rfind("~/", 0) == 0) {
    if (auto home = getenv("HOME")) path = fs::path(*home) / p.substr(std::min<size_t>(2, p.size()));
  }
  if (path.is_relative() && !base_dir_.empty()) path = fs::path(base_dir_) / path;
  return path.lexically_normal().string();
}

core::Result<Config> Parser::parse(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& ex) {
    std::string where = source_;
    if (ex.mark.line >= 0) {
      where += ":" + std::to_string(ex.mark.line + 1) + ":" + std::to_string(ex.mark.column + 1);
    }
    return core::Status::invalid_argument(where + ": invalid YAML: " + ex.msg);
  }

  Config config;
  config.source = source_;
  if (root.IsNull()) {
    return core::Status::invalid_argument(source_ + ": the file is empty: declare at least one deployment");
  }
  Fields top(*this, root, "", {"gateway", "devices", "deployments", "cluster"});
  if (!errors_.empty()) return core::Status::invalid_argument(join(errors_, "\n"));

  if (const Entry* g = top.get("gateway")) parse_gateway(g->value, config.gateway);
  {
    GatewayConfig& gw = config.gateway;
    if (auto keys = getenv(std::string(kApiKeysEnv))) {
      std::stringstream ss(*keys);
      std::string key;
      while (std::getline(ss, key, ',')) {
        key = trim(key);
        if (!key.empty()) {
          ApiKeyConfig k;
          k.key = key;
          gw.api_keys.push_back(std::move(k));
        }
      }
    }
    // The same key from the file and the environment counts once (the file's settings win).
    std::vector<ApiKeyConfig> unique;
    for (const ApiKeyConfig& k : gw.api_keys) {
      if (std::none_of(unique.begin(), unique.end(), [&](const ApiKeyConfig& u) { return u.key == k.key; }))
        unique.push_back(k);
    }
    for (size_t i = 0; i < unique.size(); ++i)
      if (unique[i].name.empty()) unique[i].name = "key-" + std::to_string(i + 1);
    gw.api_keys = std::move(unique);
    if (!gw.api_keys.empty() && std::none_of(gw.api_keys.begin(), gw.api_keys.end(), [](const ApiKeyConfig& k) { return k.admin; }))
      warnings_.push_back(source_ + ": gateway.api_keys: no key has admin: true, so the admin API (/admin/*) and the "
                                    "console's admin actions refuse every key");
    auto xdg = [&](const char* var, const char* under_home, const char* without_home) {
      // XDG says relative values are invalid and must be ignored.
      if (auto v = getenv(var); v && fs::path(*v).is_absolute()) return (fs::path(*v) / "zeroserve").string();
      if (auto home = getenv("HOME")) return (fs::path(*home) / under_home / "zeroserve").string();
      return resolve_path(without_home);  // no home (a bare container): next to the file
    };
    if (gw.state_dir.empty()) gw.state_dir = xdg("XDG_STATE_HOME", ".local/state", ".zeroserve/state");
    if (gw.cache_dir.empty()) gw.cache_dir = xdg("XDG_CACHE_HOME", ".cache", ".zeroserve/cache");
  }

  parse_devices(top.get("devices"), config);
  if (const Entry* c = top.get("cluster")) parse_cluster(*c, config.cluster);
  parse_deployments(top.get("deployments"), config);
  if (!errors_.empty()) return core::Status::invalid_argument(join(errors_, "\n"));
  config.warnings.insert(config.warnings.end(), warnings_.begin(), warnings_.end());
  return config;
}

void Parser::parse_gateway(const YAML::Node& node, GatewayConfig& gw) {
  Fields f(*this, node, "gateway",
           {"listen", "api_keys", "allow_private_image_urls", "max_image_bytes", "max_body_bytes", "image_fetch_timeout",
            "state_dir", "cache_dir", "batch_concurrency"});
  if (const Entry* e = f.get("listen"); e && read_string(*e, gw.listen)) {
    // host:port, where host may be a bracketed IPv6 address.
    const size_t colon = gw.listen.rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon > 0) {
      const std::string p = gw.listen.substr(colon + 1);
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
      if (p.empty() || ec != std::errc() || ptr != p.data() + p.size()) port = -1;
    }
    if (port < 0 || port > 65535) {
      error(*e, "must be host:port (e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080), got " + in_quotes(gw.listen));
    }
  }
  if (const Entry* e = f.get("api_keys")) {
    if (!e->value.IsSequence()) {
      error(*e, "must be a list of keys, got " + describe(e->value));
    } else {
      for (size_t i = 0; i < e->value.size(); ++i) {
        const YAML::Node item = e->value[i];
        const std::string path = e->path + "[" + std::to_string(i) + "]";
        if (item.IsMap()) {
          parse_api_key(item, path, gw);
          continue;
        }
        if (!item.IsScalar() || trim(item.Scalar()).empty()) {
          error(item.IsNull() ? e->line : line_of(item), path,
                "must be a non-empty key or a map with key and limits, got " + describe(item));
          continue;
        }
        ApiKeyConfig k;
        k.key = trim(item.Scalar());
        gw.api_keys.push_back(std::move(k));
      }
    }
  }
  if (optional_field(f, "batch_concurrency", gw.batch_concurrency, &Parser::read_int))
    at_least(f, "batch_concurrency", gw.batch_concurrency, 1);
  optional_field(f, "allow_private_image_urls", gw.allow_private_image_urls, &Parser::read_bool);
  if (optional_field(f, "max_image_bytes", gw.max_image_bytes, &Parser::read_size)) {
    greater_than(f, "max_image_bytes", static_cast<double>(gw.max_image_bytes), 0);
  }
  const uint64_t needed = min_body_bytes_for(gw.max_image_bytes);
  if (const Entry* e = f.get("max_body_bytes")) {
    if (read_size(*e, gw.max_body_bytes) && gw.max_body_bytes < needed)
      error(*e, "must be >= " + std::to_string(needed) + " bytes to admit an image of max_image_bytes (" +
                    std::to_string(gw.max_image_bytes) + ") base64-encoded (4/3 of it) plus 1 MiB for the rest of the request, got " +
                    std::to_string(gw.max_body_bytes));
  } else {
    gw.max_body_bytes = std::max(gw.max_body_bytes, needed);
  }
  if (optional_field(f, "image_fetch_timeout", gw.image_fetch_timeout_s, &Parser::read_duration)) {
    greater_than(f, "image_fetch_timeout", gw.image_fetch_timeout_s, 0);
  }
  optional_field(f, "state_dir", gw.state_dir, &Parser::read_path);
  optional_field(f, "cache_dir", gw.cache_dir, &Parser::read_path);
}

void Parser::parse_cluster(const Entry& e, ClusterConfig& c) {
  Fields f(*this, e.value, "cluster",
           {"partition", "account", "qos", "time_limit", "sbatch_options", "slurm_conf", "shared_dir", "zeroserve_path",
            "heartbeat_limit", "poll", "replace_before", "price_per_second"});
  c.configured = true;
  c.source_line = e.line;
  optional_field(f, "partition", c.partition, &Parser::read_string);
  optional_field(f, "account", c.account, &Parser::read_string);
  optional_field(f, "qos", c.qos, &Parser::read_string);
  if (optional_field(f, "time_limit", c.time_limit_s, &Parser::read_duration)) at_least(f, "time_limit", c.time_limit_s, 0);
  optional_field(f, "slurm_conf", c.slurm_conf, &Parser::read_path);
  optional_field(f, "zeroserve_path", c.zeroserve_path, &Parser::read_path);
  if (const Entry* d = f.get("shared_dir"); !d) {
    error(e.line, "cluster.shared_dir", "required: a folder the nodes share with this machine (e.g. /shared/zeroserve)");
  } else if (read_path(*d, c.shared_dir) && c.shared_dir.empty()) {
    error(*d, "must not be empty");
  }
  if (optional_field(f, "heartbeat_limit", c.heartbeat_limit_s, &Parser::read_duration))
    at_least(f, "heartbeat_limit", c.heartbeat_limit_s, 2);
  if (optional_field(f, "poll", c.poll_s, &Parser::read_duration)) greater_than(f, "poll", c.poll_s, 0);
  if (optional_field(f, "replace_before", c.replace_before_s, &Parser::read_duration))
    at_least(f, "replace_before", c.replace_before_s, 0);
  if (const Entry* o = f.get("sbatch_options")) {
    if (!o->value.IsSequence()) {
      error(*o, "must be a list of sbatch options (e.g. [--exclusive, --constraint=a100]), got " + describe(o->value));
    } else {
      for (size_t i = 0; i < o->value.size(); ++i) {
        const YAML::Node item = o->value[i];
        if (!item.IsScalar() || item.Scalar().rfind("-", 0) != 0) {
          error(line_of(item), o->path + "[" + std::to_string(i) + "]",
                "must be one sbatch option starting with '-', got " + describe(item));
          continue;
        }
        c.sbatch_options.push_back(item.Scalar());
      }
    }
  }
  if (const Entry* p = f.get("price_per_second")) {
    if (!p->value.IsMap()) {
      error(*p, "must map partition names to USD per instance-second (e.g. {gpu: 0.0005}), got " + describe(p->value));
    } else {
      for (auto it = p->value.begin(); it != p->value.end(); ++it) {
        Entry item{it->first, it->second, p->path + "." + it->first.Scalar(), line_of(it->first)};
        double v = 0;
        if (read_double(item, v)) {
          if (v < 0) error(item, "must be >= 0");
          else c.price_per_second[it->first.Scalar()] = v;
        }
      }
    }
  }
}

void Parser::parse_api_key(const YAML::Node& node, const std::string& path, GatewayConfig& gw) {
  Fields f(*this, node, path,
           {"key", "name", "priority", "requests_per_minute", "tokens_per_minute", "max_concurrent", "admin"});
  ApiKeyConfig k;
  if (const Entry* e = f.get("key"); !e) {
    error(line_of(node), path + ".key", "required");
  } else if (read_string(*e, k.key) && trim(k.key).empty()) {
    error(*e, "must not be empty");
  }
  k.key = trim(k.key);
  if (const Entry* e = f.get("name"); e && read_string(*e, k.name) && !valid_name(k.name))
    error(*e, in_quotes(k.name) + " is not a valid name: " + std::string(kNameRule));
  if (const Entry* e = f.get("priority")) {
    std::string c;
    if (read_string(*e, c)) {
      if (auto rc = parse_request_class(c)) k.default_class = *rc;
      else error(*e, "must be interactive or batch, got " + in_quotes(c));
    }
  }
  if (optional_field(f, "requests_per_minute", k.requests_per_minute, &Parser::read_double))
    at_least(f, "requests_per_minute", k.requests_per_minute, 0);
  if (optional_field(f, "tokens_per_minute", k.tokens_per_minute, &Parser::read_double))
    at_least(f, "tokens_per_minute", k.tokens_per_minute, 0);
  if (optional_field(f, "max_concurrent", k.max_concurrent, &Parser::read_int))
    at_least(f, "max_concurrent", k.max_concurrent, 0);
  optional_field(f, "admin", k.admin, &Parser::read_bool);
  for (const ApiKeyConfig& other : gw.api_keys)
    if (!k.name.empty() && other.name == k.name)
      if (const Entry* e = f.get("name")) error(*e, in_quotes(k.name) + " names another key too");
  if (!k.key.empty()) gw.api_keys.push_back(std::move(k));
}

void Parser::parse_devices(const Entry* e, Config& config) {
  if (!e) {
    const uint64_t memory =
        static_cast<uint64_t>(static_cast<double>(env_.physical_memory_bytes) * kDefaultCpuMemoryShare);
    config.devices.push_back({std::string(kDefaultDeviceName), "cpu", memory, 0.0});
    config.warnings.push_back("no devices declared: using " + std::string(kDefaultDeviceName) + " (cpu, " +
                              format_bytes(memory) +
                              ", 80% of physical memory) at a price of 0 per second, so every cost reads 0; "
                              "declare a device with price_per_second to meter cost");
    return;
  }
  if (!e->value.IsSequence() || e->value.size() == 0) {
    error(*e, "must be a list of devices (each with name, kind and memory), got " +
                  (e->value.IsSequence() ? std::string("an empty list") : describe(e->value)));
    return;
  }
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node node = e->value[i];
    const std::string path = "devices[" + std::to_string(i) + "]";
    const size_t errors_before = errors_.size();
    Fields f(*this, node, path,
             {"name", "kind", "memory", "price_per_second", "price_per_hour", "sleep_price_per_second",
              "sleep_price_per_hour"});
    if (errors_.size() > errors_before && !node.IsMap()) continue;
    DeviceConfig d;
    const int line = line_of(node);
    if (const Entry* n = f.get("name"); !n) {
      error(line, path + ".name", "required");
    } else if (read_string(*n, d.name)) {
      if (!valid_name(d.name)) {
        error(*n, in_quotes(d.name) + " is not a valid name: " + std::string(kNameRule));
      } else {
        for (size_t j = 0; j < config.devices.size(); ++j) {
          if (config.devices[j].name == d.name) {
            error(*n, in_quotes(d.name) + " is already the name of devices[" + std::to_string(j) + "]");
          }
        }
      }
    }
    if (const Entry* k = f.get("kind"); !k) {
      error(line, path + ".kind", "required: cpu or cuda");
    } else if (read_string(*k, d.kind) && d.kind != "cpu" && d.kind != "cuda") {
      error(*k, "must be cpu or cuda, got " + in_quotes(d.kind));
    }
    if (const Entry* m = f.get("memory"); !m) {
      if (d.kind == "cpu") {
        d.memory_bytes = static_cast<uint64_t>(static_cast<double>(env_.physical_memory_bytes) * kDefaultCpuMemoryShare);
      } else if (d.kind == "cuda") {
        // GPU memory cannot be read without a driver in the daemon; the operator states it.
        error(line, path + ".memory", "required for cuda devices (e.g. memory: 80GiB)");
      }
    } else if (read_size(*m, d.memory_bytes) && d.memory_bytes == 0) {
      error(*m, "must be > 0");
    }
    const Entry* ps = f.get("price_per_second");
    const Entry* ph = f.get("price_per_hour");
    if (ps && ph) {
      error(*ph, "set either price_per_second or price_per_hour, not both");
    } else if (ps) {
      if (read_double(*ps, d.price_per_second) && d.price_per_second < 0) error(*ps, "must be >= 0");
    } else if (ph) {
      double per_hour = 0;
      if (read_double(*ph, per_hour)) {
        if (per_hour < 0) error(*ph, "must be >= 0");
        d.price_per_second = per_hour / 3600;
      }
    }
    const Entry* sps = f.get("sleep_price_per_second");
    const Entry* sph = f.get("sleep_price_per_hour");
    d.sleep_price_per_second = d.price_per_second * kDefaultSleepPriceShare;
    if (sps && sph) {
      error(*sph, "set either sleep_price_per_second or sleep_price_per_hour, not both");
    } else if (sps) {
      if (read_double(*sps, d.sleep_price_per_second) && d.sleep_price_per_second < 0) error(*sps, "must be >= 0");
    } else if (sph) {
      double per_hour = 0;
      if (read_double(*sph, per_hour)) {
        if (per_hour < 0) error(*sph, "must be >= 0");
        d.sleep_price_per_second = per_hour / 3600;
      }
    }
    config.devices.push_back(std::move(d));
  }
}

void Parser::parse_deployments(const Entry* e, Config& config) {
  if (!e) {
    error(0, "deployments", "required: declare at least one deployment");
    return;
  }
  if (!e->value.IsSequence() || e->value.size() == 0) {
    error(*e, "must be a list of deployments (at least one), got " +
                  (e->value.IsSequence() ? std::string("an empty list") : describe(e->value)));
    return;
  }
  // Memory held by always-on (min_instances) instances per device: they start with the daemon
  // and never scale in, so if they do not fit together the daemon could never start them all.
  std::map<std::string, uint64_t> pinned;
  for (size_t i = 0; i < e->value.size(); ++i) {
    const YAML::Node node = e->value[i];
    const std::string path = "deployments[" + std::to_string(i) + "]";
    DeploymentConfig d;
    d.source_line = line_of(node);
    const int min_line = parse_deployment(node, path, config, d);
    const DeviceConfig* dev = config.device(d.device);
    // Slurm jobs hold no local memory: Slurm places them.
    if (dev && d.runtime != RuntimeKind::kSlurm && d.memory_bytes && d.min_instances > 0 &&
        *d.memory_bytes <= dev->memory_bytes) {
      const uint64_t need = *d.memory_bytes * static_cast<uint64_t>(d.min_instances);
      const uint64_t used = pinned[dev->name];
      if (used + need > dev->memory_bytes) {
        error(min_line, path + ".min_instances",
              std::to_string(d.min_instances) + " always-on instances need " + format_bytes(need) + " but device " +
                  dev->name + " has " + format_bytes(dev->memory_bytes - std::min(used, dev->memory_bytes)) +
                  " of " + format_bytes(dev->memory_bytes) + " left after the min_instances of earlier deployments");
      } else {
        pinned[dev->name] = used + need;
      }
    }
    for (size_t j = 0; j < config.deployments.size(); ++j) {
      if (!d.name.empty() && config.deployments[j].name == d.name) {
        error(d.source_line, path + ".name",
              in_quotes(d.name) + " is already the name of deployments[" + std::to_string(j) + "] (line " +
                  std::to_string(config.deployments[j].source_line) + ")");
        break;
      }
    }
    config.deployments.push_back(std::move(d));
  }
}

int Parser::parse_deployment(const YAML::Node& node, const std::string& path, const Config& config,
                             DeploymentConfig& d) {
  const size_t errors_before = errors_.size();
  Fields f(*this, node, path,
           {"name", "model", "mmproj", "runtime", "command", "min_instances", "max_instances", "keep_alive",
            "sleep_after", "slots", "ctx", "threads", "max_queue", "request_timeout", "start_timeout", "memory", "device",
            "priority", "ttft_objective", "autoscale", "env", "batch_max_instances", "matryoshka",
            "max_image_tokens", "speculative"});
  if (errors_.size() > errors_before && !node.IsMap()) return 0;
  const int line = d.source_line;

  if (const Entry* n = f.get("name"); !n) {
    error(line, path + ".name", "required");
  } else if (read_string(*n, d.name) && !valid_name(d.name)) {
    error(*n, in_quotes(d.name) + " is not a valid name: " + std::string(kNameRule));
  }

  optional_field(f, "model", d.model, &Parser::read_model);
  optional_field(f, "mmproj", d.mmproj, &Parser::read_model);

  const Entry* runtime = f.get("runtime");
  const Entry* command = f.get("command");
  bool runtime_ok = true;
  if (runtime) {
    std::string r;
    if ((runtime_ok = read_string(*runtime, r))) {
      if (r == "builtin") {
        d.runtime = RuntimeKind::kBuiltin;
      } else if (r == "command") {
        d.runtime = RuntimeKind::kCommand;
      } else if (r == "slurm") {
        d.runtime = RuntimeKind::kSlurm;
        if (!config.cluster.configured)
          error(*runtime, "runtime: slurm needs a top-level cluster: section (at least cluster.shared_dir; docs/cluster.md)");
      } else {
        std::string message = "must be builtin, command or slurm, got " + in_quotes(r);
        if (auto near = suggest(r, {"builtin", "command", "slurm"})) message += " (did you mean " + *near + "?)";
        error(*runtime, message);
        runtime_ok = false;
      }
    }
  } else if (command) {
    // A start command can only mean the command runtime; asking for both lines is noise.
    d.runtime = RuntimeKind::kCommand;
  }
  if (command) read_string(*command, d.command);
  if (runtime_ok) {
    if (d.runtime == RuntimeKind::kBuiltin || d.runtime == RuntimeKind::kSlurm) {
      const std::string kind = d.runtime == RuntimeKind::kSlurm ? "slurm" : "builtin";
      if (command) error(*command, "only used with runtime: command (this deployment's runtime is " + kind + ")");
      if (d.model.empty() && !f.get("model")) error(line, path + ".model", "required for the " + kind + " runtime");
      else if (d.model.empty()) error(*f.get("model"), "must not be empty");
    } else if (!command) {
      error(line, path + ".command", "required for runtime: command (e.g. llama-server --port {port} -m {model})");
    } else {
      check_command(*command, d);
    }
    // The daemon pulls hub names for its own workers only; a command gets a path.
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"model", &d.model}, {"mmproj", &d.mmproj}})
      if (const Entry* e = f.get(key); e && d.runtime == RuntimeKind::kCommand && is_model_ref(*value))
        error(*e, "hf: names are pulled for the builtin runtime only; for runtime: command run `zeroserve pull` and give the path it prints");
  }

  optional_field(f, "min_instances", d.min_instances, &Parser::read_int);
  const bool max_ok = optional_field(f, "max_instances", d.max_instances, &Parser::read_int);
  at_least(f, "min_instances", d.min_instances, 0);
  if (max_ok) {
    if (d.max_instances < 1) {
      if (const Entry* e = f.get("max_instances")) error(*e, "must be >= 1");
    } else if (d.min_instances > d.max_instances) {
      if (const Entry* e = f.get("max_instances")) {
        error(*e, "must be >= min_instances (" + std::to_string(d.min_instances) + ")");
      } else if (const Entry* m = f.get("min_instances")) {
        error(*m, "must be <= max_instances (" + std::to_string(d.max_instances) +
                      ", the default; raise max_instances too)");
      }
    }
  }

  if (const Entry* e = f.get("keep_alive")) {
    const std::string s = e->value.IsScalar() ? lower(trim(e->value.Scalar())) : "";
    if (s == "-1" || s == "forever") {
      d.keep_alive_s = DeploymentConfig::kKeepAliveForever;
    } else if (e->value.IsScalar() && parse_duration(s)) {
      d.keep_alive_s = *parse_duration(s);
    } else {
      error(*e, "must be " + std::string(kDurationUnitsHelp) +
                    ", or -1 / \"forever\" to never scale in, got " + describe(e->value));
    }
  }

  if (const Entry* e = f.get("sleep_after")) {
    const std::string s = e->value.IsScalar() ? lower(trim(e->value.Scalar())) : "";
    if (s == "-1" || s == "never") {
      d.sleep_after_s = DeploymentConfig::kNeverSleep;
    } else if (e->value.IsScalar() && parse_duration(s)) {
      d.sleep_after_s = *parse_duration(s);
      if (runtime_ok && d.runtime != RuntimeKind::kBuiltin)
        error(*e, "only local builtin workers can sleep (runtime: builtin); this runtime's instances cannot be put to sleep");
    } else {
      error(*e, "must be " + std::string(kDurationUnitsHelp) + ", or -1 / \"never\" to never sleep, got " +
                    describe(e->value));
    }
  } else if (d.runtime != RuntimeKind::kBuiltin) {
    d.sleep_after_s = DeploymentConfig::kNeverSleep;
  }

  if (optional_field(f, "slots", d.slots, &Parser::read_int)) at_least(f, "slots", d.slots, 1);
  if (optional_field(f, "ctx", d.ctx, &Parser::read_int)) at_least(f, "ctx", d.ctx, 16);
  if (optional_field(f, "threads", d.threads, &Parser::read_int)) at_least(f, "threads", d.threads, 0);
  if (optional_field(f, "max_queue", d.max_queue, &Parser::read_int)) at_least(f, "max_queue", d.max_queue, 0);
  if (optional_field(f, "request_timeout", d.request_timeout_s, &Parser::read_duration)) {
    greater_than(f, "request_timeout", d.request_timeout_s, 0);
  }
  optional_field(f, "start_timeout", d.start_timeout_s, &Parser::read_duration);
  optional_field(f, "priority", d.priority, &Parser::read_int);
  if (optional_field(f, "batch_max_instances", d.batch_max_instances, &Parser::read_int)) {
    at_least(f, "batch_max_instances", d.batch_max_instances, 0);
    if (const Entry* e = f.get("batch_max_instances"); e && d.batch_max_instances > d.max_instances)
      error(*e, "must be <= max_instances (" + std::to_string(d.max_instances) + ")");
  }
  optional_field(f, "ttft_objective", d.ttft_objective_s, &Parser::read_duration);
  optional_field(f, "matryoshka", d.matryoshka, &Parser::read_bool);
  if (optional_field(f, "max_image_tokens", d.max_image_tokens, &Parser::read_int))
    at_least(f, "max_image_tokens", d.max_image_tokens, 0);

  if (const Entry* e = f.get("speculative")) parse_speculative(*e, d);

  if (const Entry* e = f.get("memory")) {
    uint64_t bytes = 0;
    if (read_size(*e, bytes)) {
      if (bytes == 0) error(*e, "must be > 0 (leave it out to have it estimated)");
      d.memory_bytes = bytes;
    }
  }

  if (const Entry* e = f.get("device")) {
    if (read_string(*e, d.device) && !config.device(d.device)) {
      std::vector<std::string> names;
      for (const DeviceConfig& dev : config.devices) names.push_back(dev.name);
      error(*e, "no device named " + in_quotes(d.device) + "; devices: " + join(names, ", "));
      d.device.clear();
    }
  } else if (!config.devices.empty()) {
    d.device = config.devices.front().name;
  }
  if (d.memory_bytes && !d.device.empty()) {
    const DeviceConfig* dev = config.device(d.device);
    if (dev && dev->memory_bytes > 0 && *d.memory_bytes > dev->memory_bytes) {
      error(*f.get("memory"), format_bytes(*d.memory_bytes) + " does not fit device " + dev->name + " (" +
                                  format_bytes(dev->memory_bytes) + ")");
    }
  }

  if (const Entry* e = f.get("autoscale")) {
    parse_autoscale(*e, d.autoscale);
    if (d.autoscale.options.target_concurrency > d.slots) {
      warnings_.push_back(source_ + ":" + std::to_string(line) + ": " + path + ": autoscale.target_concurrency (" +
                          format_number(d.autoscale.options.target_concurrency) + ") exceeds slots (" +
                          std::to_string(d.slots) +
                          "): requests will wait inside busy instances before more instances start");
    }
  }

  if (const Entry* e = f.get("env")) {
    if (!e->value.IsMap()) {
      error(*e, "must be a map of VARIABLE: value, got " + describe(e->value));
    } else {
      for (auto it = e->value.begin(); it != e->value.end(); ++it) {
        const Entry var{it->first, it->second, e->path + "." + (it->first.IsScalar() ? it->first.Scalar() : "?"),
                        line_of(it->first)};
        if (!var.key.IsScalar() || var.key.Scalar().empty() || var.key.Scalar().find('=') != std::string::npos) {
          error(var, "not a valid environment variable name");
          continue;
        }
        if (d.env.count(var.key.Scalar())) {
          error(var, "duplicate variable");
          continue;
        }
        std::string value;
        if (var.value.IsNull()) {
          d.env[var.key.Scalar()] = "";
        } else if (read_string(var, value)) {
          d.env[var.key.Scalar()] = value;
        }
      }
    }
  }
  const Entry* min = f.get("min_instances");
  return min ? min->line : line;
}

void Parser::check_command(const Entry& e, const DeploymentConfig& d) {
  static const std::vector<std::string> kPlaceholders = {"{port}", "{model}", "{mmproj}", "{host}"};
  const std::string& c = d.command;
  if (trim(c).empty()) {
    error(e, "must not be empty");
    return;
  }
  for (size_t open = c.find('{'); open != std::string::npos; open = c.find('{', open + 1)) {
    const size_t close = c.find('}', open);
    if (close == std::string::npos) break;
    const std::string token = c.substr(open, close - open + 1);
    // Only word-like tokens are placeholders, so that JSON arguments ("{\"a\": 1}") pass.
    const bool word = std::all_of(token.begin() + 1, token.end() - 1,
                                  [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; });
    if (!word || token.size() < 3) continue;
    if (std::find(kPlaceholders.begin(), kPlaceholders.end(), token) == kPlaceholders.end()) {
      error(e, "unknown placeholder " + token + "; known: " + join(kPlaceholders, ", "));
    }
  }
  if (c.find("{port}") == std::string::npos) {
    error(e, "must contain {port}: the gateway picks the port each instance listens on");
  }
  if (c.find("{model}") != std::string::npos && d.model.empty()) error(e, "uses {model} but model is not set");
  if (c.find("{mmproj}") != std::string::npos && d.mmproj.empty()) error(e, "uses {mmproj} but mmproj is not set");
}

namespace {

// The YAML name of each policy knob; durations take units ("30s", "5m").
struct PolicyKnob {
  const char* name;
  double PolicyOptions::*field;
  bool duration;
};

constexpr PolicyKnob kPolicyKnobs[] = {
    {"target_concurrency", &PolicyOptions::target_concurrency, false},
    {"evaluation_interval", &PolicyOptions::evaluation_interval_s, true},
    {"prewarm_lead", &PolicyOptions::prewarm_lead_s, true},
    {"stable_window", &PolicyOptions::stable_window_s, true},
    {"panic_window", &PolicyOptions::panic_window_s, true},
    {"panic_threshold", &PolicyOptions::panic_threshold, false},
    {"scale_down_delay", &PolicyOptions::scale_down_delay_s, true},
    {"max_scale_up_rate", &PolicyOptions::max_scale_up_rate, false},
    {"max_scale_down_rate", &PolicyOptions::max_scale_down_rate, false},
    {"rules_queue_threshold", &PolicyOptions::rules_queue_threshold, false},
    {"rules_queue_window", &PolicyOptions::rules_queue_window_s, true},
    {"rules_high_utilization", &PolicyOptions::rules_high_utilization, false},
    {"rules_high_for", &PolicyOptions::rules_high_for_s, true},
    {"rules_ttft_factor", &PolicyOptions::rules_ttft_factor, false},
    {"rules_scale_out_fraction", &PolicyOptions::rules_scale_out_fraction, false},
    {"rules_scale_out_cooldown", &PolicyOptions::rules_scale_out_cooldown_s, true},
    {"rules_low_utilization", &PolicyOptions::rules_low_utilization, false},
    {"rules_scale_in_fraction", &PolicyOptions::rules_scale_in_fraction, false},
    {"rules_scale_in_interval", &PolicyOptions::rules_scale_in_interval_s, true},
    {"rules_warm_fraction", &PolicyOptions::rules_warm_fraction, false},
    {"histogram_bin", &PolicyOptions::histogram_bin_s, true},
    {"histogram_range", &PolicyOptions::histogram_range_s, true},
    {"histogram_head_percentile", &PolicyOptions::histogram_head_percentile, false},
    {"histogram_tail_percentile", &PolicyOptions::histogram_tail_percentile, false},
    {"histogram_margin", &PolicyOptions::histogram_margin, false},
    {"histogram_cv_threshold", &PolicyOptions::histogram_cv_threshold, false},
    {"histogram_min_samples", &PolicyOptions::histogram_min_samples, false},
    {"histogram_max_oob_fraction", &PolicyOptions::histogram_max_oob_fraction, false},
    {"hybrid_cold_start_cost", &PolicyOptions::hybrid_cold_start_cost_s, true},
    {"hybrid_scale_in_delay", &PolicyOptions::hybrid_scale_in_delay_s, true},
    {"hybrid_range", &PolicyOptions::hybrid_range_s, true},
    {"predictive_threshold", &PolicyOptions::predictive_threshold, false},
    {"predictive_history_weight", &PolicyOptions::predictive_history_weight, false},
    {"predictive_min_weeks", &PolicyOptions::predictive_min_weeks, false},
};

}  // namespace

void Parser::parse_autoscale(const Entry& e, AutoscaleConfig& a) {
  std::vector<std::string_view> keys{"policy"};
  for (const PolicyKnob& k : kPolicyKnobs) keys.push_back(k.name);
  Fields f(*this, e.value, e.path, keys);
  if (const Entry* p = f.get("policy"); p && read_string(*p, a.policy)) {
    const auto& known = known_autoscale_policies();
    if (std::find(known.begin(), known.end(), a.policy) == known.end()) {
      error(*p, "unknown policy " + in_quotes(a.policy) + "; known: " + join(known, ", "));
    }
  }
  bool all_read = true;
  for (const PolicyKnob& k : kPolicyKnobs)
    all_read &= optional_field(f, k.name, a.options.*k.field, k.duration ? &Parser::read_duration : &Parser::read_double);
  if (!all_read) return;
  core::Status st = validate_policy_options(a.options);
  if (st) return;
  // The check names the C++ field; point at the YAML key the user wrote.
  std::string message = st.message();
  const std::string prefix = "autoscale option ";
  if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
  for (const PolicyKnob& k : kPolicyKnobs) {
    if (!k.duration) continue;
    const std::string field = std::string(k.name) + "_s";
    for (size_t pos; (pos = message.find(field)) != std::string::npos;) message.replace(pos, field.size(), k.name);
  }
  // "panic_window must be ..." is reported at the panic_window line when the file sets it.
  const std::string name = message.substr(0, message.find(' '));
  if (const Entry* at = f.get(name)) return error(*at, message.substr(name.size() + 1));
  error(e, message);
}

void Parser::parse_speculative(const Entry& e, DeploymentConfig& d) {
  static const std::vector<std::string> kMethods = {"prompt-lookup", "draft-model"};
  auto method = [&](const Entry& at, const std::string& m) {
    if (m == "off" || m == "none" || m == "false") {
      d.speculative.clear();
    } else if (std::find(kMethods.begin(), kMethods.end(), m) != kMethods.end()) {
      d.speculative = m;
    } else {
      std::string message = "unknown method " + in_quotes(m) + "; known: " + join(kMethods, ", ") + ", or off";
      if (auto near = suggest(m, {kMethods.begin(), kMethods.end()})) message += " (did you mean " + *near + "?)";
      error(at, message);
    }
  };
  if (e.value.IsScalar()) {
    std::string m;
    if (read_string(e, m)) method(e, lower(trim(m)));
    if (d.speculative == "draft-model")
      error(e, "draft-model needs a map: {method: draft-model, draft_model: small.gguf}");
  } else {
    Fields f(*this, e.value, e.path, {"method", "draft_model", "draft_tokens"});
    optional_field(f, "draft_model", d.draft_model, &Parser::read_model);
    if (const Entry* me = f.get("method")) {
      std::string m;
      if (read_string(*me, m)) method(*me, lower(trim(m)));
    } else {
      d.speculative = d.draft_model.empty() ? "prompt-lookup" : "draft-model";
    }
    if (d.speculative == "draft-model" && d.draft_model.empty())
      error(e, "method draft-model needs draft_model: the path of a smaller GGUF with the same vocabulary");
    if (d.speculative != "draft-model" && !d.draft_model.empty()) {
      if (const Entry* dm = f.get("draft_model")) error(*dm, "only used with method: draft-model");
    }
    if (optional_field(f, "draft_tokens", d.draft_tokens, &Parser::read_int)) {
      if (const Entry* t = f.get("draft_tokens"); t && (d.draft_tokens < 1 || d.draft_tokens > 16))
        error(*t, "must be between 1 and 16, got " + std::to_string(d.draft_tokens));
    }
  }
  if (!d.speculative.empty() && d.runtime != RuntimeKind::kBuiltin)
    error(e, "only for the builtin runtime (a command's server has its own settings)");
}

}  // namespace

const std::vector<std::string>& known_autoscale_policies() { return scaling_policy_names(); }

std::string_view request_class_name(RequestClass c) { return c == RequestClass::kBatch ? "batch" : "interactive"; }

std::optional<RequestClass> parse_request_class(std::string_view name) {
  if (name == "interactive") return RequestClass::kInteractive;
  if (name == "batch") return RequestClass::kBatch;
  return std::nullopt;
}

const DeploymentConfig* Config::find(std::string_view name) const {
  for (const DeploymentConfig& d : deployments) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

const DeviceConfig* Config::device(std::string_view name) const {
  for (const DeviceConfig& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

ConfigEnvironment ConfigEnvironment::system() {
  ConfigEnvironment env;
  env.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) {
    env.physical_memory_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }
  return env;
}

core::Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name,
                                  const std::string& base_dir, const ConfigEnvironment& env) {
  // Exceptions do not cross layers: yaml-cpp signals even odd node shapes by throwing.
  try {
    return Parser(source_name, base_dir, env).parse(yaml_text);
  } catch (const std::exception& ex) {
    return core::Status::invalid_argument(source_name + ": cannot read the configuration: " + ex.what());
  }
}

core::Result<Config> parse_config(const std::string& yaml_text, const std::string& source_name,
                                  const std::string& base_dir) {
  return parse_config(yaml_text, source_name, base_dir, ConfigEnvironment::system());
}

core::Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    const std::string message = "cannot read configuration " + path + ": ";
    return exists ? core::Status::error(message + "permission denied or not a file")
                  : core::Status::not_found(message + "no such file");
  }
  std::stringstream text;
  text << in.rdbuf();
  // Absolute, so that resolved model paths survive a later change of working directory.
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  const std::string base_dir = (ec ? fs::path(path) : absolute).parent_path().lexically_normal().string();
  auto config = parse_config(text.str(), path, base_dir);
  if (!config.is_ok()) return config;
  ZS_RETURN_IF_ERROR(validate_files(*config));
  return config;
}

core::Status validate_files(const Config& config) {
  std::vector<std::string> errors;
  bool all_missing = true;  // then the error is kNotFound, else the paths are wrong in another way
  for (size_t i = 0; i < config.deployments.size(); ++i) {
    const DeploymentConfig& d = config.deployments[i];
    auto check = [&](const std::string& field, const std::string& path, bool directory_ok) {
      if (path.empty() || is_model_ref(path)) return;  // a hub name: pulled at the first start
      std::error_code ec;
      const auto status = fs::status(path, ec);
      std::string problem;
      if (!fs::exists(status)) {
        problem = "no such file: " + path;
      } else if (fs::is_directory(status) && !directory_ok) {
        problem = path + " is a directory, not a GGUF file";
      } else if (!fs::is_directory(status) && !std::ifstream(path, std::ios::binary)) {
        problem = "cannot read " + path + " (permission denied?)";
      }
      if (problem.empty()) return;
      all_missing &= !fs::exists(status);
      std::string where = config.source;
      if (d.source_line > 0) where += ":" + std::to_string(d.source_line);
      errors.push_back(where + ": deployments[" + std::to_string(i) + "]." + field + " (" + d.name + "): " + problem);
    };
    check("model", d.model, d.runtime == RuntimeKind::kCommand);
    check("mmproj", d.mmproj, false);
  }
  if (!errors.empty())
    return all_missing ? core::Status::not_found(join(errors, "\n")) : core::Status::invalid_argument(join(errors, "\n"));
  return core::Status::ok();
}

}  // namespace zs::platform
