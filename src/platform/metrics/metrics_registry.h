#pragma once
// Prometheus metrics: counters, gauges and histograms with labels, rendered in the text
// exposition format. Thread-safe; updates are lock-free after the first use of a label set.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mutex.h"

namespace zs::platform {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(double v = 1);
  double value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v); }
  void add(double v);
  double value() const { return value_.load(); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts per bound (and +Inf last), sum, count.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(); }
  uint64_t count() const { return count_.load(); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

class MetricsRegistry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                       const Labels& labels = {});
  // Called at the start of every render, to refresh gauges that mirror other state.
  void on_collect(std::function<void()> fn);

  std::string render() const;

  static std::vector<double> exponential_buckets(double start, double factor, int count);

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // by rendered label set
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(const std::string& name, Kind kind, const std::string& help) REQUIRES(mutex_);

  mutable core::Mutex mutex_;
  // The families' maps are guarded; the metrics they point to are atomics, used without it.
  std::map<std::string, Family> families_ GUARDED_BY(mutex_);
  std::vector<std::function<void()>> collectors_ GUARDED_BY(mutex_);
};

// {a="x",b="y"} with values escaped as the format requires; "" for no labels.
std::string render_labels(const Labels& labels);

}  // namespace zs::platform
