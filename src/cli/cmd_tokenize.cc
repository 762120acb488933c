// `zeroserve tokenize`: tokenizes each text of a file split at lines "__ggml_vocab_test__"
// and prints one line of ids per text, in the format of llama.cpp's tokenizer test vectors.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace zs::cli {
namespace {

// Texts are separated by "\n__ggml_vocab_test__\n"; the file ends with one such separator.
std::vector<std::string> split_vocab_test_texts(const std::string& all) {
  static const std::string kSeparator = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t start = 0;
  for (size_t hit; (hit = all.find(kSeparator, start)) != std::string::npos; start = hit + kSeparator.size())
    texts.push_back(all.substr(start, hit - start));
  if (start < all.size()) texts.push_back(all.substr(start));
  return texts;
}

core::Status tokenize(const std::string& model, const std::string& text_file) {
  auto file = engine::GgufFile::open(model);
  if (!file) return file.status();
  auto tok = engine::Tokenizer::from_gguf(*file.value());
  if (!tok) return tok.status();
  std::ifstream in(text_file, std::ios::binary);
  if (!in) return core::Status::error("cannot read '" + text_file + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  for (const std::string& text : split_vocab_test_texts(ss.str())) {
    std::string line;
    for (int32_t id : tok.value()->encode(text, false, true)) line += " " + std::to_string(id);
    std::printf("%s\n", line.c_str());
  }
  return core::Status::ok();
}

}  // namespace

void register_tokenize_command(CLI::App& app, int& exit_code) {
  auto model = std::make_shared<std::string>();
  auto text_file = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("tokenize", "Tokenize test texts (one line of ids per text)");
  cmd->add_option("--model", *model, "GGUF model or vocabulary")->required();
  cmd->add_option("--text-file", *text_file, "texts separated by lines __ggml_vocab_test__")->required();
  cmd->callback([=, &exit_code] { exit_code = report(tokenize(*model, *text_file)); });
}

}  // namespace zs::cli
