// JPEG marker walk and EXIF orientation: a 2x3 grid of solid blocks is stored sideways/mirrored as a camera would,
// and must come out upright for each orientation 1-8, in both TIFF byte orders.
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <string>

#include "engine/image/exif.h"
#include "engine/image/image.h"
#include "engine/image/jpeg_markers.h"
#include "test_images.h"

namespace zs::engine {
namespace {

using test::Bytes;

constexpr int kBlock = 16;
// Block colours, named by letter; A..F as stored (2 columns, 3 rows):  A B / C D / E F.
const std::map<char, std::array<uint8_t, 3>> kColours = {
    {'A', {255, 0, 0}},   {'B', {0, 255, 0}},   {'C', {0, 0, 255}},
    {'D', {255, 255, 255}}, {'E', {0, 0, 0}}, {'F', {255, 255, 0}},
};
const std::vector<std::string> kStored = {"AB", "CD", "EF"};

Bytes stored_jpeg() {
  const int w = 2 * kBlock, h = 3 * kBlock;
  Bytes px(w * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const auto& c = kColours.at(kStored[y / kBlock][x / kBlock]);
      std::memcpy(&px[(y * w + x) * 3], c.data(), 3);
    }
  }
  return test::jpeg_stb(w, h, px, 95);
}

// Expected upright grids, derived by hand from the EXIF definitions (e.g. 6: "row 0 is the
// visual right side, column 0 the visual top").
const std::map<int, std::vector<std::string>> kUpright = {
    {1, {"AB", "CD", "EF"}}, {2, {"BA", "DC", "FE"}}, {3, {"FE", "DC", "BA"}},
    {4, {"EF", "CD", "AB"}}, {5, {"ACE", "BDF"}},     {6, {"ECA", "FDB"}},
    {7, {"FDB", "ECA"}},     {8, {"BDF", "ACE"}},
};

void expect_grid(const Image& img, const std::vector<std::string>& grid, const std::string& what) {
  ASSERT_EQ(img.width, static_cast<int>(grid[0].size()) * kBlock) << what;
  ASSERT_EQ(img.height, static_cast<int>(grid.size()) * kBlock) << what;
  for (size_t r = 0; r < grid.size(); ++r) {
    for (size_t c = 0; c < grid[r].size(); ++c) {
      const auto& want = kColours.at(grid[r][c]);
      const size_t at = img.pixel_index(static_cast<int>(c) * kBlock + kBlock / 2,
                                        static_cast<int>(r) * kBlock + kBlock / 2);
      for (int k = 0; k < 3; ++k) {
        EXPECT_NEAR(img.rgb[at + k], want[k], 24) << what << " block " << r << "," << c;
      }
    }
  }
}

class ExifOrientation : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(ExifOrientation, JpegComesOutUpright) {
  const auto [orientation, little_endian] = GetParam();
  const Bytes jpeg = test::insert_after_soi(
      stored_jpeg(), test::exif_app1(test::tiff_with_orientation(orientation, little_endian)));
  EXPECT_EQ(scan_jpeg_header(jpeg.data(), jpeg.size()).orientation, orientation);
  auto img = decode_image(jpeg.data(), jpeg.size());
  ASSERT_TRUE(img.is_ok()) << img.status().message();
  expect_grid(img.value(), kUpright.at(orientation),
              "orientation " + std::to_string(orientation) + (little_endian ? " II" : " MM"));
}

INSTANTIATE_TEST_SUITE_P(AllOrientations, ExifOrientation,
                         ::testing::Combine(::testing::Range(1, 9), ::testing::Bool()));

TEST(Exif, NoExifMeansAsStored) {
  const Bytes jpeg = stored_jpeg();
  auto img = decode_image(jpeg.data(), jpeg.size());
  ASSERT_TRUE(img.is_ok());
  expect_grid(img.value(), kUpright.at(1), "no exif");
  const JpegHeaderInfo info = scan_jpeg_header(jpeg.data(), jpeg.size());
  EXPECT_TRUE(info.has_frame);
  EXPECT_EQ(info.width, 2 * kBlock);
  EXPECT_EQ(info.height, 3 * kBlock);
}

TEST(Exif, MalformedExifIsIgnored) {
  const Bytes good = test::tiff_with_orientation(6, true);
  std::vector<Bytes> bad;
  bad.push_back(Bytes(good.begin(), good.begin() + 5));             // cut in the header
  bad.push_back(Bytes(good.begin(), good.begin() + 20));            // cut inside the IFD
  Bytes wrong_magic = good; wrong_magic[2] = 43; bad.push_back(wrong_magic);
  Bytes wrong_order = good; wrong_order[0] = 'X'; bad.push_back(wrong_order);
  Bytes far_ifd = good; far_ifd[4] = 0xF0; far_ifd[7] = 0x7F; bad.push_back(far_ifd);
  Bytes out_of_range = test::tiff_with_orientation(9, true); bad.push_back(out_of_range);
  Bytes zero = test::tiff_with_orientation(0, false); bad.push_back(zero);
  Bytes wrong_type = good; wrong_type[24] = 7; bad.push_back(wrong_type);  // UNDEFINED
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(exif_orientation(bad[i].data(), bad[i].size()), 1) << i;
    const Bytes jpeg = test::insert_after_soi(stored_jpeg(), test::exif_app1(bad[i]));
    auto img = decode_image(jpeg.data(), jpeg.size());
    ASSERT_TRUE(img.is_ok()) << i << ": " << img.status().message();
    expect_grid(img.value(), kUpright.at(1), "malformed " + std::to_string(i));
  }
  EXPECT_EQ(exif_orientation(nullptr, 100), 1);
  // An entry count far beyond the data: the walk stops at the end of the block, and a tag met
  // before that still counts.
  Bytes many_entries = good;
  many_entries[8] = many_entries[9] = 0xFF;
  EXPECT_EQ(exif_orientation(many_entries.data(), many_entries.size()), 6);
  many_entries.resize(30);
  EXPECT_EQ(exif_orientation(many_entries.data(), many_entries.size()), 1);
}

