#include "engine/image/image.h"

#include <webp/decode.h>
#include <webp/demux.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

// stb_image is compiled here, privately (every function static to this file), from the same
// Debian header that libstb is built from, instead of calling libstb. The reason is hostile
// input: stb_image reads memory it never initialized on some corrupt files (a JPEG scan naming a
// Huffman table no DHT defined segfaults libstb; components or MCUs no scan reaches come out as
// leftover heap bytes). With every allocation zeroed those reads are deterministic and harmless.
// Only the four formats served are compiled, so nothing else can be reached through it, and
// fuzzing builds instrument it.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(p, size) std::realloc(p, size)
#define STBI_FREE(p) std::free(p)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#include "engine/image/exif.h"
#include "engine/image/jpeg_markers.h"

namespace zs::engine {
namespace {

using core::Result;
using core::Status;

// Deflate cannot expand better than 1032:1 (a 258-byte match in two bits), so a PNG whose
// compressed size times this bound fits in the declared size cannot be a zlib bomb.
constexpr uint64_t kMaxDeflateRatio = 1033;
// Some encoders write a little more filtered data than the header needs; stb_image accepts it.
constexpr uint64_t kPngInflateSlackBytes = 64 << 10;

uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
}
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
int32_t le32s(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | p[1] << 8 | p[2] << 16 |
                              static_cast<uint32_t>(p[3]) << 24);
}

std::string format_label(ImageFormat format) { return std::string(image_format_name(format)); }

Status corrupt(ImageFormat format, const std::string& reason) {
  return Status::error(format_label(format) + " image is truncated or corrupt: " + reason);
}

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown decoder error";
}

struct Dimensions {
  int64_t width = 0;
  int64_t height = 0;
};

// Header dimensions, read without decoding anything.
Result<Dimensions> header_dimensions(ImageFormat format, const uint8_t* data, size_t size) {
  switch (format) {
    case ImageFormat::kPng:
      // Signature, chunk length and type, then IHDR's 13 bytes (size, depth, colour type, ...).
      if (size < 8 + 8 + 13 || std::memcmp(data + 12, "IHDR", 4) != 0) {
        return corrupt(format, "no IHDR header");
      }
      return Dimensions{be32(data + 16), be32(data + 20)};
    case ImageFormat::kGif:
      if (size < 10) return corrupt(format, "header is incomplete");
      return Dimensions{le16(data + 6), le16(data + 8)};
    case ImageFormat::kBmp: {
      if (size < 26) return corrupt(format, "header is incomplete");
      const uint32_t info_size = static_cast<uint32_t>(le32s(data + 14));
      if (info_size == 12) return Dimensions{le16(data + 18), le16(data + 20)};  // OS/2 core
      const int64_t height = le32s(data + 22);  // negative for top-down rows
      return Dimensions{le32s(data + 18), height < 0 ? -height : height};
    }
    case ImageFormat::kJpeg: {
      const JpegHeaderInfo info = scan_jpeg_header(data, size);
      if (!info.problem.empty()) return corrupt(format, info.problem);
      if (info.has_frame) return Dimensions{info.width, info.height};
      // The marker walk gave up early; stb_image's own header parser has the last word.
      int w = 0, h = 0, n = 0;
      if (!stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &n)) {
        return corrupt(format, stb_reason());
      }
      return Dimensions{w, h};
    }
    case ImageFormat::kWebp: {
      WebPBitstreamFeatures features;
      if (WebPGetFeatures(data, size, &features) != VP8_STATUS_OK) {
        return corrupt(format, "header is invalid or incomplete");
      }
      return Dimensions{features.width, features.height};
    }
    case ImageFormat::kUnknown:
      break;
  }
  return Status::error("unrecognized image format");
}

