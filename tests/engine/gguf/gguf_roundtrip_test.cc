#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

TEST(GgufRoundTrip, EveryValueTypeAndTensor) {
  zs::testing::TempDir dir;
  GgufWriter w;
  auto scalar = [](GgufType t, uint64_t u, int64_t i, double f) {
    GgufValue v;
    v.type = t;
    v.u64 = u;
    v.i64 = i;
    v.f64 = f;
    return v;
  };
  w.set("u8", scalar(GgufType::kUint8, 200, 0, 0));
  w.set("i8", scalar(GgufType::kInt8, 0, -100, 0));
  w.set("u16", scalar(GgufType::kUint16, 60000, 0, 0));
  w.set("i16", scalar(GgufType::kInt16, 0, -30000, 0));
  w.set("u32", scalar(GgufType::kUint32, 4000000000u, 0, 0));
  w.set("i32", scalar(GgufType::kInt32, 0, -2000000000, 0));
  w.set("u64", scalar(GgufType::kUint64, 1ull << 60, 0, 0));
  w.set("i64", scalar(GgufType::kInt64, 0, -(1ll << 60), 0));
  w.set("f32", scalar(GgufType::kFloat32, 0, 0, 1.5));
  w.set("f64", scalar(GgufType::kFloat64, 0, 0, 1e-300));
  w.set_bool("flag", true);
  w.set_string("name", "tiny \xE2\x96\x81 model");
  w.set_string_array("strs", {"a", "", "ccc"});
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  for (int i = 0; i < 2; ++i) {
    GgufValue inner;
    inner.type = GgufType::kArray;
    inner.elem_type = GgufType::kInt32;
    for (int j = 0; j <= i; ++j) inner.items.push_back(scalar(GgufType::kInt32, 0, 10 * i + j, 0));
    nested.items.push_back(inner);
  }
  w.set("nested", nested);
  std::vector<uint8_t> bytes(4 * 3 * 2);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i);
  w.add_tensor_bytes("t.f32", GgmlType::kF32, {3, 2}, bytes);
  w.add_tensor_bytes("t.q8", GgmlType::kQ8_0, {32}, std::vector<uint8_t>(34, 7));
  const std::string path = dir.file("all.gguf");
  ASSERT_TRUE(w.write(path).is_ok());

  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  const GgufFile& g = *f.value();
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_int("u8"), 200);
  EXPECT_EQ(g.get_int("i8"), -100);
  EXPECT_EQ(g.get_int("u16"), 60000);
  EXPECT_EQ(g.get_int("i16"), -30000);
  EXPECT_EQ(g.get_int("u32"), 4000000000ll);
  EXPECT_EQ(g.get_int("i32"), -2000000000);
  EXPECT_EQ(g.get_int("u64"), 1ll << 60);
  EXPECT_EQ(g.get_int("i64"), -(1ll << 60));
  EXPECT_DOUBLE_EQ(*g.get_float("f32"), 1.5);
  EXPECT_DOUBLE_EQ(*g.get_float("f64"), 1e-300);
  EXPECT_EQ(g.get_bool("flag"), true);
  EXPECT_EQ(g.get_string("name"), "tiny \xE2\x96\x81 model");
  EXPECT_EQ(g.get_string_array("strs"), (std::vector<std::string_view>{"a", "", "ccc"}));
  const GgufValue* n = g.find("nested");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->items.size(), 2u);
  EXPECT_EQ(n->items[1].items[1].as_int(), 11);
  EXPECT_EQ(g.find("missing"), nullptr);
  EXPECT_FALSE(g.get_string("u8").has_value());  // wrong type reads as absent

  const GgufTensorInfo* t = g.find_tensor("t.f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne[0], 3);
  EXPECT_EQ(t->ne[1], 2);
  EXPECT_EQ(t->nbytes, 24u);
  EXPECT_EQ(std::memcmp(t->data, bytes.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % 32, 0u);  // the mapping is page-aligned
  EXPECT_EQ(g.find_tensor("t.q8")->nbytes, 34u);
}

TEST(GgufRoundTrip, VersionTwoAndCustomAlignment) {
  zs::testing::TempDir dir;
  GgufWriter w;
  w.set_alignment(64);
  w.add_tensor_bytes("a", GgmlType::kF32, {1}, std::vector<uint8_t>(4, 1));
  w.add_tensor_bytes("b", GgmlType::kF32, {1}, std::vector<uint8_t>(4, 2));
  ASSERT_TRUE(w.write(dir.file("v2.gguf"), 2).is_ok());
  auto f = GgufFile::open(dir.file("v2.gguf"));
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ(f.value()->version(), 2u);
  EXPECT_EQ(f.value()->alignment(), 64u);
  EXPECT_EQ(f.value()->find_tensor("b")->offset, 64u);
  EXPECT_EQ(f.value()->find_tensor("b")->data[0], 2);
}

TEST(GgufRoundTrip, ReadsEveryGoldenModel) {
  for (const char* name : {"tiny-llama-f16.gguf", "tiny-llama-q8_0.gguf", "tiny-llama-q4_0.gguf",
                           "tiny-llama256-q4_k_m.gguf", "tiny-qwen2-q8_0.gguf", "tiny-llava-mmproj-f32.gguf",
                           "stories260K.gguf"}) {
    auto f = GgufFile::open(zs::testing::golden_model(name));
    ASSERT_TRUE(f.is_ok()) << name << ": " << f.status().message();
    EXPECT_GT(f.value()->tensors().size(), 0u) << name;
  }
}

}  // namespace
}  // namespace zs::engine