TEST(Exif, RandomExifPayloadsNeverCrash) {
  std::mt19937 rng(5);
  const Bytes base = test::tiff_with_orientation(6, rng() & 1);
  for (int trial = 0; trial < 20000; ++trial) {
    Bytes t = base;
    t.resize(rng() % (base.size() + 8));
    for (int k = 0; k < 3 && !t.empty(); ++k) t[rng() % t.size()] = static_cast<uint8_t>(rng());
    const int o = exif_orientation(t.data(), t.size());
    EXPECT_TRUE(o >= 1 && o <= 8);
  }
}

TEST(Exif, SegmentLengthPastEndIsIgnored) {
  // An APP1 claiming more bytes than the file has must not be read past the end.
  Bytes jpeg = test::insert_after_soi(stored_jpeg(), test::exif_app1(test::tiff_with_orientation(3, true)));
  Bytes cut(jpeg.begin(), jpeg.begin() + 20);
  EXPECT_EQ(scan_jpeg_header(cut.data(), cut.size()).orientation, 1);
  jpeg[4] = 0xFF;  // length high byte
  EXPECT_EQ(scan_jpeg_header(jpeg.data(), jpeg.size()).orientation, 1);
}

// A DHT segment whose code counts add up to 16 * 255: stb_image 2.27 would write past its tables.
Bytes oversized_dht() {
  Bytes seg = {0xFF, 0xC4, 0x00, 0x13, 0x00};
  seg.insert(seg.end(), 16, 0xFF);
  return seg;
}

TEST(JpegMarkers, OversizedHuffmanTableRefusedBeforeFrame) {
  const Bytes jpeg = test::insert_after_soi(stored_jpeg(), oversized_dht());
  EXPECT_EQ(scan_jpeg_header(jpeg.data(), jpeg.size()).problem,
            "Huffman table defines 4080 codes (at most 256)");
  EXPECT_EQ(test::error_of(jpeg),
            "JPEG image is truncated or corrupt: Huffman table defines 4080 codes (at most 256)");
}

TEST(JpegMarkers, OversizedHuffmanTableRefusedBetweenScans) {
  // After the scan, where progressive files define the tables of their next scans.
  Bytes jpeg = stored_jpeg();
  ASSERT_EQ(jpeg[jpeg.size() - 2], 0xFF);
  ASSERT_EQ(jpeg[jpeg.size() - 1], 0xD9);
  const Bytes dht = oversized_dht();
  jpeg.insert(jpeg.end() - 2, dht.begin(), dht.end());
  EXPECT_NE(test::error_of(jpeg).find("Huffman table defines 4080 codes"), std::string::npos);
  // With padding bytes before the frame (which stb_image skips) the walk still finds it.
  Bytes padded = stored_jpeg();
  size_t dqt = 2;
  while (!(padded[dqt] == 0xFF && padded[dqt + 1] == 0xDB)) ++dqt;
  padded.insert(padded.begin() + dqt, {0x00, 0x12, 0x34});
  ASSERT_EQ(test::error_of(padded), "<decoded>");
  padded.insert(padded.end() - 2, dht.begin(), dht.end());
  EXPECT_NE(test::error_of(padded).find("Huffman table defines 4080 codes"), std::string::npos);
}

TEST(JpegMarkers, ValidFileHasNoProblem) {
  const Bytes jpeg = stored_jpeg();
  const JpegHeaderInfo info = scan_jpeg_header(jpeg.data(), jpeg.size());
  EXPECT_TRUE(info.problem.empty());
  EXPECT_EQ(info.orientation, 1);
}

TEST(Exif, ApplyOrientationOnPixels) {
  // 3x2 image with distinct pixel values 0..5 (row-major), checked for rotate-90-clockwise.
  Image img;
  img.width = 3;
  img.height = 2;
  for (uint8_t v = 0; v < 6; ++v) img.rgb.insert(img.rgb.end(), {v, v, v});
  Image r = apply_exif_orientation(img, 6);
  ASSERT_EQ(r.width, 2);
  ASSERT_EQ(r.height, 3);
  // Stored   0 1 2     upright  3 0
  //          3 4 5              4 1
  //                             5 2
  const uint8_t want[6] = {3, 0, 4, 1, 5, 2};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.rgb[i * 3], want[i]) << i;
  EXPECT_EQ(apply_exif_orientation(img, 1).rgb, img.rgb);
  EXPECT_EQ(apply_exif_orientation(img, 42).rgb, img.rgb);
}

}  // namespace
}  // namespace zs::engine
