#include "sim/trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "platform/config/units.h"
#include "sim/random.h"

namespace zs::sim {
namespace {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

Status row_error(const std::string& path, size_t line, const std::string& what) {
  return Status::error(path + ":" + std::to_string(line) + ": " + what);
}

core::Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error("cannot open trace " + path + (fs::exists(path) ? " (permission denied)" : " (no such file)"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Splits text into lines (\n or \r\n) without copying; the last line may lack its newline.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

void split_fields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t pos = 0;
  for (;;) {
    size_t c = line.find(',', pos);
    if (c == std::string_view::npos) {
      out.push_back(line.substr(pos));
      return;
    }
    out.push_back(line.substr(pos, c - pos));
    pos = c + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_u64(std::string_view s, uint64_t& v) {
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_double(std::string_view s, double& v) {
  s = trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && std::isfinite(v);
}

bool parse_tokens(std::string_view s, uint32_t& v) {
  uint64_t u = 0;
  if (!parse_u64(s, u) || u > 10'000'000) return false;
  v = static_cast<uint32_t>(u);
  return true;
}

// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// "YYYY-MM-DD HH:MM:SS[.fffffff]" -> seconds since the Unix epoch.
bool parse_timestamp(std::string_view s, double& out) {
  s = trim(s);
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
    return false;
  uint64_t y, mo, d, h, mi;
  if (!parse_u64(s.substr(0, 4), y) || !parse_u64(s.substr(5, 2), mo) || !parse_u64(s.substr(8, 2), d) ||
      !parse_u64(s.substr(11, 2), h) || !parse_u64(s.substr(14, 2), mi))
    return false;
  double sec = 0;
  if (!parse_double(s.substr(17), sec)) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61) return false;
  out = static_cast<double>(days_from_civil(static_cast<int64_t>(y), static_cast<unsigned>(mo),
                                            static_cast<unsigned>(d))) * 86400.0 +
        h * 3600.0 + mi * 60.0 + sec;
  return true;
}

// Sorts by arrival (stable: rows at the same time keep file order) and moves the start to 0.
void finish(Trace& t, double origin, double span_floor = 0) {
  std::stable_sort(t.requests.begin(), t.requests.end(),
                   [](const TraceRequest& a, const TraceRequest& b) { return a.arrival_s < b.arrival_s; });
  for (auto& r : t.requests) r.arrival_s -= origin;
  const double last = t.requests.empty() ? 0 : t.requests.back().arrival_s;
  // A looped trace needs a gap after its last request, or its last and first would coincide.
  t.span_s = std::max(span_floor, std::nextafter(last, 1e300) + (t.requests.size() > 1 ? last / (t.requests.size() - 1) : 1.0));
}

Status check_header(const std::string& path, const std::vector<std::string_view>& lines,
                    const std::vector<std::string>& expected) {
  if (lines.empty()) return Status::error(path + ": empty trace file");
  std::vector<std::string_view> f;
  split_fields(lines[0], f);
  bool ok = f.size() >= expected.size();
  for (size_t i = 0; ok && i < expected.size(); ++i) ok = trim(f[i]) == expected[i];
  if (ok) return Status::ok();
  std::string want;
  for (const auto& e : expected) want += (want.empty() ? "" : ",") + e;
  return row_error(path, 1, "expected the header '" + want + "', found '" + std::string(lines[0].substr(0, 120)) + "'");
}

}  // namespace

Result<Trace> read_azure_llm_csv(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text.status();
  const auto lines = split_lines(text.value());
  ZS_RETURN_IF_ERROR(check_header(path, lines, {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}));
  Trace t;
  t.name = path;
  t.format = "azure-llm-2023";
  t.requests.reserve(lines.size());
  std::vector<std::string_view> f;
  double origin = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    split_fields(lines[i], f);
    if (f.size() != 3) return row_error(path, i + 1, "expected 3 fields (TIMESTAMP,ContextTokens,GeneratedTokens), found " + std::to_string(f.size()));
    TraceRequest r;
    if (!parse_timestamp(f[0], r.arrival_s))
      return row_error(path, i + 1, "TIMESTAMP '" + std::string(f[0]) + "' is not YYYY-MM-DD HH:MM:SS.fffffff");
    if (!parse_tokens(f[1], r.prompt_tokens)) return row_error(path, i + 1, "ContextTokens '" + std::string(f[1]) + "' is not a token count");
    if (!parse_tokens(f[2], r.output_tokens)) return row_error(path, i + 1, "GeneratedTokens '" + std::string(f[2]) + "' is not a token count");
    if (t.requests.empty()) origin = r.arrival_s;
    origin = std::min(origin, r.arrival_s);
    t.requests.push_back(r);
  }
  finish(t, origin);
  t.origin_unix_s = origin;
  return t;
}

Result<Trace> read_azure_functions_2019(const std::string& path_in, const TraceOptions& options) {
  std::string path = path_in;
  if (fs::is_directory(path)) {
    // The In-Vitro subsets: <dir>/1000_inv.csv, <dir>/invocations.csv, or one level further down.
    std::vector<std::string> found;
    for (const char* name : {"invocations.csv", "1000_inv.csv"})
      if (fs::exists(fs::path(path) / name)) found.push_back((fs::path(path) / name).string());
    if (found.empty()) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(path, ec)) {
        if (!e.is_directory()) continue;
        for (const char* name : {"invocations.csv", "1000_inv.csv"})
          if (fs::exists(e.path() / name)) found.push_back((e.path() / name).string());
      }
      std::sort(found.begin(), found.end());
    }
    if (found.empty()) return Status::error(path + ": no invocations.csv or *_inv.csv in this folder or its subfolders");
    path = found.front();
  }
  auto text = read_text(path);
  if (!text) return text.status();
  const auto lines = split_lines(text.value());
  if (lines.empty()) return Status::error(path + ": empty trace file");
  std::vector<std::string_view> header;
  split_fields(lines[0], header);
  // Minute columns are "minute_N" (1000_inv.csv) or a bare minute number (invocations.csv).
  std::vector<size_t> minute_cols;
  std::vector<int64_t> minutes;
  for (size_t c = 0; c < header.size(); ++c) {
    std::string_view h = trim(header[c]);
    if (h.rfind("minute_", 0) == 0) h.remove_prefix(7);
    uint64_t m = 0;
    if (parse_u64(h, m)) {
      minute_cols.push_back(c);
      minutes.push_back(static_cast<int64_t>(m));
    }
  }
  if (minute_cols.empty() || std::find(header.begin(), header.end(), "HashFunction") == header.end())
    return row_error(path, 1, "not an Azure Functions 2019 invocation file: expected HashFunction and per-minute columns (minute_1.. or 480..)");
  const int64_t first_minute = *std::min_element(minutes.begin(), minutes.end());
  const int64_t last_minute = *std::max_element(minutes.begin(), minutes.end());
  Trace t;
  t.name = path;
  t.format = "azure-functions-2019";
  std::vector<std::string_view> f;
  uint32_t stream = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    split_fields(lines[i], f);
    if (f.size() != header.size())
      return row_error(path, i + 1, "expected " + std::to_string(header.size()) + " fields, found " + std::to_string(f.size()));
    // Arrivals inside a minute are spread uniformly at random: the trace keeps only counts.
    Random rng(options.seed * 0x9E3779B97F4A7C15ull + stream + 1);
    for (size_t k = 0; k < minute_cols.size(); ++k) {
      uint64_t n = 0;
      if (!parse_u64(f[minute_cols[k]], n))
        return row_error(path, i + 1, "column " + std::string(header[minute_cols[k]]) + ": '" + std::string(f[minute_cols[k]]) + "' is not an invocation count");
      const double base = (minutes[k] - first_minute) * 60.0;
      for (uint64_t j = 0; j < n; ++j)
        t.requests.push_back({base + 60.0 * rng.uniform(), stream, options.default_prompt_tokens, options.default_output_tokens});
    }
    ++stream;
  }
  t.streams = std::max<uint32_t>(1, stream);
  finish(t, 0, (last_minute - first_minute + 1) * 60.0);
  t.span_s = (last_minute - first_minute + 1) * 60.0;
  return t;
}

