#include "engine/model/model_preset.h"

namespace zs::engine {
namespace {

// Figures from each model's published config.json.
const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> kPresets = {
      {"tiny", "llama", 64, 2, 4, 2, 192, 4096, 2048, 10000.f, 1e-5f, false},
      {"bench-1b", "llama", 2048, 16, 32, 8, 8192, 32000, 4096, 10000.f, 1e-5f, true},
      {"smollm2-360m", "llama", 960, 32, 15, 5, 2560, 49152, 8192, 100000.f, 1e-5f, true},
      {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 100000.f, 1e-5f, true},
      {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.f, 1e-6f, true},
      {"llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.f, 1e-5f, true},
  };
  return kPresets;
}

}  // namespace

core::Result<ModelPreset> find_model_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string known;
  for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
  return core::Status::error("unknown model preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

}  // namespace zs::engine
