#pragma once
// Decoding of the images a request carries (JPEG, PNG, BMP, GIF, WebP) into 8-bit RGB.
//
// What comes out, whatever went in:
// - 3 channels, 8 bits, row-major, no padding between rows.
// - Alpha is dropped: the stored colour of each pixel is kept as is, not composited over any
//   background. This is what llama.cpp (the engine's reference) feeds its vision encoders;
//   Hugging Face's SmolVLM/Idefics3 processors composite over white instead, which differs
//   only on translucent pixels.
// - Grayscale is expanded to R = G = B; palette images are expanded through their palette.
// - 16-bit samples are reduced to their high byte (stb_image's rule, so also llama.cpp's).
// - GIF and animated WebP: the first frame only.
// - JPEG and WebP: the EXIF orientation (1-8) is applied, so phone photos come out upright
//   (Hugging Face's load_image does the same; llama.cpp does not). Malformed EXIF is ignored.
//
// Decompression bombs: the dimensions in the header are read and checked against
// ImageLimits before anything is decoded, so an image that would not fit is refused without
// allocating its pixels. A PNG whose compressed data would inflate beyond what its header
// declares is refused too.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::engine {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3 bytes, row-major, R G B per pixel

  size_t pixel_index(int x, int y) const { return (static_cast<size_t>(y) * width + x) * 3; }
};

// Explicit bounds on what one request may make the worker decode.
struct ImageLimits {
  int64_t max_pixels = 50'000'000;  // width * height from the header
  size_t max_bytes = 64 << 20;      // size of the encoded input
};

enum class ImageFormat { kUnknown, kJpeg, kPng, kBmp, kGif, kWebp };

// Recognizes the format from its magic bytes; kUnknown when none matches.
ImageFormat detect_image_format(const uint8_t* data, size_t size);
std::string_view image_format_name(ImageFormat format);

// The upright size (EXIF orientation applied) an image will decode to, from its header
// alone: for counting the tokens it will become before paying for decoding it.
struct UprightSize {
  int width = 0;
  int height = 0;
};
core::Result<UprightSize> read_image_size(const uint8_t* data, size_t size);

// Decodes one encoded image. Errors name the format and the reason
// ("PNG image is truncated or corrupt: ..."); nothing the input holds can crash it.
core::Result<Image> decode_image(const uint8_t* data, size_t size, const ImageLimits& limits = {});

}  // namespace zs::engine
