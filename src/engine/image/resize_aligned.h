#pragma once
// Resizes of the 2026 reference's multimodal library (Gemma 3, SmolVLM with
// clip.vision.preproc_image_size), as pure functions on 8-bit RGB images:
//   - resize_bilinear_align_corners: output pixel (x, y) samples the source at
//     (x * (W - 1) / (w - 1), y * (H - 1) / (h - 1)) (align-corners; an output side of 1
//     samples source 0), interpolates along x then y in float, and truncates to 8 bits;
//   - fit_size / resize_fit_centered: the aspect-fit size inside a target box,
//     new side = min(ceil(side * s), target) with s = min(tw / W, th / H), and the image
//     resized to it and centred on a black canvas at offset floor((target - new) / 2).
// These differ from resize_bilinear (half-pixel centres, rounding) in preprocess.h on purpose.
#include "engine/image/image.h"
#include "engine/image/preprocess.h"

namespace zs::engine {

enum class ResizeFilter { kBilinearAlignCorners, kBicubic };

Image resize_bilinear_align_corners(const Image& src, int width, int height);

// The aspect-fit size of a width x height image inside a box_w x box_h box (each side >= 1).
ImageSize fit_size(int width, int height, int box_w, int box_h);

// src resized (with `filter`) to fit_size inside box_w x box_h and centred on black.
Image resize_fit_centered(const Image& src, int box_w, int box_h, ResizeFilter filter);

}  // namespace zs::engine
