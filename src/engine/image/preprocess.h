#pragma once
// Image preprocessing for the vision encoders: pure functions from decoded 8-bit RGB images to
// what a patch-embedding convolution reads, float pixels in channel-planar layout [3][H][W].
#include <array>
#include <cstdint>
#include <vector>

#include "engine/image/image.h"

namespace zs::engine {

using RgbColour = std::array<uint8_t, 3>;
using ChannelStats = std::array<float, 3>;  // per-channel mean or std, R G B

// LLaVA-1.5 pads with the CLIP mean colour (mean * 255), as llama.cpp does.
constexpr RgbColour kLlavaPadColour = {122, 116, 104};

// Bilinear resize with half-pixel centres: output pixel x samples the source at
// (x + 0.5) * src_w / w - 0.5, clamped to the image at the borders, and each channel is
// rounded back to 8 bits. Float arithmetic in the same order as llama.cpp's CLIP preprocessing,
// so downscaled results match it exactly. When upscaling, llama.cpp lets the first row and
// column extrapolate past the border (negative weights); this clamps instead, like PyTorch's
// align_corners=False. width and height must be >= 1 (else an empty image).
Image resize_bilinear(const Image& src, int width, int height);

// Bicubic resize as the reference implementation's CLIP preprocessing does it (used by
// LLaVA-1.6, Qwen2-VL and GLM-Edge-V): output pixel j samples source x = (int)(j * W / w) with
// fraction dx = j * W / w - x (no half-pixel offset, float arithmetic), a cubic through the 4x4
// neighbourhood (borders clamped) along x then y, rounded and clamped to 0..255. width and
// height must be >= 1 (else an empty image).
Image resize_bicubic(const Image& src, int width, int height);

// Pads to a square of side max(width, height) filled with `colour`; the original sits at the
// top-left corner (llama.cpp's LLaVA-1.5 convention, not centred). Builds side * side pixels;
// preprocess_llava gets the same result without building them.
Image pad_to_square(const Image& src, RgbColour colour);

// (x / 255 - mean[c]) / stddev[c] for every pixel, laid out channel-planar: all R, then G, then B.
std::vector<float> normalize(const Image& img, const ChannelStats& mean, const ChannelStats& stddev);

// LLaVA-1.5: pad_to_square, resize_bilinear to image_size x image_size, normalize; the padded
// square is sampled in place, so an extreme aspect ratio costs no extra memory.
std::vector<float> preprocess_llava(const Image& img, int image_size, const ChannelStats& mean,
                                    const ChannelStats& stddev, RgbColour pad = kLlavaPadColour);

// SmolVLM / Idefics3 image splitting, following Hugging Face's Idefics3ImageProcessor and
// SmolVLMImageProcessor (transformers, image_processing_smolvlm.py):
//   1. resize so the longest edge equals `longest_edge` (upscaling small images too), the other
//      edge int(longest_edge / aspect) rounded up to even, everything capped at 4096;
//   2. resize to the next multiples of `tile_size` ("resize_for_vision_encoder");
//   3. if larger than one tile, cut rows x cols tiles of tile_size x tile_size, row-major, and
//      add the whole image resized to tile_size x tile_size as the global view; otherwise
//      rows = cols = 0, no tiles, and the single tile is the global view.
// Hugging Face resamples with Lanczos; this uses resize_bilinear, so geometry (sizes, grid,
// crop rectangles) is identical and pixel values differ slightly.
// Per-model values live in the model's preprocessor config: size.longest_edge and
// max_image_size.longest_edge (Idefics3 defaults 4*364 and 364).
struct SplitConfig {
  int tile_size = 512;
  int longest_edge = 2048;
};

struct SplitImage {
  std::vector<Image> tiles;  // row-major, rows * cols of them
  Image global;              // tile_size x tile_size
  int rows = 0;
  int cols = 0;
};

struct ImageSize {
  int width = 0;
  int height = 0;
  bool operator==(const ImageSize&) const = default;
};

// Step 1: the size after rescaling the longest edge (Hugging Face's
// _resize_output_size_rescale_to_max_len then _resize_output_size_scale_below_upper_bound).
ImageSize idefics3_resize_size(int width, int height, int longest_edge);
// Step 2: the size rounded up to multiples of tile_size (resize_for_vision_encoder).
ImageSize idefics3_tile_grid_size(int width, int height, int tile_size);

SplitImage split_image(const Image& img, const SplitConfig& config);

}  // namespace zs::engine
