#pragma once
// Qwen2.5-VL's image geometry (`clip.projector_type = qwen2.5vl_merger`): the resize rule, the
// aspect-fit bilinear resize, and the window layout of its vision tower's window attention.
// The tower itself is Qwen2VlEncoder, which runs both Qwen2-VL and Qwen2.5-VL.
//
// - Size: each side rounded to the nearest multiple of 28 (at least 28); under 8 merged cells
//   both sides are scaled up by sqrt(8 * 28^2 / (W * H)) and rounded up to multiples of 28;
//   over 4096 cells scaled down by sqrt(W * H / (4096 * 28^2)) and rounded down. A token budget
//   (max_tokens > 0) then only shrinks: over it, the sides are scaled down (aspect kept, whole
//   cells, at least one per side) until the cells fit, as for Qwen2-VL.
// - Resize: aspect-fit into that size, bilinear with align-corners sampling
//   (src = dst * (in - 1) / (out - 1)) truncated to 8 bits, centred on black.
// - Windows: the merged grid (rows x cols cells of 2x2 patches) is cut into windows of 4x4
//   cells (the last row/column of windows may be smaller); windows are taken row-major and the
//   cells row-major inside each window. Windowed blocks attend only among the patches of one
//   window; the merger's outputs are put back into raster order of the grid.
#include <cstdint>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/image/image.h"
#include "engine/image/preprocess.h"

namespace zs::engine {

// The preprocessing size (multiples of 28) of a width x height image; max_tokens <= 0: no budget.
ImageSize qwen25vl_image_size(int width, int height, int max_tokens);

// Aspect-fit bilinear (align-corners, truncating) resize of src into width x height, centred on
// black. width and height must be >= 1 (else an empty image).
Image qwen25vl_resize(const Image& src, int width, int height);

struct VisionWindows {
  // Position i of window order holds merged cell cell_order[i] (raster index row * cols + col).
  std::vector<int32_t> cell_order;
  // Window w covers window-order cells [cell_bounds[w], cell_bounds[w + 1]); windows + 1 entries.
  std::vector<int32_t> cell_bounds;
};

// The window layout of a rows x cols merged grid with windows of window x window cells.
VisionWindows qwen25vl_windows(int rows, int cols, int window = 4);

// Rows in window order back into raster order: out[cell_order[i]] = in[i] (dim values each).
void rows_to_raster(const float* in, const std::vector<int32_t>& cell_order, int64_t dim, float* out);

// Attention of each row only among the rows of its own segment: rows [bounds[w], bounds[w + 1])
// of q, k, v (n_head * head_dim wide each) form segment w; bounds run from 0 to the row count.
void window_attention(Backend& backend, const float* q, const float* k, const float* v,
                      const std::vector<int32_t>& bounds, int n_head, int head_dim, float scale, float* out);

}  // namespace zs::engine
