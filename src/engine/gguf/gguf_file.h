#pragma once
// Reads a GGUF file (versions 2 and 3) by memory-mapping it. Every field is validated
// (bounds, overflow, alignment, known types, tensor data inside the file) and a bad file
// is refused with an error naming the problem. Tensor data is used in place from the map.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "engine/gguf/gguf_value.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

constexpr int kGgufMaxDims = 4;

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;
  int64_t ne[kGgufMaxDims] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset = 0;                      // relative to the start of the data section
  const uint8_t* data = nullptr;            // inside the mapping
  size_t nbytes = 0;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t row_bytes() const { return ggml_row_size(type, ne[0]); }
  std::string shape_string() const;
};

class GgufFile {
 public:
  // Maps and parses a file on disk.
  static core::Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  // Parses bytes owned by the caller, which must outlive the result (fuzzing, tests).
  static core::Result<std::unique_ptr<GgufFile>> parse(const uint8_t* data, size_t size,
                                                       std::string name = "<memory>");

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  const std::string& name() const { return name_; }
  size_t file_size() const { return size_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  // Arrays of the named key; empty when absent or of another element type.
  std::vector<std::string_view> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;

  // Fills the page tables of the file's mapping on a background thread (core::MappedFile), so
  // that the first pass over the weights does not fault page by page.
  void populate_in_background() const {
    if (mapping_) mapping_->populate_in_background();
  }
  bool wait_populated() const { return !mapping_ || mapping_->wait_populated(); }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;

 private:
  GgufFile() = default;
  core::Status parse_all();

  std::unique_ptr<core::MappedFile> mapping_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace zs::engine
