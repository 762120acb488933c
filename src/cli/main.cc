#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"zeroserve: serverless inference for multimodal LLMs (GGUF)"};
  app.require_subcommand(1);
  int exit_code = 0;
  zs::cli::register_inspect_command(app, exit_code);
  zs::cli::register_run_command(app, exit_code);
  zs::cli::register_golden_command(app, exit_code);
  zs::cli::register_tokenize_command(app, exit_code);
  zs::cli::register_gen_model_command(app, exit_code);
  zs::cli::register_bench_command(app, exit_code);
  zs::cli::register_worker_command(app, exit_code);
  zs::cli::register_serve_command(app, exit_code);
  zs::cli::register_cost_command(app, exit_code);
  zs::cli::register_sim_command(app, exit_code);
  zs::cli::register_models_commands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
