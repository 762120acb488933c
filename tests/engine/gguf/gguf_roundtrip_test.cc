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
  ASSERT_EQ(n->array_size(), 2u);
  EXPECT_EQ(n->item(1).array_size(), 2u);
  EXPECT_EQ(n->item(1).item(1).as_int(), 11);
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

// Flat arrays stay encoded in the file (GgufValue::raw): every element type reads back as
// written, element by element and whole, displays, and a parsed file written again (the
// writer copying raw arrays as they are) reads back the same.
TEST(GgufRoundTrip, FlatArraysOfEveryTypeReadInPlaceAndWriteBack) {
  zs::testing::TempDir dir;
  GgufWriter w;
  const std::vector<GgufType> types = {GgufType::kUint8,  GgufType::kInt8,  GgufType::kUint16, GgufType::kInt16,
                                       GgufType::kUint32, GgufType::kInt32, GgufType::kUint64, GgufType::kInt64,
                                       GgufType::kFloat32, GgufType::kFloat64, GgufType::kBool};
  for (GgufType t : types) {
    GgufValue a;
    a.type = GgufType::kArray;
    a.elem_type = t;
    for (int i = 0; i < 5; ++i) {
      GgufValue e;
      e.type = t;
      e.u64 = static_cast<uint64_t>(i % 2);
      e.i64 = -i;
      e.f64 = 0.5 * i;
      if (t == GgufType::kUint8 || t == GgufType::kUint16 || t == GgufType::kUint32 || t == GgufType::kUint64)
        e.u64 = static_cast<uint64_t>(7 * i);
      a.items.push_back(e);
    }
    w.set(std::string("a.") + std::string(gguf_type_name(t)), a);
  }
  std::vector<std::string> words;
  for (int i = 0; i < 1000; ++i) words.push_back(std::string(static_cast<size_t>(i % 7), static_cast<char>('a' + i % 26)));
  w.set_string_array("words", words);
  w.set_string_array("none", {});
  ASSERT_TRUE(w.write(dir.file("a.gguf")).is_ok());

  auto check = [&](const GgufFile& g) {
    for (GgufType t : types) {
      const GgufValue* a = g.find(std::string("a.") + std::string(gguf_type_name(t)));
      ASSERT_NE(a, nullptr);
      ASSERT_EQ(a->array_size(), 5u);
      EXPECT_NE(a->raw, nullptr) << gguf_type_name(t);
      EXPECT_TRUE(a->items.empty());
      for (int i = 0; i < 5; ++i) {
        const GgufValue e = a->item(static_cast<size_t>(i));
        EXPECT_EQ(e.type, t);
        if (t == GgufType::kFloat32 || t == GgufType::kFloat64) {
          EXPECT_DOUBLE_EQ(*e.as_float(), 0.5 * i);
        } else if (t == GgufType::kBool) {
          EXPECT_EQ(e.as_bool(), i % 2 == 1);
        } else if (t == GgufType::kInt8 || t == GgufType::kInt16 || t == GgufType::kInt32 || t == GgufType::kInt64) {
          EXPECT_EQ(e.as_int(), -i);
        } else {
          EXPECT_EQ(e.as_int(), 7 * i);
        }
      }
    }
    EXPECT_EQ(g.get_float_array("a.f32"), (std::vector<float>{0, 0.5f, 1, 1.5f, 2}));
    EXPECT_EQ(g.get_int_array("a.i16"), (std::vector<int64_t>{0, -1, -2, -3, -4}));
    EXPECT_TRUE(g.get_int_array("words").empty());  // strings are not integers
    const std::vector<std::string_view> got = g.get_string_array("words");
    ASSERT_EQ(got.size(), words.size());
    for (size_t i = 0; i < words.size(); ++i) ASSERT_EQ(got[i], words[i]) << i;
    EXPECT_EQ(g.find("words")->item(999).as_string(), words[999]);
    EXPECT_TRUE(g.get_string_array("none").empty());
    EXPECT_EQ(g.find("words")->to_display_string(3), "[string x 1000: \"\", \"b\", \"cc\", ...]");
    EXPECT_EQ(g.find("a.i8")->to_display_string(2), "[i8 x 5: 0, -1, ...]");
    const GgufValue m = g.find("words")->materialized();  // editable: every element in items
    EXPECT_EQ(m.raw, nullptr);
    ASSERT_EQ(m.items.size(), words.size());
    EXPECT_EQ(m.items[999].str, words[999]);
    EXPECT_EQ(g.find("a.u16")->materialized().items[3].as_int(), 21);
  };
  auto f = GgufFile::open(dir.file("a.gguf"));
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  check(*f.value());

  GgufWriter again;
  for (const auto& [key, value] : f.value()->metadata()) again.set(key, value);
  ASSERT_TRUE(again.write(dir.file("b.gguf")).is_ok());
  auto g = GgufFile::open(dir.file("b.gguf"));
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  check(*g.value());
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
