#pragma once
// Runs a ClipModel: normalized pixels in, embeddings in the text model's space out.
#include <memory>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/glm_adapter.h"

namespace zs::engine {

// Idefics3's pixel shuffle: `in` is a side x side grid of d-wide patch rows; token (i, j) of
// the (side / s)^2 output concatenates the s x s block of patches at (i*s, j*s), row by row,
// so its feature (dy * s + dx) * d + e is feature e of patch (i*s + dy, j*s + dx).
void pixel_shuffle(const float* in, int side, int d, int s, float* out);

class ClipEncoder {
 public:
  ClipEncoder(const ClipModel& model, Backend& backend);

  // pixels: channel-planar [3][image_size][image_size], already normalized.
  // Returns tokens_per_image() rows of projection_dim values.
  core::Result<std::vector<float>> encode(const float* pixels);

  // Multiply-adds of one encode (matrix products only), for throughput reports.
  double flops_per_image() const;

 private:
  const ClipModel& model_;
  Backend& backend_;
  int n_tokens_;
  float *patches_, *x_, *h_, *q_, *k_, *v_, *attn_, *ff_, *proj_in_, *proj_hidden_;
  std::unique_ptr<GlmAdapter> glm_;  // GLM-Edge adapter (projector adapter only)
};

}  // namespace zs::engine
