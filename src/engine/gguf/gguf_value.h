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
// Encoded bytes of one value of a fixed-size type; 0 for strings and arrays.
size_t gguf_scalar_size(GgufType t);

struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u64 = 0;  // unsigned integers and bool
  int64_t i64 = 0;   // signed integers
  double f64 = 0;    // floats
  std::string str;   // strings
  GgufType elem_type = GgufType::kUint8;  // arrays
  // An array's elements: in `items` (nested arrays, arrays built in memory), or, for flat
  // arrays read from a file, left encoded where the file has them: `raw_count` elements in
  // `raw_bytes` bytes at `raw` (which lives as long as the file's bytes). A 150k-token
  // vocabulary then costs no allocation per token at load (one GgufValue per element was
  // ~60 MB of small allocations and page faults per process start).
  std::vector<GgufValue> items;
  const uint8_t* raw = nullptr;
  uint64_t raw_count = 0;
  size_t raw_bytes = 0;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kFloat32 || type == GgufType::kFloat64; }
  // Any integer or bool as int64 (unsigned values above INT64_MAX give nullopt).
  std::optional<int64_t> as_int() const;
  // Any number as double.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;

  // Arrays: the number of elements, and element i (i < array_size()) as a value of its own;
  // a string element of a raw array is found by walking from the start.
  size_t array_size() const { return raw != nullptr ? raw_count : items.size(); }
  GgufValue item(size_t i) const;
  // All elements of an array of strings (views into the file's bytes or into `items`), or
  // empty for any other value.
  std::vector<std::string_view> string_items() const;
  // A copy whose array elements, if any, are in `items` (to edit a value read from a file).
  GgufValue materialized() const;
  // A short human-readable rendering (arrays abbreviated), for `zeroserve inspect` and logs.
  std::string to_display_string(size_t max_items = 8) const;
};

// A value of fixed-size type `t` decoded from its little-endian encoding at `p`.
GgufValue gguf_decode_scalar(GgufType t, const uint8_t* p);

}  // namespace zs::engine
