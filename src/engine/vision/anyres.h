#pragma once
// LLaVA-1.6 "anyres" image tiling, as the reference implementation (llama.cpp's clip/llava,
// Feb 2025) does it for `mlp` projectors whose file has clip.vision.image_grid_pinpoints:
//   1. choose the grid resolution (anyres_best_resolution);
//   2. resize the image bicubically into it keeping the aspect ratio (anyres_fit_size),
//      centred on a black canvas of that resolution;
//   3. cut that canvas into image_size x image_size tiles, row-major;
//   4. add a base tile: the whole image bicubic-resized to image_size x image_size.
// Each tile is encoded on its own; the rows are then fed to the text model in the
// reference's order (anyres_feed_order): the base tile's rows, then the grid tiles' rows
// interleaved by patch row. No unpadding and no image_newline rows (see docs/engine.md for
// how this differs from the original LLaVA-NeXT code).
#include <vector>

#include "engine/image/image.h"
#include "engine/image/preprocess.h"

namespace zs::engine {

// For each pinpoint (w, h): s = min(w / W, h / H) in float, effective =
// min(int(W * s) * int(H * s), W * H), wasted = w * h - effective. The largest effective wins;
// ties go to the least wasted; remaining ties to the first. Returns {0, 0} when pinpoints is
// empty or the image has no pixels.
ImageSize anyres_best_resolution(int width, int height, const std::vector<ImageSize>& pinpoints);

// The size the image is resized to inside `target`, aspect kept: with sw = tw / W and
// sh = th / H (float), the side with the smaller scale takes the target's length, the other
// min(ceil(side * scale), target side).
ImageSize anyres_fit_size(int width, int height, ImageSize target);

struct AnyresTiles {
  Image base;               // the whole image, image_size x image_size
  std::vector<Image> grid;  // rows * cols tiles, row-major
  int rows = 0;
  int cols = 0;
};

// Steps 1-4 above. Pinpoints must be multiples of tile_size (ClipConfig checks at load).
AnyresTiles anyres_split(const Image& img, const std::vector<ImageSize>& pinpoints, int tile_size);

// Embedding rows an image of this size becomes: (1 + rows * cols) * tokens_per_tile.
int anyres_image_tokens(int width, int height, const std::vector<ImageSize>& pinpoints, int tile_size,
                        int tokens_per_tile);

// The reference's row order. `tiles` holds 1 + rows * cols encoded tiles (base first, then
// the grid row-major), each per_side * per_side rows of dim values (patch (y, x) at row
// y * per_side + x). `out` receives the base tile's rows unchanged, then for tile-row R,
// patch-row y, tile-col C, patch-col x: row (y * per_side + x) of grid tile R * cols + C.
void anyres_feed_order(const float* tiles, int rows, int cols, int per_side, int dim, float* out);

}  // namespace zs::engine
