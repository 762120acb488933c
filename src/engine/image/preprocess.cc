#include "engine/image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace zs::engine {
namespace {

// Hugging Face's absolute cap on either side after the longest-edge resize ("4k").
constexpr int kIdefics3MaxImageSize = 4096;

struct Tap {
  int i0;
  int i1;
  float frac;
};

// Source positions and weights along one axis, computed once per output row/column.
std::vector<Tap> bilinear_taps(int src, int dst) {
  std::vector<Tap> taps(dst);
  const float scale = static_cast<float>(src) / static_cast<float>(dst);
  for (int i = 0; i < dst; ++i) {
    const float s = std::max(0.0f, (static_cast<float>(i) + 0.5f) * scale - 0.5f);
    const int i0 = std::min(static_cast<int>(std::floor(s)), src - 1);
    taps[i] = {i0, std::min(i0 + 1, src - 1), s - static_cast<float>(i0)};
  }
  return taps;
}

Image crop(const Image& src, int x0, int y0, int width, int height) {
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    std::memcpy(&out.rgb[out.pixel_index(0, y)], &src.rgb[src.pixel_index(x0, y0 + y)],
                static_cast<size_t>(width) * 3);
  }
  return out;
}

// Bilinear resize of a source given by its size and a pixel accessor, so a padded image can be
// resized without ever being built.
template <typename PixelAt>
Image resize_source(int src_width, int src_height, int width, int height, PixelAt pixel_at) {
  Image out;
  if (width <= 0 || height <= 0 || src_width <= 0 || src_height <= 0) return out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  const std::vector<Tap> xs = bilinear_taps(src_width, width);
  const std::vector<Tap> ys = bilinear_taps(src_height, height);
  for (int y = 0; y < height; ++y) {
    const Tap& ty = ys[y];
    uint8_t* dst = &out.rgb[out.pixel_index(0, y)];
    for (int x = 0; x < width; ++x) {
      const Tap& tx = xs[x];
      const uint8_t* q00 = pixel_at(tx.i0, ty.i0);
      const uint8_t* q01 = pixel_at(tx.i1, ty.i0);
      const uint8_t* q10 = pixel_at(tx.i0, ty.i1);
      const uint8_t* q11 = pixel_at(tx.i1, ty.i1);
      for (int c = 0; c < 3; ++c) {
        const float p00 = q00[c], p01 = q01[c], p10 = q10[c], p11 = q11[c];
        const float top = (1.0f - tx.frac) * p00 + tx.frac * p01;
        const float bottom = (1.0f - tx.frac) * p10 + tx.frac * p11;
        const float v = (1.0f - ty.frac) * top + ty.frac * bottom;
        dst[x * 3 + c] = static_cast<uint8_t>(std::clamp(std::round(v), 0.0f, 255.0f));
      }
    }
  }
  return out;
}

}  // namespace

namespace {

// The cubic through p[-1], p[0], p[1], p[2] evaluated at fraction t after p[0], with the
// coefficients of the reference's bicubic resize. The reference holds the differences and
// coefficients in float but evaluates the coefficients' expressions in double (its constants
// are double literals); the polynomial itself is evaluated in float.
float cubic(float m1, float p0, float p1, float p2, float t) {
  const float d0 = m1 - p0, d2 = p1 - p0, d3 = p2 - p0;
  const auto a1 = static_cast<float>(-1.0 / 3 * d0 + d2 - 1.0 / 6 * d3);
  const auto a2 = static_cast<float>(1.0 / 2 * d0 + 1.0 / 2 * d2);
  const auto a3 = static_cast<float>(-1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3);
  return p0 + a1 * t + a2 * t * t + a3 * t * t * t;
}

}  // namespace

Image resize_bicubic(const Image& src, int width, int height) {
  Image out;
  if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0) return out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  const float sx = static_cast<float>(src.width) / width, sy = static_cast<float>(src.height) / height;
  auto at = [&](int x, int y, int c) {
    x = std::clamp(x, 0, src.width - 1);
    y = std::clamp(y, 0, src.height - 1);
    return static_cast<float>(src.rgb[src.pixel_index(x, y) + c]);
  };
  for (int i = 0; i < height; ++i) {
    const int y = static_cast<int>(sy * i);
    const float dy = sy * i - y;
    for (int j = 0; j < width; ++j) {
      const int x = static_cast<int>(sx * j);
      const float dx = sx * j - x;
      for (int c = 0; c < 3; ++c) {
        float col[4];
        for (int k = 0; k < 4; ++k) {
          const int yy = y - 1 + k;
          col[k] = cubic(at(x - 1, yy, c), at(x, yy, c), at(x + 1, yy, c), at(x + 2, yy, c), dx);
        }
        const float v = cubic(col[0], col[1], col[2], col[3], dy);
        out.rgb[out.pixel_index(j, i) + c] = static_cast<uint8_t>(std::clamp(std::round(v), 0.0f, 255.0f));
      }
    }
  }
  return out;
}

