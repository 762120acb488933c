#include "platform/metrics/metrics_registry.h"

#include <cmath>
#include <sstream>

namespace zs::platform {
namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double old = a.load();
  while (!a.compare_exchange_weak(old, old + v)) {
  }
}

std::string format_value(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream os;
  os.precision(12);
  os << v;
  return os.str();
}

// Inserts `extra` (already rendered as k="v") into a rendered label set.
std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

void Counter::add(double v) { atomic_add(value_, v); }
void Gauge::add(double v) { atomic_add(value_, v); }

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1);
  atomic_add(sum_, v);
  count_.fetch_add(1);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) out[i] = acc += buckets_[i].load();
  return out;
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, Kind kind, const std::string& help) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  }
  return it->second;
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  core::MutexLock lock(mutex_);
  auto& slot = family(name, Kind::kCounter, help).counters[render_labels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  core::MutexLock lock(mutex_);
  auto& slot = family(name, Kind::kGauge, help).gauges[render_labels(labels)];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  core::MutexLock lock(mutex_);
  auto& slot = family(name, Kind::kHistogram, help).histograms[render_labels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void MetricsRegistry::on_collect(std::function<void()> fn) {
  core::MutexLock lock(mutex_);
  collectors_.push_back(std::move(fn));
}

std::vector<double> MetricsRegistry::exponential_buckets(double start, double factor, int count) {
  std::vector<double> b;
  for (int i = 0; i < count; ++i, start *= factor) b.push_back(start);
  return b;
}

std::string MetricsRegistry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    core::MutexLock lock(mutex_);
    collectors = collectors_;
  }
  for (auto& c : collectors) c();
  core::MutexLock lock(mutex_);
  std::ostringstream os;
  for (const auto& [name, f] : families_) {
    const char* type = f.kind == Kind::kCounter ? "counter" : f.kind == Kind::kGauge ? "gauge" : "histogram";
    os << "# HELP " << name << " " << f.help << "\n# TYPE " << name << " " << type << "\n";
    for (const auto& [labels, c] : f.counters) os << name << labels << " " << format_value(c->value()) << "\n";
    for (const auto& [labels, g] : f.gauges) os << name << labels << " " << format_value(g->value()) << "\n";
    for (const auto& [labels, h] : f.histograms) {
      auto counts = h->cumulative_counts();
      for (size_t i = 0; i < counts.size(); ++i) {
        const double le = i < h->bounds().size() ? h->bounds()[i] : INFINITY;
        os << name << "_bucket" << with_label(labels, "le=\"" + format_value(le) + "\"") << " " << counts[i] << "\n";
      }
      os << name << "_sum" << labels << " " << format_value(h->sum()) << "\n";
      os << name << "_count" << labels << " " << h->count() << "\n";
    }
  }
  return os.str();
}

}  // namespace zs::platform
