#include "engine/vision/idefics3_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/image/resize_aligned.h"

namespace zs::engine {

ImageSize idefics3_refined_size(int width, int height, int preproc_image_size, int tile_size) {
  if (width <= 0 || height <= 0 || preproc_image_size <= 0 || tile_size <= 0) return {};
  const float l = static_cast<float>(preproc_image_size);
  const float s = std::min(l / static_cast<float>(width), l / static_cast<float>(height));
  auto side = [&](int v) {
    const int tiles = static_cast<int>(std::ceil(static_cast<float>(v) * s / static_cast<float>(tile_size)));
    return std::max(1, tiles) * tile_size;
  };
  return {side(width), side(height)};
}

Image idefics3_reference_global(const Image& img, int tile_size) {
  return resize_bilinear_align_corners(img, tile_size, tile_size);
}

SplitImage split_image_reference(const Image& img, int preproc_image_size, int tile_size) {
  SplitImage out;
  if (img.width <= 0 || img.height <= 0 || tile_size <= 0) return out;
  out.global = idefics3_reference_global(img, tile_size);
  const ImageSize refined = idefics3_refined_size(img.width, img.height, preproc_image_size, tile_size);
  if (refined.width <= tile_size && refined.height <= tile_size) return out;
  const Image canvas = resize_fit_centered(img, refined.width, refined.height, ResizeFilter::kBicubic);
  out.rows = refined.height / tile_size;
  out.cols = refined.width / tile_size;
  out.tiles.reserve(static_cast<size_t>(out.rows) * out.cols);
  for (int r = 0; r < out.rows; ++r)
    for (int c = 0; c < out.cols; ++c) {
      Image tile;
      tile.width = tile_size;
      tile.height = tile_size;
      tile.rgb.resize(static_cast<size_t>(tile_size) * tile_size * 3);
      for (int y = 0; y < tile_size; ++y)
        std::memcpy(&tile.rgb[tile.pixel_index(0, y)], &canvas.rgb[canvas.pixel_index(c * tile_size, r * tile_size + y)],
                    static_cast<size_t>(tile_size) * 3);
      out.tiles.push_back(std::move(tile));
    }
  return out;
}

}  // namespace zs::engine
