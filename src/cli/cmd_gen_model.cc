// `zeroserve gen-model`: writes a random-weight GGUF with the shapes of a real model.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/random_model.h"

namespace zs::cli {
namespace {

struct GenOptions {
  std::string preset, mmproj_preset, type, out;
  uint64_t seed = 1;
  int layers = 0;
  bool layers_given = false;  // otherwise the preset's own block count
};

// A vision projector: matrices in F16 (the usual published type) or F32.
core::Status gen_mmproj(const GenOptions& o) {
  auto preset = engine::find_mmproj_preset(o.mmproj_preset);
  if (!preset) return preset.status();
  const std::string type = o.type.empty() ? "f16" : o.type;
  if (type != "f16" && type != "f32")
    return core::Status::error("--type for an mmproj must be f16 or f32, not '" + type + "'");
  ZS_RETURN_IF_ERROR(engine::write_random_mmproj(preset.value(), type == "f16" ? engine::GgmlType::kF16
                                                                               : engine::GgmlType::kF32,
                                                 o.out, o.seed));
  std::printf("wrote %s (mmproj %s, %s, random weights)\n", o.out.c_str(), o.mmproj_preset.c_str(), type.c_str());
  return core::Status::ok();
}

core::Status gen(const GenOptions& o) {
  if (!o.mmproj_preset.empty()) {
    if (!o.preset.empty()) return core::Status::error("give either --preset or --mmproj-preset, not both");
    return gen_mmproj(o);
  }
  if (o.preset.empty()) return core::Status::error("--preset (a text model) or --mmproj-preset is required");
  auto preset = engine::find_model_preset(o.preset);
  if (!preset) return preset.status();
  if (o.layers_given) {
    preset = engine::with_layers(preset.value(), o.layers);
    if (!preset) return preset.status();
  }
  const std::string type = o.type.empty() ? "q4_k_m" : o.type;
  auto ft = engine::parse_file_type(type);
  if (!ft) return ft.status();
  const double gb = static_cast<double>(engine::estimate_file_bytes(preset.value(), ft.value())) / 1e9;
  const double ram_gb = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e9;
  if (gb > 0.8 * ram_gb)
    std::fprintf(stderr,
                 "note: %.1f GB of weights on a machine with %.1f GB of memory: it will not run here at speed; "
                 "--layers N keeps only the first N of the %d blocks\n",
                 gb, ram_gb, preset->n_layer);
  ZS_RETURN_IF_ERROR(engine::write_random_model(preset.value(), ft.value(), o.out, o.seed));
  std::printf("wrote %s (%s, %d of %d blocks, %s, %.2f GB of weights, random weights)\n", o.out.c_str(),
              o.preset.c_str(), preset->n_layer, preset->full_layers, type.c_str(), gb);
  return core::Status::ok();
}

}  // namespace

void register_gen_model_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<GenOptions>();
  auto* cmd = app.add_subcommand("gen-model", "Write a random-weight model with the shapes of a real one");
  std::string presets;
  for (const auto& n : engine::model_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--preset", o->preset, "model shape: " + presets);
  std::string mmproj_presets;
  for (const auto& n : engine::mmproj_preset_names()) mmproj_presets += (mmproj_presets.empty() ? "" : ", ") + n;
  cmd->add_option("--mmproj-preset", o->mmproj_preset, "vision projector shape instead of a text model: " + mmproj_presets);
  cmd->add_option("--type", o->type, "file type: f16, q8_0, q4_0, q4_k_m (default), q6_k; mmproj: f16 (default), f32");
  cmd->add_option("--out", o->out, "output GGUF path")->required();
  cmd->add_option("--seed", o->seed, "random seed");
  auto* layers = cmd->add_option("--layers", o->layers,
                  "keep only the first N blocks (every other shape stays the preset's), for machines without memory "
                  "for the whole model: mixtral-8x7b is ~26 GB at q4_k_m, qwen1.5-moe-a2.7b ~9 GB, glm-4-9b ~6 GB");
  cmd->callback([o, layers, &exit_code] {
    o->layers_given = layers->count() > 0;
    exit_code = report(gen(*o));
  });
}

}  // namespace zs::cli
