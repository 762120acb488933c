#pragma once
// A prompt of text and images as the text model consumes it: runs of token ids and runs of
// image embeddings, in order. Each image becomes the positions its projector family
// expects: LLaVA places the embeddings alone; SmolVLM/Idefics3 wraps each tile in marker
// tokens (<fake_token_around_image><row_r_col_c> ... <global-img> ...); Gemma 3 wraps the
// image in <start_of_image> ... <end_of_image> and decodes its rows bidirectionally.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/model/session.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"

namespace zs::engine {

struct PromptPiece {
  std::vector<int32_t> tokens;                        // a text run, or
  std::shared_ptr<const std::vector<float>> storage;  // an embedding run: rows of the model's width
  const float* embeddings = nullptr;
  int n_embeddings = 0;
  uint64_t content_id = 0;  // identifies the image view, for prefix sharing
  // M-RoPE models (Qwen2-VL): the rows form this grid (row-major) and take its coordinates as
  // rotary positions; 0 x 0 = plain consecutive positions.
  int grid_rows = 0, grid_cols = 0;
  // The image's rows see each other (non-causal inside the piece): a step takes all of them
  // or none. Set for Qwen2-VL grids (their rows share one temporal position; Qwen2.5-VL's
  // reference is causal) and for Gemma 3 images; sliding windows still hide keys earlier than
  // the window before each row.
  bool bidirectional = false;

  int n_positions() const { return embeddings ? n_embeddings : static_cast<int>(tokens.size()); }
};

struct MultimodalPrompt {
  std::vector<PromptPiece> pieces;
  int n_image_positions = 0;

  int n_positions() const;
  // One id per position: the token ids, and for image positions negative ids derived from
  // the image's content, so that equal prefixes (same text, same images) give equal ids.
  std::vector<int32_t> flat_ids() const;
  // M-RoPE rotary positions of every position: text advances all components by one; a grid
  // image starting at counter c gives row r, column k (c, c + r, c + k) and then advances the
  // counter by max(rows, cols). *next receives the counter after the prompt.
  std::vector<RopePosition> rope_positions(int32_t* next) const;
};

// text: the rendered prompt; image_offsets: byte offsets in text where images[i] goes.
core::Result<MultimodalPrompt> build_multimodal_prompt(const Tokenizer& tokenizer, const std::string& text,
                                                       const std::vector<size_t>& image_offsets,
                                                       const std::vector<ImageEmbedding>& images,
                                                       ProjectorType projector, bool add_bos);

// Feeds every piece to the session in order.
core::Status eval_prompt(Session& session, const MultimodalPrompt& prompt);

}  // namespace zs::engine
