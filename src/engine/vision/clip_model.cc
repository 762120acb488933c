#include "engine/vision/clip_model.h"

#include <algorithm>

#include "engine/gguf/tensor_binder.h"
#include "engine/quant/quantize.h"

namespace zs::engine {

using core::Result;
using core::Status;

namespace {

// LLaVA-1.6 anyres

// clip.vision.image_grid_pinpoints: flattened (width, height) pairs; absent for LLaVA-1.5.
Status read_anyres_pinpoints(const GgufFile& f, ClipConfig& c) {
  const std::vector<int64_t> v = f.get_int_array("clip.vision.image_grid_pinpoints");
  if (v.empty()) return Status::ok();
  if (v.size() % 2 != 0)
    return Status::error("clip.vision.image_grid_pinpoints has " + std::to_string(v.size()) +
                         " values; expected (width, height) pairs");
  for (size_t i = 0; i < v.size(); i += 2) {
    const int64_t w = v[i], h = v[i + 1];
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384 || w % c.image_size != 0 || h % c.image_size != 0)
      return Status::error("clip.vision.image_grid_pinpoints entry " + std::to_string(w) + "x" + std::to_string(h) +
                           " is not a positive multiple of image_size " + std::to_string(c.image_size));
    c.grid_pinpoints.push_back({static_cast<int>(w), static_cast<int>(h)});
  }
  return Status::ok();
}

// GLM-Edge adapter

Status check_glm_adapter_config(ClipConfig& c) {
  c.n_layer_run = c.n_layer;  // every block runs, then post_ln
  if (c.patches_per_side() % 2 != 0)
    return Status::error("the adapter projector's 2x2 stride-2 convolution needs an even number of patches per "
                         "side, but image_size / patch_size is " + std::to_string(c.patches_per_side()));
  return Status::ok();
}

// Qwen2.5-VL

Status read_qwen25vl_config(const GgufFile& f, ClipConfig& c) {
  const auto pattern = f.get_int("clip.vision.n_wa_pattern");
  if (!pattern) return Status::error("qwen2.5vl_merger needs metadata key 'clip.vision.n_wa_pattern' (an integer)");
  // Above the block count, every block is windowed (a tower cut short, as bench_vision does).
  if (*pattern < 1 || *pattern > (1 << 16))
    return Status::error("clip.vision.n_wa_pattern is " + std::to_string(*pattern) + "; expected a positive block count");
  c.n_wa_pattern = static_cast<int>(*pattern);
  c.use_silu = f.get_bool("clip.use_silu").value_or(true);
  if (!c.use_silu) return Status::error("qwen2.5vl_merger has a SwiGLU FFN, but clip.use_silu is false");
  return Status::ok();
}

// Gemma 3

// Every block runs; the pooling kernel is clip.vision.projector.scale_factor when written,
// else 4 (the converter writes it only when it differs from 4).
Status read_gemma3_config(const GgufFile& f, ClipConfig& c) {
  c.n_layer_run = c.n_layer;
  c.has_class_token = false;
  c.scale_factor = kGemma3DefaultPool;
  if (auto k = f.get_int("clip.vision.projector.scale_factor")) {
    if (*k < 1 || *k > 64)
      return Status::error("clip.vision.projector.scale_factor has implausible value " + std::to_string(*k));
    c.scale_factor = static_cast<int>(*k);
  }
  if (c.patches_per_side() % c.scale_factor != 0)
    return Status::error("gemma3: patches per side " + std::to_string(c.patches_per_side()) +
                         " is not a multiple of the pooling kernel " + std::to_string(c.scale_factor));
  return Status::ok();
}

}  // namespace

