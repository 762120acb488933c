#include "sim/calibration.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace zs::sim {

using core::Status;
using nlohmann::json;

namespace {
constexpr const char* kFormat = "zeroserve-calibration/1";
}

double ServiceProfile::decode_rate(int batch) const {
  if (decode.empty()) return 1;
  if (batch <= decode.front().first) return decode.front().second * batch / decode.front().first;
  for (size_t i = 1; i < decode.size(); ++i) {
    if (batch <= decode[i].first) {
      const auto [b0, r0] = decode[i - 1];
      const auto [b1, r1] = decode[i];
      return r0 + (r1 - r0) * (batch - b0) / static_cast<double>(b1 - b0);
    }
  }
  return decode.back().second;
}

double Spread::at(double u) const {
  const auto& q = quantiles;
  if (q.size() < 2) return q.empty() ? 0 : q.front();
  const double x = std::clamp(u, 0.0, 1.0) * static_cast<double>(q.size() - 1);
  const size_t i = std::min(static_cast<size_t>(x), q.size() - 2);
  return q[i] + (q[i + 1] - q[i]) * (x - static_cast<double>(i));
}

namespace {

Status validate_spread(const Spread& s, const std::string& what) {
  for (size_t i = 0; i < s.quantiles.size(); ++i) {
    const double v = s.quantiles[i];
    if (!(v >= 0) || !std::isfinite(v)) return Status::error(what + " must be numbers >= 0");
    if (i > 0 && v < s.quantiles[i - 1]) return Status::error(what + ": quantiles must not descend");
  }
  return Status::ok();
}

json spread_json(const Spread& s) {
  if (s.quantiles.size() == 1) return s.quantiles.front();
  return s.quantiles.empty() ? json(0) : json(s.quantiles);
}

}  // namespace

Status ServiceProfile::validate(const std::string& where) const {
  ZS_RETURN_IF_ERROR(validate_spread(cold_start_s, where + ".cold_start_s"));
  if (!(stop_s >= 0) || !std::isfinite(stop_s)) return Status::error(where + ".stop_s must be a number >= 0");
  if (!(wake_s >= 0) || !std::isfinite(wake_s)) return Status::error(where + ".wake_s must be a number >= 0");
  ZS_RETURN_IF_ERROR(validate_spread(request_overhead_s, where + ".request_overhead_s"));
  if (!(prefill_tokens_per_s > 0)) return Status::error(where + ".prefill_tokens_per_s must be > 0");
  if (memory_bytes == 0) return Status::error(where + ".memory_bytes must be > 0");
  if (decode.empty()) return Status::error(where + ".decode_tokens_per_s needs at least one [batch, tokens_per_s] entry");
  for (size_t i = 0; i < decode.size(); ++i) {
    if (decode[i].first < 1 || !(decode[i].second > 0))
      return Status::error(where + ".decode_tokens_per_s[" + std::to_string(i) + "]: batch must be >= 1 and tokens_per_s > 0");
    if (i > 0 && decode[i].first <= decode[i - 1].first)
      return Status::error(where + ".decode_tokens_per_s: batch sizes must ascend");
  }
  return Status::ok();
}

const ServiceProfile& Calibration::profile_for(const std::string& device_name, const std::string& device_kind) const {
  for (const std::string& key : {device_name, device_kind, std::string("default")}) {
    auto it = profiles.find(key);
    if (it != profiles.end()) return it->second;
  }
  return profiles.begin()->second;
}

std::string Calibration::to_json() const {
  json j;
  j["format"] = kFormat;
  j["source"] = source;
  json p = json::object();
  for (const auto& [name, prof] : profiles) {
    json d = json::array();
    for (const auto& [b, r] : prof.decode) d.push_back({b, r});
    p[name] = {{"cold_start_s", spread_json(prof.cold_start_s)},
               {"stop_s", prof.stop_s},
               {"wake_s", prof.wake_s},
               {"request_overhead_s", spread_json(prof.request_overhead_s)},
               {"prefill_tokens_per_s", prof.prefill_tokens_per_s},
               {"memory_bytes", prof.memory_bytes},
               {"decode_tokens_per_s", d}};
  }
  j["profiles"] = p;
  return j.dump(2) + "\n";
}

