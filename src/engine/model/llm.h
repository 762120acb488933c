#pragma once
// A text model together with its tokenizer, both read from one GGUF file.
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/model/text_model.h"
#include "engine/tokenizer/tokenizer.h"

namespace zs::engine {

struct Llm {
  std::unique_ptr<TextModel> model;
  std::unique_ptr<Tokenizer> tokenizer;

  static core::Result<Llm> load(const std::string& path);
};

}  // namespace zs::engine
