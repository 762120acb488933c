#include "engine/vision/qwen2vl_encoder.h"

#include <cmath>
#include <cstring>

namespace zs::engine {

using core::Result;
using core::Status;

namespace {
constexpr int kPatch = 14;
constexpr int kMerge = 2;  // 2x2 patches become one row
}  // namespace

Qwen2VlEncoder::Qwen2VlEncoder(const ClipModel& model, Backend& backend) : model_(model), backend_(backend) {}

double Qwen2VlEncoder::flops(int width, int height) const {
  const ClipConfig& c = model_.config();
  const double n = static_cast<double>(width / kPatch) * (height / kPatch);
  auto mm = [](const WeightView& w, double rows) { return 2.0 * w.n_in * w.n_out * rows; };
  double f = 2 * mm(model_.patch_embd, n);
  for (int l = 0; l < c.n_layer_run; ++l) {
    const ClipLayer& L = model_.layers[l];
    f += mm(L.wq, n) + mm(L.wk, n) + mm(L.wv, n) + mm(L.wo, n) + mm(L.fc1, n) + mm(L.fc2, n);
    f += 4.0 * n * n * c.n_embd;
  }
  return f + mm(model_.mm0, n / 4) + mm(model_.mm2, n / 4);
}

Result<std::vector<float>> Qwen2VlEncoder::encode(const float* pixels, int width, int height) {
  const ClipConfig& c = model_.config();
  if (width <= 0 || height <= 0 || width % (kPatch * kMerge) != 0 || height % (kPatch * kMerge) != 0)
    return Status::error("a Qwen2-VL image must have sides that are multiples of 28, got " + std::to_string(width) +
                         " x " + std::to_string(height));
  const int gw = width / kPatch, gh = height / kPatch;
  const int64_t n = static_cast<int64_t>(gw) * gh, d = c.n_embd, patch_len = 3LL * kPatch * kPatch;
  std::vector<float> patches(n * patch_len), x(n * d), tmp(n * d), h(n * d), q(n * d), k(n * d), v(n * d),
      attn(n * d), ff(n * c.n_ff);
  std::vector<int32_t> ys(n), xs(n);
  // Patches in 2x2-block order, each gathered like the kernel ([channel][ky][kx]).
  int64_t r = 0;
  for (int by = 0; by < gh / kMerge; ++by)
    for (int bx = 0; bx < gw / kMerge; ++bx)
      for (int dy = 0; dy < kMerge; ++dy)
        for (int dx = 0; dx < kMerge; ++dx, ++r) {
          const int py = by * kMerge + dy, px = bx * kMerge + dx;
          ys[r] = py;
          xs[r] = px;
          float* row = patches.data() + r * patch_len;
          for (int ch = 0; ch < 3; ++ch)
            for (int ky = 0; ky < kPatch; ++ky)
              std::memcpy(row + (ch * kPatch + ky) * kPatch,
                          pixels + (static_cast<int64_t>(ch) * height + py * kPatch + ky) * width + px * kPatch,
                          sizeof(float) * kPatch);
        }
  backend_.matmul(model_.patch_embd, patches.data(), n, x.data());
  backend_.matmul(model_.patch_embd_1, patches.data(), n, tmp.data());
  backend_.add(x.data(), tmp.data(), n * d);
  if (model_.patch_bias) backend_.add_bias(x.data(), model_.patch_bias, n, d);

  const int head_dim = static_cast<int>(d / c.n_head);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (int l = 0; l < c.n_layer_run; ++l) {
    const ClipLayer& L = model_.layers[l];
    backend_.layer_norm(x.data(), L.ln1_w, L.ln1_b, n, d, c.eps, h.data());
    const WeightView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {q.data(), k.data(), v.data()};
    backend_.matmul_group(qkv, qkv_out, 3, h.data(), n);
    backend_.add_bias(q.data(), L.bq, n, d);
    backend_.add_bias(k.data(), L.bk, n, d);
    backend_.add_bias(v.data(), L.bv, n, d);
    backend_.rope_2d(q.data(), n, ys.data(), xs.data(), c.n_head, head_dim, 10000.f);
    backend_.rope_2d(k.data(), n, ys.data(), xs.data(), c.n_head, head_dim, 10000.f);
    backend_.attention_full(q.data(), k.data(), v.data(), n, c.n_head, head_dim, scale, attn.data());
    backend_.matmul(L.wo, attn.data(), n, h.data());
    backend_.add_bias(h.data(), L.bo, n, d);
    backend_.add(x.data(), h.data(), n * d);

    backend_.layer_norm(x.data(), L.ln2_w, L.ln2_b, n, d, c.eps, h.data());
    backend_.matmul(L.fc1, h.data(), n, ff.data());
    backend_.add_bias(ff.data(), L.fc1_b, n, c.n_ff);
    if (c.use_gelu) backend_.gelu(ff.data(), n * c.n_ff);
    else backend_.gelu_quick(ff.data(), n * c.n_ff);
    backend_.matmul(L.fc2, ff.data(), n, h.data());
    backend_.add_bias(h.data(), L.fc2_b, n, d);
    backend_.add(x.data(), h.data(), n * d);
  }
  if (!model_.post_ln_w) return Status::error("qwen2vl_merger needs tensor 'v.post_ln.weight'");
  backend_.layer_norm(x.data(), model_.post_ln_w, model_.post_ln_b, n, d, c.eps, x.data());

  // Each 2x2 block's four consecutive rows, side by side, are one merger input of 4 * d.
  const int64_t m = n / 4, hidden = model_.mm0.n_out;
  std::vector<float> mid(m * hidden), out(m * c.projection_dim);
  backend_.matmul(model_.mm0, x.data(), m, mid.data());
  if (model_.mm0_b) backend_.add_bias(mid.data(), model_.mm0_b, m, hidden);
  backend_.gelu(mid.data(), m * hidden);
  backend_.matmul(model_.mm2, mid.data(), m, out.data());
  if (model_.mm2_b) backend_.add_bias(out.data(), model_.mm2_b, m, c.projection_dim);
  for (float val : out)
    if (!std::isfinite(val)) return Status::error("the vision encoder produced non-finite values (corrupt weights?)");
  return out;
}

}  // namespace zs::engine
