#include "engine/vision/multimodal_prompt.h"

#include <algorithm>

namespace zs::engine {

using core::Result;
using core::Status;

int MultimodalPrompt::n_positions() const {
  int n = 0;
  for (const auto& p : pieces) n += p.n_positions();
  return n;
}

std::vector<int32_t> MultimodalPrompt::flat_ids() const {
  std::vector<int32_t> ids;
  for (const auto& p : pieces) {
    if (p.embeddings) {
      for (int i = 0; i < p.n_embeddings; ++i) {
        uint64_t h = (p.content_id + static_cast<uint64_t>(i)) * 0x9e3779b97f4a7c15ull;
        ids.push_back(-1 - static_cast<int32_t>((h >> 33) & 0x3fffffff));
      }
    } else {
      ids.insert(ids.end(), p.tokens.begin(), p.tokens.end());
    }
  }
  return ids;
}

std::vector<RopePosition> MultimodalPrompt::rope_positions(int32_t* next) const {
  std::vector<RopePosition> out;
  int32_t c = 0;
  for (const auto& p : pieces) {
    if (p.embeddings && p.grid_rows > 0 && p.grid_cols > 0) {
      for (int i = 0; i < p.n_embeddings; ++i) out.push_back(RopePosition::grid(c, i, p.grid_cols));
      c += RopePosition::grid_span(p.grid_rows, p.grid_cols);
    } else {
      for (int i = 0; i < p.n_positions(); ++i) out.push_back(RopePosition::text(c++));
    }
  }
  if (next) *next = c;
  return out;
}

namespace {

class Builder {
 public:
  Builder(const Tokenizer& tok, MultimodalPrompt& out) : tok_(tok), out_(out) {}

  void text(const std::string& s, bool add_bos) {
    if (s.empty() && !add_bos) return;
    auto ids = tok_.encode(s, add_bos, true);
    if (ids.empty()) return;
    if (!out_.pieces.empty() && !out_.pieces.back().embeddings) {
      auto& last = out_.pieces.back().tokens;
      last.insert(last.end(), ids.begin(), ids.end());
    } else {
      PromptPiece p;
      p.tokens = std::move(ids);
      out_.pieces.push_back(std::move(p));
    }
  }

  void view(const ImageEmbedding& img, int i, bool bidirectional = false) {
    PromptPiece p;
    p.bidirectional = bidirectional;
    p.storage = img.data;
    p.embeddings = img.view(i);
    p.n_embeddings = img.tokens_per_view;
    p.grid_rows = img.pos_rows;
    p.grid_cols = img.pos_cols;
    p.content_id = img.key.lo ^ (img.key.hi * 31) ^ (static_cast<uint64_t>(i) << 48);
    out_.n_image_positions += img.tokens_per_view;
    out_.pieces.push_back(std::move(p));
  }

 private:
  const Tokenizer& tok_;
  MultimodalPrompt& out_;
};

// The layout of Hugging Face's Idefics3 processor and of the 2026 reference: each tile
// announced by its grid position, "\n" after each row of tiles but the last, then "\n\n"
// (one token, as the processor's string tokenizes) before the global view.
void add_idefics3_image(Builder& b, const ImageEmbedding& img) {
  const std::string wrap = "<fake_token_around_image>";
  int view = 0;
  if (img.rows > 0) {
    for (int r = 0; r < img.rows; ++r) {
      for (int c = 0; c < img.cols; ++c) {
        b.text(wrap + "<row_" + std::to_string(r + 1) + "_col_" + std::to_string(c + 1) + ">", false);
        b.view(img, view++);
      }
      if (r + 1 < img.rows) b.text("\n", false);
    }
    b.text("\n\n", false);
  }
  b.text(wrap + "<global-img>", false);
  b.view(img, view);
  b.text(wrap, false);
}

// ---- Gemma 3 ----------------------------------------------------------------------------
// <start_of_image>, the image's rows (decoded bidirectionally), <end_of_image>.
void add_gemma3_image(Builder& b, const ImageEmbedding& img) {
  b.text("<start_of_image>", false);
  for (int v = 0; v < img.n_views; ++v) b.view(img, v, /*bidirectional=*/true);
  b.text("<end_of_image>", false);
}

}  // namespace

Result<MultimodalPrompt> build_multimodal_prompt(const Tokenizer& tokenizer, const std::string& text,
                                                 const std::vector<size_t>& image_offsets,
                                                 const std::vector<ImageEmbedding>& images, ProjectorType projector,
                                                 bool add_bos) {
  if (image_offsets.size() != images.size())
    return Status::error("the prompt has " + std::to_string(image_offsets.size()) + " image places but " +
                         std::to_string(images.size()) + " images were given");
  MultimodalPrompt out;
  Builder b(tokenizer, out);
  size_t pos = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    if (image_offsets[i] < pos || image_offsets[i] > text.size())
      return Status::error("image offsets must be increasing and inside the prompt");
    b.text(text.substr(pos, image_offsets[i] - pos), add_bos && i == 0);
    if (projector == ProjectorType::kIdefics3) {
      add_idefics3_image(b, images[i]);
    } else if (projector == ProjectorType::kGemma3) {
      add_gemma3_image(b, images[i]);
    } else if (projector == ProjectorType::kQwen2VlMerger || projector == ProjectorType::kQwen25VlMerger) {
      // Qwen2-VL and Qwen2.5-VL wrap each image in their vision start/end tokens.
      // Qwen2-VL's rows share one temporal position and see each other (its reference masks
      // by that position); Qwen2.5-VL's reference masks them causally in row-major order.
      b.text("<|vision_start|>", false);
      b.view(images[i], 0, /*bidirectional=*/projector == ProjectorType::kQwen2VlMerger);
      b.text("<|vision_end|>", false);
    } else {
      for (int v = 0; v < images[i].n_views; ++v) b.view(images[i], v);
    }
    pos = image_offsets[i];
  }
  b.text(text.substr(pos), add_bos && images.empty());
  return out;
}

Status eval_prompt(Session& session, const MultimodalPrompt& prompt) {
  for (const auto& p : prompt.pieces) {
    if (p.embeddings) ZS_RETURN_IF_ERROR(session.eval_embeddings(p.embeddings, p.n_embeddings, p.grid_rows, p.grid_cols,
                                                                  p.bidirectional));
    else ZS_RETURN_IF_ERROR(session.eval(p.tokens));
  }
  return Status::ok();
}

}  // namespace zs::engine
