// `zeroserve gen-model`: writes a random-weight GGUF with the shapes of a real model.
#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/model/random_model.h"

namespace zs::cli {
namespace {

struct GenOptions {
  std::string preset, type = "q4_k_m", out;
  uint64_t seed = 1;
};

core::Status gen(const GenOptions& o) {
  auto preset = engine::find_model_preset(o.preset);
  if (!preset) return preset.status();
  auto ft = engine::parse_file_type(o.type);
  if (!ft) return ft.status();
  ZS_RETURN_IF_ERROR(engine::write_random_model(preset.value(), ft.value(), o.out, o.seed));
  std::printf("wrote %s (%s, %s, random weights)\n", o.out.c_str(), o.preset.c_str(), o.type.c_str());
  return core::Status::ok();
}

}  // namespace

void register_gen_model_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GenOptions>();
  auto* cmd = app.add_subcommand("gen-model", "Write a random-weight model with the shapes of a real one");
  std::string presets;
  for (const auto& n : engine::model_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--preset", o->preset, "model shape: " + presets)->required();
  cmd->add_option("--type", o->type, "file type: f16, q8_0, q4_0, q4_k_m, q6_k");
  cmd->add_option("--out", o->out, "output GGUF path")->required();
  cmd->add_option("--seed", o->seed, "random seed");
  cmd->callback([o, &exit_code] { exit_code = report(gen(*o)); });
}

}  // namespace zs::cli
