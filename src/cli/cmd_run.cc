// `zeroserve run`: generates a completion of a prompt and streams it to stdout.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/chat/chat_template.h"
#include "engine/model/llm.h"
#include "engine/model/session.h"
#include "engine/sampling/sampler.h"
#include "engine/vision/chat_prompt.h"
#include "engine/vision/vision_loader.h"

namespace zs::cli {
namespace {

struct RunOptions {
  std::string model, prompt, mmproj, system, chat_template;
  std::vector<std::string> images;
  int n_predict = 128;
  int threads = 0;
  int ctx = 0;
  bool chat = false;
  bool verbose = false;
  engine::SamplingParams sampling;
};

core::Result<engine::PreparedPrompt> build_prompt(const RunOptions& o, const engine::Llm& llm,
                                                  engine::ImageEmbedder* embedder) {
  std::vector<engine::ImageBytes> images;
  for (const auto& path : o.images) {
    auto bytes = read_file_bytes(path);
    if (!bytes) return bytes.status();
    images.push_back(std::move(bytes.value()));
  }
  if (!o.chat) return engine::prepare_text_prompt(llm, embedder, o.prompt, images);
  auto source = llm.model->file().get_string("tokenizer.chat_template");
  auto choice = engine::choose_chat_template(o.chat_template, source.value_or(""));
  if (!choice) return choice.status();
  std::vector<engine::ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", {{engine::ChatPart::Kind::kText, o.system}}});
  engine::ChatMessage user{"user", {}};
  for (size_t i = 0; i < images.size(); ++i) user.parts.push_back({engine::ChatPart::Kind::kImage, "", static_cast<int>(i)});
  user.parts.push_back({engine::ChatPart::Kind::kText, o.prompt});
  messages.push_back(std::move(user));
  return engine::prepare_chat_prompt(llm, embedder, choice->kind, messages, images);
}

core::Status run(const RunOptions& o) {
  ZS_RETURN_IF_ERROR(o.sampling.validate());
  if (!o.images.empty() && o.mmproj.empty()) return core::Status::error("--image needs --mmproj (the vision projector)");
  auto t0 = std::chrono::steady_clock::now();
  auto llm = engine::Llm::load(o.model);
  if (!llm) return llm.status();
  auto backend = engine::make_cpu_backend(o.threads);
  std::unique_ptr<engine::ClipModel> clip;
  std::unique_ptr<engine::ImageEmbedder> embedder;
  if (!o.mmproj.empty()) {
    auto loaded = engine::load_vision_for(*llm->model, o.mmproj);
    if (!loaded) return loaded.status();
    clip = std::move(loaded.value());
    embedder = std::make_unique<engine::ImageEmbedder>(*clip, *backend);
  }
  auto prepared = build_prompt(o, llm.value(), embedder.get());
  if (!prepared) return prepared.status();
  const engine::MultimodalPrompt& prompt = prepared->prompt;
  const auto& tok = *llm->tokenizer;
  const int n_prompt = prompt.n_positions();
  const int n_ctx = o.ctx > 0 ? o.ctx : std::min<int>(llm->model->config().n_ctx_train, n_prompt + o.n_predict);
  if (n_prompt >= n_ctx)
    return core::Status::error("the prompt needs " + std::to_string(n_prompt) + " positions (" +
                               std::to_string(prompt.n_image_positions) + " of them for images), the context holds " +
                               std::to_string(n_ctx));
  engine::Session session(*llm->model, *backend, n_ctx);
  auto t1 = std::chrono::steady_clock::now();
  ZS_RETURN_IF_ERROR(engine::eval_prompt(session, prompt));
  auto t2 = std::chrono::steady_clock::now();
  engine::Sampler sampler(o.sampling);
  for (int32_t t : prompt.flat_ids())
    if (t >= 0) sampler.accept(t);
  int generated = 0;
  while (generated < o.n_predict && session.n_past() < n_ctx) {
    int32_t next = sampler.sample(session.logits(), session.n_vocab());
    sampler.accept(next);
    if (tok.is_end_of_generation(next)) break;
    std::string piece = tok.token_to_piece(next);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    ++generated;
    if (generated < o.n_predict && session.n_past() < n_ctx) ZS_RETURN_IF_ERROR(session.eval(&next, 1));
  }
  std::printf("\n");
  auto t3 = std::chrono::steady_clock::now();
  if (o.verbose) {
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::fprintf(stderr, "load %.1f ms, prompt %d positions in %.1f ms, %d tokens generated in %.1f ms (%.1f tok/s)\n",
                 ms(t0, t1), n_prompt, ms(t1, t2), generated, ms(t2, t3), generated * 1000.0 / std::max(1e-9, ms(t2, t3)));
  }
  return core::Status::ok();
}

}  // namespace

void register_run_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Generate a completion and stream it to stdout");
  cmd->add_option("--model", o->model, "GGUF model")->required();
  cmd->add_option("--prompt", o->prompt, "prompt text")->required();
  cmd->add_option("--n-predict,-n", o->n_predict, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--temp", o->sampling.temperature, "temperature (0 = greedy)");
  cmd->add_option("--top-k", o->sampling.top_k, "top-k (0 = off)");
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling threshold");
  cmd->add_option("--min-p", o->sampling.min_p, "min-p threshold");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "repetition penalty (1 = off)");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "OpenAI-style frequency penalty");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "OpenAI-style presence penalty");
  cmd->add_option("--seed", o->sampling.seed, "random seed");
  cmd->add_option("--threads,-t", o->threads, "compute threads (default: all cores)")->check(CLI::Range(0, 1024));
  cmd->add_option("--ctx", o->ctx, "context length (default: prompt + n-predict)")->check(CLI::Range(0, 1 << 22));
  cmd->add_flag("--chat", o->chat, "wrap the prompt in the model's chat template");
  cmd->add_option("--system", o->system, "system message (with --chat)");
  cmd->add_option("--chat-template", o->chat_template, "override the model's chat template (chatml, llama2, llama3, ...)");
  cmd->add_flag("--verbose,-v", o->verbose, "print timings to stderr");
  cmd->add_option("--mmproj", o->mmproj, "vision projector GGUF");
  cmd->add_option("--image", o->images, "image file (JPEG, PNG, BMP, GIF, WebP); repeat for several");
  cmd->callback([o, &exit_code] { exit_code = report(run(*o)); });
}

}  // namespace zs::cli
