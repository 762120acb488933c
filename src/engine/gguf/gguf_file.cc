#include "engine/gguf/gguf_file.h"

#include <cstring>
#include <limits>
#include <sstream>

namespace zs::engine {
namespace {

using core::Result;
using core::Status;

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 4;
constexpr uint64_t kMaxStringBytes = 1ull << 30;

// A bounds-checked little-endian cursor over the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return truncated(what);
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }

  Status read_string(std::string* out, const char* what) {
    uint64_t len = 0;
    ZS_RETURN_IF_ERROR(read(&len, what));
    if (len > kMaxStringBytes) return error(std::string(what) + " has an implausible length " + std::to_string(len));
    if (remaining() < len) return truncated(what);
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::ok();
  }

  const uint8_t* here() const { return data_ + pos_; }
  // Steps over n bytes the caller checked are there.
  void skip(size_t n) { pos_ += n; }

  Status error(const std::string& msg) const {
    return Status::error(msg + " (at byte offset " + std::to_string(pos_) + ")");
  }
  Status truncated(const char* what) const {
    return error(std::string("file is truncated while reading ") + what);
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Smallest encoded size of one element, used to refuse array counts the file cannot hold.
size_t min_encoded_size(GgufType t) {
  if (t == GgufType::kString) return 8;  // its length
  if (t == GgufType::kArray) return 12;  // its element type and count
  const size_t n = gguf_scalar_size(t);
  return n > 0 ? n : 1;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

Status read_value(Cursor& c, GgufType type, GgufValue* v, int depth) {
  v->type = type;
  switch (type) {
    case GgufType::kUint8: { uint8_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "u8 value")); v->u64 = x; break; }
    case GgufType::kInt8: { int8_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "i8 value")); v->i64 = x; break; }
    case GgufType::kUint16: { uint16_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "u16 value")); v->u64 = x; break; }
    case GgufType::kInt16: { int16_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "i16 value")); v->i64 = x; break; }
    case GgufType::kUint32: { uint32_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "u32 value")); v->u64 = x; break; }
    case GgufType::kInt32: { int32_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "i32 value")); v->i64 = x; break; }
    case GgufType::kUint64: { uint64_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "u64 value")); v->u64 = x; break; }
    case GgufType::kInt64: { int64_t x{}; ZS_RETURN_IF_ERROR(c.read(&x, "i64 value")); v->i64 = x; break; }
    case GgufType::kFloat32: { float x{}; ZS_RETURN_IF_ERROR(c.read(&x, "f32 value")); v->f64 = x; break; }
    case GgufType::kFloat64: { double x{}; ZS_RETURN_IF_ERROR(c.read(&x, "f64 value")); v->f64 = x; break; }
    case GgufType::kBool: {
      uint8_t x{};
      ZS_RETURN_IF_ERROR(c.read(&x, "bool value"));
      if (x > 1) return c.error("bool value " + std::to_string(x) + " is neither 0 nor 1");
      v->u64 = x;
      break;
    }
    case GgufType::kString: ZS_RETURN_IF_ERROR(c.read_string(&v->str, "string value")); break;
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) return c.error("arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      uint32_t et = 0;
      uint64_t n = 0;
      ZS_RETURN_IF_ERROR(c.read(&et, "array element type"));
      if (!known_value_type(et)) return c.error("unknown array element type " + std::to_string(et));
      ZS_RETURN_IF_ERROR(c.read(&n, "array length"));
      v->elem_type = static_cast<GgufType>(et);
      if (n > c.remaining() / min_encoded_size(v->elem_type))
        return c.error("array of " + std::to_string(n) + " elements does not fit in the file");
      if (v->elem_type == GgufType::kArray) {
        v->items.resize(n);
        for (uint64_t i = 0; i < n; ++i) ZS_RETURN_IF_ERROR(read_value(c, v->elem_type, &v->items[i], depth + 1));
        break;
      }
      // Flat arrays stay encoded in the file (GgufValue::raw), checked element by element.
      const uint8_t* start = c.here();
      const size_t start_pos = c.pos();
      if (v->elem_type == GgufType::kString) {
        for (uint64_t i = 0; i < n; ++i) {
          uint64_t len = 0;
          ZS_RETURN_IF_ERROR(c.read(&len, "string value"));
          if (len > kMaxStringBytes) return c.error("string value has an implausible length " + std::to_string(len));
          if (c.remaining() < len) return c.truncated("string value");
          c.skip(len);
        }
      } else {
        const size_t size = gguf_scalar_size(v->elem_type);  // n * size fits: checked above
        if (c.remaining() < n * size) return c.truncated("array");
        if (v->elem_type == GgufType::kBool) {
          for (uint64_t i = 0; i < n; ++i)
            if (start[i] > 1) return c.error("bool value " + std::to_string(start[i]) + " is neither 0 nor 1");
        }
        c.skip(n * size);
      }
      v->raw = start;
      v->raw_count = n;
      v->raw_bytes = c.pos() - start_pos;
      break;
    }
  }
  return Status::ok();
}

bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

std::string GgufTensorInfo::shape_string() const {
  std::ostringstream os;
  os << "[";
  for (int i = 0; i < n_dims; ++i) os << (i ? ", " : "") << ne[i];
  os << "]";
  return os.str();
}

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  auto mapping = core::MappedFile::open(path);
  if (!mapping) return mapping.status();
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->mapping_ = std::move(mapping.value());
  f->data_ = f->mapping_->data();
  f->size_ = f->mapping_->size();
  f->name_ = path;
  Status s = f->parse_all();
  if (!s) return s.with_context("invalid GGUF file '" + path + "'");
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::parse(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->data_ = data;
  f->size_ = size;
  f->name_ = std::move(name);
  Status s = f->parse_all();
  if (!s) return s.with_context("invalid GGUF file '" + f->name_ + "'");
  return f;
}

