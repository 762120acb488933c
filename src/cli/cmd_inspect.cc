// `zeroserve inspect --model M`: prints a GGUF file's metadata and tensor table.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "engine/gguf/gguf_file.h"

namespace zs::cli {

void register_inspect_command(CLI::App& app, int& exit_code) {
  auto model = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "Print a GGUF file's metadata and tensors");
  cmd->add_option("--model,model", *model, "GGUF file")->required();
  cmd->callback([model, &exit_code] {
    auto file = engine::GgufFile::open(*model);
    if (!file) {
      std::fprintf(stderr, "error: %s\n", file.status().message().c_str());
      exit_code = 1;
      return;
    }
    const auto& f = *file.value();
    std::printf("GGUF v%u, %zu metadata keys, %zu tensors, alignment %zu\n", f.version(),
                f.metadata().size(), f.tensors().size(), f.alignment());
    for (const auto& [k, v] : f.metadata()) std::printf("  %s = %s\n", k.c_str(), v.to_display_string().c_str());
    for (const auto& t : f.tensors())
      std::printf("  %-40s %-6s %s\n", t.name.c_str(), std::string(engine::ggml_type_name(t.type)).c_str(),
                  t.shape_string().c_str());
  });
}

}  // namespace zs::cli
