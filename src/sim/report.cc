#include "sim/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace zs::sim {

using nlohmann::json;

namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string fmt(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string pct(double v) { return fmt(100 * v, 1) + "%"; }

std::string seconds(double s) {
  if (s < 1) return fmt(s * 1000, 0) + " ms";
  if (s < 120) return fmt(s, 2) + " s";
  return fmt(s / 60, 1) + " min";
}

std::string escape_xml(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

json quantiles_json(const Quantiles& q) {
  return {{"p50", q.p50}, {"p95", q.p95}, {"p99", q.p99}, {"mean", q.mean}, {"max", q.max}};
}

// A "nice" step for about `n` ticks over `span`.
double nice_step(double span, int n) {
  const double raw = span / n;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

struct Frame {
  double x0 = 70, y0 = 30, w = 760, h = 360;  // plot area in the 900x460 canvas
};

std::string svg_open(const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"470\" viewBox=\"0 0 900 470\" "
         "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"900\" height=\"470\" fill=\"white\"/>\n"
         "<text x=\"450\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">" + escape_xml(title) + "</text>\n";
}

std::string legend(const std::vector<RunResult>& results, const Frame& f) {
  std::string s;
  for (size_t i = 0; i < results.size(); ++i) {
    const double y = f.y0 + 10 + 16 * i;
    s += "<line x1=\"" + fmt(f.x0 + 12, 0) + "\" y1=\"" + fmt(y, 0) + "\" x2=\"" + fmt(f.x0 + 32, 0) + "\" y2=\"" +
         fmt(y, 0) + "\" stroke=\"" + kColours[i % 8] + "\" stroke-width=\"2\"/>";
    s += "<text x=\"" + fmt(f.x0 + 38, 0) + "\" y=\"" + fmt(y + 4, 0) + "\">" + escape_xml(results[i].label) + "</text>\n";
  }
  return s;
}

}  // namespace

int always_on_index(const std::vector<RunResult>& results) {
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].policy == kAlwaysOn) return static_cast<int>(i);
  return -1;
}

std::string report_json(const ReportInfo& info, const std::vector<RunResult>& results) {
  json j;
  j["format"] = "zeroserve-sim-report/1";
  j["sources"] = info.sources;
  j["calibration"] = info.calibration;
  j["seed"] = info.seed;
  j["time_scale"] = info.time_scale;
  j["devices"] = info.devices;
  j["deployments"] = info.deployments;
  j["requests"] = info.requests;
  j["duration_s"] = info.duration_s;
  j["wall_s"] = info.wall_s;
  j["simulated_s_per_wall_s"] = info.wall_s > 0 ? info.duration_s * results.size() / info.wall_s : 0;
  j["unavailable_policies"] = info.unavailable_policies;
  const int base = always_on_index(results);
  json runs = json::array();
  for (const auto& r : results) {
    json x;
    x["label"] = r.label;
    x["policy"] = r.policy;
    x["requests"] = r.requests;
    x["served"] = r.served;
    x["refused"] = {{"total", r.refused()},
                    {"queue_full", r.refused_queue_full},
                    {"timeout", r.refused_timeout},
                    {"no_memory", r.refused_no_memory}};
    x["cost"] = r.cost;
    x["cost_vs_always_on"] = base >= 0 && results[base].cost > 0 ? json(r.cost / results[base].cost) : json(nullptr);
    x["instance_seconds"] = r.instance_seconds;
    x["busy_share"] = r.instance_seconds > 0 ? r.busy_seconds / r.instance_seconds : 0;
    x["memory_utilisation"] = r.memory_utilisation;
    x["cold_start_fraction"] = r.cold_fraction();
    x["cold_requests"] = r.cold_requests;
    x["cold_starts"] = r.cold_starts;
    x["wake_fraction"] = r.wake_fraction();
    x["wake_requests"] = r.wake_requests;
    x["sleep_seconds"] = r.sleep_seconds;
    x["instance_starts"] = r.instance_starts;
    x["peak_instances"] = r.peak_instances;
    x["mean_instances"] = r.mean_instances;
    x["ttft_s"] = quantiles_json(r.ttft_s);
    x["queue_s"] = quantiles_json(r.queue_s);
    x["instances_series"] = {{"bucket_s", r.bucket_s}, {"mean", r.instances_series}};
    x["ttft_cdf_s"] = r.ttft_cdf;
    x["decisions"] = r.decisions;
    x["events"] = r.events;
    x["wall_s"] = r.wall_s;
    runs.push_back(x);
  }
  j["policies"] = runs;
  return j.dump(2) + "\n";
}

