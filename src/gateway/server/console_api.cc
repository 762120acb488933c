#include "gateway/server/console_api.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "gateway/openai/openai_error.h"
#include "gateway/server/console_assets.h"

namespace zs::gateway {

using nlohmann::json;

namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The pages of the console (each is the same document; its script shows the page its path names).
constexpr std::string_view kPages[] = {"deployments", "costs", "batches", "playground", "admin"};

// A non-negative integer query parameter, or `fallback` when absent; false when malformed.
bool int_param(const HttpRequest& req, const char* name, int fallback, int* out) {
  const std::string v = query_param(req.query(), name);
  if (v.empty()) {
    *out = fallback;
    return true;
  }
  char* end = nullptr;
  const long n = std::strtol(v.c_str(), &end, 10);
  if (*end != '\0' || n < 0 || n > 1'000'000) return false;
  *out = static_cast<int>(n);
  return true;
}

double percentile(std::vector<float>& v, double q) {
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::floor(q * static_cast<double>(v.size() - 1) + 0.5)));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Seconds until the fleet's keep-alive would stop the deployment's last instance above
// min_instances, when every instance is idle and nothing waits; null otherwise. A scaling
// policy other than the fixed keep-alive may stop instances earlier or later.
json scale_to_zero_in(const platform::DeploymentStatus& s) {
  if (s.keep_alive_s < 0 || s.instances.empty() || s.queued > 0 || s.in_flight > 0 ||
      static_cast<int>(s.instances.size()) <= s.min_instances)
    return nullptr;
  double least_idle = 1e300;
  for (const auto& i : s.instances) {
    if (i.phase != platform::instance_phase_name(platform::InstancePhase::kIdle)) return nullptr;
    least_idle = std::min(least_idle, i.idle_for_s);
  }
  return std::max(0.0, s.keep_alive_s - least_idle);
}

}  // namespace

// -------------------------------------------------------------------------------------------
// Lifecycle and recording
// -------------------------------------------------------------------------------------------

ConsoleApi::ConsoleApi(platform::Fleet& fleet) : fleet_(fleet) {
  sampler_ = std::thread([this] { sampler(); });
}

