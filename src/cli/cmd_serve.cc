// `zeroserve serve`: the serverless gateway. SIGHUP reloads the configuration without
// dropping requests; SIGTERM/SIGINT drain and stop every instance.
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/serve_daemon.h"
#include "gateway/hub/model_store.h"
#include "core/log.h"
#include "core/process_limits.h"

namespace zs::cli {
namespace {

core::Status serve(const ServeOptions& o) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // Request bodies up to gateway.max_body_bytes come and go: their buffers go back to the OS
  // when freed (the gateway also trims the heap after large bodies; docs/serving.md, "Memory").
  core::release_large_buffers_to_os();
  core::log_info("serve", "open file limit " + std::to_string(core::raise_open_file_limit()));
  auto daemon = ServeDaemon::start(o);
  if (!daemon) return daemon.status();
  std::printf("ready %s\n", daemon.value()->address().c_str());
  std::fflush(stdout);
  core::log_info("serve", "serving the OpenAI API on http://" + daemon.value()->address());
  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      core::Status s = daemon.value()->reload();
      if (!s) core::log_error("serve", "reload failed, keeping the running configuration: " + s.message());
      continue;
    }
    core::log_info("serve", "shutting down: draining requests and instances");
    daemon.value()->shutdown();
    return core::Status::ok();
  }
}

}  // namespace

void register_serve_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the serverless gateway over the deployments of a config file");
  cmd->add_option("--config,-c", o->config_path,
                  "zeroserve.yaml (default: --model, else a small real model from the hub, else a built-in demo)");
  cmd->add_option("--listen", o->listen, "address to listen on (overrides gateway.listen), e.g. 127.0.0.1:8080");
  auto* model = cmd->add_option("--model,-m", o->model,
                                "serve this one model without a config file: a GGUF path or hf:OWNER/REPO:QUANT "
                                "(pulled first; docs/models.md)");
  model->excludes(cmd->get_option("--config"));
  cmd->add_option("--mmproj", o->mmproj, "with --model: its vision projector (a path or an hf: name)")->needs(model);
  cmd->add_flag("--offline", o->offline, "never contact the hub (also ZEROSERVE_OFFLINE=1): hf: names must be pulled already");
  cmd->callback([o, &exit_code] {
    // Instances inherit it, so that their first starts never contact the hub either.
    if (o->offline) setenv(gateway::hub::kOfflineEnv, "1", 1);
    exit_code = report(serve(*o));
  });
}

}  // namespace zs::cli
