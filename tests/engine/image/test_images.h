#pragma once
// Builders for encoded test images: stb_image_write and libwebp where they can write the case,
// hand-assembled bytes where they cannot (16-bit and palette PNG, GIF, EXIF segments).
#include <stb/stb_image_write.h>
#include <webp/encode.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "engine/image/image.h"

// Exported by Debian's libstb (stb_image_write's deflate) but declared only in its
// implementation section.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len,
                                             int quality);

namespace zs::engine::test {

using Bytes = std::vector<uint8_t>;

inline void append_to(void* context, void* data, int size) {
  auto* out = static_cast<Bytes*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

// Interleaved pixels with `comp` channels.
inline Bytes png_stb(int w, int h, int comp, const Bytes& pixels) {
  Bytes out;
  stbi_write_png_to_func(append_to, &out, w, h, comp, pixels.data(), w * comp);
  return out;
}
inline Bytes bmp_stb(int w, int h, int comp, const Bytes& pixels) {
  Bytes out;
  stbi_write_bmp_to_func(append_to, &out, w, h, comp, pixels.data());
  return out;
}
inline Bytes jpeg_stb(int w, int h, const Bytes& rgb, int quality = 95) {
  Bytes out;
  stbi_write_jpg_to_func(append_to, &out, w, h, 3, rgb.data(), quality);
  return out;
}

inline Bytes webp_lossless_rgb(int w, int h, const Bytes& rgb) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeLosslessRGB(rgb.data(), w, h, w * 3, &data);
  Bytes out(data, data + size);
  WebPFree(data);
  return out;
}
inline Bytes webp_lossless_rgba(int w, int h, const Bytes& rgba) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &data);
  Bytes out(data, data + size);
  WebPFree(data);
  return out;
}
inline Bytes webp_lossy_rgb(int w, int h, const Bytes& rgb, float quality = 90) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeRGB(rgb.data(), w, h, w * 3, quality, &data);
  Bytes out(data, data + size);
  WebPFree(data);
  return out;
}

// --- hand-built PNG -------------------------------------------------------------------------

inline uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

inline void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}
inline void put_le16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}

inline void png_chunk(Bytes& out, const char* type, const Bytes& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  Bytes typed(type, type + 4);
  typed.insert(typed.end(), data.begin(), data.end());
  out.insert(out.end(), typed.begin(), typed.end());
  put_be32(out, crc32(typed.data(), typed.size()));
}

// zlib stream made of stored (uncompressed) deflate blocks.
inline Bytes zlib_stored(const Bytes& data) {
  Bytes out = {0x78, 0x01};
  size_t pos = 0;
  do {
    const size_t n = std::min<size_t>(65535, data.size() - pos);
    const bool last = pos + n == data.size();
    out.push_back(last ? 1 : 0);
    put_le16(out, static_cast<uint16_t>(n));
    put_le16(out, static_cast<uint16_t>(~n));
    out.insert(out.end(), data.begin() + pos, data.begin() + pos + n);
    pos += n;
  } while (pos < data.size());
  uint32_t a = 1, b = 0;
  for (uint8_t v : data) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(out, b << 16 | a);
  return out;
}

inline Bytes zlib_deflate(const Bytes& data) {
  int len = 0;
  unsigned char* z = stbi_zlib_compress(const_cast<uint8_t*>(data.data()),
                                        static_cast<int>(data.size()), &len, 8);
  Bytes out(z, z + len);
  std::free(z);
  return out;
}

inline Bytes png_ihdr(uint32_t w, uint32_t h, int depth, int colour_type) {
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.push_back(static_cast<uint8_t>(depth));
  ihdr.push_back(static_cast<uint8_t>(colour_type));
  ihdr.push_back(0);  // deflate
  ihdr.push_back(0);  // adaptive filtering
  ihdr.push_back(0);  // not interlaced
  return ihdr;
}

