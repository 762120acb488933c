#pragma once
// Runs a ClipModel: normalized pixels in, embeddings in the text model's space out.
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/vision/clip_model.h"

namespace zs::engine {

class ClipEncoder {
 public:
  ClipEncoder(const ClipModel& model, Backend& backend);

  // pixels: channel-planar [3][image_size][image_size], already normalized.
  // Returns tokens_per_image() rows of projection_dim values.
  core::Result<std::vector<float>> encode(const float* pixels);

  // Multiply-adds of one encode (matrix products only), for throughput reports.
  double flops_per_image() const;

 private:
  void pixel_shuffle(const float* in, float* out) const;

  const ClipModel& model_;
  Backend& backend_;
  int n_tokens_;
  float *patches_, *x_, *h_, *q_, *k_, *v_, *attn_, *ff_, *proj_in_, *proj_hidden_;
};

}  // namespace zs::engine
