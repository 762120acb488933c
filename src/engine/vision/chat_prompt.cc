#include "engine/vision/chat_prompt.h"

namespace zs::engine {

using core::Result;
using core::Status;

namespace {

Result<PreparedPrompt> assemble(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                const std::vector<size_t>& offsets, const std::vector<const ImageBytes*>& images) {
  PreparedPrompt out;
  std::vector<ImageEmbedding> embeddings;
  if (!images.empty() && !embedder)
    return Status::error("this model has no vision projector (mmproj), so it cannot take images");
  for (size_t i = 0; i < images.size(); ++i) {
    auto e = embedder->embed(images[i]->data(), images[i]->size());
    if (!e) return e.status().with_context("image " + std::to_string(i + 1));
    out.cached_images += e->cache_hit ? 1 : 0;
    embeddings.push_back(std::move(e.value()));
  }
  const Tokenizer& tok = *llm.tokenizer;
  // A template that writes the BOS text itself must not get a second BOS.
  const std::string bos_text(tok.bos() >= 0 ? tok.token_text(tok.bos()) : "");
  const bool add_bos = tok.add_bos_by_default() && (bos_text.empty() || text.rfind(bos_text, 0) != 0);
  const ProjectorType projector = embedder ? embedder->model().config().projector : ProjectorType::kMlp;
  auto built = build_multimodal_prompt(tok, text, offsets, embeddings, projector, add_bos);
  if (!built) return built.status();
  out.prompt = std::move(built.value());
  if (out.prompt.n_positions() == 0) return Status::error("the prompt is empty");
  return out;
}

}  // namespace

Result<PreparedPrompt> prepare_chat_prompt(const Llm& llm, ImageEmbedder* embedder, ChatTemplateKind kind,
                                           const std::vector<ChatMessage>& messages,
                                           const std::vector<ImageBytes>& images) {
  const Tokenizer& tok = *llm.tokenizer;
  auto rendered = apply_chat_template(kind, messages, true, tok.bos() >= 0 ? tok.token_text(tok.bos()) : "",
                                      tok.eos() >= 0 ? tok.token_text(tok.eos()) : "");
  if (!rendered) return rendered.status();
  std::vector<const ImageBytes*> ordered;
  for (int index : rendered->image_indices) {
    if (index < 0 || index >= static_cast<int>(images.size()))
      return Status::error("a message refers to image " + std::to_string(index + 1) + " but the request has " +
                           std::to_string(images.size()));
    ordered.push_back(&images[index]);
  }
  return assemble(llm, embedder, rendered->text, rendered->image_offsets, ordered);
}

Result<PreparedPrompt> prepare_text_prompt(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                           const std::vector<ImageBytes>& images) {
  std::vector<const ImageBytes*> ordered;
  for (const auto& img : images) ordered.push_back(&img);
  return assemble(llm, embedder, text, std::vector<size_t>(images.size(), 0), ordered);
}

}  // namespace zs::engine
