#include "engine/image/resize_aligned.h"

#include "engine/image/preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace zs::engine {

Image resize_bilinear_align_corners(const Image& src, int width, int height) {
  Image out;
  if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0) return out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  const float rx = width > 1 ? static_cast<float>(src.width - 1) / static_cast<float>(width - 1) : 0.f;
  const float ry = height > 1 ? static_cast<float>(src.height - 1) / static_cast<float>(height - 1) : 0.f;
  auto lerp = [](float a, float b, float t) { return a + (b - a) * t; };
  for (int y = 0; y < height; ++y) {
    const float py = ry * static_cast<float>(y);
    const int y0 = std::min(static_cast<int>(py), src.height - 1);
    const int y1 = std::min(y0 + 1, src.height - 1);
    const float fy = py - static_cast<float>(y0);
    for (int x = 0; x < width; ++x) {
      const float px = rx * static_cast<float>(x);
      const int x0 = std::min(static_cast<int>(px), src.width - 1);
      const int x1 = std::min(x0 + 1, src.width - 1);
      const float fx = px - static_cast<float>(x0);
      for (int c = 0; c < 3; ++c) {
        const float top = lerp(src.rgb[src.pixel_index(x0, y0) + c], src.rgb[src.pixel_index(x1, y0) + c], fx);
        const float bottom = lerp(src.rgb[src.pixel_index(x0, y1) + c], src.rgb[src.pixel_index(x1, y1) + c], fx);
        const float v = std::clamp(lerp(top, bottom, fy), 0.f, 255.f);
        out.rgb[out.pixel_index(x, y) + c] = static_cast<uint8_t>(v);  // truncates, as the reference
      }
    }
  }
  return out;
}

ImageSize fit_size(int width, int height, int box_w, int box_h) {
  if (width <= 0 || height <= 0 || box_w <= 0 || box_h <= 0) return {};
  const float s = std::min(static_cast<float>(box_w) / static_cast<float>(width),
                           static_cast<float>(box_h) / static_cast<float>(height));
  const int w = std::clamp(static_cast<int>(std::ceil(static_cast<float>(width) * s)), 1, box_w);
  const int h = std::clamp(static_cast<int>(std::ceil(static_cast<float>(height) * s)), 1, box_h);
  return {w, h};
}



Image resize_fit_centered(const Image& src, int box_w, int box_h, ResizeFilter filter) {
  Image out;
  const ImageSize fit = fit_size(src.width, src.height, box_w, box_h);
  if (fit.width == 0) return out;
  const Image resized = filter == ResizeFilter::kBicubic ? resize_bicubic(src, fit.width, fit.height)
                                                         : resize_bilinear_align_corners(src, fit.width, fit.height);
  out.width = box_w;
  out.height = box_h;
  out.rgb.assign(static_cast<size_t>(box_w) * box_h * 3, 0);  // black
  const int ox = (box_w - fit.width) / 2, oy = (box_h - fit.height) / 2;
  for (int y = 0; y < fit.height; ++y)
    std::memcpy(&out.rgb[out.pixel_index(ox, oy + y)], &resized.rgb[resized.pixel_index(0, y)],
                static_cast<size_t>(fit.width) * 3);
  return out;
}

}  // namespace zs::engine
