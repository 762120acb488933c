#include "engine/vision/chat_prompt.h"

#include <algorithm>

namespace zs::engine {

using core::Result;
using core::Status;

ImageTokenBudget image_budget_for_detail(std::string_view detail, int deployment_max_tokens) {
  constexpr int kLowDetailTokens = 256;
  ImageTokenBudget b{deployment_max_tokens};
  if (detail == "low") b.max_tokens = b.max_tokens > 0 ? std::min(b.max_tokens, kLowDetailTokens) : kLowDetailTokens;
  return b;
}

namespace {

// An image of the request, with its index there (for errors) and its budget.
struct OrderedImage {
  const ImageBytes* bytes;
  int index;
  ImageTokenBudget budget;
};

// Every image's token count from its header, against its budget and, with the text, the
// context: nothing is decoded or encoded when the request cannot fit.
Status check_image_tokens(const Tokenizer& tok, const ImageEmbedder& embedder, const std::string& text,
                          const std::vector<OrderedImage>& images, int max_positions) {
  int total = max_positions > 0 ? static_cast<int>(tok.encode(text, tok.add_bos_by_default(), true).size()) : 0;
  for (const OrderedImage& img : images) {
    auto size = read_image_size(img.bytes->data(), img.bytes->size());
    if (!size) return size.status().with_context("image " + std::to_string(img.index + 1));
    const int tokens = embedder.image_tokens(size->width, size->height, img.budget);
    const std::string name = "image " + std::to_string(img.index + 1) + " (" + std::to_string(size->width) + "x" +
                             std::to_string(size->height) + ")";
    if (img.budget.max_tokens > 0 && tokens > img.budget.max_tokens)
      return Status::error(name + " takes " + std::to_string(tokens) + " image tokens with this model, over its limit of " +
                           std::to_string(img.budget.max_tokens));
    total += tokens;
    if (max_positions > 0 && total + 1 > max_positions)
      return Status::error(name + " takes " + std::to_string(tokens) + " image tokens; with the text and the images " +
                           "before it the prompt needs " + std::to_string(total) + " positions but the context holds " +
                           std::to_string(max_positions));
  }
  return Status::ok();
}

Result<PreparedPrompt> assemble(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                const std::vector<size_t>& offsets, const std::vector<OrderedImage>& images,
                                int max_positions) {
  PreparedPrompt out;
  std::vector<ImageEmbedding> embeddings;
  if (!images.empty() && !embedder)
    return Status::error("this model has no vision projector (mmproj), so it cannot take images");
  if (!images.empty()) ZS_RETURN_IF_ERROR(check_image_tokens(*llm.tokenizer, *embedder, text, images, max_positions));
  for (size_t i = 0; i < images.size(); ++i) {
    auto e = embedder->embed(images[i].bytes->data(), images[i].bytes->size(), images[i].budget);
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
                                           const std::vector<ImageBytes>& images, const PromptLimits& limits) {
  const Tokenizer& tok = *llm.tokenizer;
  auto rendered = apply_chat_template(kind, messages, true, tok.bos() >= 0 ? tok.token_text(tok.bos()) : "",
                                      tok.eos() >= 0 ? tok.token_text(tok.eos()) : "");
  if (!rendered) return rendered.status();
  std::vector<OrderedImage> ordered;
  for (int index : rendered->image_indices) {
    if (index < 0 || index >= static_cast<int>(images.size()))
      return Status::error("a message refers to image " + std::to_string(index + 1) + " but the request has " +
                           std::to_string(images.size()));
    ordered.push_back({&images[index], index, index < static_cast<int>(limits.budgets.size()) ? limits.budgets[index]
                                                                                              : ImageTokenBudget{}});
  }
  return assemble(llm, embedder, rendered->text, rendered->image_offsets, ordered, limits.max_positions);
}

Result<PreparedPrompt> prepare_text_prompt(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                           const std::vector<ImageBytes>& images, const PromptLimits& limits) {
  std::vector<OrderedImage> ordered;
  for (size_t i = 0; i < images.size(); ++i)
    ordered.push_back({&images[i], static_cast<int>(i), i < limits.budgets.size() ? limits.budgets[i] : ImageTokenBudget{}});
  return assemble(llm, embedder, text, std::vector<size_t>(images.size(), 0), ordered, limits.max_positions);
}

}  // namespace zs::engine