Result<ClipConfig> ClipConfig::from_gguf(const GgufFile& f) {
  auto arch = f.get_string("general.architecture");
  if (!arch || *arch != "clip")
    return Status::error("not a vision projector: general.architecture is '" + std::string(arch.value_or("")) +
                         "', expected 'clip' (an mmproj GGUF)");
  if (f.get_bool("clip.has_vision_encoder") == false) return Status::error("the file has no vision encoder");
  ClipConfig c;
  c.projector_name = std::string(f.get_string("clip.projector_type").value_or("mlp"));
  if (c.projector_name == "mlp") {
    c.projector = ProjectorType::kMlp;
  } else if (c.projector_name == "idefics3") {
    c.projector = ProjectorType::kIdefics3;
  } else if (c.projector_name == "qwen2vl_merger") {
    c.projector = ProjectorType::kQwen2VlMerger;
  } else if (c.projector_name == "adapter") {
    c.projector = ProjectorType::kAdapter;  // GLM-Edge-V
  } else if (c.projector_name == "qwen2.5vl_merger") {
    c.projector = ProjectorType::kQwen25VlMerger;
  } else if (c.projector_name == "gemma3") {
    c.projector = ProjectorType::kGemma3;
  } else {
    return Status::error("unsupported projector type '" + c.projector_name +
                         "' (supported: mlp, idefics3, qwen2vl_merger, qwen2.5vl_merger, adapter, gemma3)");
  }
  // The Gemma 3 and SmolVLM projectors are held to the 2026 reference build (ref2026.h).
  if (c.projector == ProjectorType::kGemma3 || c.projector == ProjectorType::kIdefics3) c.ref_build = RefBuild::k2026;
  if (f.get_bool("clip.has_glm_projector").value_or(false) && c.projector != ProjectorType::kAdapter)
    return Status::error("clip.has_glm_projector is set but the projector type is '" + c.projector_name +
                         "', expected 'adapter'");
  auto need = [&](const char* key, int* out, int64_t lo, int64_t hi) -> Status {
    auto v = f.get_int(key);
    if (!v) return Status::error(std::string("metadata key '") + key + "' is missing or not an integer");
    if (*v < lo || *v > hi)
      return Status::error(std::string("metadata key '") + key + "' has implausible value " + std::to_string(*v));
    *out = static_cast<int>(*v);
    return Status::ok();
  };
  ZS_RETURN_IF_ERROR(need("clip.vision.image_size", &c.image_size, 1, 8192));
  ZS_RETURN_IF_ERROR(need("clip.vision.patch_size", &c.patch_size, 1, 1024));
  ZS_RETURN_IF_ERROR(need("clip.vision.embedding_length", &c.n_embd, 1, 1 << 16));
  // Qwen2-VL files write 0 here; the MLP tensors' shapes give the width then.
  ZS_RETURN_IF_ERROR(need("clip.vision.feed_forward_length", &c.n_ff, 0, 1 << 18));
  if (c.n_ff == 0) {
    const GgufTensorInfo* up = f.find_tensor("v.blk.0.ffn_up.weight");
    if (up) c.n_ff = static_cast<int>(std::max(up->ne[0], up->ne[1]));
    if (c.n_ff == 0) return Status::error("clip.vision.feed_forward_length is 0 and no MLP tensor gives the width");
  }
  ZS_RETURN_IF_ERROR(need("clip.vision.attention.head_count", &c.n_head, 1, 1024));
  ZS_RETURN_IF_ERROR(need("clip.vision.block_count", &c.n_layer, 1, 1024));
  if (c.image_size % c.patch_size != 0)
    return Status::error("image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " +
                         std::to_string(c.patch_size));
  if (c.n_embd % c.n_head != 0) return Status::error("embedding_length is not a multiple of head_count");
  c.eps = static_cast<float>(f.get_float("clip.vision.attention.layer_norm_epsilon").value_or(1e-6));
  c.use_gelu = f.get_bool("clip.use_gelu").value_or(true);
  auto mean = f.get_float_array("clip.vision.image_mean");
  auto stdv = f.get_float_array("clip.vision.image_std");
  if (mean.size() == 3) std::copy(mean.begin(), mean.end(), c.image_mean.begin());
  if (stdv.size() == 3) std::copy(stdv.begin(), stdv.end(), c.image_std.begin());
  for (float s : c.image_std)
    if (!(s > 0)) return Status::error("clip.vision.image_std must be positive");
  c.has_class_token = f.find_tensor("v.class_embd") != nullptr;
  if (c.projector == ProjectorType::kMlp) {
    // LLaVA feeds the projector the output of the second-to-last block.
    c.n_layer_run = c.n_layer > 1 ? c.n_layer - 1 : c.n_layer;
    ZS_RETURN_IF_ERROR(read_anyres_pinpoints(f, c));
  } else if (c.projector == ProjectorType::kAdapter) {
    ZS_RETURN_IF_ERROR(check_glm_adapter_config(c));
  } else if (c.native_resolution()) {
    c.n_layer_run = c.n_layer;
    c.has_class_token = false;
    if (c.patch_size != 14)
      return Status::error(c.projector_name + " needs patch_size 14, got " + std::to_string(c.patch_size));
    if ((c.n_embd / c.n_head) % 4 != 0)
      return Status::error(c.projector_name + " needs a vision head size divisible by 4 (2-D rotary positions)");
    if (c.projector == ProjectorType::kQwen25VlMerger) ZS_RETURN_IF_ERROR(read_qwen25vl_config(f, c));
  } else if (c.projector == ProjectorType::kGemma3) {
    ZS_RETURN_IF_ERROR(read_gemma3_config(f, c));
  } else {
    c.n_layer_run = c.n_layer;
    ZS_RETURN_IF_ERROR(need("clip.vision.projector.scale_factor", &c.scale_factor, 1, 64));
    if (f.get_int("clip.vision.preproc_image_size")) {
      ZS_RETURN_IF_ERROR(need("clip.vision.preproc_image_size", &c.preproc_image_size, 1, 1 << 15));
      if (c.preproc_image_size < c.image_size)
        return Status::error("clip.vision.preproc_image_size " + std::to_string(c.preproc_image_size) +
                             " is smaller than image_size " + std::to_string(c.image_size));
    }
    if (c.patches_per_side() % c.scale_factor != 0)
      return Status::error("patches per side " + std::to_string(c.patches_per_side()) +
                           " is not a multiple of the pixel-shuffle scale factor " + std::to_string(c.scale_factor));
  }
  return c;
}

