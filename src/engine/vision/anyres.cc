#include "engine/vision/anyres.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace zs::engine {

// LLaVA-1.6 anyres

ImageSize anyres_best_resolution(int width, int height, const std::vector<ImageSize>& pinpoints) {
  ImageSize best{0, 0};
  if (width <= 0 || height <= 0) return best;
  int64_t best_effective = 0;
  int64_t best_wasted = std::numeric_limits<int64_t>::max();
  const int64_t original = static_cast<int64_t>(width) * height;
  for (const ImageSize& p : pinpoints) {
    // Float arithmetic as the reference: the truncations decide ties.
    const float s = std::min(static_cast<float>(p.width) / static_cast<float>(width),
                             static_cast<float>(p.height) / static_cast<float>(height));
    const int64_t dw = static_cast<int64_t>(static_cast<float>(width) * s);
    const int64_t dh = static_cast<int64_t>(static_cast<float>(height) * s);
    const int64_t effective = std::min(dw * dh, original);
    const int64_t wasted = static_cast<int64_t>(p.width) * p.height - effective;
    if (effective > best_effective || (effective == best_effective && wasted < best_wasted)) {
      best = p;
      best_effective = effective;
      best_wasted = wasted;
    }
  }
  return best;
}

ImageSize anyres_fit_size(int width, int height, ImageSize target) {
  if (width <= 0 || height <= 0 || target.width <= 0 || target.height <= 0) return {};
  const float sw = static_cast<float>(target.width) / static_cast<float>(width);
  const float sh = static_cast<float>(target.height) / static_cast<float>(height);
  if (sw < sh) {
    const int h = std::min(static_cast<int>(std::ceil(static_cast<float>(height) * sw)), target.height);
    return {target.width, std::max(h, 1)};
  }
  const int w = std::min(static_cast<int>(std::ceil(static_cast<float>(width) * sh)), target.width);
  return {std::max(w, 1), target.height};
}

AnyresTiles anyres_split(const Image& img, const std::vector<ImageSize>& pinpoints, int tile_size) {
  AnyresTiles out;
  const ImageSize target = anyres_best_resolution(img.width, img.height, pinpoints);
  if (target.width <= 0 || tile_size <= 0) return out;
  const ImageSize fit = anyres_fit_size(img.width, img.height, target);
  const Image resized = resize_bicubic(img, fit.width, fit.height);
  // Centred on black; the canvas is never built whole: tiles read it through the offsets.
  const int pad_x = (target.width - fit.width) / 2, pad_y = (target.height - fit.height) / 2;
  out.rows = target.height / tile_size;
  out.cols = target.width / tile_size;
  out.grid.reserve(static_cast<size_t>(out.rows) * out.cols);
  for (int r = 0; r < out.rows; ++r)
    for (int c = 0; c < out.cols; ++c) {
      Image tile;
      tile.width = tile.height = tile_size;
      tile.rgb.assign(static_cast<size_t>(tile_size) * tile_size * 3, 0);
      for (int y = 0; y < tile_size; ++y) {
        const int sy = r * tile_size + y - pad_y;
        if (sy < 0 || sy >= fit.height) continue;
        const int x0 = std::max(0, pad_x - c * tile_size);                     // first tile column inside
        const int x1 = std::min(tile_size, pad_x + fit.width - c * tile_size);  // one past the last
        if (x1 <= x0) continue;
        const int sx0 = c * tile_size + x0 - pad_x;
        std::memcpy(&tile.rgb[tile.pixel_index(x0, y)], &resized.rgb[resized.pixel_index(sx0, sy)],
                    static_cast<size_t>(x1 - x0) * 3);
      }
      out.grid.push_back(std::move(tile));
    }
  out.base = resize_bicubic(img, tile_size, tile_size);
  return out;
}

int anyres_image_tokens(int width, int height, const std::vector<ImageSize>& pinpoints, int tile_size,
                        int tokens_per_tile) {
  const ImageSize target = anyres_best_resolution(width, height, pinpoints);
  if (target.width <= 0 || tile_size <= 0) return 0;
  return (1 + (target.width / tile_size) * (target.height / tile_size)) * tokens_per_tile;
}

void anyres_feed_order(const float* tiles, int rows, int cols, int per_side, int dim, float* out) {
  const size_t row_bytes = sizeof(float) * dim;
  const int64_t per_tile = static_cast<int64_t>(per_side) * per_side * dim;
  std::memcpy(out, tiles, sizeof(float) * per_tile);
  float* o = out + per_tile;
  const float* grid = tiles + per_tile;
  for (int r = 0; r < rows; ++r)
    for (int y = 0; y < per_side; ++y)
      for (int c = 0; c < cols; ++c) {
        const float* src = grid + (static_cast<int64_t>(r) * cols + c) * per_tile + static_cast<int64_t>(y) * per_side * dim;
        std::memcpy(o, src, row_bytes * per_side);  // patch-cols x = 0..per_side-1 of this patch row
        o += static_cast<int64_t>(per_side) * dim;
      }
}

}  // namespace zs::engine
