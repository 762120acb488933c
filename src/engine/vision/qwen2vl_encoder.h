#pragma once
// Qwen2-VL's vision tower at native resolution (`clip.projector_type = qwen2vl_merger`): an
// image whose sides are multiples of 28 is cut into 14x14 patches ordered by 2x2 blocks (blocks
// row-major; inside a block (0,0), (0,1), (1,0), (1,1)); both temporal halves of the patch
// convolution are applied and summed; the ViT blocks rotate queries and keys by each patch's
// row and column (Backend::rope_2d) and attend over the whole image; then a LayerNorm, and each
// 2x2 block's four rows concatenated go through the merger MLP into one text-space row. The
// rows come out in the merged grid's row-major order. Buffers are sized per image.
//
// Qwen2.5-VL (`qwen2.5vl_merger`) runs through the same tower with its differences: RMSNorm
// (no bias) for ln1, ln2 and post_ln, a SwiGLU FFN (ffn_gate, ffn_up, ffn_down with biases),
// and window attention: the 2x2 blocks are taken window by window (qwen25vl.h), blocks outside
// the full-attention set (ClipConfig::full_attention_block) attend only inside their window,
// and the merger's rows are put back into raster order of the merged grid.
// Not thread-safe: one caller at a time.
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/vision/clip_model.h"

namespace zs::engine {

class Qwen2VlEncoder {
 public:
  Qwen2VlEncoder(const ClipModel& model, Backend& backend);

  // pixels: channel-planar [3][height][width], normalized; width and height multiples of 28.
  // Returns (height/28) * (width/28) rows of projection_dim values.
  core::Result<std::vector<float>> encode(const float* pixels, int width, int height);

  // Multiply-adds of one encode of that size (matrix products and attention).
  double flops(int width, int height) const;

 private:
  const ClipModel& model_;
  Backend& backend_;
};

}  // namespace zs::engine
