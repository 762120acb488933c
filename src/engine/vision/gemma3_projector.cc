#include "engine/vision/gemma3_projector.h"

#include <cstring>

#include "engine/image/resize_aligned.h"

namespace zs::engine {

using core::Status;

Status bind_gemma3_projector(TensorBinder& b, int n_embd, Gemma3ProjectorWeights& w, int* projection_dim) {
  const std::string name = "mm.input_projection.weight";
  const GgufTensorInfo* t = b.info(name);
  if (!t) return Status::error("the gemma3 projector needs tensor '" + name + "'");
  ZS_RETURN_IF_ERROR(b.bind(w.soft_emb_norm, "mm.soft_emb_norm.weight", n_embd, true));
  if (t->n_dims != 2) return Status::error("tensor '" + name + "' has shape " + t->shape_string() + "; expected 2-D");
  if (t->ne[1] != n_embd)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + "; expected ne[1] = " +
                         std::to_string(n_embd) + " (the vision width; it is used as x * W)");
  const int64_t n_out = t->ne[0], n_in = t->ne[1];
  *projection_dim = static_cast<int>(n_out);
  // Transpose once: row r of the copy is column r of the stored matrix.
  w.input_projection.type = t->type;
  w.input_projection.n_in = n_in;
  w.input_projection.n_out = n_out;
  if (t->type == GgmlType::kF16 || t->type == GgmlType::kBF16) {
    const auto* src = reinterpret_cast<const uint16_t*>(t->data);
    w.storage16.resize(static_cast<size_t>(n_in * n_out));
    for (int64_t i = 0; i < n_in; ++i)
      for (int64_t o = 0; o < n_out; ++o) w.storage16[o * n_in + i] = src[i * n_out + o];
    w.input_projection.data = w.storage16.data();
    w.input_projection.row_stride = sizeof(uint16_t) * n_in;
  } else if (t->type == GgmlType::kF32) {
    const auto* src = reinterpret_cast<const float*>(t->data);
    w.storage32.resize(static_cast<size_t>(n_in * n_out));
    for (int64_t i = 0; i < n_in; ++i)
      for (int64_t o = 0; o < n_out; ++o) w.storage32[o * n_in + i] = src[i * n_out + o];
    w.input_projection.data = w.storage32.data();
    w.input_projection.row_stride = sizeof(float) * n_in;
  } else {
    return Status::error("tensor '" + name + "' is stored as " + std::string(ggml_type_name(t->type)) +
                         "; the gemma3 projector needs it as F32, F16 or BF16 (it is transposed at load)");
  }
  return validate_weight(w.input_projection);
}

void avg_pool_patches(const float* in, int side, int d, int k, float* out) {
  const int out_side = side / k;
  const float inv = 1.0f / static_cast<float>(k * k);
  for (int i = 0; i < out_side; ++i)
    for (int j = 0; j < out_side; ++j) {
      float* o = out + (static_cast<int64_t>(i) * out_side + j) * d;
      std::memset(o, 0, sizeof(float) * d);
      for (int dy = 0; dy < k; ++dy)
        for (int dx = 0; dx < k; ++dx) {
          const float* src = in + (static_cast<int64_t>(i * k + dy) * side + (j * k + dx)) * d;
          for (int e = 0; e < d; ++e) o[e] += src[e];
        }
      for (int e = 0; e < d; ++e) o[e] *= inv;
    }
}

std::vector<float> preprocess_gemma3(const Image& img, int image_size, const ChannelStats& mean,
                                     const ChannelStats& stddev) {
  return normalize(resize_fit_centered(img, image_size, image_size, ResizeFilter::kBilinearAlignCorners), mean,
                   stddev);
}

}  // namespace zs::engine
