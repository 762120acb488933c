#pragma once
// From a request to the positions a text model consumes: renders chat messages with the
// model's template (or takes a raw prompt), encodes the images, and assembles text and
// image embeddings in order. Shared by `zeroserve run` and the worker.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/chat/chat_template.h"
#include "engine/model/llm.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/multimodal_prompt.h"

namespace zs::engine {

using ImageBytes = std::vector<uint8_t>;

// What one request may spend on images, checked before any image is encoded.
struct PromptLimits {
  // Per image of the request (by index), or empty: each image's token budget.
  std::vector<ImageTokenBudget> budgets;
  // The positions a prompt may take (the context); 0 = unchecked. The text's tokens and each
  // image's token count (from its header) must fit, or the error names the image that does not.
  int max_positions = 0;
};

// OpenAI's `detail` of an image_url part as a budget: "low" caps an image at 256 tokens,
// "high" and "auto" at the deployment's max_image_tokens (0 = none).
ImageTokenBudget image_budget_for_detail(std::string_view detail, int deployment_max_tokens);

struct PreparedPrompt {
  MultimodalPrompt prompt;
  int cached_images = 0;  // images whose embeddings came from the cache
};

// messages refer to images by ChatPart::image_index (or their order). embedder may be null
// when the model has no vision projector; then any image is an error.
core::Result<PreparedPrompt> prepare_chat_prompt(const Llm& llm, ImageEmbedder* embedder, ChatTemplateKind kind,
                                                 const std::vector<ChatMessage>& messages,
                                                 const std::vector<ImageBytes>& images,
                                                 const PromptLimits& limits = {});

// A raw completion prompt; images, if any, come before the text.
core::Result<PreparedPrompt> prepare_text_prompt(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                                 const std::vector<ImageBytes>& images,
                                                 const PromptLimits& limits = {});

}  // namespace zs::engine
