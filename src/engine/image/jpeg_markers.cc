#include "engine/image/jpeg_markers.h"

#include <cstring>

#include "engine/image/exif.h"

namespace zs::engine {
namespace {

// Marker codes, as stb_image reads them.
constexpr uint8_t kSof0 = 0xC0, kSof1 = 0xC1, kSof2 = 0xC2;
constexpr uint8_t kDht = 0xC4, kEoi = 0xD9, kSos = 0xDA, kDqt = 0xDB, kDnl = 0xDC, kDri = 0xDD;
constexpr uint8_t kApp1 = 0xE1, kCom = 0xFE;
constexpr int kMaxHuffmanCodes = 256;

bool is_plain_segment(uint8_t m) {
  // What stb_image's stbi__process_marker accepts; anything else makes it give up.
  return m == kDht || m == kDqt || m == kDri || (m >= 0xE0 && m <= 0xEF) || m == kCom;
}

class Walker {
 public:
  Walker(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // stb_image reads zeros past the end of the data.
  uint8_t at(size_t i) const { return i < size_ ? data_[i] : 0; }
  size_t be16(size_t i) const { return static_cast<size_t>(at(i)) << 8 | at(i + 1); }

  // The DHT tables stb_image would build from the segment at `pos` (its length field).
  // Returns false when one would overflow.
  bool dht_is_safe(size_t pos, int* codes) const {
    long left = static_cast<long>(be16(pos)) - 2;
    size_t p = pos + 2;
    while (left > 0) {
      if (p >= size_) return true;  // the rest reads as zeros: empty tables
      const uint8_t q = at(p++);
      if ((q >> 4) > 1 || (q & 15) > 3) return true;  // refused by stb_image before building
      int n = 0;
      for (int i = 0; i < 16; ++i) n += at(p++);
      if (n > kMaxHuffmanCodes) {
        *codes = n;
        return false;
      }
      p += n;
      left -= 17 + n;
    }
    return true;
  }

  // Position of the next marker after entropy-coded data starting at `pos`: the first 0xFF
  // followed (after fill bytes) by neither a stuffed zero nor a restart marker.
  size_t skip_entropy_data(size_t pos) const {
    while (pos < size_) {
      const void* ff = std::memchr(data_ + pos, 0xFF, size_ - pos);
      if (ff == nullptr) return size_;
      size_t q = static_cast<const uint8_t*>(ff) - data_;
      size_t next = q + 1;
      while (next < size_ && data_[next] == 0xFF) ++next;
      if (next >= size_) return size_;
      const uint8_t m = data_[next];
      if (m != 0x00 && !(m >= 0xD0 && m <= 0xD7)) return q;
      pos = next + 1;
    }
    return size_;
  }

  JpegHeaderInfo walk() const {
    JpegHeaderInfo info;
    bool have_exif = false;
    bool in_frame = false;  // after the frame header stb_image stops resynchronizing
    size_t pos = 2;         // after SOI
    while (pos < size_) {
      if (data_[pos] != 0xFF) {
        if (in_frame) break;  // stb_image stops here ("expected marker")
        ++pos;                // before the frame it skips padding between segments
        continue;
      }
      while (pos < size_ && data_[pos] == 0xFF) ++pos;
      if (pos >= size_) break;
      const uint8_t m = data_[pos++];
      const size_t length = be16(pos);
      if (!in_frame && (m == kSof0 || m == kSof1 || m == kSof2)) {
        if (length >= 8) {
          info.has_frame = true;
          info.height = static_cast<int>(be16(pos + 3));
          info.width = static_cast<int>(be16(pos + 5));
        }
        in_frame = true;
        pos += length;
        continue;
      }
      if (in_frame && m == kEoi) break;
      if (in_frame && m == kSos) {
        if (length < 2) break;
        pos = skip_entropy_data(pos + length);
        continue;
      }
      if (in_frame && m == kDnl) {
        pos += 4;
        continue;
      }
      if (!is_plain_segment(m) || length < 2) break;  // stb_image fails here: nothing to check
      if (m == kDht) {
        int codes = 0;
        if (!dht_is_safe(pos, &codes)) {
          info.problem = "Huffman table defines " + std::to_string(codes) +
                         " codes (at most 256)";
          return info;
        }
      }
      if (m == kApp1 && !have_exif && length >= 8 && pos + length <= size_ &&
          std::memcmp(data_ + pos + 2, "Exif\0\0", 6) == 0) {
        have_exif = true;
        info.orientation = exif_orientation(data_ + pos + 8, length - 8);
      }
      pos += length;
    }
    return info;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace

JpegHeaderInfo scan_jpeg_header(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return {};
  return Walker(data, size).walk();
}

}  // namespace zs::engine
