// Hostile and damaged files must be refused with a message naming the problem, never crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<uint8_t> small_file() {
  zs::testing::TempDir dir;
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b"});
  w.add_tensor_bytes("w", GgmlType::kF32, {4, 2}, std::vector<uint8_t>(32, 0));
  EXPECT_TRUE(w.write(dir.file("s.gguf")).is_ok());
  return read_all(dir.file("s.gguf"));
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  auto r = GgufFile::parse(bytes.data(), bytes.size(), "test");
  return r.is_ok() ? "" : r.status().message();
}

// Little-endian writer for hand-built headers.
struct Bytes {
  std::vector<uint8_t> b;
  template <typename T>
  Bytes& pod(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    pod<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return pod<uint32_t>(0x46554747).pod<uint32_t>(version).pod<uint64_t>(n_tensors).pod<uint64_t>(n_kv);
  }
};

TEST(GgufBadInput, EveryTruncationIsRefused) {
  auto bytes = small_file();
  ASSERT_EQ(parse_error(bytes), "");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_NE(parse_error(cut), "") << "prefix of " << n << " bytes was accepted";
  }
}

TEST(GgufBadInput, NamesTheProblem) {
  EXPECT_NE(parse_error(Bytes().pod<uint32_t>(0x12345678).pod<uint32_t>(3).b).find("bad magic"), std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 0, 1).b).find("version 1"), std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 0, 7).b).find("unsupported GGUF version 7"), std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 1).str("k").pod<uint32_t>(99).b).find("unknown value type 99"),
            std::string::npos);
  // An array claiming 2^60 elements must not allocate them.
  EXPECT_NE(parse_error(Bytes().header(0, 1).str("k").pod<uint32_t>(9).pod<uint32_t>(4).pod<uint64_t>(1ull << 60).b)
                .find("does not fit"),
            std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 1).str("k").pod<uint32_t>(8).pod<uint64_t>(1ull << 62).b).find("length"),
            std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 2).str("k").pod<uint32_t>(4).pod<uint32_t>(1).str("k").pod<uint32_t>(4).pod<uint32_t>(1).b)
                .find("duplicate metadata key 'k'"),
            std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 1).str("general.alignment").pod<uint32_t>(4).pod<uint32_t>(3).b)
                .find("power of two"),
            std::string::npos);
  EXPECT_NE(parse_error(Bytes().header(0, 1).str("b").pod<uint32_t>(7).pod<uint8_t>(5).b).find("bool"),
            std::string::npos);
  // 5 nested array levels.
  Bytes deep;
  deep.header(0, 1).str("k");
  deep.pod<uint32_t>(9);
  for (int i = 0; i < 5; ++i) deep.pod<uint32_t>(9).pod<uint64_t>(1);
  deep.pod<uint32_t>(4).pod<uint64_t>(0);
  EXPECT_NE(parse_error(deep.b).find("nested deeper"), std::string::npos);
}

TEST(GgufBadInput, TensorInfoChecks) {
  auto tensor = [](uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Bytes b;
    b.header(1, 0).str("w").pod<uint32_t>(n_dims);
    for (auto d : ne) b.pod<uint64_t>(d);
    b.pod<uint32_t>(type).pod<uint64_t>(offset);
    while (b.b.size() % 32) b.pod<uint8_t>(0);
    for (int i = 0; i < 64; ++i) b.pod<uint8_t>(0);
    return b.b;
  };
  EXPECT_EQ(parse_error(tensor(1, {16}, 0, 0)), "");
  EXPECT_NE(parse_error(tensor(5, {1, 1, 1, 1, 1}, 0, 0)).find("5 dimensions"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {0}, 0, 0)).find("invalid size 0"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {16}, 77, 0)).find("unknown tensor type 77"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {30}, 8, 0)).find("not a multiple of its block size 32"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {16}, 0, 3)).find("not aligned"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {17}, 0, 0)).find("outside the file"), std::string::npos);
  EXPECT_NE(parse_error(tensor(1, {16}, 0, 1ull << 62)).find("outside the file"), std::string::npos);
  EXPECT_NE(parse_error(tensor(2, {1ull << 40, 1ull << 40}, 0, 0)).find("overflows"), std::string::npos);
  EXPECT_NE(parse_error(tensor(4, {1ull << 62, 1ull << 62, 2, 2}, 0, 0)).find("overflows"), std::string::npos);
}

TEST(GgufBadInput, OpenReportsMissingFile) {
  auto r = GgufFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

// A deterministic mutation smoke run over a real model (the libFuzzer target in fuzz/
// explores further; see docs/fuzzing.md).
TEST(GgufBadInput, MutatedGoldenFilesNeverCrash) {
  auto seed = read_all(zs::testing::golden_model("tiny-qwen2-q8_0.gguf"));
  std::mt19937_64 rng(42);
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    auto m = seed;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits && m.size() > 8; ++e) {
      size_t pos = rng() % std::min<size_t>(m.size(), 4096 + (rng() % 2) * m.size());
      switch (rng() % 3) {
        case 0: m[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: {
          uint64_t v = rng();
          std::memcpy(m.data() + std::min(pos, m.size() - 8), &v, 8);
          break;
        }
        case 2: m.resize(pos); break;
      }
    }
    auto r = GgufFile::parse(m.data(), m.size(), "mutant");
    if (r.is_ok()) ++accepted;
    else EXPECT_FALSE(r.status().message().empty());
  }
  SUCCEED() << accepted << " mutants parsed";
}

}  // namespace
}  // namespace zs::engine
