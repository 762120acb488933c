#include "sim/policy_spec.h"

#include <charconv>
#include <sstream>

#include "platform/config/units.h"

namespace zs::sim {

using core::Status;

core::Result<PolicySpec> parse_policy_spec(const std::string& text) {
  PolicySpec s;
  std::string rest = text;
  const auto eq = rest.find('=');
  const auto colon = rest.find(':');
  if (eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
    s.label = rest.substr(0, eq);
    rest = rest.substr(eq + 1);
  }
  const auto c = rest.find(':');
  s.policy = rest.substr(0, c);
  if (s.policy.empty()) return Status::error("--policy '" + text + "': no policy name");
  if (s.label.empty()) s.label = c == std::string::npos ? s.policy : text;
  if (c != std::string::npos) {
    std::stringstream ss(rest.substr(c + 1));
    std::string item;
    while (std::getline(ss, item, ',')) {
      const auto e = item.find('=');
      if (e == std::string::npos) return Status::error("--policy '" + text + "': '" + item + "' is not key=value");
      const std::string key = item.substr(0, e), value = item.substr(e + 1);
      if (key == "keep_alive") {
        if (value == "-1" || value == "forever") {
          s.keep_alive_s = -1;
        } else {
          auto d = platform::parse_duration(value);
          if (!d) return Status::error("--policy '" + text + "': keep_alive must be " + std::string(platform::kDurationUnitsHelp) + " or forever");
          s.keep_alive_s = *d;
        }
      } else if (key == "sleep_after") {
        if (value == "-1" || value == "never") {
          s.sleep_after_s = -1;
        } else {
          auto d = platform::parse_duration(value);
          if (!d) return Status::error("--policy '" + text + "': sleep_after must be " + std::string(platform::kDurationUnitsHelp) + " or never");
          s.sleep_after_s = *d;
        }
      } else if (key == "target_concurrency") {
        double v = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || p != value.data() + value.size() || v < 0)
          return Status::error("--policy '" + text + "': target_concurrency must be a number >= 0");
        s.target_concurrency = v;
      } else if (key == "min_instances" || key == "max_instances") {
        int v = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
        if (ec != std::errc() || p != value.data() + value.size() || v < 0)
          return Status::error("--policy '" + text + "': " + key + " must be an integer >= 0");
        (key == "min_instances" ? s.min_instances : s.max_instances) = v;
      } else {
        return Status::error("--policy '" + text + "': unknown key '" + key +
                             "' (known: keep_alive, sleep_after, target_concurrency, min_instances, max_instances)");
      }
    }
  }
  if (!s.always_on()) {
    auto p = platform::make_scaling_policy(s.policy, {});
    if (!p) return Status::error("--policy '" + text + "': " + p.status().message() + "; the simulator also has " + kAlwaysOn);
  }
  return s;
}

std::vector<PolicySpec> default_policy_specs(std::vector<std::string>* unavailable) {
  std::vector<PolicySpec> out;
  PolicySpec always;
  always.label = always.policy = kAlwaysOn;
  out.push_back(always);
  // The classic serverless baseline: keep every instance ten minutes after its last request.
  PolicySpec keep;
  keep.label = "keep-alive-10m";
  // "fixed" is that policy where the platform has it (scale out on demand, in after keep_alive).
  keep.policy = platform::make_scaling_policy("fixed", {}) ? "fixed" : "concurrency";
  keep.keep_alive_s = 600;
  out.push_back(keep);
  for (const char* name : {platform::kDefaultScalingPolicy, "concurrency", "rules", "histogram", "predictive"}) {
    if (platform::make_scaling_policy(name, {})) {
      PolicySpec s;
      s.label = s.policy = name;
      out.push_back(s);
    } else if (unavailable) {
      unavailable->push_back(name);
    }
  }
  return out;
}

}  // namespace zs::sim
