#pragma once
// From a request to the positions a text model consumes: renders chat messages with the
// model's template (or takes a raw prompt), encodes the images, and assembles text and
// image embeddings in order. Shared by `zeroserve run` and the worker.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/chat/chat_template.h"
#include "engine/model/llm.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/multimodal_prompt.h"

namespace zs::engine {

using ImageBytes = std::vector<uint8_t>;

struct PreparedPrompt {
  MultimodalPrompt prompt;
  int cached_images = 0;  // images whose embeddings came from the cache
};

// messages refer to images by ChatPart::image_index (or their order). embedder may be null
// when the model has no vision projector; then any image is an error.
core::Result<PreparedPrompt> prepare_chat_prompt(const Llm& llm, ImageEmbedder* embedder, ChatTemplateKind kind,
                                                 const std::vector<ChatMessage>& messages,
                                                 const std::vector<ImageBytes>& images);

// A raw completion prompt; images, if any, come before the text.
core::Result<PreparedPrompt> prepare_text_prompt(const Llm& llm, ImageEmbedder* embedder, const std::string& text,
                                                 const std::vector<ImageBytes>& images);

}  // namespace zs::engine
