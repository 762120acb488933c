#include "engine/vision/image_embedder.h"

namespace zs::engine {

using core::Result;
using core::Status;

ImageEmbedder::ImageEmbedder(const ClipModel& model, Backend& backend, ImageEmbedderOptions options)
    : model_(model), encoder_(model, backend), options_(options), cache_(options.cache_bytes) {
  options_.split.tile_size = model.config().image_size;
}

ImageEmbedder::Views ImageEmbedder::preprocess(const Image& image) const {
  const ClipConfig& c = model_.config();
  Views v;
  if (c.projector == ProjectorType::kMlp) {
    v.pixels.push_back(preprocess_llava(image, c.image_size, c.image_mean, c.image_std));
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
    auto joined = std::make_shared<std::vector<float>>();
    joined->reserve(views.pixels.size() * out.tokens_per_view * out.dim + 2);
    for (const auto& pixels : views.pixels) {
      auto e = encoder_.encode(pixels.data());
      if (!e) return e.status();
      joined->insert(joined->end(), e->begin(), e->end());
    }
    // The grid shape rides along at the end so that a cache hit can restore it.
    joined->push_back(static_cast<float>(views.rows));
    joined->push_back(static_cast<float>(views.cols));
    all = joined;
    cache_.insert(key, all);
  }
  out.rows = static_cast<int>((*all)[all->size() - 2]);
  out.cols = static_cast<int>((*all)[all->size() - 1]);
  out.n_views = static_cast<int>((all->size() - 2) / (static_cast<size_t>(out.tokens_per_view) * out.dim));
  out.data = all;
  out.key = key;
  return out;
}

}  // namespace zs::engine
