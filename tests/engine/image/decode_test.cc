// Every supported format decodes to the pixels that were encoded; every kind of bad input is
// refused with an error naming the format and the problem, before any large allocation.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "engine/image/image.h"
#include "test_images.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

using test::Bytes;

Bytes random_pixels(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes out(n);
  for (auto& v : out) v = static_cast<uint8_t>(rng());
  return out;
}

Image decode_ok(const Bytes& bytes) {
  auto r = decode_image(bytes.data(), bytes.size());
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r.value() : Image{};
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(ImageFormat, DetectedFromMagicBytes) {
  auto detect = [](const Bytes& b) { return detect_image_format(b.data(), b.size()); };
  EXPECT_EQ(detect({0xFF, 0xD8, 0xFF, 0xE0}), ImageFormat::kJpeg);
  EXPECT_EQ(detect({0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}), ImageFormat::kPng);
  EXPECT_EQ(detect({'G', 'I', 'F', '8', '7', 'a'}), ImageFormat::kGif);
  EXPECT_EQ(detect({'G', 'I', 'F', '8', '9', 'a'}), ImageFormat::kGif);
  EXPECT_EQ(detect({'B', 'M', 0, 0}), ImageFormat::kBmp);
  EXPECT_EQ(detect({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'}), ImageFormat::kWebp);
  EXPECT_EQ(detect({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E'}), ImageFormat::kUnknown);
  EXPECT_EQ(detect({'G', 'I', 'F'}), ImageFormat::kUnknown);
  EXPECT_EQ(detect_image_format(nullptr, 0), ImageFormat::kUnknown);
}

TEST(DecodeImage, PngRgbIsExact) {
  const Bytes px = random_pixels(7 * 5 * 3, 1);
  Image img = decode_ok(test::png_stb(7, 5, 3, px));
  EXPECT_EQ(img.width, 7);
  EXPECT_EQ(img.height, 5);
  EXPECT_EQ(img.rgb, px);
}

TEST(DecodeImage, PngGrayscaleIsExpandedToRgb) {
  const Bytes gray = {0, 50, 100, 150, 200, 255};
  Image img = decode_ok(test::png_stb(3, 2, 1, gray));
  ASSERT_EQ(img.rgb.size(), 18u);
  for (size_t i = 0; i < gray.size(); ++i) {
    EXPECT_EQ(img.rgb[i * 3], gray[i]);
    EXPECT_EQ(img.rgb[i * 3 + 1], gray[i]);
    EXPECT_EQ(img.rgb[i * 3 + 2], gray[i]);
  }
}

TEST(DecodeImage, PngGrayAlphaDropsAlpha) {
  const Bytes ga = {10, 255, 20, 0, 30, 128, 40, 7};  // (gray, alpha) pairs
  Image img = decode_ok(test::png_stb(2, 2, 2, ga));
  EXPECT_EQ(img.rgb, (Bytes{10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40}));
}

TEST(DecodeImage, PngRgbaKeepsStoredColoursAndDropsAlpha) {
  // Alpha is dropped, not composited: a fully transparent pixel keeps its stored colour.
  const Bytes rgba = {10, 20, 30, 0, 200, 100, 50, 255, 1, 2, 3, 128, 90, 80, 70, 1};
  Image img = decode_ok(test::png_stb(2, 2, 4, rgba));
  EXPECT_EQ(img.rgb, (Bytes{10, 20, 30, 200, 100, 50, 1, 2, 3, 90, 80, 70}));
}

TEST(DecodeImage, Png16BitKeepsHighByte) {
  // 2x1 RGB, 16 bits per sample, big-endian.
  const Bytes rows = {0,    0x12, 0x34, 0xFF, 0xFF, 0x00, 0xFF,
                      0x80, 0x00, 0x7F, 0xFF, 0xAB, 0xCD};
  Image img = decode_ok(test::png_manual(2, 1, 16, 2, test::zlib_stored(rows)));
  EXPECT_EQ(img.width, 2);
  EXPECT_EQ(img.rgb, (Bytes{0x12, 0xFF, 0x00, 0x80, 0x7F, 0xAB}));
}

TEST(DecodeImage, Png16BitGrayscale) {
  const Bytes rows = {0, 0xC8, 0x01, 0x00, 0xFF};  // 2x1 gray16: 0xC801, 0x00FF
  Image img = decode_ok(test::png_manual(2, 1, 16, 0, test::zlib_stored(rows)));
  EXPECT_EQ(img.rgb, (Bytes{0xC8, 0xC8, 0xC8, 0, 0, 0}));
}

TEST(DecodeImage, PngPaletteWithTransparency) {
  const Bytes palette = {255, 0, 0, 0, 255, 0, 0, 0, 255};
  const Bytes trns = {255, 0};  // entry 1 transparent; dropped like any alpha
  const Bytes rows = {0, 2, 1, 0, 0, 1, 1, 2};  // 3x2 indices, one filter byte per row
  Image img = decode_ok(test::png_manual(3, 2, 8, 3, test::zlib_stored(rows),
                                         {{"PLTE", palette}, {"tRNS", trns}}));
  EXPECT_EQ(img.width, 3);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.rgb, (Bytes{0, 0, 255, 0, 255, 0, 255, 0, 0,  //
                            0, 255, 0, 0, 255, 0, 0, 0, 255}));
}

TEST(DecodeImage, PngLowBitDepthPalette) {
  const Bytes palette = {0, 0, 0, 255, 255, 255, 9, 8, 7, 1, 2, 3};
  // 2 bits per index: 0b00'01'10'11 -> indices 0,1,2,3
  const Bytes rows = {0, 0x1B};
  Image img = decode_ok(test::png_manual(4, 1, 2, 3, test::zlib_stored(rows), {{"PLTE", palette}}));
  EXPECT_EQ(img.rgb, palette);
}

TEST(DecodeImage, BmpIsExact) {
  const Bytes px = random_pixels(5 * 3 * 3, 2);
  Image img = decode_ok(test::bmp_stb(5, 3, 3, px));
  EXPECT_EQ(img.width, 5);
  EXPECT_EQ(img.height, 3);
  EXPECT_EQ(img.rgb, px);
}

TEST(DecodeImage, GifFirstFrameThroughPalette) {
  const uint8_t palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 250}};
  Image img = decode_ok(test::gif_manual(3, 2, palette, {0, 1, 2, 3, 2, 1}));
  EXPECT_EQ(img.width, 3);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.rgb, (Bytes{0, 0, 0, 255, 0, 0, 0, 255, 0,  //
                            10, 20, 250, 0, 255, 0, 255, 0, 0}));
}

TEST(DecodeImage, JpegApproximatesColours) {
  const int w = 32, h = 16;
  Bytes px(w * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint8_t v[3] = {static_cast<uint8_t>(x < 16 ? 200 : 30), 90, static_cast<uint8_t>(x < 16 ? 40 : 220)};
      std::memcpy(&px[(y * w + x) * 3], v, 3);
    }
  }
  Image img = decode_ok(test::jpeg_stb(w, h, px));
  ASSERT_EQ(img.width, w);
  ASSERT_EQ(img.height, h);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(img.rgb[img.pixel_index(8, 8) + c], px[(8 * w + 8) * 3 + c], 6);
    EXPECT_NEAR(img.rgb[img.pixel_index(24, 8) + c], px[(8 * w + 24) * 3 + c], 6);
  }
}

TEST(DecodeImage, WebpLosslessIsExact) {
  const Bytes px = random_pixels(6 * 4 * 3, 3);
  Image img = decode_ok(test::webp_lossless_rgb(6, 4, px));
  EXPECT_EQ(img.width, 6);
  EXPECT_EQ(img.height, 4);
  EXPECT_EQ(img.rgb, px);
}

TEST(DecodeImage, WebpLossyApproximatesColours) {
  Image src = test::solid(16, 16, 40, 160, 220);
  Image img = decode_ok(test::webp_lossy_rgb(16, 16, src.rgb));
  ASSERT_EQ(img.width, 16);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(img.rgb[img.pixel_index(8, 8) + c], src.rgb[c], 8);
}

TEST(DecodeImage, WebpWithAlphaDropsAlpha) {
  const Bytes rgba = {10, 20, 30, 128, 200, 100, 50, 255, 1, 2, 3, 64, 90, 80, 70, 200};
  Image img = decode_ok(test::webp_lossless_rgba(2, 2, rgba));
  EXPECT_EQ(img.rgb, (Bytes{10, 20, 30, 200, 100, 50, 1, 2, 3, 90, 80, 70}));
}

TEST(DecodeImage, AnimatedWebpGivesFirstFrame) {
  const Image red = test::solid(4, 3, 255, 0, 0);
  const Image blue = test::solid(4, 3, 0, 0, 255);
  Image img = decode_ok(test::webp_animation(4, 3, {red.rgb, blue.rgb}));
  EXPECT_EQ(img.width, 4);
  EXPECT_EQ(img.height, 3);
  EXPECT_EQ(img.rgb, red.rgb);
}

TEST(DecodeImage, WebpExifOrientationIsApplied) {
  // 3x2 pixels 0..5, stored for orientation 6 (rotate 90 degrees clockwise to view).
  Bytes px;
  for (uint8_t v = 0; v < 6; ++v) px.insert(px.end(), {static_cast<uint8_t>(v * 40), 0, 0});
  Image img = decode_ok(test::webp_with_exif(3, 2, px, test::tiff_with_orientation(6, true)));
  ASSERT_EQ(img.width, 2);
  ASSERT_EQ(img.height, 3);
  const uint8_t want[6] = {3, 0, 4, 1, 5, 2};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(img.rgb[i * 3], want[i] * 40) << i;
}

TEST(DecodeImage, GoldenImagesHaveTheirSizes) {
  const std::string dir = testing::shared_dir() + "/golden/images/";
  Image gradient = decode_ok(read_file(dir + "gradient-64x48.png"));
  EXPECT_EQ(gradient.width, 64);
  EXPECT_EQ(gradient.height, 48);
  EXPECT_EQ(gradient.rgb.size(), 64u * 48 * 3);
  Image checker = decode_ok(read_file(dir + "checker-100x100.png"));
  EXPECT_EQ(checker.width, 100);
  EXPECT_EQ(checker.height, 100);
  EXPECT_EQ(checker.rgb.size(), 100u * 100 * 3);
}

// --- refusals ------------------------------------------------------------------------------

TEST(DecodeImageErrors, EmptyAndGarbage) {
  EXPECT_EQ(test::error_of({}), "image data is empty");
  EXPECT_EQ(decode_image(nullptr, 10).status().message(), "image data is empty");
  const std::string html = "<html><body>not an image</body></html>";
  const std::string err = test::error_of(Bytes(html.begin(), html.end()));
  EXPECT_NE(err.find("unrecognized image format"), std::string::npos) << err;
  EXPECT_NE(err.find("3c 68 74 6d"), std::string::npos) << err;
}

TEST(DecodeImageErrors, OversizedPngRefusedFromHeaderAlone) {
  // Only a signature and an IHDR claiming 100000 x 100000: refusing it must not need the
  // (absent) pixel data, and must not allocate 30 GB.
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  test::png_chunk(png, "IHDR", test::png_ihdr(100000, 100000, 8, 2));
  const std::string err = test::error_of(png);
  EXPECT_NE(err.find("PNG image is 100000x100000"), std::string::npos) << err;
  EXPECT_NE(err.find("over the limit of 50000000 pixels"), std::string::npos) << err;
}

TEST(DecodeImageErrors, MaxPixelsLimitIsHonoured) {
  const Bytes png = test::png_stb(20, 20, 3, random_pixels(1200, 4));
  ImageLimits tight;
  tight.max_pixels = 399;
  EXPECT_NE(test::error_of(png, tight).find("20x20 (400 pixels), over the limit of 399"),
            std::string::npos);
  tight.max_pixels = 400;
  EXPECT_EQ(test::error_of(png, tight), "<decoded>");
}

TEST(DecodeImageErrors, MaxBytesLimitIsHonoured) {
  const Bytes png = test::png_stb(20, 20, 3, random_pixels(1200, 5));
  ImageLimits tight;
  tight.max_bytes = png.size() - 1;
  EXPECT_NE(test::error_of(png, tight).find("over the limit of " + std::to_string(png.size() - 1) + " bytes"),
            std::string::npos);
}

TEST(DecodeImageErrors, OversizedHeadersOfOtherFormats) {
  // JPEG: SOI then an SOF0 claiming 65535 x 65535, nothing else.
  const Bytes jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, 0xFF, 0xFF, 0xFF, 0xFF, 3,
                      1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0};
  EXPECT_NE(test::error_of(jpeg).find("JPEG image is 65535x65535"), std::string::npos)
      << test::error_of(jpeg);
  // GIF: logical screen 65535 x 65535.
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0};
  EXPECT_NE(test::error_of(gif).find("GIF image is 65535x65535"), std::string::npos);
  // BMP: 100000 x -100000 (top-down).
  Bytes bmp = test::bmp_stb(2, 2, 3, random_pixels(12, 6));
  const int32_t w = 100000, h = -100000;
  std::memcpy(&bmp[18], &w, 4);
  std::memcpy(&bmp[22], &h, 4);
  EXPECT_NE(test::error_of(bmp).find("BMP image is 100000x100000"), std::string::npos)
      << test::error_of(bmp);
}

