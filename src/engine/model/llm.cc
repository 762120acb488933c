#include "engine/model/llm.h"

namespace zs::engine {

core::Result<Llm> Llm::load(const std::string& path) {
  Llm llm;
  auto model = TextModel::load(path);
  if (!model) return model.status();
  llm.model = std::move(model.value());
  auto tok = Tokenizer::from_gguf(llm.model->file());
  if (!tok) return tok.status().with_context("tokenizer of '" + path + "'");
  llm.tokenizer = std::move(tok.value());
  if (llm.tokenizer->n_vocab() != llm.model->config().n_vocab)
    return core::Status::error("'" + path + "' has " + std::to_string(llm.tokenizer->n_vocab()) +
                               " tokens in its vocabulary but an embedding table of " +
                               std::to_string(llm.model->config().n_vocab) + " rows");
  return llm;
}

}  // namespace zs::engine