Result<Trace> read_azure_functions_2021(const std::string& path, const TraceOptions& options) {
  auto text = read_text(path);
  if (!text) return text.status();
  const auto lines = split_lines(text.value());
  ZS_RETURN_IF_ERROR(check_header(path, lines, {"app", "func", "end_timestamp", "duration"}));
  Trace t;
  t.name = path;
  t.format = "azure-functions-2021";
  std::map<std::pair<std::string, std::string>, uint32_t> ids;
  std::vector<std::string_view> f;
  double origin = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    split_fields(lines[i], f);
    if (f.size() != 4) return row_error(path, i + 1, "expected 4 fields (app,func,end_timestamp,duration), found " + std::to_string(f.size()));
    double end = 0, duration = 0;
    if (!parse_double(f[2], end) || end < 0) return row_error(path, i + 1, "end_timestamp '" + std::string(f[2]) + "' is not a number of seconds");
    if (!parse_double(f[3], duration) || duration < 0) return row_error(path, i + 1, "duration '" + std::string(f[3]) + "' is not a number of seconds");
    auto key = std::make_pair(std::string(trim(f[0])), std::string(trim(f[1])));
    auto [it, inserted] = ids.emplace(key, static_cast<uint32_t>(ids.size()));
    // Invocations are recorded when they end; they arrived `duration` earlier.
    TraceRequest r{end - duration, it->second, options.default_prompt_tokens, options.default_output_tokens};
    origin = t.requests.empty() ? r.arrival_s : std::min(origin, r.arrival_s);
    t.requests.push_back(r);
  }
  t.streams = std::max<uint32_t>(1, static_cast<uint32_t>(ids.size()));
  finish(t, origin);
  return t;
}

