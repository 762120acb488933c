#include "engine/vision/qwen2vl_encoder.h"

#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/vision/qwen25vl.h"

namespace zs::engine {

using core::Result;
using core::Status;

namespace {
constexpr int kPatch = 14;
constexpr int kMerge = 2;  // 2x2 patches become one row

// The order the 2x2 blocks (merged cells) go through the tower, with the attention windows in
// patch rows: Qwen2-VL raster order and one window over the whole image; Qwen2.5-VL window by
// window (qwen25vl.h).
struct PatchLayout {
  std::vector<int32_t> cell_order;
  std::vector<int32_t> bounds;  // window w: patch rows [bounds[w], bounds[w + 1])
  bool windowed = false;
};

PatchLayout patch_layout(const ClipConfig& c, int cell_rows, int cell_cols) {
  PatchLayout p;
  const int32_t n_cells = cell_rows * cell_cols;
  if (c.projector == ProjectorType::kQwen25VlMerger) {
    VisionWindows w = qwen25vl_windows(cell_rows, cell_cols);
    p.cell_order = std::move(w.cell_order);
    for (int32_t b : w.cell_bounds) p.bounds.push_back(b * kMerge * kMerge);
    p.windowed = true;
  } else {
    p.cell_order.resize(n_cells);
    std::iota(p.cell_order.begin(), p.cell_order.end(), 0);
    p.bounds = {0, n_cells * kMerge * kMerge};
  }
  return p;
}
}  // namespace

Qwen2VlEncoder::Qwen2VlEncoder(const ClipModel& model, Backend& backend) : model_(model), backend_(backend) {}

double Qwen2VlEncoder::flops(int width, int height) const {
  const ClipConfig& c = model_.config();
  const double n = static_cast<double>(width / kPatch) * (height / kPatch);
  auto mm = [](const WeightView& w, double rows) { return 2.0 * w.n_in * w.n_out * rows; };
  double f = 2 * mm(model_.patch_embd, n);
  const PatchLayout layout = patch_layout(c, height / (kPatch * kMerge), width / (kPatch * kMerge));
  double windowed_pairs = 0;  // query-key pairs of a windowed block
  for (size_t w = 0; w + 1 < layout.bounds.size(); ++w)
    windowed_pairs += static_cast<double>(layout.bounds[w + 1] - layout.bounds[w]) * (layout.bounds[w + 1] - layout.bounds[w]);
  for (int l = 0; l < c.n_layer_run; ++l) {
    const ClipLayer& L = model_.layers[l];
    f += mm(L.wq, n) + mm(L.wk, n) + mm(L.wv, n) + mm(L.wo, n) + mm(L.fc1, n) + mm(L.fc2, n);
    if (L.ffn_gate.data) f += mm(L.ffn_gate, n);
    f += 4.0 * (c.full_attention_block(l) ? n * n : windowed_pairs) * c.n_embd;
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
  const bool q25 = c.projector == ProjectorType::kQwen25VlMerger;
  const PatchLayout layout = patch_layout(c, gh / kMerge, gw / kMerge);
  std::vector<float> gate(q25 ? n * c.n_ff : 0);
  // Patches in 2x2-block order (the blocks in layout order), each gathered like the kernel
  // ([channel][ky][kx]).
  int64_t r = 0;
  for (int32_t cell : layout.cell_order) {
    const int by = cell / (gw / kMerge), bx = cell % (gw / kMerge);
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
  }
  backend_.matmul(model_.patch_embd, patches.data(), n, x.data());
  backend_.matmul(model_.patch_embd_1, patches.data(), n, tmp.data());
  backend_.add(x.data(), tmp.data(), n * d);
  if (model_.patch_bias) backend_.add_bias(x.data(), model_.patch_bias, n, d);

  const int head_dim = static_cast<int>(d / c.n_head);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // Qwen2.5-VL normalises by RMSNorm (no bias), Qwen2-VL by LayerNorm.
  auto norm = [&](const float* in, const float* w, const float* b, float* out) {
    if (q25) backend_.rms_norm(in, w, n, d, c.eps, out);
    else backend_.layer_norm(in, w, b, n, d, c.eps, out);
  };
  for (int l = 0; l < c.n_layer_run; ++l) {
    const ClipLayer& L = model_.layers[l];
    norm(x.data(), L.ln1_w, L.ln1_b, h.data());
    const WeightView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {q.data(), k.data(), v.data()};
    backend_.matmul_group(qkv, qkv_out, 3, h.data(), n);
    backend_.add_bias(q.data(), L.bq, n, d);
    backend_.add_bias(k.data(), L.bk, n, d);
    backend_.add_bias(v.data(), L.bv, n, d);
    backend_.rope_2d(q.data(), n, ys.data(), xs.data(), c.n_head, head_dim, 10000.f);
    backend_.rope_2d(k.data(), n, ys.data(), xs.data(), c.n_head, head_dim, 10000.f);
    if (layout.windowed && !c.full_attention_block(l))
      window_attention(backend_, q.data(), k.data(), v.data(), layout.bounds, c.n_head, head_dim, scale, attn.data());
    else
      backend_.attention_full(q.data(), k.data(), v.data(), n, c.n_head, head_dim, scale, attn.data());
    backend_.matmul(L.wo, attn.data(), n, h.data());
    backend_.add_bias(h.data(), L.bo, n, d);
    backend_.add(x.data(), h.data(), n * d);

    norm(x.data(), L.ln2_w, L.ln2_b, h.data());
    if (L.ffn_gate.data) {
      // Qwen2.5-VL's SwiGLU: down(silu(gate x) * up x), every product with its bias.
      const WeightView gate_up[2] = {L.ffn_gate, L.fc1};
      float* const gate_up_out[2] = {gate.data(), ff.data()};
      backend_.matmul_group(gate_up, gate_up_out, 2, h.data(), n);
      backend_.add_bias(gate.data(), L.ffn_gate_b, n, c.n_ff);
      backend_.add_bias(ff.data(), L.fc1_b, n, c.n_ff);
      backend_.silu_mul(gate.data(), ff.data(), n * c.n_ff);
      backend_.matmul(L.fc2, gate.data(), n, h.data());
    } else {
      backend_.matmul(L.fc1, h.data(), n, ff.data());
      backend_.add_bias(ff.data(), L.fc1_b, n, c.n_ff);
      if (c.use_gelu) backend_.gelu(ff.data(), n * c.n_ff);
      else backend_.gelu_quick(ff.data(), n * c.n_ff);
      backend_.matmul(L.fc2, ff.data(), n, h.data());
    }
    backend_.add_bias(h.data(), L.fc2_b, n, d);
    backend_.add(x.data(), h.data(), n * d);
  }
  if (!model_.post_ln_w) return Status::error(c.projector_name + " needs tensor 'v.post_ln.weight'");
  norm(x.data(), model_.post_ln_w, model_.post_ln_b, h.data());

  // Each 2x2 block's four consecutive rows, side by side, are one merger input of 4 * d.
  const int64_t m = n / 4, hidden = model_.mm0.n_out;
  std::vector<float> mid(m * hidden), out(m * c.projection_dim);
  backend_.matmul(model_.mm0, h.data(), m, mid.data());
  if (model_.mm0_b) backend_.add_bias(mid.data(), model_.mm0_b, m, hidden);
  backend_.gelu(mid.data(), m * hidden);
  backend_.matmul(model_.mm2, mid.data(), m, out.data());
  if (model_.mm2_b) backend_.add_bias(out.data(), model_.mm2_b, m, c.projection_dim);
  for (float val : out)
    if (!std::isfinite(val)) return Status::error("the vision encoder produced non-finite values (corrupt weights?)");
  if (layout.windowed) {  // back from window order to raster order of the merged grid
    std::vector<float> raster(out.size());
    rows_to_raster(out.data(), layout.cell_order, c.projection_dim, raster.data());
    return raster;
  }
  return out;
}

}  // namespace zs::engine
