#include "engine/image/exif.h"

#include <cstring>
#include <utility>

namespace zs::engine {
namespace {

constexpr uint16_t kOrientationTag = 0x0112;
constexpr uint16_t kTiffShort = 3;
constexpr uint16_t kTiffLong = 4;
constexpr size_t kIfdEntryBytes = 12;

struct TiffReader {
  const uint8_t* p;
  bool little_endian;
  uint16_t u16(size_t at) const {
    return little_endian ? static_cast<uint16_t>(p[at] | p[at + 1] << 8)
                         : static_cast<uint16_t>(p[at] << 8 | p[at + 1]);
  }
  uint32_t u32(size_t at) const {
    uint32_t b0 = p[at], b1 = p[at + 1], b2 = p[at + 2], b3 = p[at + 3];
    return little_endian ? (b0 | b1 << 8 | b2 << 16 | b3 << 24) : (b0 << 24 | b1 << 16 | b2 << 8 | b3);
  }
};

}  // namespace

int exif_orientation(const uint8_t* tiff, size_t size) {
  if (tiff == nullptr) return 1;
  if (size >= 6 && std::memcmp(tiff, "Exif\0\0", 6) == 0) {
    tiff += 6;
    size -= 6;
  }
  if (size < 8) return 1;
  TiffReader r{tiff, false};
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    r.little_endian = true;
  } else if (tiff[0] != 'M' || tiff[1] != 'M') {
    return 1;
  }
  if (r.u16(2) != 42) return 1;
  const uint64_t ifd = r.u32(4);
  if (ifd + 2 > size) return 1;
  const uint64_t count = r.u16(ifd);
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t at = ifd + 2 + i * kIfdEntryBytes;
    if (at + kIfdEntryBytes > size) return 1;
    if (r.u16(at) != kOrientationTag) continue;
    const uint16_t type = r.u16(at + 2);
    if (r.u32(at + 4) < 1) return 1;
    // A single SHORT sits in the first two bytes of the value field, in the file's byte order.
    uint32_t value = type == kTiffShort ? r.u16(at + 8) : type == kTiffLong ? r.u32(at + 8) : 0;
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

Image apply_exif_orientation(Image image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const int w = image.width;
  const int h = image.height;
  const bool swaps = orientation >= 5;
  Image out;
  out.width = swaps ? h : w;
  out.height = swaps ? w : h;
  out.rgb.resize(image.rgb.size());
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        case 8: sx = w - 1 - y; sy = x; break;
      }
      std::memcpy(&out.rgb[out.pixel_index(x, y)], &image.rgb[image.pixel_index(sx, sy)], 3);
    }
  }
  return out;
}

}  // namespace zs::engine