// `scanlines` already carry their filter byte (0 = none) at the start of every row.
inline Bytes png_manual(uint32_t w, uint32_t h, int depth, int colour_type, const Bytes& zlib_data,
                        const std::vector<std::pair<std::string, Bytes>>& extra = {}) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  png_chunk(out, "IHDR", png_ihdr(w, h, depth, colour_type));
  for (const auto& [type, data] : extra) png_chunk(out, type.c_str(), data);
  png_chunk(out, "IDAT", zlib_data);
  png_chunk(out, "IEND", {});
  return out;
}

// --- hand-built GIF -------------------------------------------------------------------------

// GIF89a with a 4-colour global palette. The LZW stream sends a clear code before every two
// pixels so the code size stays at 3 bits and no dictionary entry is ever used.
inline Bytes gif_manual(int w, int h, const uint8_t palette[4][3], const std::vector<uint8_t>& indices) {
  Bytes out = {'G', 'I', 'F', '8', '9', 'a'};
  put_le16(out, static_cast<uint16_t>(w));
  put_le16(out, static_cast<uint16_t>(h));
  out.push_back(0x91);  // global table present, 2 bits per colour, 4 entries
  out.push_back(0);     // background index
  out.push_back(0);     // aspect
  for (int i = 0; i < 4; ++i) out.insert(out.end(), palette[i], palette[i] + 3);
  out.push_back(0x2C);  // image descriptor
  put_le16(out, 0);
  put_le16(out, 0);
  put_le16(out, static_cast<uint16_t>(w));
  put_le16(out, static_cast<uint16_t>(h));
  out.push_back(0);  // no local table, not interlaced
  out.push_back(2);  // LZW minimum code size
  constexpr int kClear = 4, kEnd = 5;
  std::vector<int> codes;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i % 2 == 0) codes.push_back(kClear);
    codes.push_back(indices[i]);
  }
  codes.push_back(kEnd);
  Bytes packed;
  uint32_t acc = 0;
  int bits = 0;
  for (int c : codes) {
    acc |= static_cast<uint32_t>(c) << bits;
    bits += 3;
    while (bits >= 8) {
      packed.push_back(static_cast<uint8_t>(acc));
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) packed.push_back(static_cast<uint8_t>(acc));
  for (size_t pos = 0; pos < packed.size(); pos += 255) {
    const size_t n = std::min<size_t>(255, packed.size() - pos);
    out.push_back(static_cast<uint8_t>(n));
    out.insert(out.end(), packed.begin() + pos, packed.begin() + pos + n);
  }
  out.push_back(0);     // block terminator
  out.push_back(0x3B);  // trailer
  return out;
}

// --- EXIF -----------------------------------------------------------------------------------

// A TIFF block whose IFD0 holds the orientation tag (SHORT, count 1).
inline Bytes tiff_with_orientation(int orientation, bool little_endian) {
  Bytes t;
  auto u16 = [&](uint16_t v) {
    if (little_endian) {
      t.push_back(static_cast<uint8_t>(v));
      t.push_back(static_cast<uint8_t>(v >> 8));
    } else {
      t.push_back(static_cast<uint8_t>(v >> 8));
      t.push_back(static_cast<uint8_t>(v));
    }
  };
  auto u32 = [&](uint32_t v) {
    if (little_endian) {
      u16(static_cast<uint16_t>(v));
      u16(static_cast<uint16_t>(v >> 16));
    } else {
      u16(static_cast<uint16_t>(v >> 16));
      u16(static_cast<uint16_t>(v));
    }
  };
  t.push_back(little_endian ? 'I' : 'M');
  t.push_back(little_endian ? 'I' : 'M');
  u16(42);
  u32(8);  // IFD0 right after the header
  u16(2);  // two entries: an unrelated one first, so the parser has to walk
  u16(0x010F);  // Make, ASCII, count 4, "abc\0" inline
  u16(2);
  u32(4);
  t.insert(t.end(), {'a', 'b', 'c', 0});
  u16(0x0112);  // Orientation
  u16(3);
  u32(1);
  u16(static_cast<uint16_t>(orientation));
  u16(0);
  u32(0);  // no next IFD
  return t;
}

