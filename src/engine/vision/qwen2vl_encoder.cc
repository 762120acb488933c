#include "engine/vision/qwen2vl_encoder.h"

#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/vision/qwen25vl.h"
#include "engine/vision/vit_block.h"

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
        gather_patch(pixels, width, height, kPatch, py, px, patches.data() + r * patch_len);
      }
  }
  backend_.matmul(model_.patch_embd, patches.data(), n, x.data());
  backend_.matmul(model_.patch_embd_1, patches.data(), n, tmp.data());
  backend_.add(x.data(), tmp.data(), n * d);
  if (model_.patch_bias) backend_.add_bias(x.data(), model_.patch_bias, n, d);

  const int head_dim = static_cast<int>(d / c.n_head);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const VitScratch scratch{h.data(), q.data(), k.data(), v.data(), attn.data(), ff.data(), gate.data()};
  for (int l = 0; l < c.n_layer_run; ++l) {
    VitBlockOptions o;
    o.rms_norm = q25;
    o.rope_ys = ys.data();
    o.rope_xs = xs.data();
    if (layout.windowed && !c.full_attention_block(l))
      o.attend = [&](const float* bq, const float* bk, const float* bv, float* out) {
        window_attention(backend_, bq, bk, bv, layout.bounds, c.n_head, head_dim, scale, out);
      };
    vit_block(backend_, c, model_.layers[l], n, x.data(), scratch, o);
  }
  if (!model_.post_ln_w) return Status::error(c.projector_name + " needs tensor 'v.post_ln.weight'");
  // Qwen2.5-VL normalises by RMSNorm (no bias), Qwen2-VL by LayerNorm.
  if (q25) backend_.rms_norm(x.data(), model_.post_ln_w, n, d, c.eps, h.data());
  else backend_.layer_norm(x.data(), model_.post_ln_w, model_.post_ln_b, n, d, c.eps, h.data());

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