Status GgufFile::parse_all() {
  Cursor c(data_, size_);
  uint32_t magic = 0;
  ZS_RETURN_IF_ERROR(c.read(&magic, "magic"));
  if (magic != kGgufMagic) return Status::error("not a GGUF file (bad magic bytes)");
  ZS_RETURN_IF_ERROR(c.read(&version_, "version"));
  if (version_ == 1) return Status::error("GGUF version 1 is obsolete and not supported; convert the model again");
  if (version_ != 2 && version_ != 3)
    return Status::error("unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  uint64_t n_tensors = 0, n_kv = 0;
  ZS_RETURN_IF_ERROR(c.read(&n_tensors, "tensor count"));
  ZS_RETURN_IF_ERROR(c.read(&n_kv, "metadata count"));
  // Each key-value pair and each tensor info takes more than 8 bytes: bound counts by file size.
  if (n_kv > c.remaining() / 12) return c.error("metadata count " + std::to_string(n_kv) + " does not fit in the file");
  if (n_tensors > c.remaining() / 24)
    return c.error("tensor count " + std::to_string(n_tensors) + " does not fit in the file");

  metadata_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key;
    ZS_RETURN_IF_ERROR(c.read_string(&key, "metadata key"));
    uint32_t type = 0;
    ZS_RETURN_IF_ERROR(c.read(&type, "metadata value type"));
    if (!known_value_type(type))
      return c.error("metadata key '" + key + "' has unknown value type " + std::to_string(type));
    GgufValue v;
    Status s = read_value(c, static_cast<GgufType>(type), &v, 0);
    if (!s) return s.with_context("metadata key '" + key + "'");
    if (metadata_index_.count(key)) return c.error("duplicate metadata key '" + key + "'");
    metadata_index_[key] = metadata_.size();
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    auto n = a->as_int();
    if (!n || *n <= 0 || (*n & (*n - 1)) != 0 || *n > (1 << 20))
      return Status::error("general.alignment must be a power of two, got " + a->to_display_string());
    alignment_ = static_cast<size_t>(*n);
  }

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    ZS_RETURN_IF_ERROR(c.read_string(&t.name, "tensor name"));
    uint32_t n_dims = 0;
    ZS_RETURN_IF_ERROR(c.read(&n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > kGgufMaxDims)
      return c.error("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    t.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne = 0;
      ZS_RETURN_IF_ERROR(c.read(&ne, "tensor shape"));
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return c.error("tensor '" + t.name + "' has invalid size " + std::to_string(ne) + " in dimension " + std::to_string(d));
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t type = 0;
    ZS_RETURN_IF_ERROR(c.read(&type, "tensor type"));
    auto traits = ggml_type_traits(type);
    if (!traits) return c.error("tensor '" + t.name + "' has unknown tensor type " + std::to_string(type));
    t.type = static_cast<GgmlType>(type);
    ZS_RETURN_IF_ERROR(c.read(&t.offset, "tensor offset"));
    int64_t n_el = 1;
    for (int d = 0; d < kGgufMaxDims; ++d)
      if (mul_overflows(n_el, t.ne[d], &n_el)) return c.error("tensor '" + t.name + "' has an element count that overflows");
    if (t.ne[0] % traits->block_size != 0)
      return c.error("tensor '" + t.name + "' of type " + std::string(traits->name) + " has a row of " +
                     std::to_string(t.ne[0]) + " values, not a multiple of its block size " + std::to_string(traits->block_size));
    int64_t nbytes = 0;
    if (mul_overflows(n_el / traits->block_size, static_cast<int64_t>(traits->type_size), &nbytes))
      return c.error("tensor '" + t.name + "' has a byte size that overflows");
    t.nbytes = static_cast<size_t>(nbytes);
    if (t.offset % alignment_ != 0)
      return c.error("tensor '" + t.name + "' offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    if (tensor_index_.count(t.name)) return c.error("duplicate tensor name '" + t.name + "'");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  size_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start > size_) return Status::error("file is truncated before its tensor data");
  size_t data_size = size_ - std::min(size_, data_start);
  for (auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      return Status::error("tensor '" + t.name + "' data (offset " + std::to_string(t.offset) + ", " +
                           std::to_string(t.nbytes) + " bytes) lies outside the file: it is truncated or corrupt");
    t.data = data_ + data_start + t.offset;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_string() : std::nullopt;
}
std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_int() : std::nullopt;
}
std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_float() : std::nullopt;
}
std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->as_bool() : std::nullopt;
}

std::vector<std::string_view> GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  return v ? v->string_items() : std::vector<std::string_view>{};
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  std::vector<float> out;
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kArray) return out;
  out.reserve(v->array_size());
  for (size_t i = 0; i < v->array_size(); ++i) {
    auto f = v->item(i).as_float();
    if (!f) return {};
    out.push_back(static_cast<float>(*f));
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  std::vector<int64_t> out;
  const GgufValue* v = find(key);
  if (!v || v->type != GgufType::kArray) return out;
  out.reserve(v->array_size());
  for (size_t k = 0; k < v->array_size(); ++k) {
    auto i = v->item(k).as_int();
    if (!i) return {};
    out.push_back(*i);
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace zs::engine
