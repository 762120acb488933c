#include "engine/vision/qwen25vl.h"

#include <algorithm>
#include <cmath>

namespace zs::engine {

namespace {
constexpr int kCell = 28;           // 2x2 patches of 14: one image token
constexpr int kMinCells = 8;        // the reference's minimum image size, in tokens
constexpr int kMaxCells = 4096;     // and its maximum

int64_t cells_of(const ImageSize& s) { return static_cast<int64_t>(s.width / kCell) * (s.height / kCell); }
}  // namespace

ImageSize qwen25vl_image_size(int width, int height, int max_tokens) {
  // Float arithmetic, as the reference computes it, so the roundings agree at the edges.
  const float w = static_cast<float>(std::max(width, 1)), h = static_cast<float>(std::max(height, 1));
  auto nearest = [](float v) { return std::max(kCell, static_cast<int>(std::round(v / kCell)) * kCell); };
  auto up = [](float v) { return std::max(kCell, static_cast<int>(std::ceil(v / kCell)) * kCell); };
  auto down = [](float v) { return std::max(kCell, static_cast<int>(std::floor(v / kCell)) * kCell); };
  ImageSize s{nearest(w), nearest(h)};
  if (cells_of(s) > kMaxCells) {
    const float beta = std::sqrt(w * h / (static_cast<float>(kMaxCells) * kCell * kCell));
    s = {down(w / beta), down(h / beta)};
  } else if (cells_of(s) < kMinCells) {
    const float beta = std::sqrt(static_cast<float>(kMinCells) * kCell * kCell / (w * h));
    s = {up(w * beta), up(h * beta)};
  }
  if (max_tokens <= 0 || cells_of(s) <= max_tokens) return s;
  // The budget: one factor for both sides (aspect kept), whole cells, shrunk until they fit; a
  // side never drops below one cell.
  double f = std::sqrt(static_cast<double>(max_tokens) * kCell * kCell / (static_cast<double>(w) * h));
  for (;;) {
    const ImageSize t{std::max(kCell, static_cast<int>(w * f) / kCell * kCell),
                      std::max(kCell, static_cast<int>(h * f) / kCell * kCell)};
    if (cells_of(t) <= max_tokens || (t.width == kCell && t.height == kCell)) return t;
    f *= 0.98;
  }
}

Image qwen25vl_resize(const Image& src, int width, int height) {
  Image out;
  if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0) return out;
  out.width = width;
  out.height = height;
  out.rgb.assign(static_cast<size_t>(width) * height * 3, 0);  // black
  const float scale = std::min(static_cast<float>(width) / static_cast<float>(src.width),
                               static_cast<float>(height) / static_cast<float>(src.height));
  const int fit_w = std::clamp(static_cast<int>(std::ceil(static_cast<float>(src.width) * scale)), 1, width);
  const int fit_h = std::clamp(static_cast<int>(std::ceil(static_cast<float>(src.height) * scale)), 1, height);
  const int x0 = (width - fit_w) / 2, y0 = (height - fit_h) / 2;
  // Align-corners: the first and last output pixels sit on the first and last source pixels.
  const float rx = fit_w > 1 ? static_cast<float>(src.width - 1) / static_cast<float>(fit_w - 1) : 0.f;
  const float ry = fit_h > 1 ? static_cast<float>(src.height - 1) / static_cast<float>(fit_h - 1) : 0.f;
  for (int y = 0; y < fit_h; ++y) {
    const float sy = static_cast<float>(y) * ry;
    const int y_lo = std::min(static_cast<int>(sy), src.height - 1), y_hi = std::min(y_lo + 1, src.height - 1);
    const float fy = sy - static_cast<float>(y_lo);
    for (int x = 0; x < fit_w; ++x) {
      const float sx = static_cast<float>(x) * rx;
      const int x_lo = std::min(static_cast<int>(sx), src.width - 1), x_hi = std::min(x_lo + 1, src.width - 1);
      const float fx = sx - static_cast<float>(x_lo);
      uint8_t* dst = &out.rgb[out.pixel_index(x0 + x, y0 + y)];
      for (int ch = 0; ch < 3; ++ch) {
        const float a = src.rgb[src.pixel_index(x_lo, y_lo) + ch], b = src.rgb[src.pixel_index(x_hi, y_lo) + ch];
        const float c = src.rgb[src.pixel_index(x_lo, y_hi) + ch], d = src.rgb[src.pixel_index(x_hi, y_hi) + ch];
        const float top = a + (b - a) * fx, bottom = c + (d - c) * fx;
        dst[ch] = static_cast<uint8_t>(std::clamp(top + (bottom - top) * fy, 0.f, 255.f));  // truncates
      }
    }
  }
  return out;
}

VisionWindows qwen25vl_windows(int rows, int cols, int window) {
  VisionWindows w;
  if (rows <= 0 || cols <= 0 || window <= 0) return w;
  w.cell_order.reserve(static_cast<size_t>(rows) * cols);
  w.cell_bounds.push_back(0);
  for (int wy = 0; wy < rows; wy += window)
    for (int wx = 0; wx < cols; wx += window) {
      for (int y = wy; y < std::min(rows, wy + window); ++y)
        for (int x = wx; x < std::min(cols, wx + window); ++x) w.cell_order.push_back(y * cols + x);
      w.cell_bounds.push_back(static_cast<int32_t>(w.cell_order.size()));
    }
  return w;
}

void rows_to_raster(const float* in, const std::vector<int32_t>& cell_order, int64_t dim, float* out) {
  for (size_t i = 0; i < cell_order.size(); ++i)
    std::copy(in + static_cast<int64_t>(i) * dim, in + static_cast<int64_t>(i + 1) * dim,
              out + static_cast<int64_t>(cell_order[i]) * dim);
}

void window_attention(Backend& backend, const float* q, const float* k, const float* v,
                      const std::vector<int32_t>& bounds, int n_head, int head_dim, float scale, float* out) {
  const int64_t width = static_cast<int64_t>(n_head) * head_dim;
  for (size_t w = 0; w + 1 < bounds.size(); ++w) {
    const int64_t begin = bounds[w], n = bounds[w + 1] - bounds[w], off = begin * width;
    if (n > 0) backend.attention_full(q + off, k + off, v + off, n, n_head, head_dim, scale, out + off);
  }
}

}  // namespace zs::engine
