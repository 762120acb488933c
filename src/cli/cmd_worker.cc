// `zeroserve worker`: one model instance serving the OpenAI API. Prints "ready <addr>" on
// stdout once it can serve; on SIGTERM or SIGINT it drains (in-flight requests finish within
// the grace period) and exits.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_cli.h"
#include "cli/model_source.h"
#include "gateway/hub/model_store.h"
#include "platform/models/model_ref.h"
#include "core/log.h"
#include "core/process_limits.h"
#include "worker/worker.h"
#include "worker/worker_protocol.h"

namespace zs::cli {
namespace {

core::Status run_worker(const worker::WorkerOptions& options, const std::string& cache_dir_flag) {
  // Signals are taken synchronously by this thread; block them before other threads start
  // so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  core::raise_open_file_limit();

  // An "hf:" name is found in the model store, or pulled into it (serve's first start of a
  // deployment naming one); a concurrent start of the same model waits for that download.
  std::signal(SIGXFSZ, SIG_IGN);
  const gateway::hub::HubOptions hub = gateway::hub::HubOptions::from_environment();
  const std::string cache_dir = cache_dir_flag.empty() ? default_cache_dir() : cache_dir_flag;
  worker::WorkerOptions o = options;
  for (auto [flag, value] : {std::pair<const char*, std::string*>{"--model", &o.model}, {"--mmproj", &o.mmproj},
                             {"--draft-model", &o.draft_model}}) {
    if (!platform::is_model_ref(*value)) continue;
    if (o.name.empty() && value == &o.model) o.name = default_model_name(*value);
    core::log_info("worker", std::string("finding ") + flag + " " + *value + " in " + cache_dir + " (pulling it when missing)");
    auto path = gateway::hub::resolve_model_path(*value, cache_dir, hub);
    if (!path) return path.status().with_context(flag);
    *value = path.value();
  }
  auto w = worker::Worker::start(o);
  if (!w) return w.status();
  core::log_info("worker", "listening on " + w.value()->address() + ", loading " + o.model);
  const auto load_began = std::chrono::steady_clock::now();
  ZS_RETURN_IF_ERROR(w.value()->load());
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_began).count();
  // worker_protocol.h: what the start spent where, then the ready line.
  std::printf("%s%s=%.1f\n", worker::kStartedPrefix, worker::kLoadMsKey, load_ms);
  std::printf("%s%s\n", worker::kReadyPrefix, w.value()->address().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  core::log_info("worker", std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining");
  w.value()->drain_and_stop();
  return core::Status::ok();
}

}  // namespace

void register_worker_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<worker::WorkerOptions>();
  auto cache_dir = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("worker", "Serve one model instance over the OpenAI-compatible API");
  cmd->add_option("--model", o->model, "GGUF model: a path or hf:OWNER/REPO:QUANT (pulled when not stored)")->required();
  cmd->add_option("--mmproj", o->mmproj, "vision projector GGUF: a path or an hf: name");
  cmd->add_option("--cache-dir", *cache_dir, "where hf: names are stored (default ~/.cache/zeroserve)");
  cmd->add_option("--listen", o->listen, "127.0.0.1:PORT (0 = any free port) or unix:/path");
  cmd->add_option("--slots", o->slots, "sequences decoded together")->check(CLI::Range(1, 1024));
  cmd->add_option("--ctx", o->ctx, "KV cache positions shared by all slots")->check(CLI::Range(16, 1 << 22));
  cmd->add_option("--threads,-t", o->threads, "compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--step-tokens", o->step_tokens, "token budget of one batched step")->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--chat-template", o->chat_template, "override the model's chat template");
  cmd->add_option("--speculative", o->speculative,
                  "speculative decoding: prompt-lookup (drafts copied from the prompt and output so far) or "
                  "draft-model (drafts from --draft-model)")
      ->check(CLI::IsMember({"prompt-lookup", "draft-model"}));
  cmd->add_option("--draft-model", o->draft_model, "speculative decoding: a smaller GGUF with the same vocabulary");
  cmd->add_option("--draft-tokens", o->draft_tokens, "speculative decoding: draft tokens per sequence and step")
      ->check(CLI::Range(1, 16));
  cmd->add_flag("--matryoshka", o->matryoshka,
                "embedding models: the model was trained Matryoshka-style, so requests may ask for fewer 'dimensions'");
  cmd->add_option("--embed-rows", o->embed_rows,
                  "embedding models: tokens per encoder pass (at least the model's context)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-image-tokens", o->max_image_tokens,
                  "vision models: image tokens one image may become (0 = the context is the limit); "
                  "'detail: low' caps an image at 256")
      ->check(CLI::Range(0, 1 << 22));
  cmd->add_option("--max-body-bytes", o->max_body_bytes,
                  "largest request body accepted (413 beyond); `serve` passes its gateway.max_body_bytes")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40));
  cmd->add_option("--name", o->name, "model name reported in responses (default: the model file's stem)");
  auto grace_ms = std::make_shared<int>(30000);
  cmd->add_option("--drain-grace-ms", *grace_ms, "how long in-flight requests may finish after SIGTERM");
  cmd->callback([o, grace_ms, cache_dir, &exit_code] {
    o->drain_grace = std::chrono::milliseconds(*grace_ms);
    exit_code = report(run_worker(*o, *cache_dir));
  });
}

}  // namespace zs::cli
