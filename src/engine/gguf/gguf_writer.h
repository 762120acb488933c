#pragma once
// Writes GGUF version 3 (or 2) files: metadata of every value type and aligned tensor data.
// Tensor bytes are produced by a callback at write time, so multi-gigabyte models can be
// generated without holding them in memory.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/gguf/gguf_value.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

class GgufWriter {
 public:
  using Fill = std::function<core::Status(uint8_t* dst, size_t nbytes)>;

  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_string_array(const std::string& key, const std::vector<std::string>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);

  // ne[0] is the row length; its byte size follows from the type.
  void add_tensor(const std::string& name, GgmlType type, std::vector<int64_t> ne, Fill fill);
  void add_tensor_bytes(const std::string& name, GgmlType type, std::vector<int64_t> ne,
                        std::vector<uint8_t> bytes);

  void set_alignment(uint32_t alignment) { alignment_ = alignment; }
  core::Status write(const std::string& path, uint32_t version = 3) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    Fill fill;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace zs::engine