std::string report_markdown(const ReportInfo& info, const std::vector<RunResult>& results) {
  std::string s = "# Simulation report\n\n";
  for (const auto& src : info.sources) s += "- Trace: " + src + "\n";
  s += "- Cluster: " + std::to_string(info.deployments) + " deployments on " + std::to_string(info.devices) + " devices\n";
  s += "- Replayed: " + std::to_string(info.requests) + " requests over " + seconds(info.duration_s) +
       " of simulated time (time scale " + fmt(info.time_scale, 2) + ", seed " + std::to_string(info.seed) + ")\n";
  s += "- Service model: " + info.calibration + "\n";
  s += "- Simulated in " + fmt(info.wall_s, 2) + " s of wall time\n";
  if (!info.unavailable_policies.empty()) {
    s += "- Not compared (the platform has no such policy yet):";
    for (const auto& p : info.unavailable_policies) s += " " + p;
    s += "\n";
  }
  const int base = always_on_index(results);
  s += "\n| policy | cost | vs always-on | instance-hours | asleep | cold-start share | wake share | TTFT p50 | TTFT p95 | TTFT p99 | queue p95 | refused | peak inst. | mean inst. | busy share | memory util. |\n";
  s += "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  for (const auto& r : results) {
    s += "| " + r.label + " | $" + fmt(r.cost, 2) + " | " +
         (base >= 0 && results[base].cost > 0 ? pct(r.cost / results[base].cost) : std::string("-")) + " | " +
         fmt(r.instance_seconds / 3600, 1) + " | " +
         (r.instance_seconds > 0 ? pct(r.sleep_seconds / r.instance_seconds) : std::string("-")) + " | " +
         pct(r.cold_fraction()) + " | " + pct(r.wake_fraction()) + " | " + seconds(r.ttft_s.p50) + " | " +
         seconds(r.ttft_s.p95) + " | " + seconds(r.ttft_s.p99) + " | " + seconds(r.queue_s.p95) + " | " +
         std::to_string(r.refused()) + " | " + std::to_string(r.peak_instances) + " | " + fmt(r.mean_instances, 1) + " | " +
         (r.instance_seconds > 0 ? pct(r.busy_seconds / r.instance_seconds) : std::string("-")) + " | " +
         pct(r.memory_utilisation) + " |\n";
  }
  s += "\nRefusals by cause (queue full / timed out / cannot fit): ";
  for (size_t i = 0; i < results.size(); ++i)
    s += (i ? "; " : "") + results[i].label + " " + std::to_string(results[i].refused_queue_full) + "/" +
         std::to_string(results[i].refused_timeout) + "/" + std::to_string(results[i].refused_no_memory);
  s += ".\n\nCold starts (instances started while requests waited): ";
  for (size_t i = 0; i < results.size(); ++i)
    s += (i ? "; " : "") + results[i].label + " " + std::to_string(results[i].cold_starts);
  s += ".\n\n";
  s += "- *cost*: instance-seconds (starting, busy and idle) times the device's `price_per_second`, sleeping "
       "seconds at its `sleep_price_per_second`; *asleep*: the share of instance time spent asleep.\n"
       "- *always-on*: every deployment runs, warm from the start, its own peak need: its most requests in flight "
       "at once (each for its service time on a full instance) over its slots, within max_instances, fitted to its "
       "device (peak provisioning).\n"
       "- *cold-start share*: served requests that arrived while their deployment had no ready instance; *wake "
       "share*: those that woke a sleeping instance (the rest found one awake).\n"
       "- *TTFT*: arrival to first token (queueing, cold start and prefill); *queue*: arrival to an instance slot.\n"
       "- *busy share*: instance time with a request in flight; *memory util.*: reserved memory over device "
       "capacity, time-averaged over the devices.\n\n";
  s += "![instances over time](instances.svg)\n\n![TTFT CDF](ttft_cdf.svg)\n";
  return s;
}

