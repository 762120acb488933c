// `zeroserve pull`, `zeroserve models`, `zeroserve rm`: the local store of models pulled from
// a Hugging Face-style hub (docs/models.md).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_cli.h"
#include "gateway/hub/model_store.h"

namespace zs::cli {

using gateway::hub::format_size;
using gateway::hub::HubOptions;
using gateway::hub::ModelStore;

std::string default_cache_dir() {
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v == '/') return std::string(v) + "/zeroserve";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/zeroserve";
}

ProgressPrinter::ProgressPrinter(std::string name, std::FILE* out)
    : name_(std::move(name)), out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressPrinter::operator()(const gateway::hub::PullProgress& p) {
  if (p.waiting_for_other) {
    if (!said_waiting_) std::fprintf(out_, "%s: another process is downloading it; waiting\n", name_.c_str());
    said_waiting_ = true;
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0.2 ? static_cast<double>(p.done - p.resumed_from) / elapsed : 0;
  const double fraction = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 0;
  char eta[32] = "--:--";
  if (rate > 0 && p.total > p.done) {
    const auto s = static_cast<long long>(static_cast<double>(p.total - p.done) / rate);
    std::snprintf(eta, sizeof eta, "%lld:%02lld", s / 60, s % 60);
  }
  const std::string size = format_size(p.done) + (p.total ? " / " + format_size(p.total) : "");
  const std::string speed = format_size(static_cast<uint64_t>(rate)) + "/s";
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && p.done != p.total) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar += std::string(static_cast<size_t>(kWidth - filled), '.');
    std::fprintf(out_, "\r%s [%s] %3d%%  %s  %s  ETA %s\033[K", p.file.c_str(), bar.c_str(), static_cast<int>(fraction * 100),
                 size.c_str(), speed.c_str(), eta);
    std::fflush(out_);
    drawn_ = true;
    return;
  }
  const int tenth = p.total ? static_cast<int>(fraction * 10) : -1;
  if (last_tenth_ == -1 && p.resumed_from > 0 && p.done == p.resumed_from)
    std::fprintf(out_, "%s: resuming at %s\n", p.file.c_str(), format_size(p.resumed_from).c_str());
  if (tenth > last_tenth_) {
    std::fprintf(out_, "%s: %d%% %s %s ETA %s\n", p.file.c_str(), tenth * 10, size.c_str(), speed.c_str(), eta);
    std::fflush(out_);
    last_tenth_ = tenth;
  }
}

void ProgressPrinter::finish() {
  if (drawn_) std::fprintf(out_, "\n");
  drawn_ = false;
}

namespace {

struct ModelsOptions {
  std::string name;
  std::string cache_dir;
  bool offline = false;
  bool json = false;
};

HubOptions hub_options(const ModelsOptions& o) {
  HubOptions hub = HubOptions::from_environment();
  if (o.offline) hub.offline = true;
  return hub;
}

core::Status pull(const ModelsOptions& o) {
  // A file size limit (ulimit -f) is reported as a write error, not a signal that kills us.
  std::signal(SIGXFSZ, SIG_IGN);
  auto ref = platform::parse_model_ref(o.name);
  if (!ref) return ref.status();
  ModelStore store = ModelStore::in_cache_dir(o.cache_dir.empty() ? default_cache_dir() : o.cache_dir);
  ProgressPrinter printer(ref->to_string());
  auto m = store.pull(*ref, hub_options(o), [&](const gateway::hub::PullProgress& p) { printer(p); });
  printer.finish();
  if (!m) return m.status();
  std::printf("%s  %s  %s\n", m->name.c_str(), format_size(m->size).c_str(), m->path.c_str());
  return core::Status::ok();
}

core::Status list(const ModelsOptions& o) {
  ModelStore store = ModelStore::in_cache_dir(o.cache_dir.empty() ? default_cache_dir() : o.cache_dir);
  const auto models = store.list();
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& m : models) arr.push_back({{"name", m.name}, {"size", m.size}, {"sha256", m.sha256}, {"path", m.path}});
    std::printf("%s\n", arr.dump().c_str());
    return core::Status::ok();
  }
  if (models.empty()) {
    std::printf("no models in %s (pull one: zeroserve pull hf:OWNER/REPO:Q4_K_M)\n", store.root().c_str());
    return core::Status::ok();
  }
  size_t width = 4;
  for (const auto& m : models) width = std::max(width, m.name.size());
  std::printf("%-*s  %10s  %s\n", static_cast<int>(width), "NAME", "SIZE", "PATH");
  for (const auto& m : models)
    std::printf("%-*s  %10s  %s\n", static_cast<int>(width), m.name.c_str(), format_size(m.size).c_str(), m.path.c_str());
  return core::Status::ok();
}

core::Status remove(const ModelsOptions& o) {
  auto ref = platform::parse_model_ref(o.name);
  if (!ref) return ref.status();
  ModelStore store = ModelStore::in_cache_dir(o.cache_dir.empty() ? default_cache_dir() : o.cache_dir);
  auto removed = store.remove(*ref);
  if (!removed) return removed.status();
  for (const auto& m : *removed) std::printf("removed %s (%s)\n", m.name.c_str(), format_size(m.size).c_str());
  if (removed->empty()) std::printf("removed %s\n", ref->to_string().c_str());
  return core::Status::ok();
}

}  // namespace

void register_models_commands(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ModelsOptions>();
  auto* pull_cmd = app.add_subcommand("pull", "Download a model from Hugging Face into the local store");
  pull_cmd->add_option("name", o->name, "hf:OWNER/REPO/FILE.gguf[@REVISION] or hf:OWNER/REPO:QUANT[@REVISION]")->required();
  pull_cmd->add_option("--cache-dir", o->cache_dir, "the store's cache directory (default ~/.cache/zeroserve)");
  pull_cmd->add_flag("--offline", o->offline, "never contact the hub (only checks the store)");
  pull_cmd->callback([o, &exit_code] { exit_code = report(pull(*o)); });

  auto* models_cmd = app.add_subcommand("models", "List the models in the local store: names, sizes, paths");
  models_cmd->add_option("--cache-dir", o->cache_dir, "the store's cache directory (default ~/.cache/zeroserve)");
  models_cmd->add_flag("--json", o->json, "one JSON array");
  models_cmd->callback([o, &exit_code] { exit_code = report(list(*o)); });

  auto* rm_cmd = app.add_subcommand("rm", "Remove a model from the local store");
  rm_cmd->add_option("name", o->name, "a name as `zeroserve models` lists it (or hf:OWNER/REPO:QUANT)")->required();
  rm_cmd->add_option("--cache-dir", o->cache_dir, "the store's cache directory (default ~/.cache/zeroserve)");
  rm_cmd->callback([o, &exit_code] { exit_code = report(remove(*o)); });
}

}  // namespace zs::cli