// Length of the filtered scanlines a PNG's compressed data must inflate to (as stb_image
// counts it: one filter byte per row, Adam7 passes summed when interlaced).
uint64_t png_filtered_size(uint64_t width, uint64_t height, int channels, int depth, bool interlaced) {
  auto rows = [&](uint64_t w, uint64_t h) -> uint64_t {
    if (w == 0 || h == 0) return 0;
    return ((w * channels * depth + 7) / 8 + 1) * h;
  };
  if (!interlaced) return rows(width, height);
  static constexpr int kXOrigin[7] = {0, 4, 0, 2, 0, 1, 0};
  static constexpr int kYOrigin[7] = {0, 0, 4, 0, 2, 0, 1};
  static constexpr int kXStep[7] = {8, 8, 4, 4, 2, 2, 1};
  static constexpr int kYStep[7] = {8, 8, 8, 4, 4, 2, 2};
  uint64_t total = 0;
  for (int p = 0; p < 7; ++p) {
    const uint64_t w = width > static_cast<uint64_t>(kXOrigin[p])
                           ? (width - kXOrigin[p] + kXStep[p] - 1) / kXStep[p] : 0;
    const uint64_t h = height > static_cast<uint64_t>(kYOrigin[p])
                           ? (height - kYOrigin[p] + kYStep[p] - 1) / kYStep[p] : 0;
    total += rows(w, h);
  }
  return total;
}

// Walks the PNG chunks and refuses what stb_image would otherwise grow buffers for: chunks
// claiming more bytes than the file holds, and compressed data that inflates past the size the
// header declares (stb_image would keep doubling its output buffer, up to 4 GiB).
Status check_png_structure(const uint8_t* data, size_t size, const Dimensions& dims) {
  const ImageFormat kFormat = ImageFormat::kPng;
  const int depth = data[24];
  const int colour_type = data[25];
  const bool interlaced = data[28] != 0;
  int channels = 0;
  switch (colour_type) {
    case 0: channels = 1; break;  // grayscale
    case 2: channels = 3; break;  // RGB
    case 3: channels = 1; break;  // palette indices
    case 4: channels = 2; break;  // grayscale + alpha
    case 6: channels = 4; break;  // RGBA
    default: return corrupt(kFormat, "unknown colour type " + std::to_string(colour_type));
  }
  if (depth != 1 && depth != 2 && depth != 4 && depth != 8 && depth != 16) {
    return corrupt(kFormat, "unsupported bit depth " + std::to_string(depth));
  }

  std::string idat;  // concatenated compressed data, only kept when it has to be inflated
  std::vector<std::pair<size_t, size_t>> idat_ranges;
  uint64_t idat_bytes = 0;
  bool apple_cgbi = false;  // Xcode's "CgBI" PNGs carry raw deflate without a zlib header
  bool saw_end = false;
  size_t pos = 8;
  while (pos + 12 <= size) {
    const uint64_t length = be32(data + pos);
    const char* type = reinterpret_cast<const char*>(data + pos + 4);
    if (length > size - pos - 12) {
      return corrupt(kFormat, "chunk '" + std::string(type, 4) + "' claims " +
                                  std::to_string(length) + " bytes but only " +
                                  std::to_string(size - pos - 12) + " remain");
    }
    if (std::memcmp(type, "IDAT", 4) == 0) {
      idat_ranges.emplace_back(pos + 8, static_cast<size_t>(length));
      idat_bytes += length;
    } else if (std::memcmp(type, "CgBI", 4) == 0) {
      apple_cgbi = true;
    } else if (std::memcmp(type, "IEND", 4) == 0) {
      saw_end = true;
      break;
    }
    pos += 12 + length;
  }
  if (!saw_end) return corrupt(kFormat, "data ends before the IEND chunk");
  if (idat_bytes == 0) return corrupt(kFormat, "no IDAT chunk");

  const uint64_t expected = png_filtered_size(dims.width, dims.height, channels, depth, interlaced);
  const uint64_t allowed = expected + expected / 4 + kPngInflateSlackBytes;
  if (idat_bytes * kMaxDeflateRatio + 258 <= allowed) return Status::ok();
  if (allowed > INT_MAX || idat_bytes > INT_MAX) {
    return corrupt(kFormat, "image data is too large to decode");
  }
  idat.reserve(idat_bytes);
  for (const auto& [start, length] : idat_ranges) {
    idat.append(reinterpret_cast<const char*>(data + start), length);
  }
  std::unique_ptr<char[]> scratch(new char[allowed]);
  const int produced =
      apple_cgbi ? stbi_zlib_decode_noheader_buffer(scratch.get(), static_cast<int>(allowed),
                                                    idat.data(), static_cast<int>(idat.size()))
                 : stbi_zlib_decode_buffer(scratch.get(), static_cast<int>(allowed), idat.data(),
                                           static_cast<int>(idat.size()));
  if (produced < 0) {
    return corrupt(kFormat, "compressed pixel data is corrupt or inflates beyond the " +
                                std::to_string(dims.width) + "x" + std::to_string(dims.height) +
                                " pixels the header declares");
  }
  return Status::ok();
}