Result<std::unique_ptr<ClipModel>> ClipModel::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) return file.status();
  auto m = load(std::move(file.value()));
  if (!m) return m.status().with_context("loading vision projector '" + path + "'");
  return m;
}

Result<std::unique_ptr<ClipModel>> ClipModel::load(std::unique_ptr<GgufFile> file) {
  std::unique_ptr<ClipModel> m(new ClipModel());
  m->file_ = std::move(file);
  auto c = ClipConfig::from_gguf(*m->file_);
  if (!c) return c.status();
  m->config_ = c.value();
  ZS_RETURN_IF_ERROR(m->bind());
  return m;
}

Status ClipModel::bind() {
  binder_ = std::make_unique<TensorBinder>(*file_);
  TensorBinder& b = *binder_;
  ClipConfig& c = config_;
  const int64_t d = c.n_embd, p = c.patch_size;
  auto pe = b.matrix_flat("v.patch_embd.weight", 3 * p * p, d);
  if (!pe) return pe.status();
  patch_embd = pe.value();
  if (patch_embd.type == GgmlType::kF32 && c.ref_build == RefBuild::k2026) {
    // The 2026 reference runs the patch convolution in f16 even when the kernel is stored in
    // f32: its im2col rows and its kernel are rounded to f16 before the products. An f16 copy
    // of the kernel makes the matmul do the same (it rounds the activations, the patches, to
    // the weight's precision).
    patch_embd_f16_.resize(static_cast<size_t>(patch_embd.n_in) * patch_embd.n_out);
    for (int64_t r = 0; r < patch_embd.n_out; ++r) {
      const auto* row = reinterpret_cast<const float*>(static_cast<const uint8_t*>(patch_embd.data) +
                                                       static_cast<size_t>(r) * patch_embd.row_stride);
      for (int64_t i = 0; i < patch_embd.n_in; ++i) patch_embd_f16_[r * patch_embd.n_in + i] = f32_to_f16(row[i]);
    }
    patch_embd.type = GgmlType::kF16;
    patch_embd.data = patch_embd_f16_.data();
    patch_embd.row_stride = static_cast<size_t>(patch_embd.n_in) * sizeof(uint16_t);
  }
  ZS_RETURN_IF_ERROR(b.bind(patch_bias, "v.patch_embd.bias", d, false));
  ZS_RETURN_IF_ERROR(b.bind(class_embd, "v.class_embd", d, false));
  if (c.native_resolution()) {
    // The second temporal half of the 3-D patch convolution; no position table (2-D rope).
    auto pe1 = b.matrix_flat("v.patch_embd.weight.1", 3 * p * p, d);
    if (!pe1) return pe1.status();
    patch_embd_1 = pe1.value();
  } else {
    const int64_t n_pos = c.n_patches() + (c.has_class_token ? 1 : 0);
    ZS_RETURN_IF_ERROR(b.bind(position_embd, "v.position_embd.weight", n_pos * d, true));
  }
  ZS_RETURN_IF_ERROR(b.bind(pre_ln_w, "v.pre_ln.weight", d, false));
  ZS_RETURN_IF_ERROR(b.bind(pre_ln_b, "v.pre_ln.bias", d, false));
  ZS_RETURN_IF_ERROR(b.bind(post_ln_w, "v.post_ln.weight", d, false));
  ZS_RETURN_IF_ERROR(b.bind(post_ln_b, "v.post_ln.bias", d, false));
  layers.resize(c.n_layer);
  const bool rms = c.projector == ProjectorType::kQwen25VlMerger;  // RMSNorm blocks: no norm biases
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string n = "v.blk." + std::to_string(i) + ".";
    ClipLayer& L = layers[i];
    ZS_RETURN_IF_ERROR(b.bind(L.ln1_w, n + "ln1.weight", d, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ln1_b, n + "ln1.bias", d, !rms));
    ZS_RETURN_IF_ERROR(b.bind(L.ln2_w, n + "ln2.weight", d, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ln2_b, n + "ln2.bias", d, !rms));
    ZS_RETURN_IF_ERROR(b.bind(L.wq, n + "attn_q.weight", d, d));
    ZS_RETURN_IF_ERROR(b.bind(L.wk, n + "attn_k.weight", d, d));
    ZS_RETURN_IF_ERROR(b.bind(L.wv, n + "attn_v.weight", d, d));
    ZS_RETURN_IF_ERROR(b.bind(L.wo, n + "attn_out.weight", d, d));
    ZS_RETURN_IF_ERROR(b.bind(L.bq, n + "attn_q.bias", d, true));
    ZS_RETURN_IF_ERROR(b.bind(L.bk, n + "attn_k.bias", d, true));
    ZS_RETURN_IF_ERROR(b.bind(L.bv, n + "attn_v.bias", d, true));
    ZS_RETURN_IF_ERROR(b.bind(L.bo, n + "attn_out.bias", d, true));
    // Some converters store the MLP's first matrix under "ffn_down" and the second under
    // "ffn_up"; the shapes say which is which.
    const GgufTensorInfo* up = b.info(n + "ffn_up.weight");
    const bool swapped = up && up->ne[0] == c.n_ff;
    const std::string first = swapped ? "ffn_down" : "ffn_up";
    const std::string second = swapped ? "ffn_up" : "ffn_down";
    ZS_RETURN_IF_ERROR(b.bind(L.fc1, n + first + ".weight", d, c.n_ff));
    ZS_RETURN_IF_ERROR(b.bind(L.fc1_b, n + first + ".bias", c.n_ff, true));
    ZS_RETURN_IF_ERROR(b.bind(L.fc2, n + second + ".weight", c.n_ff, d));
    ZS_RETURN_IF_ERROR(b.bind(L.fc2_b, n + second + ".bias", d, true));
    if (c.use_silu) {  // Qwen2.5-VL's SwiGLU gate
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_gate, n + "ffn_gate.weight", d, c.n_ff));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_gate_b, n + "ffn_gate.bias", c.n_ff, true));
    }
  }
  if (c.projector == ProjectorType::kMlp || c.native_resolution()) {
    const GgufTensorInfo* m0 = b.info("mm.0.weight");
    const GgufTensorInfo* m2 = b.info("mm.2.weight");
    if (!m0 || !m2)
      return Status::error("the " + c.projector_name + " projector needs tensors 'mm.0.weight' and 'mm.2.weight'");
    const int64_t hidden = m0->ne[1];
    c.projection_dim = static_cast<int>(m2->ne[1]);
    // The merger concatenates each 2x2 block of patches before its MLP.
    const int64_t in = c.native_resolution() ? 4 * d : d;
    ZS_RETURN_IF_ERROR(b.bind(mm0, "mm.0.weight", in, hidden));
    ZS_RETURN_IF_ERROR(b.bind(mm0_b, "mm.0.bias", hidden, true));
    ZS_RETURN_IF_ERROR(b.bind(mm2, "mm.2.weight", hidden, c.projection_dim));
    ZS_RETURN_IF_ERROR(b.bind(mm2_b, "mm.2.bias", c.projection_dim, true));
    ZS_RETURN_IF_ERROR(b.bind(image_newline, "model.image_newline", c.projection_dim, false));
  } else if (c.projector == ProjectorType::kAdapter) {
    if (!post_ln_w) return Status::error("the adapter projector (GLM-Edge-V) needs tensor 'v.post_ln.weight'");
    ZS_RETURN_IF_ERROR(bind_glm_adapter(b, c.n_embd, glm));
    c.projection_dim = glm.n_embd;
  } else if (c.projector == ProjectorType::kGemma3) {
    if (!post_ln_w) return Status::error("the gemma3 projector needs tensor 'v.post_ln.weight'");
    ZS_RETURN_IF_ERROR(bind_gemma3_projector(b, c.n_embd, gemma3, &c.projection_dim));
  } else {
    const GgufTensorInfo* fc = b.info("mm.model.fc.weight");
    if (!fc) return Status::error("the idefics3 projector needs tensor 'mm.model.fc.weight'");
    c.projection_dim = static_cast<int>(fc->ne[1]);
    ZS_RETURN_IF_ERROR(b.bind(mm0, "mm.model.fc.weight", d * c.scale_factor * c.scale_factor, c.projection_dim));
  }
  return Status::ok();
}

}  // namespace zs::engine
