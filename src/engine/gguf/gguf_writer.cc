#include "engine/gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace zs::engine {
namespace {

using core::Status;

class FileOut {
 public:
  explicit FileOut(std::FILE* f) : f_(f) {}
  ~FileOut() { if (f_) std::fclose(f_); }
  bool ok() const { return ok_; }
  uint64_t pos() const { return pos_; }
  void bytes(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    pos_ += n;
  }
  template <typename T>
  void pod(T v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t zeros[256] = {};
    while (pos_ % alignment) bytes(zeros, std::min<uint64_t>(alignment - pos_ % alignment, sizeof zeros));
  }
  bool close() {
    bool r = std::fclose(f_) == 0;
    f_ = nullptr;
    return r && ok_;
  }

 private:
  std::FILE* f_;
  uint64_t pos_ = 0;
  bool ok_ = true;
};

void write_value(FileOut& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::kUint8: out.pod<uint8_t>(v.u64); break;
    case GgufType::kInt8: out.pod<int8_t>(v.i64); break;
    case GgufType::kUint16: out.pod<uint16_t>(v.u64); break;
    case GgufType::kInt16: out.pod<int16_t>(v.i64); break;
    case GgufType::kUint32: out.pod<uint32_t>(v.u64); break;
    case GgufType::kInt32: out.pod<int32_t>(v.i64); break;
    case GgufType::kUint64: out.pod<uint64_t>(v.u64); break;
    case GgufType::kInt64: out.pod<int64_t>(v.i64); break;
    case GgufType::kFloat32: out.pod<float>(static_cast<float>(v.f64)); break;
    case GgufType::kFloat64: out.pod<double>(v.f64); break;
    case GgufType::kBool: out.pod<uint8_t>(v.u64 ? 1 : 0); break;
    case GgufType::kString: out.str(v.str); break;
    case GgufType::kArray:
      out.pod<uint32_t>(static_cast<uint32_t>(v.elem_type));
      out.pod<uint64_t>(v.array_size());
      if (v.raw != nullptr) {
        out.bytes(v.raw, v.raw_bytes);
      } else {
        for (const auto& it : v.items) write_value(out, it);
      }
      break;
  }
}

size_t tensor_bytes(GgmlType type, const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  return ggml_row_size(type, ne[0]) * static_cast<size_t>(rows);
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : kv_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) {
  GgufValue x; x.type = GgufType::kUint32; x.u64 = v; set(key, std::move(x));
}
void GgufWriter::set_i32(const std::string& key, int32_t v) {
  GgufValue x; x.type = GgufType::kInt32; x.i64 = v; set(key, std::move(x));
}
void GgufWriter::set_f32(const std::string& key, float v) {
  GgufValue x; x.type = GgufType::kFloat32; x.f64 = v; set(key, std::move(x));
}
void GgufWriter::set_bool(const std::string& key, bool v) {
  GgufValue x; x.type = GgufType::kBool; x.u64 = v; set(key, std::move(x));
}
void GgufWriter::set_string(const std::string& key, const std::string& v) {
  GgufValue x; x.type = GgufType::kString; x.str = v; set(key, std::move(x));
}
void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& v) {
  GgufValue x; x.type = GgufType::kArray; x.elem_type = GgufType::kString;
  x.items.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) { x.items[i].type = GgufType::kString; x.items[i].str = v[i]; }
  set(key, std::move(x));
}
void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
  GgufValue x; x.type = GgufType::kArray; x.elem_type = GgufType::kFloat32;
  x.items.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) { x.items[i].type = GgufType::kFloat32; x.items[i].f64 = v[i]; }
  set(key, std::move(x));
}
void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue x; x.type = GgufType::kArray; x.elem_type = GgufType::kInt32;
  x.items.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) { x.items[i].type = GgufType::kInt32; x.items[i].i64 = v[i]; }
  set(key, std::move(x));
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill) {
  tensors_.push_back({name, type, std::move(ne), std::move(fill)});
}

void GgufWriter::add_tensor_bytes(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                                  std::vector<uint8_t> bytes) {
  auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  add_tensor(name, type, std::move(ne), [shared](uint8_t* dst, size_t n) {
    if (n != shared->size())
      return Status::error("tensor data has " + std::to_string(shared->size()) + " bytes, shape needs " + std::to_string(n));
    std::memcpy(dst, shared->data(), n);
    return Status::ok();
  });
}

Status GgufWriter::write(const std::string& path, uint32_t version) const {
  if (version != 2 && version != 3) return Status::error("can only write GGUF versions 2 and 3");
  for (const auto& t : tensors_) {
    auto traits = ggml_type_traits(static_cast<uint32_t>(t.type));
    if (!traits || t.ne.empty() || t.ne.size() > 4 || t.ne[0] % traits->block_size != 0)
      return Status::error("tensor '" + t.name + "' has a shape its type cannot hold");
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return Status::error("cannot create '" + path + "': " + std::strerror(errno));
  FileOut out(f);
  out.pod<uint32_t>(0x46554747);
  out.pod<uint32_t>(version);
  out.pod<uint64_t>(tensors_.size());
  bool has_alignment = false;
  for (const auto& kv : kv_) has_alignment |= kv.first == "general.alignment";
  out.pod<uint64_t>(kv_.size() + (alignment_ != 32 && !has_alignment ? 1 : 0));
  for (const auto& [key, value] : kv_) {
    out.str(key);
    out.pod<uint32_t>(static_cast<uint32_t>(value.type));
    write_value(out, value);
  }
  if (alignment_ != 32 && !has_alignment) {
    out.str("general.alignment");
    out.pod<uint32_t>(static_cast<uint32_t>(GgufType::kUint32));
    out.pod<uint32_t>(alignment_);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    out.str(t.name);
    out.pod<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) out.pod<uint64_t>(static_cast<uint64_t>(d));
    out.pod<uint32_t>(static_cast<uint32_t>(t.type));
    out.pod<uint64_t>(offset);
    offset += (tensor_bytes(t.type, t.ne) + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);
  std::vector<uint8_t> buf;
  for (const auto& t : tensors_) {
    buf.assign(tensor_bytes(t.type, t.ne), 0);
    Status s = t.fill(buf.data(), buf.size());
    if (!s) return s.with_context("writing tensor '" + t.name + "'");
    out.bytes(buf.data(), buf.size());
    out.pad_to(alignment_);
  }
  if (!out.close()) return Status::error("write to '" + path + "' failed (disk full?)");
  return Status::ok();
}

}  // namespace zs::engine