Result<Image> decode_with_stb(ImageFormat format, const uint8_t* data, size_t size) {
  int w = 0, h = 0, channels_in_file = 0;
  // Asking for 3 components makes stb_image expand grayscale and palettes, drop alpha and
  // keep the high byte of 16-bit samples; GIFs give their first frame.
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &channels_in_file, 3),
      stbi_image_free);
  if (!pixels) return corrupt(format, stb_reason());
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels.get(), pixels.get() + static_cast<size_t>(w) * h * 3);
  return image;
}

std::string webp_status_text(VP8StatusCode code) {
  switch (code) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "data ends early";
  }
  return "unknown error";
}

int webp_exif_orientation(const uint8_t* data, size_t size) {
  WebPData webp_data{data, size};
  WebPDemuxer* demux = WebPDemux(&webp_data);
  if (demux == nullptr) return 1;
  int orientation = 1;
  if (WebPDemuxGetI(demux, WEBP_FF_FORMAT_FLAGS) & EXIF_FLAG) {
    WebPChunkIterator chunk;
    if (WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) {
      orientation = exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
      WebPDemuxReleaseChunkIterator(&chunk);
    }
  }
  WebPDemuxDelete(demux);
  return orientation;
}

Result<Image> decode_webp(const uint8_t* data, size_t size) {
  const ImageFormat kFormat = ImageFormat::kWebp;
  WebPBitstreamFeatures features;
  VP8StatusCode status = WebPGetFeatures(data, size, &features);
  if (status != VP8_STATUS_OK) return corrupt(kFormat, webp_status_text(status));
  Image image;
  if (features.has_animation) {
    // The plain decoder refuses animations; the demuxing decoder gives whole canvases.
    WebPAnimDecoderOptions options;
    if (!WebPAnimDecoderOptionsInit(&options)) return corrupt(kFormat, "libwebp version mismatch");
    options.color_mode = MODE_RGBA;
    options.use_threads = 0;
    WebPData webp_data{data, size};
    std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> decoder(
        WebPAnimDecoderNew(&webp_data, &options), WebPAnimDecoderDelete);
    WebPAnimInfo info;
    if (!decoder || !WebPAnimDecoderGetInfo(decoder.get(), &info)) {
      return corrupt(kFormat, "invalid animation");
    }
    uint8_t* rgba = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp)) {
      return corrupt(kFormat, "first animation frame does not decode");
    }
    image.width = static_cast<int>(info.canvas_width);
    image.height = static_cast<int>(info.canvas_height);
    const size_t pixels = static_cast<size_t>(image.width) * image.height;
    image.rgb.resize(pixels * 3);
    for (size_t i = 0; i < pixels; ++i) std::memcpy(&image.rgb[i * 3], rgba + i * 4, 3);
  } else {
    image.width = features.width;
    image.height = features.height;
    image.rgb.resize(static_cast<size_t>(image.width) * image.height * 3);
    // RGB output ignores any alpha plane: stored colours are kept as they are.
    if (WebPDecodeRGBInto(data, size, image.rgb.data(), image.rgb.size(), image.width * 3) ==
        nullptr) {
      return corrupt(kFormat, "bitstream does not decode");
    }
  }
  return apply_exif_orientation(std::move(image), webp_exif_orientation(data, size));
}

