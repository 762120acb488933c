#include "engine/vision/image_embedder.h"

#include <algorithm>
#include <cmath>

#include "engine/vision/anyres.h"
#include "engine/vision/qwen25vl.h"
#include "engine/vision/idefics3_reference.h"

namespace zs::engine {

using core::Result;
using core::Status;

namespace {
constexpr int kCell = 28;  // Qwen2-VL: 2x2 patches of 14, one image token
}  // namespace

ImageSize native_image_size(const ClipConfig& c, int width, int height, int max_tokens) {
  if (c.projector == ProjectorType::kQwen25VlMerger) return qwen25vl_image_size(width, height, max_tokens);
  return qwen2vl_image_size(width, height, max_tokens);
}

ImageSize qwen2vl_image_size(int width, int height, int max_tokens) {
  auto up = [](int v) { return std::max(kCell, (v + kCell - 1) / kCell * kCell); };
  ImageSize s{up(width), up(height)};
  auto cells = [](const ImageSize& z) { return static_cast<int64_t>(z.width / kCell) * (z.height / kCell); };
  if (max_tokens <= 0 || cells(s) <= max_tokens) return s;
  // Scale both sides by one factor (aspect kept), rounding down to whole cells, and shrink the
  // factor until the cells fit; a side never drops below one cell.
  double f = std::sqrt(static_cast<double>(max_tokens) * kCell * kCell / (static_cast<double>(width) * height));
  for (;;) {
    ImageSize t{std::max(kCell, static_cast<int>(width * f) / kCell * kCell),
                std::max(kCell, static_cast<int>(height * f) / kCell * kCell)};
    if (cells(t) <= max_tokens || (t.width == kCell && t.height == kCell)) return t;
    f *= 0.98;
  }
}

ImageTokenCount image_token_count(const ClipConfig& c, int width, int height, SplitConfig split,
                                  ImageTokenBudget budget) {
  ImageTokenCount n{1, c.tokens_per_image()};
  if (c.native_resolution()) {
    const ImageSize s = native_image_size(c, width, height, budget.max_tokens);
    n.tokens = (s.width / kCell) * (s.height / kCell);
  } else if (c.is_anyres()) {
    n.tokens = anyres_image_tokens(width, height, c.grid_pinpoints, c.image_size, c.tokens_per_image());
    n.views = n.tokens / c.tokens_per_image();
  } else if (c.projector == ProjectorType::kIdefics3) {
    // The tile grid: the 2026 reference's rule when the file has preproc_image_size
    // (idefics3_reference.h), else Hugging Face's.
    ImageSize grid;
    if (c.preproc_image_size > 0) {
      grid = idefics3_refined_size(width, height, c.preproc_image_size, c.image_size);
    } else {
      const ImageSize first = idefics3_resize_size(width, height, split.longest_edge);
      grid = idefics3_tile_grid_size(first.width, first.height, c.image_size);
    }
    if (grid.width > c.image_size || grid.height > c.image_size)
      n.views = (grid.width / c.image_size) * (grid.height / c.image_size) + 1;
    // Over the budget, the image is not split: the global view alone.
    if (budget.max_tokens > 0 && n.views * c.tokens_per_image() > budget.max_tokens) n.views = 1;
    n.tokens = n.views * c.tokens_per_image();
  }
  return n;
}

ImageEmbedder::ImageEmbedder(const ClipModel& model, Backend& backend, ImageEmbedderOptions options)
    : model_(model), options_(options), cache_(options.cache_bytes) {
  options_.split.tile_size = model.config().image_size;
  if (model.config().native_resolution()) {
    qwen2vl_ = std::make_unique<Qwen2VlEncoder>(model, backend);
  } else {
    encoder_ = std::make_unique<ClipEncoder>(model, backend);
  }
}

int ImageEmbedder::image_tokens(int width, int height, ImageTokenBudget budget) const {
  return image_token_count(model_.config(), width, height, options_.split, budget).tokens;
}

ImageEmbedder::Views ImageEmbedder::preprocess(const Image& image, ImageTokenBudget budget) const {
  const ClipConfig& c = model_.config();
  Views v;
  if (c.projector == ProjectorType::kQwen25VlMerger) {
    const ImageSize s = qwen25vl_image_size(image.width, image.height, budget.max_tokens);
    v.pixels.push_back(normalize(qwen25vl_resize(image, s.width, s.height), c.image_mean, c.image_std));
    v.width = s.width;
    v.height = s.height;
    return v;
  }
  if (c.projector == ProjectorType::kQwen2VlMerger) {
    const ImageSize s = qwen2vl_image_size(image.width, image.height, budget.max_tokens);
    v.pixels.push_back(normalize(resize_bicubic(image, s.width, s.height), c.image_mean, c.image_std));
    v.width = s.width;
    v.height = s.height;
    return v;
  }
  if (c.is_anyres()) {
    // LLaVA-1.6 anyres: the base tile first, then the grid row-major.
    AnyresTiles tiles = anyres_split(image, c.grid_pinpoints, c.image_size);
    v.pixels.push_back(normalize(tiles.base, c.image_mean, c.image_std));
    for (const Image& tile : tiles.grid) v.pixels.push_back(normalize(tile, c.image_mean, c.image_std));
    v.rows = tiles.rows;
    v.cols = tiles.cols;
    return v;
  }
  if (c.projector == ProjectorType::kMlp) {
    v.pixels.push_back(preprocess_llava(image, c.image_size, c.image_mean, c.image_std));
    return v;
  }
  if (c.projector == ProjectorType::kGemma3) {
    v.pixels.push_back(preprocess_gemma3(image, c.image_size, c.image_mean, c.image_std));
    return v;
  }
  if (c.projector == ProjectorType::kAdapter) {
    // GLM-Edge: bicubic straight to the square input size, no padding.
    v.pixels.push_back(normalize(resize_bicubic(image, c.image_size, c.image_size), c.image_mean, c.image_std));
    return v;
  }
  if (c.preproc_image_size > 0) {
    // idefics3 with clip.vision.preproc_image_size: the 2026 reference's tiling.
    SplitImage split;
    if (image_token_count(c, image.width, image.height, options_.split, budget).views == 1)
      split.global = idefics3_reference_global(image, c.image_size);  // over the budget: global view alone
    else
      split = split_image_reference(image, c.preproc_image_size, c.image_size);
    for (const Image& tile : split.tiles) v.pixels.push_back(normalize(tile, c.image_mean, c.image_std));
    v.pixels.push_back(normalize(split.global, c.image_mean, c.image_std));
    v.rows = split.rows;
    v.cols = split.cols;
    return v;
  }
  SplitConfig split_config = options_.split;
  if (image_token_count(c, image.width, image.height, options_.split, budget).views == 1)
    split_config.longest_edge = c.image_size;  // one tile: the global view alone
  SplitImage split = split_image(image, split_config);
  for (const Image& tile : split.tiles) v.pixels.push_back(normalize(tile, c.image_mean, c.image_std));
  v.pixels.push_back(normalize(split.global, c.image_mean, c.image_std));
  v.rows = split.rows;
  v.cols = split.cols;
  return v;
}

Result<ImageEmbedding> ImageEmbedder::embed(const uint8_t* data, size_t size, ImageTokenBudget budget) {
  const ClipConfig& c = model_.config();
  const bool native = c.native_resolution();
  ImageEmbedding out;
  out.tokens_per_view = c.tokens_per_image();
  out.dim = c.projection_dim;
  // One cache entry per image (and budget, where it changes the result) holds every view,
  // laid out view after view.
  const ContentHash key =
      cache_.key_for(data, size, budget.max_tokens > 0 ? "max_tokens=" + std::to_string(budget.max_tokens) : "");
  EmbeddingCache::Value all = cache_.find(key);
  if (all) {
    out.cache_hit = true;
  } else {
    auto image = decode_image(data, size, options_.limits);
    if (!image) return image.status();
    Views views = preprocess(image.value(), budget);
    auto joined = std::make_shared<CachedEmbedding>();
    if (native) {
      auto e = qwen2vl_->encode(views.pixels[0].data(), views.width, views.height);
      if (!e) return e.status();
      joined->values = std::move(e.value());
      joined->pos_rows = views.height / kCell;
      joined->pos_cols = views.width / kCell;
    } else {
      joined->values.reserve(views.pixels.size() * out.tokens_per_view * out.dim);
      for (const auto& pixels : views.pixels) {
        auto e = encoder_->encode(pixels.data());
        if (!e) return e.status();
        joined->values.insert(joined->values.end(), e->begin(), e->end());
      }
    }
    if (c.is_anyres()) {
      // LLaVA-1.6: store the rows in the order the reference feeds them (see anyres.h).
      std::vector<float> ordered(joined->values.size());
      anyres_feed_order(joined->values.data(), views.rows, views.cols, c.patches_per_side(), out.dim,
                        ordered.data());
      joined->values = std::move(ordered);
    }
    joined->grid_rows = views.rows;
    joined->grid_cols = views.cols;
    all = joined;
    cache_.insert(key, all);
  }
  out.rows = all->grid_rows;
  out.cols = all->grid_cols;
  out.pos_rows = all->pos_rows;
  out.pos_cols = all->pos_cols;
  if (native) out.tokens_per_view = out.pos_rows * out.pos_cols;
  out.n_views = static_cast<int>(all->values.size() / (static_cast<size_t>(out.tokens_per_view) * out.dim));
  out.data = std::shared_ptr<const std::vector<float>>(all, &all->values);  // keeps the entry alive
  out.key = key;
  return out;
}

}  // namespace zs::engine