// An APP1 segment (marker included) carrying `tiff` as EXIF.
inline Bytes exif_app1(const Bytes& tiff) {
  Bytes seg = {0xFF, 0xE1};
  const size_t length = 2 + 6 + tiff.size();
  seg.push_back(static_cast<uint8_t>(length >> 8));
  seg.push_back(static_cast<uint8_t>(length));
  seg.insert(seg.end(), {'E', 'x', 'i', 'f', 0, 0});
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  return seg;
}

// Inserts a segment right after a JPEG's SOI marker.
inline Bytes insert_after_soi(const Bytes& jpeg, const Bytes& segment) {
  Bytes out(jpeg.begin(), jpeg.begin() + 2);
  out.insert(out.end(), segment.begin(), segment.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

// --- hand-built WebP containers --------------------------------------------------------------

inline void put_le24(Bytes& b, uint32_t v) {
  for (int i = 0; i < 3; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_le32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

inline Bytes riff_chunk(const char* fourcc, const Bytes& payload) {
  Bytes out(fourcc, fourcc + 4);
  put_le32(out, static_cast<uint32_t>(payload.size()));
  out.insert(out.end(), payload.begin(), payload.end());
  if (payload.size() % 2) out.push_back(0);
  return out;
}

// The VP8L chunk (header included) of a simple lossless file made by libwebp.
inline Bytes vp8l_chunk(int w, int h, const Bytes& rgb) {
  const Bytes file = webp_lossless_rgb(w, h, rgb);
  return Bytes(file.begin() + 12, file.end());
}

inline Bytes vp8x_chunk(uint8_t flags, int w, int h) {
  Bytes p = {flags, 0, 0, 0};
  put_le24(p, static_cast<uint32_t>(w - 1));
  put_le24(p, static_cast<uint32_t>(h - 1));
  return riff_chunk("VP8X", p);
}

inline Bytes riff_webp(const std::vector<Bytes>& chunks) {
  Bytes body = {'W', 'E', 'B', 'P'};
  for (const Bytes& c : chunks) body.insert(body.end(), c.begin(), c.end());
  Bytes out = {'R', 'I', 'F', 'F'};
  put_le32(out, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// An animated WebP whose frames each cover the whole w x h canvas.
inline Bytes webp_animation(int w, int h, const std::vector<Bytes>& frames_rgb) {
  std::vector<Bytes> chunks = {vp8x_chunk(0x02, w, h)};
  Bytes anim;
  put_le32(anim, 0xFFFFFFFF);  // background colour
  put_le16(anim, 0);           // loop forever
  chunks.push_back(riff_chunk("ANIM", anim));
  for (const Bytes& rgb : frames_rgb) {
    Bytes frame;
    put_le24(frame, 0);  // x / 2
    put_le24(frame, 0);  // y / 2
    put_le24(frame, static_cast<uint32_t>(w - 1));
    put_le24(frame, static_cast<uint32_t>(h - 1));
    put_le24(frame, 100);  // duration, ms
    frame.push_back(0x02);  // do not blend, no disposal
    const Bytes data = vp8l_chunk(w, h, rgb);
    frame.insert(frame.end(), data.begin(), data.end());
    chunks.push_back(riff_chunk("ANMF", frame));
  }
  return riff_webp(chunks);
}

// A still lossless WebP with an EXIF chunk.
inline Bytes webp_with_exif(int w, int h, const Bytes& rgb, const Bytes& tiff) {
  return riff_webp({vp8x_chunk(0x08, w, h), vp8l_chunk(w, h, rgb), riff_chunk("EXIF", tiff)});
}

inline Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = r;
    img.rgb[i + 1] = g;
    img.rgb[i + 2] = b;
  }
  return img;
}

inline std::string error_of(const Bytes& bytes, const ImageLimits& limits = {}) {
  auto r = decode_image(bytes.data(), bytes.size(), limits);
  return r.is_ok() ? std::string("<decoded>") : r.status().message();
}

}  // namespace zs::engine::test