std::string instances_svg(const std::vector<RunResult>& results) {
  Frame f;
  double duration = 0, top = 1;
  for (const auto& r : results) {
    duration = std::max(duration, r.bucket_s * r.instances_series.size());
    for (float v : r.instances_series) top = std::max(top, static_cast<double>(v));
  }
  top *= 1.05;
  std::string s = svg_open("Live instances over time (all deployments)");
  const double tstep = nice_step(std::max(duration, 1.0), 8);
  const double hours = duration >= 7200;
  for (double t = 0; t <= duration + 1e-9; t += tstep) {
    const double x = f.x0 + f.w * t / std::max(duration, 1e-9);
    s += "<line x1=\"" + fmt(x, 1) + "\" y1=\"" + fmt(f.y0, 0) + "\" x2=\"" + fmt(x, 1) + "\" y2=\"" + fmt(f.y0 + f.h, 0) +
         "\" stroke=\"#eee\"/><text x=\"" + fmt(x, 1) + "\" y=\"" + fmt(f.y0 + f.h + 16, 0) + "\" text-anchor=\"middle\">" +
         (hours ? fmt(t / 3600, 1) : fmt(t / 60, 1)) + "</text>\n";
  }
  const double ystep = nice_step(top, 6);
  for (double v = 0; v <= top; v += ystep) {
    const double y = f.y0 + f.h - f.h * v / top;
    s += "<line x1=\"" + fmt(f.x0, 0) + "\" y1=\"" + fmt(y, 1) + "\" x2=\"" + fmt(f.x0 + f.w, 0) + "\" y2=\"" + fmt(y, 1) +
         "\" stroke=\"#eee\"/><text x=\"" + fmt(f.x0 - 6, 0) + "\" y=\"" + fmt(y + 4, 1) + "\" text-anchor=\"end\">" +
         fmt(v, ystep < 1 ? 1 : 0) + "</text>\n";
  }
  s += "<text x=\"" + fmt(f.x0 + f.w / 2, 0) + "\" y=\"" + fmt(f.y0 + f.h + 34, 0) + "\" text-anchor=\"middle\">time (" +
       (hours ? "hours" : "minutes") + ")</text>\n";
  s += "<text x=\"16\" y=\"" + fmt(f.y0 + f.h / 2, 0) + "\" transform=\"rotate(-90 16 " + fmt(f.y0 + f.h / 2, 0) +
       ")\" text-anchor=\"middle\">mean live instances</text>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::string pts;
    for (size_t b = 0; b < r.instances_series.size(); ++b) {
      const double y = f.y0 + f.h - f.h * r.instances_series[b] / top;
      pts += fmt(f.x0 + f.w * (b * r.bucket_s) / duration, 1) + "," + fmt(y, 1) + " " +
             fmt(f.x0 + f.w * ((b + 1) * r.bucket_s) / duration, 1) + "," + fmt(y, 1) + " ";
    }
    s += "<polyline fill=\"none\" stroke=\"" + std::string(kColours[i % 8]) + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
  }
  s += "<rect x=\"" + fmt(f.x0, 0) + "\" y=\"" + fmt(f.y0, 0) + "\" width=\"" + fmt(f.w, 0) + "\" height=\"" + fmt(f.h, 0) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += legend(results, f);
  return s + "</svg>\n";
}

