#pragma once
// A walk over a JPEG's marker segments that mirrors how stb_image's decoder moves through them,
// to read the header facts (frame size, EXIF orientation) before decoding, and to refuse the
// one defect stb_image 2.27 turns into memory corruption: a DHT segment whose 16 code counts
// add up to more than 256 makes it write past its Huffman tables (fixed upstream in 2.28, not in
// Debian 12's libstb). Every DHT that stb_image would process is checked, including the ones
// between the scans of a progressive JPEG.
#include <cstddef>
#include <cstdint>
#include <string>

namespace zs::engine {

struct JpegHeaderInfo {
  int width = 0;  // from the frame header (SOF0/1/2); 0 when none was reached
  int height = 0;
  bool has_frame = false;
  int orientation = 1;  // from the first APP1 "Exif" segment, else 1
  std::string problem;  // set when the file must not reach the decoder
};

JpegHeaderInfo scan_jpeg_header(const uint8_t* data, size_t size);

}  // namespace zs::engine