Image resize_bilinear(const Image& src, int width, int height) {
  return resize_source(src.width, src.height, width, height,
                       [&](int x, int y) { return &src.rgb[src.pixel_index(x, y)]; });
}

Image pad_to_square(const Image& src, RgbColour colour) {
  const int side = std::max(src.width, src.height);
  Image out;
  out.width = side;
  out.height = side;
  out.rgb.resize(static_cast<size_t>(side) * side * 3);
  for (size_t i = 0; i < out.rgb.size(); i += 3) std::memcpy(&out.rgb[i], colour.data(), 3);
  for (int y = 0; y < src.height; ++y) {
    std::memcpy(&out.rgb[out.pixel_index(0, y)], &src.rgb[src.pixel_index(0, y)],
                static_cast<size_t>(src.width) * 3);
  }
  return out;
}

std::vector<float> normalize(const Image& img, const ChannelStats& mean, const ChannelStats& stddev) {
  const size_t plane = static_cast<size_t>(img.width) * img.height;
  std::vector<float> out(plane * 3);
  for (int c = 0; c < 3; ++c) {
    float* dst = out.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      dst[i] = (static_cast<float>(img.rgb[i * 3 + c]) / 255.0f - mean[c]) / stddev[c];
    }
  }
  return out;
}

std::vector<float> preprocess_llava(const Image& img, int image_size, const ChannelStats& mean,
                                    const ChannelStats& stddev, RgbColour pad) {
  // The padded square is sampled in place rather than built: an extreme aspect ratio within the
  // pixel limit (say 50000000 x 1) would otherwise need side * side pixels.
  const int side = std::max(img.width, img.height);
  const Image resized = resize_source(side, side, image_size, image_size, [&](int x, int y) {
    return x < img.width && y < img.height ? &img.rgb[img.pixel_index(x, y)] : pad.data();
  });
  return normalize(resized, mean, stddev);
}

ImageSize idefics3_resize_size(int width, int height, int longest_edge) {
  if (width <= 0 || height <= 0 || longest_edge <= 0) return {};
  // Double arithmetic and truncation exactly as the Python reference, so sizes match bit for bit.
  const double aspect = static_cast<double>(width) / static_cast<double>(height);
  int w = width, h = height;
  if (width >= height) {
    w = longest_edge;
    h = static_cast<int>(w / aspect);
    if (h % 2 != 0) ++h;
  } else {
    h = longest_edge;
    w = static_cast<int>(h * aspect);
    if (w % 2 != 0) ++w;
  }
  w = std::max(w, 1);
  h = std::max(h, 1);
  const double aspect2 = static_cast<double>(w) / static_cast<double>(h);
  if (w >= h && w > kIdefics3MaxImageSize) {
    w = kIdefics3MaxImageSize;
    h = static_cast<int>(w / aspect2);
  } else if (h > w && h > kIdefics3MaxImageSize) {
    h = kIdefics3MaxImageSize;
    w = static_cast<int>(h * aspect2);
  }
  return {std::max(w, 1), std::max(h, 1)};
}

ImageSize idefics3_tile_grid_size(int width, int height, int tile_size) {
  if (width <= 0 || height <= 0 || tile_size <= 0) return {};
  auto round_up = [&](int v) { return std::max(1, (v + tile_size - 1) / tile_size) * tile_size; };
  const double aspect = static_cast<double>(width) / static_cast<double>(height);
  int w, h;
  if (width >= height) {
    w = round_up(width);
    h = round_up(static_cast<int>(w / aspect));
  } else {
    h = round_up(height);
    w = round_up(static_cast<int>(h * aspect));
  }
  return {w, h};
}

SplitImage split_image(const Image& img, const SplitConfig& config) {
  SplitImage out;
  const int tile = config.tile_size;
  if (img.width <= 0 || img.height <= 0 || tile <= 0) return out;
  const ImageSize first = idefics3_resize_size(img.width, img.height, config.longest_edge);
  const ImageSize grid = idefics3_tile_grid_size(first.width, first.height, tile);
  // Two resizes, as the reference does: the tiles are cut from the second one.
  Image resized = resize_bilinear(img, first.width, first.height);
  if (grid.width != first.width || grid.height != first.height) {
    resized = resize_bilinear(resized, grid.width, grid.height);
  }
  if (grid.width <= tile && grid.height <= tile) {
    out.global = std::move(resized);
    return out;
  }
  // Both sides are multiples of the tile, so every crop is exactly tile x tile.
  out.rows = grid.height / tile;
  out.cols = grid.width / tile;
  out.tiles.reserve(static_cast<size_t>(out.rows) * out.cols);
  for (int r = 0; r < out.rows; ++r) {
    for (int c = 0; c < out.cols; ++c) out.tiles.push_back(crop(resized, c * tile, r * tile, tile, tile));
  }
  out.global = resize_bilinear(resized, tile, tile);
  return out;
}

}  // namespace zs::engine
