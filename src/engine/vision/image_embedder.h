#pragma once
// Image bytes in, text-space embeddings out: decoding, the projector family's own
// preprocessing (LLaVA-1.5 padding, LLaVA-1.6 anyres tiles, SmolVLM tiling, GLM-Edge's
// bicubic resize), the vision encoder, and a content-hash
// cache so that an image resent in a later turn of a conversation is encoded once.
#include <memory>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/image/embedding_cache.h"
#include "engine/image/image.h"
#include "engine/image/preprocess.h"
#include "engine/vision/clip_encoder.h"
#include "engine/vision/qwen2vl_encoder.h"

namespace zs::engine {

struct ImageEmbedding {
  // Embeddings of each encoded view, view after view in prompt order: the tiles row-major,
  // then the global view (LLaVA: one view). LLaVA-1.6 anyres: all rows in the order they are
  // fed (base tile, then the grid interleaved by patch row, anyres.h), so view(i) is the i-th
  // block of tokens_per_view rows of that order rather than one tile. Shared with the cache.
  std::shared_ptr<const std::vector<float>> data;
  int n_views = 0;
  int rows = 0;  // tile grid (idefics3, LLaVA-1.6 anyres); 0 x 0 when the image is a single view
  int cols = 0;
  int pos_rows = 0;  // Qwen2-VL, Qwen2.5-VL: the merged 28x28-cell grid, for M-RoPE positions; else 0
  int pos_cols = 0;
  int tokens_per_view = 0;
  int dim = 0;
  bool cache_hit = false;
  ContentHash key;  // of the image bytes

  int n_tokens() const { return n_views * tokens_per_view; }
  const float* view(int i) const { return data->data() + static_cast<size_t>(i) * tokens_per_view * dim; }
};

// Image tokens one image may become, at most (0: no limit of its own). For Qwen2-VL and
// Qwen2.5-VL the image is resized down until its 28x28 cells fit (qwen25vl.h); SmolVLM drops its tiles for the global
// view alone; other projectors have a fixed count (an image over the budget is refused).
struct ImageTokenBudget {
  int max_tokens = 0;
};

// Qwen2-VL's preprocessing size: each side rounded up to a multiple of 28, as the reference
// does; with max_tokens > 0 and more cells than that, scaled down (aspect kept, each side at
// least 28) until (w/28) * (h/28) <= max_tokens.
ImageSize qwen2vl_image_size(int width, int height, int max_tokens);

// The preprocessing size of a native-resolution projector (ClipConfig::native_resolution):
// qwen2vl_image_size for Qwen2-VL, qwen25vl_image_size (qwen25vl.h) for Qwen2.5-VL.
ImageSize native_image_size(const ClipConfig& config, int width, int height, int max_tokens);

struct ImageEmbedderOptions {
  ImageLimits limits;
  size_t cache_bytes = 256u << 20;
  SplitConfig split;  // idefics3 tiling; tile_size follows the encoder's image size
};

// How many encoder views (tiles) and text-model rows an image of this size becomes with this
// projector, without decoding it (for reports such as `zeroserve bench`). Projector types
// whose geometry is not computed here report one view.
struct ImageTokenCount {
  int views = 0;
  int tokens = 0;
};
ImageTokenCount image_token_count(const ClipConfig& config, int width, int height, SplitConfig split = {},
                                  ImageTokenBudget budget = {});

class ImageEmbedder {
 public:
  ImageEmbedder(const ClipModel& model, Backend& backend, ImageEmbedderOptions options = {});

  core::Result<ImageEmbedding> embed(const uint8_t* data, size_t size, ImageTokenBudget budget = {});
  struct Views {
    std::vector<std::vector<float>> pixels;  // normalized [3][S][S] per view ([3][H][W] for Qwen2-VL)
    int rows = 0, cols = 0;
    int width = 0, height = 0;  // of the pixels, when views are not image_size squares
  };
  // The preprocessing alone.
  Views preprocess(const Image& image, ImageTokenBudget budget = {}) const;
  // Image tokens an image of this size becomes (the context check before encoding).
  int image_tokens(int width, int height, ImageTokenBudget budget = {}) const;

  const ClipModel& model() const { return model_; }
  EmbeddingCache::Stats cache_stats() const { return cache_.stats(); }

 private:
  const ClipModel& model_;
  std::unique_ptr<ClipEncoder> encoder_;        // fixed-size projectors
  std::unique_ptr<Qwen2VlEncoder> qwen2vl_;     // native resolution (Qwen2-VL, Qwen2.5-VL)
  ImageEmbedderOptions options_;
  EmbeddingCache cache_;
};

}  // namespace zs::engine
