#pragma once
// Helpers for the tokenizer tests: loading vocabularies and llama.cpp's .inp/.out vectors.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/tokenizer.h"

namespace zs::engine::testing {

inline std::string shared_path(const std::string& rel) { return std::string(ZS_SHARED_DIR) + "/" + rel; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) {
    ADD_FAILURE() << file.status().message();
    return nullptr;
  }
  auto tok = Tokenizer::from_gguf(*file.value());
  if (!tok) {
    ADD_FAILURE() << tok.status().message();
    return nullptr;
  }
  return std::move(tok.value());
}

// Texts of a .inp file: separated by "\n__ggml_vocab_test__\n"; the file ends with a
// separator, so the piece after the last one is empty and not a text.
inline std::vector<std::string> read_vocab_inputs(const std::string& path) {
  const std::string all = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  size_t pos = 0;
  while (true) {
    const size_t hit = all.find(sep, pos);
    if (hit == std::string::npos) {
      if (pos < all.size()) texts.push_back(all.substr(pos));
      break;
    }
    texts.push_back(all.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  return texts;
}

inline std::vector<std::vector<int32_t>> read_vocab_outputs(const std::string& path) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

}  // namespace zs::engine::testing
