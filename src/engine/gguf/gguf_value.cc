#include "engine/gguf/gguf_value.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>

namespace zs::engine {

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kUint8: return "u8";
    case GgufType::kInt8: return "i8";
    case GgufType::kUint16: return "u16";
    case GgufType::kInt16: return "i16";
    case GgufType::kUint32: return "u32";
    case GgufType::kInt32: return "i32";
    case GgufType::kFloat32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "u64";
    case GgufType::kInt64: return "i64";
    case GgufType::kFloat64: return "f64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

static bool is_unsigned(GgufType t) {
  return t == GgufType::kUint8 || t == GgufType::kUint16 || t == GgufType::kUint32 ||
         t == GgufType::kUint64 || t == GgufType::kBool;
}

std::optional<int64_t> GgufValue::as_int() const {
  if (type == GgufType::kBool) return static_cast<int64_t>(u64);
  if (!is_integer()) return std::nullopt;
  if (is_unsigned(type)) {
    if (u64 > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u64);
  }
  return i64;
}

std::optional<double> GgufValue::as_float() const {
  if (is_float()) return f64;
  if (is_integer()) return is_unsigned(type) ? static_cast<double>(u64) : static_cast<double>(i64);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type == GgufType::kBool) return u64 != 0;
  return std::nullopt;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (type == GgufType::kString) return std::string_view(str);
  return std::nullopt;
}

size_t gguf_scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

GgufValue gguf_decode_scalar(GgufType t, const uint8_t* p) {
  GgufValue v;
  v.type = t;
  auto get = [p](auto x) {
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  switch (t) {
    case GgufType::kUint8: case GgufType::kBool: v.u64 = get(uint8_t{}); break;
    case GgufType::kInt8: v.i64 = get(int8_t{}); break;
    case GgufType::kUint16: v.u64 = get(uint16_t{}); break;
    case GgufType::kInt16: v.i64 = get(int16_t{}); break;
    case GgufType::kUint32: v.u64 = get(uint32_t{}); break;
    case GgufType::kInt32: v.i64 = get(int32_t{}); break;
    case GgufType::kUint64: v.u64 = get(uint64_t{}); break;
    case GgufType::kInt64: v.i64 = get(int64_t{}); break;
    case GgufType::kFloat32: v.f64 = get(float{}); break;
    case GgufType::kFloat64: v.f64 = get(double{}); break;
    case GgufType::kString: case GgufType::kArray: break;
  }
  return v;
}

namespace {

// Calls f(view) for each string of a raw array (the parser checked every length).
template <class F>
void for_each_raw_string(const GgufValue& v, F&& f) {
  const uint8_t* p = v.raw;
  for (uint64_t i = 0; i < v.raw_count; ++i) {
    uint64_t len = 0;
    std::memcpy(&len, p, 8);
    if (!f(std::string_view(reinterpret_cast<const char*>(p + 8), len))) return;
    p += 8 + len;
  }
}

}  // namespace

GgufValue GgufValue::item(size_t i) const {
  if (raw == nullptr) return i < items.size() ? items[i] : GgufValue{};
  if (i >= raw_count) return GgufValue{};
  if (elem_type != GgufType::kString) return gguf_decode_scalar(elem_type, raw + i * gguf_scalar_size(elem_type));
  GgufValue v;
  v.type = GgufType::kString;
  size_t k = 0;
  for_each_raw_string(*this, [&](std::string_view s) {
    if (k++ < i) return true;
    v.str.assign(s);
    return false;
  });
  return v;
}

GgufValue GgufValue::materialized() const {
  GgufValue v = *this;
  if (raw == nullptr) return v;
  v.raw = nullptr;
  v.raw_count = 0;
  v.raw_bytes = 0;
  v.items.reserve(raw_count);
  if (elem_type == GgufType::kString) {
    for (std::string_view s : string_items()) {
      GgufValue e;
      e.type = GgufType::kString;
      e.str.assign(s);
      v.items.push_back(std::move(e));
    }
  } else {
    for (size_t i = 0; i < raw_count; ++i) v.items.push_back(item(i));
  }
  return v;
}

std::vector<std::string_view> GgufValue::string_items() const {
  std::vector<std::string_view> out;
  if (type != GgufType::kArray || elem_type != GgufType::kString) return out;
  out.reserve(array_size());
  if (raw != nullptr) {
    for_each_raw_string(*this, [&](std::string_view s) {
      out.push_back(s);
      return true;
    });
  } else {
    for (const auto& it : items) out.emplace_back(it.str);
  }
  return out;
}

std::string GgufValue::to_display_string(size_t max_items) const {
  std::ostringstream os;
  switch (type) {
    case GgufType::kString: {
      std::string s = str.size() > 80 ? str.substr(0, 77) + "..." : str;
      os << '"' << s << '"';
      break;
    }
    case GgufType::kBool: os << (u64 ? "true" : "false"); break;
    case GgufType::kFloat32: case GgufType::kFloat64: os << f64; break;
    case GgufType::kArray: {
      os << "[" << gguf_type_name(elem_type) << " x " << array_size() << ": ";
      for (size_t i = 0; i < array_size() && i < max_items; ++i) {
        if (i) os << ", ";
        os << item(i).to_display_string(max_items);
      }
      if (array_size() > max_items) os << ", ...";
      os << "]";
      break;
    }
    default:
      if (is_unsigned(type)) os << u64; else os << i64;
  }
  return os.str();
}

}  // namespace zs::engine
