// libFuzzer target: any byte string given to the GGUF parser, and then to the model and
// tokenizer loaders when it parses, must produce a value or a clear error, never a crash.
#include <cstddef>
#include <cstdint>

#include "engine/gguf/gguf_file.h"
#include "engine/model/text_model.h"
#include "engine/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = zs::engine::GgufFile::parse(data, size, "fuzz");
  if (!file) return 0;
  auto tokenizer = zs::engine::Tokenizer::from_gguf(*file.value());
  if (tokenizer) (void)tokenizer.value()->encode("Hello <s> world", true, true);
  (void)zs::engine::TextModel::load(std::move(file.value()));
  return 0;
}
