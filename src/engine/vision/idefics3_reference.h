#pragma once
// SmolVLM / Idefics3 image splitting as the 2026 reference does it, used when the mmproj
// file has clip.vision.preproc_image_size (L; the reference's converter writes it, the HF
// processor's size.longest_edge). Hugging Face's own processor (preprocess.h, split_image)
// stays for files without the key.
//   1. refined size: s = min(L / W, L / H) (up- or down-scaling), each side
//      ceil(side * s / tile) * tile;
//   2. the image is fitted into the refined size (aspect kept) with the reference's bicubic
//      resize and centred on black (resize_fit_centered);
//   3. tiles: tile x tile crops of that canvas, row-major;
//   4. global view: the whole input stretched to tile x tile with align-corners bilinear
//      (truncating), no padding.
// A refined size of a single tile gives no tiles (rows = cols = 0): the global view alone.
#include "engine/image/image.h"
#include "engine/image/preprocess.h"

namespace zs::engine {

ImageSize idefics3_refined_size(int width, int height, int preproc_image_size, int tile_size);

// The global view alone (what an image over its token budget becomes).
Image idefics3_reference_global(const Image& img, int tile_size);

SplitImage split_image_reference(const Image& img, int preproc_image_size, int tile_size);

}  // namespace zs::engine