ConsoleApi::~ConsoleApi() {
  {
    core::MutexLock lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void ConsoleApi::sampler() {
  for (;;) {
    {
      core::MutexLock lock(mutex_);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!stop_ && stop_cv_.wait_until(mutex_, deadline)) {
      }
      if (stop_) return;
    }
    sample(fleet_.status(), unix_now());  // the fleet is read with no lock of ours held
  }
}

ConsoleApi::Bucket& ConsoleApi::bucket_locked(Series& s, int64_t slot) {
  Bucket& b = s.ring[static_cast<size_t>(slot % kBuckets)];
  if (b.slot != slot) {
    b = Bucket();
    b.slot = slot;
  }
  return b;
}

void ConsoleApi::observe(const std::string& deployment, double ttft_s, int64_t completion_tokens) {
  const int64_t slot = static_cast<int64_t>(unix_now()) / kBucketSeconds;
  core::MutexLock lock(mutex_);
  auto& s = series_[deployment];
  if (!s) s = std::make_unique<Series>();
  Bucket& b = bucket_locked(*s, slot);
  ++b.requests;
  b.completion_tokens += std::max<int64_t>(0, completion_tokens);
  if (ttft_s >= 0 && b.ttft.size() < kMaxTtftSamples) b.ttft.push_back(static_cast<float>(ttft_s));
}

void ConsoleApi::sample(const std::vector<platform::DeploymentStatus>& status, double unix_s) {
  const int64_t slot = static_cast<int64_t>(unix_s) / kBucketSeconds;
  core::MutexLock lock(mutex_);
  for (const auto& d : status) {
    auto it = series_.find(d.name);
    // Deployments that never had work get no series (1,000 idle deployments cost nothing).
    if (it == series_.end()) {
      if (d.queued == 0 && d.in_flight == 0 && d.cold_starts == 0) continue;
      it = series_.emplace(d.name, std::make_unique<Series>()).first;
    }
    Series& s = *it->second;
    Bucket& b = bucket_locked(s, slot);
    b.queued_interactive = std::max(b.queued_interactive, d.queued - d.batch_queued);
    b.queued_batch = std::max(b.queued_batch, d.batch_queued);
    b.in_flight = std::max(b.in_flight, d.in_flight);
    if (s.seen && d.cold_starts > s.last_cold_starts) b.cold_starts += static_cast<int64_t>(d.cold_starts - s.last_cold_starts);
    // The first sample of a deployment counts the cold starts it has had so far (a series is
    // created by its first request or start, so they are recent).
    if (!s.seen) b.cold_starts += static_cast<int64_t>(d.cold_starts);
    s.last_cold_starts = d.cold_starts;
    s.seen = true;
  }
}

// -------------------------------------------------------------------------------------------
// HTTP
// -------------------------------------------------------------------------------------------

void ConsoleApi::serve_page(const HttpRequest& req, ResponseWriter& w) {
  std::string_view path = req.path();
  if (path == "/" || path == "/console" || path == "/console/") path = "/console/deployments";
  const std::string_view name = path.substr(std::string_view("/console/").size());
  const bool page = std::find(std::begin(kPages), std::end(kPages), name) != std::end(kPages);
  const ConsoleAsset* asset = find_console_asset(page ? std::string_view("index.html") : name);
  if (!asset || name == "index.html")
    return openai::respond_error(w, core::Status::not_found("no such console page: " + std::string(req.path())));
  w.respond(200, std::string(asset->content_type), std::string(asset->body),
            {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"}});
}

void ConsoleApi::handle_api(const HttpRequest& req, ResponseWriter& w, const ConsoleCaller& caller) {
  const std::string path(req.path());
  if (path == "/console/api/status") return status(req, w, caller);
  if (path == "/console/api/series") return series(req, w);
  openai::respond_error(w, core::Status::not_found("no such console endpoint: " + path + " (status, series)"));
}

void ConsoleApi::status(const HttpRequest& req, ResponseWriter& w, const ConsoleCaller& caller) {
  int offset = 0, limit = 0;
  if (!int_param(req, "offset", 0, &offset))
    return openai::respond_error(w, core::Status::invalid_argument("offset must be a whole number >= 0"), "offset");
  if (!int_param(req, "limit", 50, &limit) || limit < 1 || limit > kMaxPageSize)
    return openai::respond_error(
        w, core::Status::invalid_argument("limit must be a whole number from 1 to " + std::to_string(kMaxPageSize)), "limit");
  const std::string q = query_param(req.query(), "q");
  const std::string state = query_param(req.query(), "state");
  const auto all = fleet_.status();
  json summary = {{"deployments", all.size()}, {"queued", 0}, {"in_flight", 0}, {"cold_starts", 0}, {"instances", json::object()}};
  json page = json::array();
  int matched = 0;
  for (const auto& s : all) {
    summary["queued"] = summary["queued"].get<int>() + s.queued;
    summary["in_flight"] = summary["in_flight"].get<int>() + s.in_flight;
    summary["cold_starts"] = summary["cold_starts"].get<uint64_t>() + s.cold_starts;
    for (const auto& i : s.instances)
      summary["instances"][i.phase] = summary["instances"].value(i.phase, 0) + 1;
    if (!q.empty() && s.name.find(q) == std::string::npos) continue;
    if (!state.empty() && s.state() != state) continue;
    ++matched;
    if (matched <= offset || static_cast<int>(page.size()) >= limit) continue;
    json instances = json::array();
    for (const auto& i : s.instances) {
      json inst = {{"id", i.id}, {"phase", i.phase}, {"age_s", i.age_s}};
      if (i.phase == platform::instance_phase_name(platform::InstancePhase::kIdle)) {
        inst["idle_for_s"] = i.idle_for_s;
        if (s.keep_alive_s >= 0) inst["keep_alive_left_s"] = std::max(0.0, s.keep_alive_s - i.idle_for_s);
      }
      instances.push_back(std::move(inst));
    }
    page.push_back({{"name", s.name},
                    {"state", s.state()},
                    {"instances", std::move(instances)},
                    {"queued", {{"interactive", s.queued - s.batch_queued}, {"batch", s.batch_queued}}},
                    {"in_flight", s.in_flight},
                    {"batch_in_flight", s.batch_in_flight},
                    {"cold_starts", s.cold_starts},
                    {"wakes", s.wakes},
                    {"crashes", s.crashes},
                    {"starting_for_s", s.starting_for_s},
                    {"pending_reason", s.pending_reason.empty() ? json(nullptr) : json(s.pending_reason)},
                    {"min_instances", s.min_instances},
                    {"max_instances", s.max_instances},
                    {"keep_alive_s", s.keep_alive_s < 0 ? json(nullptr) : json(s.keep_alive_s)},
                    {"scale_to_zero_in_s", scale_to_zero_in(s)}});
  }
  json out = {{"now", unix_now()},
              {"caller", {{"keys_required", caller.keys_required}, {"admin", caller.admin}, {"key_name", caller.key_name}}},
              {"total", all.size()},
              {"matched", matched},
              {"offset", offset},
              {"limit", limit},
              {"summary", std::move(summary)},
              {"deployments", std::move(page)}};
  w.respond(200, "application/json", out.dump(), {{"Cache-Control", "no-store"}});
}

void ConsoleApi::series(const HttpRequest& req, ResponseWriter& w) {
  const std::string deployment = query_param(req.query(), "deployment");
  if (!deployment.empty() && !fleet_.has_deployment(deployment))
    return openai::respond_error(w, core::Status::not_found("unknown deployment '" + deployment + "'"), "deployment");
  const int64_t now_slot = static_cast<int64_t>(unix_now()) / kBucketSeconds;
  // The hour's buckets, oldest first, merged over the deployments asked for.
  std::vector<Bucket> merged(kBuckets);
  {
    core::MutexLock lock(mutex_);
    for (const auto& [name, s] : series_) {
      if (!deployment.empty() && name != deployment) continue;
      for (const Bucket& b : s->ring) {
        if (b.slot < 0 || b.slot > now_slot || b.slot <= now_slot - kBuckets) continue;
        Bucket& m = merged[static_cast<size_t>(b.slot - (now_slot - kBuckets + 1))];
        m.requests += b.requests;
        m.completion_tokens += b.completion_tokens;
        m.cold_starts += b.cold_starts;
        m.queued_interactive += b.queued_interactive;
        m.queued_batch += b.queued_batch;
        m.in_flight += b.in_flight;
        if (m.ttft.size() < kMaxTtftSamples)
          m.ttft.insert(m.ttft.end(), b.ttft.begin(),
                        b.ttft.begin() + static_cast<std::ptrdiff_t>(std::min(b.ttft.size(), kMaxTtftSamples - m.ttft.size())));
      }
    }
  }
  json t = json::array(), p50 = json::array(), p95 = json::array(), tps = json::array(), requests = json::array(),
       cold = json::array(), qi = json::array(), qb = json::array(), inflight = json::array();
  for (int k = 0; k < kBuckets; ++k) {
    Bucket& b = merged[static_cast<size_t>(k)];
    t.push_back((now_slot - kBuckets + 1 + k) * kBucketSeconds);
    p50.push_back(b.ttft.empty() ? json(nullptr) : json(percentile(b.ttft, 0.5)));
    p95.push_back(b.ttft.empty() ? json(nullptr) : json(percentile(b.ttft, 0.95)));
    tps.push_back(static_cast<double>(b.completion_tokens) / kBucketSeconds);
    requests.push_back(b.requests);
    cold.push_back(b.cold_starts);
    qi.push_back(b.queued_interactive);
    qb.push_back(b.queued_batch);
    inflight.push_back(b.in_flight);
  }
  json out = {{"deployment", deployment.empty() ? json(nullptr) : json(deployment)},
              {"bucket_s", kBucketSeconds},
              {"t", std::move(t)},
              {"ttft_p50_s", std::move(p50)},
              {"ttft_p95_s", std::move(p95)},
              {"tokens_per_s", std::move(tps)},
              {"requests", std::move(requests)},
              {"cold_starts", std::move(cold)},
              {"queued_interactive", std::move(qi)},
              {"queued_batch", std::move(qb)},
              {"in_flight", std::move(inflight)}};
  w.respond(200, "application/json", out.dump(), {{"Cache-Control", "no-store"}});
}

}  // namespace zs::gateway
