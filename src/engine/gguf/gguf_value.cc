#include "engine/gguf/gguf_value.h"

#include <cstdint>
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
      os << "[" << gguf_type_name(elem_type) << " x " << items.size() << ": ";
      for (size_t i = 0; i < items.size() && i < max_items; ++i) {
        if (i) os << ", ";
        os << items[i].to_display_string(max_items);
      }
      if (items.size() > max_items) os << ", ...";
      os << "]";
      break;
    }
    default:
      if (is_unsigned(type)) os << u64; else os << i64;
  }
  return os.str();
}

}  // namespace zs::engine