Result<Trace> read_burstgpt_csv(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text.status();
  const auto lines = split_lines(text.value());
  ZS_RETURN_IF_ERROR(check_header(path, lines, {"Timestamp", "Model", "Request tokens", "Response tokens"}));
  Trace t;
  t.name = path;
  t.format = "burstgpt";
  std::map<std::string, uint32_t> models;
  std::vector<std::string_view> f;
  double origin = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    split_fields(lines[i], f);
    if (f.size() < 4) return row_error(path, i + 1, "expected at least 4 fields (Timestamp,Model,Request tokens,Response tokens), found " + std::to_string(f.size()));
    TraceRequest r;
    if (!parse_double(f[0], r.arrival_s) || r.arrival_s < 0) return row_error(path, i + 1, "Timestamp '" + std::string(f[0]) + "' is not a number of seconds");
    if (trim(f[1]).empty()) return row_error(path, i + 1, "Model is empty");
    if (!parse_tokens(f[2], r.prompt_tokens)) return row_error(path, i + 1, "Request tokens '" + std::string(f[2]) + "' is not a token count");
    if (!parse_tokens(f[3], r.output_tokens)) return row_error(path, i + 1, "Response tokens '" + std::string(f[3]) + "' is not a token count");
    // Response tokens 0 marks a failed request upstream: it never reached a model.
    if (r.output_tokens == 0) {
      ++t.skipped;
      continue;
    }
    auto [it, inserted] = models.emplace(std::string(trim(f[1])), static_cast<uint32_t>(models.size()));
    r.stream = it->second;
    origin = t.requests.empty() ? r.arrival_s : std::min(origin, r.arrival_s);
    t.requests.push_back(r);
  }
  t.streams = std::max<uint32_t>(1, static_cast<uint32_t>(models.size()));
  finish(t, origin);
  return t;
}

Result<Trace> read_mooncake_jsonl(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text.status();
  const auto lines = split_lines(text.value());
  Trace t;
  t.name = path;
  t.format = "mooncake";
  t.requests.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    auto j = nlohmann::json::parse(lines[i], nullptr, false);
    if (j.is_discarded() || !j.is_object()) return row_error(path, i + 1, "not a JSON object");
    auto number = [&](const char* key, double& out) -> Status {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number() || it->get<double>() < 0)
        return row_error(path, i + 1, std::string("field '") + key + "' is missing or not a non-negative number");
      out = it->get<double>();
      return Status::ok();
    };
    double ts = 0, in = 0, out = 0;
    ZS_RETURN_IF_ERROR(number("timestamp", ts));
    ZS_RETURN_IF_ERROR(number("input_length", in));
    ZS_RETURN_IF_ERROR(number("output_length", out));
    t.requests.push_back({ts / 1000.0, 0, static_cast<uint32_t>(in), static_cast<uint32_t>(out)});
  }
  if (t.requests.empty()) return Status::error(path + ": no requests in the trace");
  finish(t, std::min_element(t.requests.begin(), t.requests.end(), [](auto& a, auto& b) { return a.arrival_s < b.arrival_s; })->arrival_s);
  return t;
}

