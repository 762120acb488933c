#pragma once
// Gemma 3's vision projector (`clip.projector_type = gemma3`), after the SigLIP encoder
// (patch conv + bias, position rows, no pre-LN, no class token, every block, post_ln):
//   1. the patch rows, a side x side grid, are average-pooled k x k with stride k
//      (k = clip.vision.projector.scale_factor, default 4) into (side / k)^2 rows, row-major;
//   2. RMSNorm (the encoder's eps) times mm.soft_emb_norm.weight, used as stored (the
//      converter already stored Gemma's 1 + w);
//   3. mm.input_projection.weight applied as x * W: its ne are [text width, vision width], so
//      the binding keeps a transposed copy (an ordinary [vision -> text] matrix of the same type).
// Preprocessing: aspect-fit into image_size x image_size with align-corners bilinear
// (truncating), centred on black, then normalised (resize_aligned.h).
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/image/image.h"
#include "engine/image/preprocess.h"
#include "engine/kernels/matmul.h"

namespace zs::engine {

constexpr int kGemma3DefaultPool = 4;

struct Gemma3ProjectorWeights {
  const float* soft_emb_norm = nullptr;  // [vision width]
  WeightView input_projection;           // vision width -> text width (transposed copy)
  std::vector<uint16_t> storage16;       // the transposed copy, F16/BF16 files
  std::vector<float> storage32;          // the transposed copy, F32 files
};

// Binds mm.soft_emb_norm.weight and mm.input_projection.weight for a vision width n_embd;
// *projection_dim receives the text width.
core::Status bind_gemma3_projector(TensorBinder& b, int n_embd, Gemma3ProjectorWeights& w, int* projection_dim);

// out[(i * (side / k) + j) * d + e] = mean over dy, dx < k of in[((i*k + dy) * side + j*k + dx) * d + e]
// (sum in row-major order, then divided by k * k). side must be a multiple of k.
void avg_pool_patches(const float* in, int side, int d, int k, float* out);

// Normalised channel-planar pixels [3][image_size][image_size] (see the contract above).
std::vector<float> preprocess_gemma3(const Image& img, int image_size, const ChannelStats& mean,
                                     const ChannelStats& stddev);

}  // namespace zs::engine
