// `zeroserve cost`: what each deployment cost over a time window, and what running it
// always on at its peak would have cost instead; with `--by key`, what each API key sent and
// its share of that cost. Reads the daemon's ledger read-only, so it is safe to run while
// `zeroserve serve` owns the file.
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "platform/ledger/cost_ledger.h"

namespace zs::cli {
namespace {

using core::Result;
using core::Status;
using platform::CostReport;
using platform::DeploymentCost;
using platform::KeyUsage;

// The file name the daemon gives the ledger inside its state directory (serve_daemon.cc).
constexpr const char* kLedgerFileName = "ledger.sqlite";
constexpr const char* kTimeForms =
    "use an ISO-8601 UTC time (2026-11-25T08:00:00Z or 2026-11-25), a Unix time (1764057600) "
    "or how long ago (90s, 30m, 1h, 7d, 2w)";

struct CostOptions {
  std::string state_dir, ledger, since, until, format = "table", by = "deployment";
};

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The daemon's default, kept in step with serve_daemon.cc: $XDG_STATE_HOME/zeroserve, else
// ~/.local/state/zeroserve.
std::string default_state_dir() {
  if (const char* v = std::getenv("XDG_STATE_HOME"); v && *v) return std::string(v) + "/zeroserve";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/zeroserve";
}

double to_double(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

// Parses "2026-11-25T08:00:00Z", "2026-11-25T08:00:00.5+01:00", "2026-11-25" (midnight UTC).
std::optional<double> parse_iso8601(const std::string& text) {
  static const std::regex kIso(
      R"(^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2}))?$)");
  std::smatch m;
  if (!std::regex_match(text, m, kIso)) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{std::stoi(m[1])},
                                         std::chrono::month{static_cast<unsigned>(std::stoi(m[2]))},
                                         std::chrono::day{static_cast<unsigned>(std::stoi(m[3]))}};
  if (!date.ok()) return std::nullopt;
  double t = static_cast<double>(
      std::chrono::sys_seconds(std::chrono::sys_days(date)).time_since_epoch().count());
  if (m[4].matched) {
    const int hour = std::stoi(m[4]), minute = std::stoi(m[5]);
    const int second = m[6].matched ? std::stoi(m[6]) : 0;
    if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
    t += hour * 3600.0 + minute * 60.0 + second;
    if (m[7].matched) t += to_double("0" + m[7].str());
    const std::string zone = m[8];
    if (zone != "Z" && zone != "z") {
      const std::string digits = std::regex_replace(zone.substr(1), std::regex(":"), "");
      const int zh = std::stoi(digits.substr(0, 2)), zm = std::stoi(digits.substr(2, 2));
      if (zh > 23 || zm > 59) return std::nullopt;
      const double offset = zh * 3600.0 + zm * 60.0;
      t += zone[0] == '+' ? -offset : offset;  // 08:00+01:00 is 07:00Z
    }
  }
  return t;
}

// One --since/--until value: an ISO-8601 time, a Unix time, or a duration meaning that long
// before `now`.
Result<double> parse_time(const std::string& flag, const std::string& text, double now) {
  static const std::regex kUnix(R"(^\d+(\.\d+)?$)");
  static const std::regex kAgo(R"(^(\d+(?:\.\d+)?)([smhdw])$)");
  std::smatch m;
  if (std::regex_match(text, kUnix)) return to_double(text);
  if (std::regex_match(text, m, kAgo)) {
    const double n = to_double(m[1]);
    const char unit = m[2].str()[0];
    const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 604800;
    return now - n * scale;
  }
  if (auto t = parse_iso8601(text)) return *t;
  return Status::error(flag + ": cannot read '" + text + "' as a time; " + kTimeForms);
}

std::string iso_utc(double t) {
  const std::time_t secs = static_cast<std::time_t>(std::floor(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string duration_text(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  const int64_t d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60, sec = s % 60;
  char buf[64];
  if (d > 0) {
    std::snprintf(buf, sizeof buf, "%lldd %lldh %lldm", static_cast<long long>(d),
                  static_cast<long long>(h), static_cast<long long>(m));
  } else if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lldh %lldm", static_cast<long long>(h), static_cast<long long>(m));
  } else {
    std::snprintf(buf, sizeof buf, "%lldm %llds", static_cast<long long>(m), static_cast<long long>(sec));
  }
  return buf;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The shortest text that reads back as the same double: CSV keeps every digit.
std::string exact(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Prints rows in columns: the first `name_columns` left-aligned, the numbers after them right.
void print_aligned(const std::vector<std::vector<std::string>>& rows, size_t name_columns) {
  std::vector<size_t> width;
  for (const auto& cells : rows) {
    width.resize(std::max(width.size(), cells.size()), 0);
    for (size_t c = 0; c < cells.size(); ++c) width[c] = std::max(width[c], cells[c].size());
  }
  for (const auto& cells : rows) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cells[c].size(), ' ');
      if (c > 0) line += "  ";
      line += c < name_columns ? cells[c] + pad : pad + cells[c];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

void print_table(const CostReport& r, const std::string& ledger_path) {
  std::printf("cost from %s to %s (%s), ledger %s\n", iso_utc(r.from).c_str(), iso_utc(r.to).c_str(),
              duration_text(r.to - r.from).c_str(), ledger_path.c_str());
  if (r.covered_from > r.from || r.covered_to < r.to) {
    std::printf("records cover %s to %s: always-on costs are priced over that span\n",
                iso_utc(r.covered_from).c_str(), iso_utc(r.covered_to).c_str());
  }
  if (r.deployments.empty()) {
    std::printf("no instance time and no requests recorded in this window\n");
    return;
  }
  const std::vector<std::string> header = {"DEPLOYMENT", "INSTANCE-S", "COST",        "REQUESTS",
                                           "PROMPT-TOK", "COMPL-TOK",  "COST/1K-REQ", "COLD-STARTS",
                                           "IDLE",       "PEAK",       "ALWAYS-ON",   "SAVING"};
  std::vector<std::vector<std::string>> rows = {header};
  auto row = [](const std::string& name, const DeploymentCost& d) {
    std::string saving = fixed(d.saving(), 4);
    if (d.always_on_cost > 0) saving += " (" + fixed(100 * d.saving() / d.always_on_cost, 0) + "%)";
    return std::vector<std::string>{
        name,
        fixed(d.instance_seconds, 1),
        fixed(d.cost, 4),
        std::to_string(d.requests),
        std::to_string(d.prompt_tokens),
        std::to_string(d.completion_tokens),
        d.requests > 0 ? fixed(d.cost_per_1k_requests(), 4) : "-",
        std::to_string(d.cold_starts),
        d.instance_seconds > 0 ? fixed(100 * d.idle_share(), 1) + "%" : "-",
        std::to_string(d.peak_instances),
        fixed(d.always_on_cost, 4),
        saving};
  };
  for (const DeploymentCost& d : r.deployments) rows.push_back(row(d.deployment, d));
  rows.push_back(row("TOTAL", r.total));
  print_aligned(rows, 1);

  // Where the instance time went, one column per phase.
  std::printf("\n");
  std::vector<std::vector<std::string>> phases = {
      {"DEPLOYMENT", "INSTANCE-S", "BUSY-S", "IDLE-S", "SLEEPING-S", "STARTING-S"}};
  auto phase_row = [](const std::string& name, const DeploymentCost& d) {
    return std::vector<std::string>{name,
                                    fixed(d.instance_seconds, 1),
                                    fixed(d.busy_seconds, 1),
                                    fixed(d.idle_seconds, 1),
                                    fixed(d.sleeping_seconds, 1),
                                    fixed(d.starting_seconds, 1)};
  };
  for (const DeploymentCost& d : r.deployments) phases.push_back(phase_row(d.deployment, d));
  phases.push_back(phase_row("TOTAL", r.total));
  print_aligned(phases, 1);
  std::printf(
      "\ncosts in USD at each device's price_per_second, sleeping seconds at its sleep price.\n"
      "IDLE: share of instance time ready with no request in flight. ALWAYS-ON: PEAK instances\n"
      "running through the whole window at the running price. SAVING: ALWAYS-ON - COST.\n"
      "BUSY-S: ready with a request in flight; IDLE-S: ready with none; SLEEPING-S: asleep,\n"
      "woken by the next request; STARTING-S: starting up. Draining time is in none of them.\n");
}

nlohmann::ordered_json cost_json(const DeploymentCost& d) {
  nlohmann::ordered_json j;
  j["instance_seconds"] = d.instance_seconds;
  j["cost"] = d.cost;
  j["requests"] = d.requests;
  j["prompt_tokens"] = d.prompt_tokens;
  j["completion_tokens"] = d.completion_tokens;
  j["cost_per_1k_requests"] = d.cost_per_1k_requests();
  j["cold_starts"] = d.cold_starts;
  j["starting_seconds"] = d.starting_seconds;
  j["idle_seconds"] = d.idle_seconds;
  j["busy_seconds"] = d.busy_seconds;
  j["sleeping_seconds"] = d.sleeping_seconds;
  j["idle_share"] = d.idle_share();
  j["peak_instances"] = d.peak_instances;
  j["always_on_cost"] = d.always_on_cost;
  j["saving"] = d.saving();
  return j;
}

void print_json(const CostReport& r, const std::string& ledger_path) {
  nlohmann::ordered_json j;
  j["ledger"] = ledger_path;
  j["from"] = r.from;
  j["to"] = r.to;
  j["from_utc"] = iso_utc(r.from);
  j["to_utc"] = iso_utc(r.to);
  j["covered_from"] = r.covered_from;
  j["covered_to"] = r.covered_to;
  j["currency"] = "USD";
  j["deployments"] = nlohmann::ordered_json::array();
  for (const DeploymentCost& d : r.deployments) {
    nlohmann::ordered_json e;
    e["deployment"] = d.deployment;
    e.update(cost_json(d));
    j["deployments"].push_back(std::move(e));
  }
  j["total"] = cost_json(r.total);
  // Deployment names come from the ledger: replace invalid UTF-8 rather than throw.
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_csv(const CostReport& r) {
  std::printf(
      "deployment,instance_seconds,cost,requests,prompt_tokens,completion_tokens,"
      "cost_per_1k_requests,cold_starts,starting_seconds,idle_seconds,idle_share,peak_instances,"
      "always_on_cost,saving,busy_seconds,sleeping_seconds\n");
  auto line = [](const std::string& name, const DeploymentCost& d) {
    const std::string s = csv_field(name) + "," + exact(d.instance_seconds) + "," + exact(d.cost) + "," +
                          std::to_string(d.requests) + "," + std::to_string(d.prompt_tokens) + "," +
                          std::to_string(d.completion_tokens) + "," + exact(d.cost_per_1k_requests()) +
                          "," + std::to_string(d.cold_starts) + "," + exact(d.starting_seconds) + "," +
                          exact(d.idle_seconds) + "," + exact(d.idle_share()) + "," +
                          std::to_string(d.peak_instances) + "," + exact(d.always_on_cost) + "," +
                          exact(d.saving()) + "," + exact(d.busy_seconds) + "," +
                          exact(d.sleeping_seconds);
    std::printf("%s\n", s.c_str());
  };
  for (const DeploymentCost& d : r.deployments) line(d.deployment, d);
  // Config names are lowercase, so this row cannot be mistaken for a deployment.
  line("TOTAL", r.total);
}

// The per-key view: the rows, their sums, and the instance cost that no key can carry.
struct KeyView {
  std::vector<KeyUsage> keys;
  KeyUsage total;           // api_key "TOTAL": requests, tokens and cost shares summed
  double total_cost = 0;    // every deployment's instance cost in the window
  double unattributed = 0;  // the cost of deployments with no request in the window
};

KeyView key_view(const CostReport& r, std::vector<KeyUsage> keys) {
  KeyView v;
  v.keys = std::move(keys);
  v.total.api_key = "TOTAL";
  for (const KeyUsage& u : v.keys) {
    v.total.requests += u.requests;
    v.total.prompt_tokens += u.prompt_tokens;
    v.total.completion_tokens += u.completion_tokens;
    v.total.cost_share += u.cost_share;
  }
  v.total_cost = r.total.cost;
  for (const DeploymentCost& d : r.deployments)
    if (d.requests == 0) v.unattributed += d.cost;
  return v;
}

void print_key_table(const CostReport& r, const KeyView& v, const std::string& ledger_path) {
  std::printf("usage by API key from %s to %s (%s), ledger %s\n", iso_utc(r.from).c_str(),
              iso_utc(r.to).c_str(), duration_text(r.to - r.from).c_str(), ledger_path.c_str());
  if (v.keys.empty()) {
    std::printf("no requests recorded in this window\n");
    if (v.total_cost > 0) std::printf("instance cost %s, attributed to no key\n", fixed(v.total_cost, 4).c_str());
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"KEY", "DEPLOYMENT", "CLASS", "REQUESTS", "PROMPT-TOK", "COMPL-TOK", "COST-SHARE"}};
  auto row = [](const KeyUsage& u, const std::string& key) {
    return std::vector<std::string>{key,
                                    u.deployment,
                                    u.cls,
                                    std::to_string(u.requests),
                                    std::to_string(u.prompt_tokens),
                                    std::to_string(u.completion_tokens),
                                    fixed(u.cost_share, 4)};
  };
  // Keys are configured names, which never hold parentheses.
  for (const KeyUsage& u : v.keys) rows.push_back(row(u, u.api_key.empty() ? "(none)" : u.api_key));
  rows.push_back(row(v.total, "TOTAL"));
  print_aligned(rows, 3);
  std::printf(
      "\nKEY (none): requests without an API key (open API, the server's batch jobs, or recorded\n"
      "before keys were). COST-SHARE: each deployment's instance cost split among its keys by\n"
      "prompt + completion tokens (by requests where it had no tokens). Instances are shared, so\n"
      "this attributes their cost; it does not meter it.\n");
  if (v.unattributed > 0) {
    std::printf("%s of the %s instance cost is on deployments with no requests in the window.\n",
                fixed(v.unattributed, 4).c_str(), fixed(v.total_cost, 4).c_str());
  }
}

nlohmann::ordered_json key_json(const KeyUsage& u) {
  nlohmann::ordered_json j;
  j["requests"] = u.requests;
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["cost_share"] = u.cost_share;
  return j;
}

void print_key_json(const CostReport& r, const KeyView& v, const std::string& ledger_path) {
  nlohmann::ordered_json j;
  j["ledger"] = ledger_path;
  j["from"] = r.from;
  j["to"] = r.to;
  j["from_utc"] = iso_utc(r.from);
  j["to_utc"] = iso_utc(r.to);
  j["currency"] = "USD";
  j["keys"] = nlohmann::ordered_json::array();
  for (const KeyUsage& u : v.keys) {
    nlohmann::ordered_json e;
    e["api_key"] = u.api_key;
    e["deployment"] = u.deployment;
    e["class"] = u.cls;
    e.update(key_json(u));
    j["keys"].push_back(std::move(e));
  }
  j["total"] = key_json(v.total);
  j["total_cost"] = v.total_cost;
  j["unattributed_cost"] = v.unattributed;
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

void print_key_csv(const KeyView& v) {
  std::printf("api_key,deployment,class,requests,prompt_tokens,completion_tokens,cost_share\n");
  auto line = [](const KeyUsage& u) {
    const std::string s = csv_field(u.api_key) + "," + csv_field(u.deployment) + "," + csv_field(u.cls) +
                          "," + std::to_string(u.requests) + "," + std::to_string(u.prompt_tokens) + "," +
                          std::to_string(u.completion_tokens) + "," + exact(u.cost_share);
    std::printf("%s\n", s.c_str());
  };
  for (const KeyUsage& u : v.keys) line(u);
  // Key names are lowercase, so this row cannot be mistaken for a key.
  line(v.total);
}

Status cost(const CostOptions& o) {
  const double now = unix_now();
  const std::string path =
      !o.ledger.empty() ? o.ledger
                        : (o.state_dir.empty() ? default_state_dir() : o.state_dir) + "/" + kLedgerFileName;
  // Parse the window before touching the file: a typo should not wait on the disk.
  std::optional<double> since, until;
  if (!o.since.empty()) {
    auto t = parse_time("--since", o.since, now);
    if (!t) return t.status();
    since = *t;
  }
  if (!o.until.empty()) {
    auto t = parse_time("--until", o.until, now);
    if (!t) return t.status();
    until = *t;
  }
  if (since && *since > until.value_or(now)) {
    return Status::error("--since (" + iso_utc(*since) + ") is after " +
                         (until ? "--until (" + iso_utc(*until) + ")" : "now (" + iso_utc(now) + ")"));
  }

  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::error("no cost ledger at " + path +
                         ": `zeroserve serve` creates it when it first starts; if the daemon keeps "
                         "its state elsewhere (gateway.state_dir), pass --state-dir DIR or --ledger FILE");
  }
  auto ledger = platform::CostLedger::open_read_only(path);
  if (!ledger) return ledger.status();

  const double to = until.value_or(now);
  double from = to;
  if (since) {
    from = *since;
  } else {
    auto first = (*ledger)->first_record_time();
    if (!first) return first.status();
    if (first->has_value()) from = std::min(**first, to);
  }
  auto report = (*ledger)->report(from, to, now);
  if (!report) return report.status();
  if (o.by == "key") {
    auto keys = (*ledger)->usage_by_key(from, to, now);
    if (!keys) return keys.status();
    const KeyView v = key_view(*report, std::move(keys).value());
    if (o.format == "json") {
      print_key_json(*report, v, path);
    } else if (o.format == "csv") {
      print_key_csv(v);
    } else {
      print_key_table(*report, v, path);
    }
    return Status::ok();
  }
  if (o.format == "json") {
    print_json(*report, path);
  } else if (o.format == "csv") {
    print_csv(*report);
  } else {
    print_table(*report, path);
  }
  return Status::ok();
}

}  // namespace

void register_cost_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<CostOptions>();
  auto* cmd = app.add_subcommand(
      "cost",
      "Report instance time, cost and requests per deployment, against always-on at peak, or per API key");
  auto* state_dir = cmd->add_option("--state-dir", o->state_dir,
                                    "the daemon's state directory (default $XDG_STATE_HOME/zeroserve, "
                                    "else ~/.local/state/zeroserve); reads DIR/ledger.sqlite");
  auto* ledger = cmd->add_option("--ledger", o->ledger, "the ledger file itself");
  state_dir->excludes(ledger);
  cmd->add_option("--since", o->since,
                  "window start: ISO-8601 UTC time, Unix time, or how long ago (1h, 30m, 7d); "
                  "default: the ledger's first record");
  cmd->add_option("--until", o->until, "window end (same forms); default: now");
  cmd->add_option("--format", o->format, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  cmd->add_option("--by", o->by,
                  "deployment (default): cost per deployment; key: requests, tokens and a share of "
                  "each deployment's cost per API key and request class")
      ->check(CLI::IsMember({"deployment", "key"}));
  cmd->callback([o, &exit_code] { exit_code = report(cost(*o)); });
}

}  // namespace zs::cli
