#pragma once
// Each zeroserve subcommand registers itself on the top-level CLI11 app. A command's
// callback stores its process exit code in `exit_code`.
#include <CLI/CLI.hpp>

namespace zs::cli {

void register_inspect_command(CLI::App& app, int& exit_code);
void register_run_command(CLI::App& app, int& exit_code);
void register_golden_command(CLI::App& app, int& exit_code);
void register_tokenize_command(CLI::App& app, int& exit_code);
void register_gen_model_command(CLI::App& app, int& exit_code);
void register_bench_command(CLI::App& app, int& exit_code);
void register_worker_command(CLI::App& app, int& exit_code);
void register_serve_command(CLI::App& app, int& exit_code);
void register_cost_command(CLI::App& app, int& exit_code);
void register_sim_command(CLI::App& app, int& exit_code);
void register_models_commands(CLI::App& app, int& exit_code);  // pull, models, rm

}  // namespace zs::cli
