#include "engine/gguf/tensor_binder.h"

#include "engine/quant/quantize.h"

namespace zs::engine {

using core::Result;
using core::Status;

Result<WeightView> TensorBinder::view(const GgufTensorInfo& t, int64_t n_in, int64_t n_out) const {
  auto traits = ggml_type_traits(static_cast<uint32_t>(t.type));
  if (!traits->computable)
    return Status::error("tensor '" + t.name + "' has type " + std::string(traits->name) +
                         ", which zeroserve cannot compute yet (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
                         "Q8_0, Q4_K, Q5_K, Q6_K)");
  if (n_in % traits->block_size != 0)
    return Status::error("tensor '" + t.name + "' rows of " + std::to_string(n_in) +
                         " values do not split into blocks of " + std::to_string(traits->block_size));
  WeightView w;
  w.type = t.type;
  w.data = t.data;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_stride = ggml_row_size(t.type, n_in);
  return w;
}

Result<WeightView> TensorBinder::matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
  const GgufTensorInfo* t = file_.find_tensor(name);
  if (!t) return Status::error("tensor '" + name + "' is missing");
  if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected [" +
                         std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
  return view(*t, n_in, n_out);
}

Result<WeightView> TensorBinder::matrix_flat(const std::string& name, int64_t n_in, int64_t n_out) const {
  const GgufTensorInfo* t = file_.find_tensor(name);
  if (!t) return Status::error("tensor '" + name + "' is missing");
  if (t->n_elements() != n_in * n_out || t->ne[t->n_dims - 1] != n_out)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected " +
                         std::to_string(n_in) + " x " + std::to_string(n_out) + " values");
  return view(*t, n_in, n_out);
}

Result<WeightView> TensorBinder::stacked(const std::string& name, int64_t n_in, int64_t n_out,
                                         int64_t n_mats) const {
  const GgufTensorInfo* t = file_.find_tensor(name);
  if (!t) return Status::error("tensor '" + name + "' is missing");
  if (t->n_dims != 3 || t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != n_mats)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected [" +
                         std::to_string(n_in) + ", " + std::to_string(n_out) + ", " + std::to_string(n_mats) + "]");
  return view(*t, n_in, n_out);
}

Result<const float*> TensorBinder::vector(const std::string& name, int64_t n, bool required) {
  const GgufTensorInfo* t = file_.find_tensor(name);
  if (!t) {
    if (required) return Status::error("tensor '" + name + "' is missing");
    return static_cast<const float*>(nullptr);
  }
  if (t->n_elements() != n)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected " + std::to_string(n) +
                         " values");
  if (t->type == GgmlType::kF32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0)
    return reinterpret_cast<const float*>(t->data);
  auto v = std::make_unique<std::vector<float>>(n);
  Status s = dequantize_row(t->type, t->data, v->data(), n);
  if (!s) return s.with_context("tensor '" + name + "'");
  converted_.push_back(std::move(v));
  return static_cast<const float*>(converted_.back()->data());
}

Status TensorBinder::bind(WeightView& dst, const std::string& name, int64_t n_in, int64_t n_out) const {
  auto r = matrix(name, n_in, n_out);
  if (!r) return r.status();
  dst = r.value();
  return Status::ok();
}

Status TensorBinder::bind(const float*& dst, const std::string& name, int64_t n, bool required) {
  auto r = vector(name, n, required);
  if (!r) return r.status();
  dst = r.value();
  return Status::ok();
}

}  // namespace zs::engine