std::string first_bytes_hex(const uint8_t* data, size_t size) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < size && i < 8; ++i) {
    std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", data[i]);
    out += buf;
  }
  return out;
}

}  // namespace

ImageFormat detect_image_format(const uint8_t* data, size_t size) {
  if (data == nullptr) return ImageFormat::kUnknown;
  auto starts = [&](const char* magic, size_t n, size_t at = 0) {
    return size >= at + n && std::memcmp(data + at, magic, n) == 0;
  };
  if (starts("\xFF\xD8\xFF", 3)) return ImageFormat::kJpeg;
  if (starts("\x89PNG\r\n\x1A\n", 8)) return ImageFormat::kPng;
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return ImageFormat::kGif;
  if (starts("BM", 2)) return ImageFormat::kBmp;
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

std::string_view image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kGif: return "GIF";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

Result<UprightSize> read_image_size(const uint8_t* data, size_t size) {
  if (data == nullptr || size == 0) return Status::error("image data is empty");
  const ImageFormat format = detect_image_format(data, size);
  if (format == ImageFormat::kUnknown)
    return Status::error("unrecognized image format (expected JPEG, PNG, BMP, GIF or WebP)");
  auto dims = header_dimensions(format, data, size);
  if (!dims) return dims.status();
  if (dims->width <= 0 || dims->height <= 0 || dims->width > INT_MAX || dims->height > INT_MAX)
    return Status::error(format_label(format) + " image has an invalid size (" + std::to_string(dims->width) + "x" +
                         std::to_string(dims->height) + ")");
  int orientation = 1;
  if (format == ImageFormat::kJpeg) orientation = scan_jpeg_header(data, size).orientation;
  if (format == ImageFormat::kWebp) orientation = webp_exif_orientation(data, size);
  UprightSize s{static_cast<int>(dims->width), static_cast<int>(dims->height)};
  if (orientation >= 5 && orientation <= 8) std::swap(s.width, s.height);  // turned by 90 degrees
  return s;
}

Result<Image> decode_image(const uint8_t* data, size_t size, const ImageLimits& limits) {
  if (data == nullptr || size == 0) return Status::error("image data is empty");
  if (size > limits.max_bytes || size > static_cast<size_t>(INT_MAX)) {
    return Status::error("image is " + std::to_string(size) + " bytes, over the limit of " +
                         std::to_string(limits.max_bytes) + " bytes");
  }
  const ImageFormat format = detect_image_format(data, size);
  if (format == ImageFormat::kUnknown) {
    return Status::error("unrecognized image format (expected JPEG, PNG, BMP, GIF or WebP); "
                         "data starts with " + first_bytes_hex(data, size));
  }
  const std::string name = format_label(format);

  auto dims = header_dimensions(format, data, size);
  if (!dims) return dims.status();
  if (dims->width <= 0 || dims->height <= 0) {
    return Status::error(name + " image has zero size (" + std::to_string(dims->width) + "x" +
                         std::to_string(dims->height) + ")");
  }
  // Each side fits in 32 bits, so the product fits in 64 unsigned bits.
  const uint64_t pixels = static_cast<uint64_t>(dims->width) * static_cast<uint64_t>(dims->height);
  if (limits.max_pixels < 0 || pixels > static_cast<uint64_t>(limits.max_pixels)) {
    return Status::error(name + " image is " + std::to_string(dims->width) + "x" +
                         std::to_string(dims->height) + " (" + std::to_string(pixels) +
                         " pixels), over the limit of " + std::to_string(limits.max_pixels) +
                         " pixels");
  }

  switch (format) {
    case ImageFormat::kWebp:
      return decode_webp(data, size);
    case ImageFormat::kPng:
      ZS_RETURN_IF_ERROR(check_png_structure(data, size, *dims));
      return decode_with_stb(format, data, size);
    case ImageFormat::kJpeg: {
      auto image = decode_with_stb(format, data, size);
      if (!image) return image;
      return apply_exif_orientation(std::move(image).value(),
                                    scan_jpeg_header(data, size).orientation);
    }
    default:
      return decode_with_stb(format, data, size);
  }
}

}  // namespace zs::engine