Result<Trace> make_synthetic(const std::string& spec, const TraceOptions& options) {
  // spec: "<shape>:key=value,key=value"
  const auto colon = spec.find(':');
  const std::string shape = spec.substr(0, colon);
  std::map<std::string, std::string> kv;
  if (colon != std::string::npos) {
    std::stringstream ss(spec.substr(colon + 1));
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      auto eq = item.find('=');
      if (eq == std::string::npos) return Status::error("synthetic trace '" + spec + "': '" + item + "' is not key=value");
      kv[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  std::map<std::string, double> v;
  auto take_number = [&](const std::string& key, double def) -> Status {
    auto it = kv.find(key);
    if (it == kv.end()) {
      v[key] = def;
      return Status::ok();
    }
    double d = 0;
    if (!parse_double(it->second, d) || d < 0) return Status::error("synthetic trace '" + spec + "': " + key + " must be a non-negative number");
    v[key] = d;
    kv.erase(it);
    return Status::ok();
  };
  auto take_duration = [&](const std::string& key, double def) -> Status {
    auto it = kv.find(key);
    if (it == kv.end()) {
      v[key] = def;
      return Status::ok();
    }
    auto d = platform::parse_duration(it->second);
    if (!d) return Status::error("synthetic trace '" + spec + "': " + key + " must be " + std::string(platform::kDurationUnitsHelp));
    v[key] = *d;
    kv.erase(it);
    return Status::ok();
  };
  ZS_RETURN_IF_ERROR(take_number("rate", 1));
  ZS_RETURN_IF_ERROR(take_duration("duration", 3600));
  ZS_RETURN_IF_ERROR(take_number("prompt", options.default_prompt_tokens));
  ZS_RETURN_IF_ERROR(take_number("output", options.default_output_tokens));
  if (shape == "bursty") {
    ZS_RETURN_IF_ERROR(take_duration("on", 30));
    ZS_RETURN_IF_ERROR(take_duration("off", 300));
    if (v["on"] <= 0) return Status::error("synthetic trace '" + spec + "': on must be > 0");
  } else if (shape == "diurnal") {
    ZS_RETURN_IF_ERROR(take_number("amplitude", 0.8));
    ZS_RETURN_IF_ERROR(take_duration("period", 86400));
    if (v["amplitude"] > 1 || v["period"] <= 0)
      return Status::error("synthetic trace '" + spec + "': amplitude must be in [0, 1] and period > 0");
  } else if (shape != "poisson") {
    return Status::error("synthetic trace '" + spec + "': unknown shape '" + shape + "' (known: poisson, bursty, diurnal)");
  }
  if (!kv.empty()) return Status::error("synthetic trace '" + spec + "': unknown key '" + kv.begin()->first + "'");
  Trace t;
  t.name = "synthetic:" + spec;
  t.format = "synthetic";
  t.span_s = v["duration"];
  const double rate = v["rate"];
  if (rate <= 0) return t;
  const uint32_t prompt = static_cast<uint32_t>(v["prompt"]), output = static_cast<uint32_t>(v["output"]);
  Random rng(options.seed * 0xD1B54A32D192ED03ull + 7);
  // The peak rate, thinned to the shape's rate at each instant (Lewis-Shedler), so that every
  // shape is an exact (inhomogeneous) Poisson process.
  const double peak = shape == "diurnal" ? rate * (1 + v["amplitude"]) : rate;
  const double kPi = 3.14159265358979323846;
  for (double time = rng.exponential(peak); time < t.span_s; time += rng.exponential(peak)) {
    double r = rate;
    if (shape == "bursty") r = std::fmod(time, v["on"] + v["off"]) < v["on"] ? rate : 0;
    if (shape == "diurnal") r = rate * (1 + v["amplitude"] * std::sin(2 * kPi * time / v["period"]));
    if (rng.uniform() * peak < r) t.requests.push_back({time, 0, prompt, output});
  }
  return t;
}

Result<Trace> load_trace(const std::string& spec, const TraceOptions& options) {
  std::string format, path = spec;
  static const char* kFormats[] = {"azure-llm-2023", "azure-functions-2019", "azure-functions-2021", "burstgpt", "mooncake", "synthetic"};
  for (const char* f : kFormats) {
    const std::string prefix = std::string(f) + ":";
    if (spec.rfind(prefix, 0) == 0) {
      format = f;
      path = spec.substr(prefix.size());
    }
  }
  if (format == "synthetic") return make_synthetic(path, options);
  if (format.empty()) {
    if (fs::is_directory(path)) {
      format = "azure-functions-2019";
    } else if (path.size() > 6 && path.substr(path.size() - 6) == ".jsonl") {
      format = "mooncake";
    } else {
      std::ifstream in(path);
      if (!in) return Status::error("cannot open trace " + path + (fs::exists(path) ? " (permission denied)" : " (no such file)"));
      std::string header;
      std::getline(in, header);
      if (header.rfind("TIMESTAMP,ContextTokens", 0) == 0) format = "azure-llm-2023";
      else if (header.rfind("app,func,end_timestamp", 0) == 0) format = "azure-functions-2021";
      else if (header.rfind("Timestamp,Model", 0) == 0) format = "burstgpt";
      else if (header.find("HashFunction") != std::string::npos) format = "azure-functions-2019";
      else
        return Status::error(path + ":1: unrecognised trace header '" + header.substr(0, 80) +
                             "'; name the format as <format>:<path> (azure-llm-2023, azure-functions-2019, "
                             "azure-functions-2021, burstgpt, mooncake) or use synthetic:<shape>:...");
    }
  }
  if (format == "azure-llm-2023") return read_azure_llm_csv(path);
  if (format == "azure-functions-2019") return read_azure_functions_2019(path, options);
  if (format == "azure-functions-2021") return read_azure_functions_2021(path, options);
  if (format == "burstgpt") return read_burstgpt_csv(path);
  return read_mooncake_jsonl(path);
}

}  // namespace zs::sim
