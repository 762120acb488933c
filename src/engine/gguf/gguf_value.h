#pragma once
// A metadata value of a GGUF file: a scalar, a string, or an array (arrays may nest).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zs::engine {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u64 = 0;  // unsigned integers and bool
  int64_t i64 = 0;   // signed integers
  double f64 = 0;    // floats
  std::string str;   // strings
  GgufType elem_type = GgufType::kUint8;  // arrays
  std::vector<GgufValue> items;           // arrays

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Any integer or bool as int64 (unsigned values above INT64_MAX give nullopt).
  std::optional<int64_t> as_int() const;
  // Any number as double.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;
  // A short human-readable rendering (arrays abbreviated), for `zeroserve inspect` and logs.
  std::string to_display_string(size_t max_items = 8) const;
};

}  // namespace zs::engine