Calibration Calibration::builtin() {
  Calibration c;
  c.source = "zeroserve built-in figures: a ~1B-parameter Q4 model on 4-8 CPU cores (warm page cache); "
             "cuda: an H100-class GPU with a ~8B model";
  ServiceProfile cpu;
  cpu.cold_start_s = 0.1;
  cpu.stop_s = 0.02;  // the worker's exit (the daemon sees it at once, through its pidfd)
  cpu.wake_s = 0.0005;  // threads back, cache pages faulted in as used (bench_gateway)
  cpu.request_overhead_s = 0.003;  // a warm tiny model's time to first token through serve
  cpu.prefill_tokens_per_s = 700;
  cpu.memory_bytes = 1ull << 30;
  cpu.decode = {{1, 15}, {2, 22}, {4, 28}, {8, 34}, {16, 40}};
  c.profiles["cpu"] = cpu;
  ServiceProfile gpu;
  gpu.cold_start_s = 8;  // weights from the page cache into GPU memory, CUDA context, graphs
  gpu.stop_s = 1;        // releasing the CUDA context and device memory
  gpu.wake_s = 0.3;      // weights back from host memory into the GPU (vLLM's sleep mode: 0.1-0.4 s)
  gpu.request_overhead_s = 0.003;  // the same HTTP path
  gpu.prefill_tokens_per_s = 12000;
  gpu.memory_bytes = 20ull << 30;
  gpu.decode = {{1, 90}, {8, 600}, {32, 1800}, {64, 2600}};
  c.profiles["cuda"] = gpu;
  return c;
}

core::Result<Calibration> parse_calibration(const std::string& text, const std::string& source_name) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::error(source_name + ": not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat)
    return Status::error(source_name + ": \"format\" must be \"" + kFormat + "\"");
  if (!j.contains("profiles") || !j["profiles"].is_object() || j["profiles"].empty())
    return Status::error(source_name + ": \"profiles\" must be an object with at least one profile");
  Calibration c;
  c.source = j.value("source", source_name);
  for (const auto& [name, p] : j["profiles"].items()) {
    const std::string where = source_name + ": profiles." + name;
    if (!p.is_object()) return Status::error(where + " must be an object");
    for (const auto& [k, v] : p.items())
      if (k != "cold_start_s" && k != "stop_s" && k != "wake_s" && k != "request_overhead_s" &&
          k != "prefill_tokens_per_s" && k != "memory_bytes" && k != "decode_tokens_per_s")
        return Status::error(where + ": unknown key '" + k +
                             "' (known: cold_start_s, stop_s, wake_s, request_overhead_s, prefill_tokens_per_s, "
                             "memory_bytes, decode_tokens_per_s)");
    ServiceProfile prof;
    auto num = [&](const char* key, double& out) -> Status {
      if (!p.contains(key)) return Status::ok();
      if (!p[key].is_number()) return Status::error(where + "." + key + " must be a number");
      out = p[key].get<double>();
      return Status::ok();
    };
    ZS_RETURN_IF_ERROR(num("stop_s", prof.stop_s));
    ZS_RETURN_IF_ERROR(num("wake_s", prof.wake_s));
    ZS_RETURN_IF_ERROR(num("prefill_tokens_per_s", prof.prefill_tokens_per_s));
    auto spread = [&](const char* key, Spread& out) -> Status {
      if (!p.contains(key)) return Status::ok();
      const json& o = p[key];
      out.quantiles.clear();
      if (o.is_number()) {
        out.quantiles.push_back(o.get<double>());
      } else if (o.is_array() && !o.empty()) {
        for (const auto& v : o) {
          if (!v.is_number()) return Status::error(where + "." + key + ": every quantile must be a number");
          out.quantiles.push_back(v.get<double>());
        }
      } else {
        return Status::error(where + "." + key + " must be a number or a non-empty list of quantiles");
      }
      return Status::ok();
    };
    ZS_RETURN_IF_ERROR(spread("cold_start_s", prof.cold_start_s));
    ZS_RETURN_IF_ERROR(spread("request_overhead_s", prof.request_overhead_s));
    double mem = static_cast<double>(prof.memory_bytes);
    ZS_RETURN_IF_ERROR(num("memory_bytes", mem));
    if (mem < 1) return Status::error(where + ".memory_bytes must be > 0");
    prof.memory_bytes = static_cast<uint64_t>(mem);
    if (!p.contains("decode_tokens_per_s") || !p["decode_tokens_per_s"].is_array())
      return Status::error(where + ".decode_tokens_per_s must be a list of [batch, tokens_per_s]");
    for (const auto& e : p["decode_tokens_per_s"]) {
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer() || !e[1].is_number())
        return Status::error(where + ".decode_tokens_per_s: each entry must be [batch, tokens_per_s]");
      prof.decode.emplace_back(e[0].get<int>(), e[1].get<double>());
    }
    ZS_RETURN_IF_ERROR(prof.validate(where));
    c.profiles[name] = prof;
  }
  return c;
}

core::Result<Calibration> load_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error("cannot open calibration file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return parse_calibration(s.str(), path);
}

}  // namespace zs::sim