std::string ttft_cdf_svg(const std::vector<RunResult>& results) {
  Frame f;
  // Log-scale x: TTFTs span milliseconds (warm) to minutes (queued behind a cold start).
  double lo = 1e9, hi = 1e-3;
  for (const auto& r : results)
    for (float v : r.ttft_cdf) {
      lo = std::min(lo, std::max(1e-3, static_cast<double>(v)));
      hi = std::max(hi, static_cast<double>(v));
    }
  if (lo > hi) lo = 1e-3, hi = 1;
  const double l0 = std::floor(std::log10(lo)), l1 = std::max(l0 + 1, std::ceil(std::log10(hi)));
  auto xof = [&](double v) { return f.x0 + f.w * (std::log10(std::max(v, lo)) - l0) / (l1 - l0); };
  std::string s = svg_open("Time to first token, CDF");
  for (double e = l0; e <= l1; e += 1) {
    const double x = xof(std::pow(10, e));
    s += "<line x1=\"" + fmt(x, 1) + "\" y1=\"" + fmt(f.y0, 0) + "\" x2=\"" + fmt(x, 1) + "\" y2=\"" + fmt(f.y0 + f.h, 0) +
         "\" stroke=\"#eee\"/><text x=\"" + fmt(x, 1) + "\" y=\"" + fmt(f.y0 + f.h + 16, 0) + "\" text-anchor=\"middle\">" +
         seconds(std::pow(10, e)) + "</text>\n";
  }
  for (int p = 0; p <= 100; p += 20) {
    const double y = f.y0 + f.h - f.h * p / 100.0;
    s += "<line x1=\"" + fmt(f.x0, 0) + "\" y1=\"" + fmt(y, 1) + "\" x2=\"" + fmt(f.x0 + f.w, 0) + "\" y2=\"" + fmt(y, 1) +
         "\" stroke=\"#eee\"/><text x=\"" + fmt(f.x0 - 6, 0) + "\" y=\"" + fmt(y + 4, 1) + "\" text-anchor=\"end\">" +
         std::to_string(p) + "%</text>\n";
  }
  s += "<text x=\"" + fmt(f.x0 + f.w / 2, 0) + "\" y=\"" + fmt(f.y0 + f.h + 34, 0) +
       "\" text-anchor=\"middle\">time to first token (log scale)</text>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    std::string pts;
    const auto& c = results[i].ttft_cdf;
    for (size_t k = 0; k < c.size(); ++k)
      pts += fmt(xof(c[k]), 1) + "," + fmt(f.y0 + f.h - f.h * (k + 1) / c.size(), 1) + " ";
    s += "<polyline fill=\"none\" stroke=\"" + std::string(kColours[i % 8]) + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
  }
  s += "<rect x=\"" + fmt(f.x0, 0) + "\" y=\"" + fmt(f.y0, 0) + "\" width=\"" + fmt(f.w, 0) + "\" height=\"" + fmt(f.h, 0) +
       "\" fill=\"none\" stroke=\"#333\"/>\n";
  Frame lf = f;
  lf.x0 = f.x0 + f.w - 220;
  lf.y0 = f.y0 + f.h - 20 - 16.0 * results.size();
  s += legend(results, lf);
  return s + "</svg>\n";
}

core::Status write_report(const std::string& dir, const ReportInfo& info, const std::vector<RunResult>& results) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return core::Status::error("cannot create " + dir + ": " + ec.message());
  const std::pair<const char*, std::string> files[] = {{"report.md", report_markdown(info, results)},
                                                       {"report.json", report_json(info, results)},
                                                       {"instances.svg", instances_svg(results)},
                                                       {"ttft_cdf.svg", ttft_cdf_svg(results)}};
  for (const auto& [name, text] : files) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) return core::Status::error("cannot write " + path);
  }
  return core::Status::ok();
}

}  // namespace zs::sim
