#pragma once
// The parts every vision tower shares: gathering a patch for the patch-embedding
// convolution, and one pre-norm ViT block (norm, attention with biased Q/K/V/output, residual;
// norm, MLP, residual). ClipEncoder (CLIP/SigLIP towers of fixed size) and Qwen2VlEncoder
// (native resolution) both run their blocks through vit_block. Stateless; the caller owns
// every buffer.
#include <cstdint>
#include <functional>

#include "engine/backend/backend.h"
#include "engine/vision/clip_model.h"

namespace zs::engine {

// Copies the patch at patch row py, column px of a channel-planar [3][height][width] image
// into `row`, ordered like the convolution kernel ([channel][ky][kx]).
void gather_patch(const float* pixels, int width, int height, int patch, int py, int px, float* row);

// Scratch of n rows: h, q, k, v, attn n_embd wide; ff (and gate, for a SwiGLU MLP) n_ff wide.
struct VitScratch {
  float *h, *q, *k, *v, *attn, *ff, *gate;
};

struct VitBlockOptions {
  bool rms_norm = false;            // RMSNorm without bias (Qwen2.5-VL) instead of LayerNorm
  const int32_t* rope_ys = nullptr;  // 2-D rope rows and columns per row (Qwen2-VL), or null
  const int32_t* rope_xs = nullptr;
  // Attention of q, k, v into out; empty = full attention over all n rows.
  std::function<void(const float* q, const float* k, const float* v, float* out)> attend;
};

// One block over the n rows of x, in place.
void vit_block(Backend& backend, const ClipConfig& c, const ClipLayer& L, int64_t n, float* x, const VitScratch& s,
               const VitBlockOptions& o);

}  // namespace zs::engine