TEST(DecodeImageErrors, ZeroSize) {
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  test::png_chunk(png, "IHDR", test::png_ihdr(0, 5, 8, 2));
  EXPECT_EQ(test::error_of(png), "PNG image has zero size (0x5)");
  const Bytes gif = {'G', 'I', 'F', '8', '9', 'a', 4, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(test::error_of(gif), "GIF image has zero size (4x0)");
}

TEST(DecodeImageErrors, TruncatedPngNamesTheFormat) {
  const Bytes png = test::png_stb(40, 30, 3, random_pixels(40 * 30 * 3, 7));
  for (size_t keep : {size_t{8}, size_t{20}, size_t{33}, png.size() / 2, png.size() - 13, png.size() - 1}) {
    const std::string err = test::error_of(Bytes(png.begin(), png.begin() + keep));
    EXPECT_EQ(err.rfind("PNG image is truncated or corrupt: ", 0), 0u) << keep << ": " << err;
  }
}

TEST(DecodeImageErrors, TruncatedOtherFormatsNeverCrash) {
  const uint8_t palette[4][3] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  const std::vector<Bytes> files = {
      test::jpeg_stb(24, 16, random_pixels(24 * 16 * 3, 8)),
      test::bmp_stb(9, 7, 3, random_pixels(9 * 7 * 3, 9)),
      test::gif_manual(4, 4, palette, Bytes(16, 2)),
      test::webp_lossless_rgb(9, 7, random_pixels(9 * 7 * 3, 10)),
      test::webp_lossy_rgb(16, 16, random_pixels(16 * 16 * 3, 11)),
  };
  for (const Bytes& file : files) {
    for (size_t keep = 1; keep < file.size(); ++keep) {
      auto r = decode_image(file.data(), keep);
      if (r.is_ok()) {
        EXPECT_EQ(r->rgb.size(), static_cast<size_t>(r->width) * r->height * 3);
      } else {
        EXPECT_FALSE(r.status().message().empty());
      }
    }
  }
  // Cut inside the header, the errors name the format.
  EXPECT_EQ(test::error_of(Bytes(files[3].begin(), files[3].begin() + 20))
                .rfind("WebP image is truncated or corrupt", 0),
            0u);
  EXPECT_EQ(test::error_of(Bytes(files[1].begin(), files[1].begin() + 20))
                .rfind("BMP image is truncated or corrupt", 0),
            0u);
}

TEST(DecodeImageErrors, CorruptBytesNeverCrash) {
  std::mt19937 rng(12);
  const std::vector<Bytes> files = {
      test::png_stb(12, 9, 3, random_pixels(12 * 9 * 3, 13)),
      test::jpeg_stb(24, 16, random_pixels(24 * 16 * 3, 14)),
      test::webp_lossless_rgb(9, 7, random_pixels(9 * 7 * 3, 15)),
  };
  for (const Bytes& file : files) {
    for (int trial = 0; trial < 300; ++trial) {
      Bytes damaged = file;
      for (int k = 0; k < 4; ++k) damaged[8 + rng() % (damaged.size() - 8)] ^= static_cast<uint8_t>(1 + rng() % 255);
      auto r = decode_image(damaged.data(), damaged.size());
      if (r.is_ok()) {
        EXPECT_EQ(r->rgb.size(), static_cast<size_t>(r->width) * r->height * 3);
      }
    }
  }
}

TEST(DecodeImageErrors, JpegScanWithUndefinedHuffmanTable) {
  // Found by fuzzing: a scan selecting Huffman tables 3/3, which no DHT defines, made libstb
  // read uninitialized tables and segfault. The decoder's zeroed allocations make it harmless.
  Bytes jpeg = test::jpeg_stb(16, 16, random_pixels(16 * 16 * 3, 17));
  size_t sos = 2;
  while (!(jpeg[sos] == 0xFF && jpeg[sos + 1] == 0xDA)) ++sos;
  const int components = jpeg[sos + 4];
  for (int i = 0; i < components; ++i) jpeg[sos + 6 + 2 * i] = 0x33;
  auto r = decode_image(jpeg.data(), jpeg.size());
  if (r.is_ok()) {
    EXPECT_EQ(r->rgb.size(), 16u * 16 * 3);
  }
}

TEST(DecodeImageErrors, PngZlibBombRefused) {
  // A 16x16 RGB header (784 bytes of scanlines) with compressed data that inflates to 8 MiB.
  const Bytes huge(8 << 20, 0);
  const Bytes png = test::png_manual(16, 16, 8, 2, test::zlib_deflate(huge));
  const std::string err = test::error_of(png);
  EXPECT_NE(err.find("inflates beyond the 16x16 pixels the header declares"), std::string::npos)
      << err;
}

TEST(DecodeImageErrors, PngCutInsideIhdr) {
  // Found by fuzzing: the IHDR chunk ends before its depth and colour type bytes.
  const Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H',
                     'D', 'R', 0, 0, 0, 24, 0, 0, 'D', 'A', 'T', 'x', '^', 'c'};
  EXPECT_EQ(test::error_of(png), "PNG image is truncated or corrupt: no IHDR header");
}

TEST(DecodeImageErrors, PngChunkLongerThanFile) {
  Bytes png = test::png_stb(4, 4, 3, random_pixels(48, 16));
  // Make the IDAT length field claim 2 GiB.
  size_t pos = 8;
  while (std::memcmp(&png[pos + 4], "IDAT", 4) != 0) {
    pos += 12 + (png[pos] << 24 | png[pos + 1] << 16 | png[pos + 2] << 8 | png[pos + 3]);
  }
  png[pos] = 0x7F;
  png[pos + 1] = 0xFF;
  const std::string err = test::error_of(png);
  EXPECT_NE(err.find("chunk 'IDAT' claims"), std::string::npos) << err;
}

}  // namespace
}  // namespace zs::engine
