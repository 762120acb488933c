#include "engine/vision/image_embedder.h"

#include "engine/vision/anyres.h"

namespace zs::engine {

using core::Result;
using core::Status;

ImageTokenCount image_token_count(const ClipConfig& c, int width, int height, SplitConfig split) {
  ImageTokenCount n{1, c.tokens_per_image()};
  if (c.is_anyres()) {
    n.tokens = anyres_image_tokens(width, height, c.grid_pinpoints, c.image_size, c.tokens_per_image());
    n.views = n.tokens / c.tokens_per_image();
  } else if (c.projector == ProjectorType::kIdefics3) {
    split.tile_size = c.image_size;
    const ImageSize first = idefics3_resize_size(width, height, split.longest_edge);
    const ImageSize grid = idefics3_tile_grid_size(first.width, first.height, split.tile_size);
    if (grid.width > split.tile_size || grid.height > split.tile_size)
      n.views = (grid.width / split.tile_size) * (grid.height / split.tile_size) + 1;
    n.tokens = n.views * c.tokens_per_image();
  }
  return n;
}

ImageEmbedder::ImageEmbedder(const ClipModel& model, Backend& backend, ImageEmbedderOptions options)
    : model_(model), encoder_(model, backend), options_(options), cache_(options.cache_bytes) {
  options_.split.tile_size = model.config().image_size;
}

ImageEmbedder::Views ImageEmbedder::preprocess(const Image& image) const {
  const ClipConfig& c = model_.config();
  Views v;
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
  if (c.projector == ProjectorType::kAdapter) {
    // GLM-Edge: bicubic straight to the square input size, no padding.
    v.pixels.push_back(normalize(resize_bicubic(image, c.image_size, c.image_size), c.image_mean, c.image_std));
    return v;
  }
  SplitImage split = split_image(image, options_.split);
  for (const Image& tile : split.tiles) v.pixels.push_back(normalize(tile, c.image_mean, c.image_std));
  v.pixels.push_back(normalize(split.global, c.image_mean, c.image_std));
  v.rows = split.rows;
  v.cols = split.cols;
  return v;
}

Result<ImageEmbedding> ImageEmbedder::embed(const uint8_t* data, size_t size) {
  const ClipConfig& c = model_.config();
  ImageEmbedding out;
  out.tokens_per_view = c.tokens_per_image();
  out.dim = c.projection_dim;
  // One cache entry per image holds every view, laid out view after view.
  const ContentHash key = cache_.key_for(data, size);
  EmbeddingCache::Value all = cache_.find(key);
  if (all) {
    out.cache_hit = true;
  } else {
    auto image = decode_image(data, size, options_.limits);
    if (!image) return image.status();
    Views views = preprocess(image.value());
    auto joined = std::make_shared<CachedEmbedding>();
    joined->values.reserve(views.pixels.size() * out.tokens_per_view * out.dim);
    for (const auto& pixels : views.pixels) {
      auto e = encoder_.encode(pixels.data());
      if (!e) return e.status();
      joined->values.insert(joined->values.end(), e->begin(), e->end());
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
  out.n_views = static_cast<int>(all->values.size() / (static_cast<size_t>(out.tokens_per_view) * out.dim));
  out.data = std::shared_ptr<const std::vector<float>>(all, &all->values);  // keeps the entry alive
  out.key = key;
  return out;
}

}  // namespace zs::engine
