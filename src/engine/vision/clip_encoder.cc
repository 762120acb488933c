#include "engine/vision/clip_encoder.h"

#include <cmath>
#include <cstring>

#include "engine/vision/vit_block.h"

namespace zs::engine {

using core::Result;
using core::Status;

ClipEncoder::ClipEncoder(const ClipModel& model, Backend& backend) : model_(model), backend_(backend) {
  const ClipConfig& c = model.config();
  const int64_t np = c.n_patches(), p = c.patch_size, d = c.n_embd;
  n_tokens_ = static_cast<int>(np + (c.has_class_token ? 1 : 0));
  patches_ = backend.alloc(np * 3 * p * p);
  x_ = backend.alloc(n_tokens_ * d);
  h_ = backend.alloc(n_tokens_ * d);
  q_ = backend.alloc(n_tokens_ * d);
  k_ = backend.alloc(n_tokens_ * d);
  v_ = backend.alloc(n_tokens_ * d);
  attn_ = backend.alloc(n_tokens_ * d);
  ff_ = backend.alloc(n_tokens_ * c.n_ff);
  proj_in_ = backend.alloc(np * d);
  proj_hidden_ = backend.alloc(np * std::max<int64_t>(model.mm0.n_out, 1));
  if (c.projector == ProjectorType::kAdapter)
    glm_ = std::make_unique<GlmAdapter>(model.glm, backend, c.patches_per_side(), c.n_embd, c.eps);
}

double ClipEncoder::flops_per_image() const {
  const ClipConfig& c = model_.config();
  auto mm = [](const WeightView& w, int64_t rows) { return 2.0 * w.n_in * w.n_out * rows; };
  double f = mm(model_.patch_embd, c.n_patches());
  for (int l = 0; l < c.n_layer_run; ++l) {
    const ClipLayer& L = model_.layers[l];
    f += mm(L.wq, n_tokens_) + mm(L.wk, n_tokens_) + mm(L.wv, n_tokens_) + mm(L.wo, n_tokens_) +
         mm(L.fc1, n_tokens_) + mm(L.fc2, n_tokens_);
    f += 4.0 * n_tokens_ * n_tokens_ * c.n_embd;  // scores and weighted sum
  }
  if (c.projector == ProjectorType::kMlp) {
    f += mm(model_.mm0, c.n_patches()) + mm(model_.mm2, c.n_patches());
  } else if (c.projector == ProjectorType::kAdapter) {
    f += glm_adapter_flops(model_.glm, c.patches_per_side());
  } else if (c.projector == ProjectorType::kGemma3) {
    f += mm(model_.gemma3.input_projection, c.tokens_per_image());
  } else {
    f += mm(model_.mm0, c.tokens_per_image());
  }
  return f;
}

void pixel_shuffle(const float* in, int side, int d, int s, float* out) {
  const int out_side = side / s;
  for (int i = 0; i < out_side; ++i)
    for (int j = 0; j < out_side; ++j) {
      float* o = out + (static_cast<int64_t>(i) * out_side + j) * s * s * d;
      for (int dy = 0; dy < s; ++dy)
        for (int dx = 0; dx < s; ++dx) {
          const float* src = in + (static_cast<int64_t>(i * s + dy) * side + (j * s + dx)) * d;
          std::memcpy(o + (dy * s + dx) * d, src, sizeof(float) * d);
        }
    }
}

Result<std::vector<float>> ClipEncoder::encode(const float* pixels) {
  const ClipConfig& c = model_.config();
  const int side = c.patches_per_side(), p = c.patch_size, size = c.image_size;
  const int64_t d = c.n_embd, np = c.n_patches(), patch_len = 3LL * p * p;
  // Patch embedding is a convolution with kernel = stride = patch: gather each patch into a
  // row ordered like the kernel ([channel][ky][kx]) and multiply by the kernel matrix.
  for (int py = 0; py < side; ++py)
    for (int px = 0; px < side; ++px)
      gather_patch(pixels, size, size, p, py, px, patches_ + (static_cast<int64_t>(py) * side + px) * patch_len);
  const int64_t first = c.has_class_token ? 1 : 0;
  backend_.matmul(model_.patch_embd, patches_, np, x_ + first * d);
  if (model_.patch_bias) backend_.add_bias(x_ + first * d, model_.patch_bias, np, d);
  if (c.has_class_token) std::memcpy(x_, model_.class_embd, sizeof(float) * d);
  backend_.add(x_, model_.position_embd, n_tokens_ * d);
  if (model_.pre_ln_w) backend_.layer_norm(x_, model_.pre_ln_w, model_.pre_ln_b, n_tokens_, d, c.eps, x_, c.ref_build);

  const VitScratch scratch{h_, q_, k_, v_, attn_, ff_, nullptr};
  for (int l = 0; l < c.n_layer_run; ++l) vit_block(backend_, c, model_.layers[l], n_tokens_, x_, scratch, {});

  std::vector<float> out(static_cast<size_t>(c.tokens_per_image()) * c.projection_dim);
  const float* patches_out = x_ + first * d;  // the projectors drop the class token
  if (c.projector == ProjectorType::kAdapter) {
    // GLM-Edge adapter: post_ln, then the adapter (with boi/eoi rows).
    backend_.layer_norm(x_, model_.post_ln_w, model_.post_ln_b, n_tokens_, d, c.eps, x_, c.ref_build);
    glm_->run(patches_out, out.data());
  } else if (c.projector == ProjectorType::kMlp) {
    backend_.matmul(model_.mm0, patches_out, np, proj_hidden_);
    backend_.add_bias(proj_hidden_, model_.mm0_b, np, model_.mm0.n_out);
    backend_.gelu(proj_hidden_, np * model_.mm0.n_out);
    backend_.matmul(model_.mm2, proj_hidden_, np, out.data());
    backend_.add_bias(out.data(), model_.mm2_b, np, c.projection_dim);
  } else if (c.projector == ProjectorType::kGemma3) {
    // Gemma 3: post_ln, k x k average pooling, RMSNorm * soft_emb_norm, input_projection.
    const int64_t n_out = c.tokens_per_image();
    backend_.layer_norm(x_, model_.post_ln_w, model_.post_ln_b, n_tokens_, d, c.eps, x_, c.ref_build);
    avg_pool_patches(patches_out, side, static_cast<int>(d), c.scale_factor, proj_in_);
    backend_.rms_norm(proj_in_, model_.gemma3.soft_emb_norm, n_out, d, c.eps, proj_in_);
    backend_.matmul(model_.gemma3.input_projection, proj_in_, n_out, out.data());
  } else {
    if (model_.post_ln_w)
      backend_.layer_norm(x_, model_.post_ln_w, model_.post_ln_b, n_tokens_, d, c.eps, x_, c.ref_build);
    pixel_shuffle(patches_out, side, static_cast<int>(d), c.scale_factor, proj_in_);
    backend_.matmul(model_.mm0, proj_in_, c.tokens_per_image(), out.data());
  }
  for (float v : out)
    if (!std::isfinite(v)) return Status::error("the vision encoder produced non-finite values (corrupt weights?)");
  return out;
}

}  // namespace zs::engine
