#pragma once
// Binds named GGUF tensors to the views model code computes with, checking presence,
// shape and type with errors that name the tensor. Matrices stay in the mapping; small
// vectors not stored as f32 are converted once and owned here.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"
#include "engine/kernels/matmul.h"

namespace zs::engine {

class TensorBinder {
 public:
  explicit TensorBinder(const GgufFile& file) : file_(file) {}

  // A 2-D tensor [n_in, n_out].
  core::Result<WeightView> matrix(const std::string& name, int64_t n_in, int64_t n_out) const;
  // Any tensor of n_in * n_out values whose rows are n_in contiguous values (e.g. a
  // convolution kernel [k, k, c_in, c_out] used as a [k*k*c_in, c_out] matrix).
  core::Result<WeightView> matrix_flat(const std::string& name, int64_t n_in, int64_t n_out) const;
  // A 3-D tensor [n_in, n_out, n_mats] of n_mats matrices stored back to back: the view of
  // the first one (the next starts n_out * row_stride bytes later).
  core::Result<WeightView> stacked(const std::string& name, int64_t n_in, int64_t n_out, int64_t n_mats) const;
  // n values as f32; a missing optional tensor gives nullptr.
  core::Result<const float*> vector(const std::string& name, int64_t n, bool required);

  // The same, storing into dst: for binding many tensors in a row with ZS_RETURN_IF_ERROR.
  core::Status bind(WeightView& dst, const std::string& name, int64_t n_in, int64_t n_out) const;
  core::Status bind(const float*& dst, const std::string& name, int64_t n, bool required);

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  const GgufTensorInfo* info(const std::string& name) const { return file_.find_tensor(name); }

 private:
  core::Result<WeightView> view(const GgufTensorInfo& t, int64_t n_in, int64_t n_out) const;

  const GgufFile& file_;
  std::vector<std::unique_ptr<std::vector<float>>> converted_;
};

}  // namespace zs::engine
