#include "engine/model/random_mmproj.h"

#include <cstring>
#include <memory>
#include <random>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/random_tensors.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

using core::Status;

constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

// Figures from each model's published config.json and from the mmproj files converted from it.
const std::vector<MmprojPreset>& presets() {
  static const std::vector<MmprojPreset> kPresets = [] {
    std::vector<MmprojPreset> v;
    MmprojPreset clip;  // openai/clip-vit-large-patch14-336 + the LLaVA-1.5 projector
    clip.name = "clip-vit-l-336";
    clip.projector_type = "mlp";
    clip.image_size = 336;
    clip.patch_size = 14;
    clip.n_embd = 1024;
    clip.n_layer = 24;
    clip.n_head = 16;
    clip.n_ff = 4096;
    clip.class_token = true;
    clip.pre_ln = true;
    clip.post_ln = true;  // stored by the converter, not applied with the mlp projector
    clip.use_gelu = true;
    clip.ffn_names_swapped = true;
    clip.eps = 1e-5f;
    clip.image_mean = kClipMean;
    clip.image_std = kClipStd;
    clip.mlp_hidden = 4096;
    clip.projection_dim = 4096;
    clip.clip_projection_dim = 768;
    v.push_back(clip);

    MmprojPreset siglip;  // SmolVLM's SigLIP (patch 16, 512 px) + the Idefics3 connector
    siglip.name = "siglip-512-smolvlm";
    siglip.projector_type = "idefics3";
    siglip.image_size = 512;
    siglip.patch_size = 16;
    siglip.n_embd = 768;
    siglip.n_layer = 12;
    siglip.n_head = 12;
    siglip.n_ff = 3072;
    siglip.post_ln = true;
    siglip.patch_bias = true;
    siglip.use_gelu = true;
    siglip.eps = 1e-6f;
    siglip.scale_factor = 4;
    siglip.projection_dim = 576;  // SmolLM2-135M's width (SmolVLM-256M)
    siglip.clip_projection_dim = 576;
    v.push_back(siglip);

    // HuggingFaceTB/SmolVLM-256M-Instruct as the 2026 reference's converter writes it: the
    // same SigLIP and connector, plus preproc_image_size = size.longest_edge (4 x 512).
    MmprojPreset smolvlm = siglip;
    smolvlm.name = "smolvlm-256m";
    smolvlm.preproc_image_size = 2048;
    v.push_back(smolvlm);

    // google/gemma-3-4b-it vision_config (SigLIP so400m: 27 blocks of 1152, 16 heads, FFN 4304,
    // 896 px, patch 14) and mm_tokens_per_image 256 (64 x 64 patches pooled 4 x 4) into 2560.
    MmprojPreset gemma3;
    gemma3.name = "gemma-3-4b";
    gemma3.projector_type = "gemma3";
    gemma3.image_size = 896;
    gemma3.patch_size = 14;
    gemma3.n_embd = 1152;
    gemma3.n_layer = 27;
    gemma3.n_head = 16;
    gemma3.n_ff = 4304;
    gemma3.post_ln = true;
    gemma3.patch_bias = true;
    gemma3.use_gelu = true;
    gemma3.eps = 1e-6f;
    gemma3.scale_factor = 4;
    gemma3.projection_dim = 2560;
    gemma3.clip_projection_dim = 2560;
    v.push_back(gemma3);

    MmprojPreset qwen2vl;  // Qwen/Qwen2-VL-2B-Instruct vision_config: depth 32, embed 1280, 16 heads, mlp ratio 4
    qwen2vl.name = "qwen2-vl-2b";
    qwen2vl.projector_type = "qwen2vl_merger";
    qwen2vl.image_size = 560;  // a nominal size: images run at their native resolution
    qwen2vl.patch_size = 14;
    qwen2vl.n_embd = 1280;
    qwen2vl.n_layer = 32;
    qwen2vl.n_head = 16;
    qwen2vl.n_ff = 5120;
    qwen2vl.post_ln = true;  // the merger's LayerNorm
    qwen2vl.use_gelu = false;  // quick GELU
    qwen2vl.ffn_names_swapped = true;
    qwen2vl.image_mean = {0.48145466f, 0.4578275f, 0.40821073f};
    qwen2vl.image_std = {0.26862954f, 0.26130258f, 0.27577711f};
    qwen2vl.mlp_hidden = 5120;      // 4 x 1280
    qwen2vl.projection_dim = 1536;  // Qwen2-VL-2B's text width
    qwen2vl.clip_projection_dim = 1536;
    v.push_back(qwen2vl);

    // Qwen2.5-VL

    MmprojPreset qwen25vl;  // Qwen/Qwen2.5-VL-3B-Instruct vision_config: depth 32, hidden 1280, 16 heads,
                            // intermediate 3420 (SwiGLU), fullatt_block_indexes [7, 15, 23, 31], out 2048
    qwen25vl.name = "qwen2.5-vl-3b";
    qwen25vl.projector_type = "qwen2.5vl_merger";
    qwen25vl.image_size = 560;  // nominal: images run at their native resolution
    qwen25vl.patch_size = 14;
    qwen25vl.n_embd = 1280;
    qwen25vl.n_layer = 32;
    qwen25vl.n_head = 16;
    qwen25vl.n_ff = 3420;
    qwen25vl.post_ln = true;  // the merger's RMSNorm
    qwen25vl.image_mean = kClipMean;
    qwen25vl.image_std = kClipStd;
    qwen25vl.mlp_hidden = 5120;      // 4 x 1280
    qwen25vl.projection_dim = 2048;  // Qwen2.5-VL-3B's text width
    qwen25vl.clip_projection_dim = 2048;
    qwen25vl.n_wa_pattern = 8;       // fullatt_block_indexes[0] + 1
    v.push_back(qwen25vl);

    MmprojPreset tiny_qwen25vl = qwen25vl;  // in miniature, for tests: block 0 windowed, block 1 full
    tiny_qwen25vl.name = "tiny-qwen25vl";
    tiny_qwen25vl.n_embd = 32;
    tiny_qwen25vl.n_layer = 2;
    tiny_qwen25vl.n_head = 2;
    tiny_qwen25vl.n_ff = 64;
    tiny_qwen25vl.mlp_hidden = 128;
    tiny_qwen25vl.projection_dim = 32;
    tiny_qwen25vl.clip_projection_dim = 32;
    tiny_qwen25vl.n_wa_pattern = 2;
    v.push_back(tiny_qwen25vl);

    // LLaVA-1.6 anyres

    MmprojPreset llava16 = clip;  // liuhaotian/llava-v1.6-mistral-7b: CLIP ViT-L/14-336 + mlp2x_gelu
    llava16.name = "llava-1.6-mistral-7b";
    llava16.grid_pinpoints = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
    v.push_back(llava16);

    // GLM-Edge adapter

    MmprojPreset glm;  // THUDM/glm-edge-v-2b: SigLIP-so400m-shaped ViT at 672 px + adapter into GLM-Edge 2B
    glm.name = "glm-edge-v-2b";
    glm.projector_type = "adapter";
    glm.image_size = 672;
    glm.patch_size = 14;
    glm.n_embd = 1152;
    glm.n_layer = 27;
    glm.n_head = 16;
    glm.n_ff = 4304;
    glm.post_ln = true;
    glm.patch_bias = true;
    glm.use_gelu = true;
    glm.ffn_names_swapped = true;
    glm.eps = 1e-6f;
    glm.projection_dim = 2048;  // the text model's width
    glm.adapter_ff = 6144;
    v.push_back(glm);

    MmprojPreset tiny_glm = glm;  // in miniature, for tests
    tiny_glm.name = "tiny-glmedge";
    tiny_glm.image_size = 56;
    tiny_glm.n_embd = 32;
    tiny_glm.n_layer = 2;
    tiny_glm.n_head = 4;
    tiny_glm.n_ff = 64;
    tiny_glm.projection_dim = 32;
    tiny_glm.adapter_ff = 64;
    v.push_back(tiny_glm);

    MmprojPreset tiny = siglip;  // the same architecture in miniature, for tests
    tiny.name = "tiny-siglip";
    tiny.image_size = 64;
    tiny.n_embd = 32;
    tiny.n_layer = 2;
    tiny.n_head = 4;
    tiny.n_ff = 64;
    tiny.scale_factor = 2;
    tiny.projection_dim = 64;
    tiny.clip_projection_dim = 64;
    v.push_back(tiny);
    return v;
  }();
  return kPresets;
}

}  // namespace

core::Result<MmprojPreset> find_mmproj_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string known;
  for (const auto& n : mmproj_preset_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::error("unknown mmproj preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> mmproj_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

Status write_random_mmproj(const MmprojPreset& p, GgmlType mt, const std::string& path, uint64_t seed) {
  if (mt != GgmlType::kF32 && mt != GgmlType::kF16)
    return Status::error("random mmproj files are written with F32 or F16 matrices");
  if (p.image_size % p.patch_size != 0 || p.n_embd % p.n_head != 0)
    return Status::error("mmproj preset '" + p.name + "' has inconsistent shapes");
  const bool idefics3 = p.projector_type == "idefics3";
  const bool adapter = p.projector_type == "adapter";
  const bool merger = p.projector_type == "qwen2vl_merger";
  const bool merger25 = p.projector_type == "qwen2.5vl_merger";  // Qwen2.5-VL: RMSNorm, SwiGLU, windows
  if (merger25 && p.n_wa_pattern < 1)
    return Status::error("mmproj preset '" + p.name + "': qwen2.5vl_merger needs n_wa_pattern >= 1");
  const bool gemma3 = p.projector_type == "gemma3";
  const int side = p.image_size / p.patch_size;
  if (adapter && side % 2 != 0)
    return Status::error("mmproj preset '" + p.name + "': the adapter needs an even number of patches per side");
  if ((idefics3 || gemma3) && side % p.scale_factor != 0)
    return Status::error("mmproj preset '" + p.name + "': patches per side not a multiple of the scale factor");

  GgufWriter w;
  w.set_string("general.architecture", "clip");
  w.set_string("general.name", p.name + "-random");
  w.set_string("general.description", "random weights in the shapes of " + p.name + " (zeroserve gen-model)");
  w.set_u32("general.file_type", mt == GgmlType::kF16 ? 1 : 0);
  w.set_bool("clip.has_text_encoder", false);
  w.set_bool("clip.has_vision_encoder", true);
  if (adapter) w.set_bool("clip.has_glm_projector", true);
  else if (merger) w.set_bool("clip.has_qwen2vl_merger", true);
  else if (!idefics3 && !merger25 && !gemma3) w.set_bool("clip.has_llava_projector", true);
  w.set_string("clip.projector_type", p.projector_type);
  w.set_u32("clip.vision.image_size", p.image_size);
  w.set_u32("clip.vision.patch_size", p.patch_size);
  w.set_u32("clip.vision.embedding_length", p.n_embd);
  w.set_u32("clip.vision.feed_forward_length", merger ? 0 : p.n_ff);  // Qwen2-VL's converter writes 0 (Qwen2.5-VL's the width)
  w.set_u32("clip.vision.projection_dim", p.clip_projection_dim);
  w.set_u32("clip.vision.attention.head_count", p.n_head);
  w.set_f32("clip.vision.attention.layer_norm_epsilon", p.eps);
  w.set_u32("clip.vision.block_count", p.n_layer);
  w.set_f32_array("clip.vision.image_mean", {p.image_mean.begin(), p.image_mean.end()});
  w.set_f32_array("clip.vision.image_std", {p.image_std.begin(), p.image_std.end()});
  if (merger25) {
    w.set_bool("clip.use_silu", true);
    w.set_u32("clip.vision.n_wa_pattern", p.n_wa_pattern);
  } else {
    w.set_bool("clip.use_gelu", p.use_gelu);
    w.set_bool("clip.use_silu", false);
  }
  if (idefics3 || (gemma3 && p.scale_factor != 4)) w.set_u32("clip.vision.projector.scale_factor", p.scale_factor);
  if (idefics3 && p.preproc_image_size > 0) w.set_u32("clip.vision.preproc_image_size", p.preproc_image_size);
  if (!p.grid_pinpoints.empty()) {  // LLaVA-1.6 anyres keys as the llava surgery scripts write them
    std::vector<int32_t> flat;
    for (const auto& wh : p.grid_pinpoints) flat.insert(flat.end(), wh.begin(), wh.end());
    w.set_i32_array("clip.vision.image_grid_pinpoints", flat);
    w.set_string("clip.vision.mm_patch_merge_type", "spatial_unpad");
    w.set_string("clip.vision.image_aspect_ratio", "anyres");
    w.set_u32("clip.vision.image_crop_resolution", p.image_size);
    w.set_u32("clip.vision.image_split_resolution", p.image_size);
    w.set_string("clip.vision.mm_projector_type", "mlp2x_gelu");
  }

  RandomTensors src(seed);
  const int64_t d = p.n_embd, ff = p.n_ff, ps = p.patch_size;
  const int64_t n_pos = static_cast<int64_t>(side) * side + (p.class_token ? 1 : 0);
  constexpr float kScale = 0.02f;
  auto vec = [&](const std::string& name, int64_t n, float mean, float scale) {
    w.add_tensor(name, GgmlType::kF32, {n}, src.vector(n, mean, scale));
  };
  // A convolution kernel [kx, ky, channel, out]: each output's 3 * p * p values are one row.
  w.add_tensor("v.patch_embd.weight", mt, {ps, ps, 3, d}, src.matrix(mt, 3 * ps * ps, d, kScale));
  // Qwen2-VL: the 3-D patch convolution's second temporal half (and a dummy position table).
  if (merger || merger25) w.add_tensor("v.patch_embd.weight.1", mt, {ps, ps, 3, d}, src.matrix(mt, 3 * ps * ps, d, kScale));
  if (p.patch_bias) vec("v.patch_embd.bias", d, 0.f, kScale);
  if (p.class_token) vec("v.class_embd", d, 0.f, kScale);
  if (merger) {
    w.add_tensor("v.position_embd.weight", GgmlType::kF32, {10, 10}, src.vector(100, 0.f, kScale));
  } else if (!merger25) {  // Qwen2.5-VL's files have no position table
    w.add_tensor("v.position_embd.weight", GgmlType::kF32, {d, n_pos}, src.vector(d * n_pos, 0.f, kScale));
  }
  if (p.pre_ln) {
    vec("v.pre_ln.weight", d, 1.f, 0.05f);
    vec("v.pre_ln.bias", d, 0.f, kScale);
  }
  const std::string first = p.ffn_names_swapped ? "ffn_down" : "ffn_up";
  const std::string second = p.ffn_names_swapped ? "ffn_up" : "ffn_down";
  for (int i = 0; i < p.n_layer; ++i) {
    const std::string b = "v.blk." + std::to_string(i) + ".";
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      w.add_tensor(b + m + ".weight", mt, {d, d}, src.matrix(mt, d, d, kScale));
      vec(b + m + ".bias", d, 0.f, kScale);
    }
    vec(b + "ln1.weight", d, 1.f, 0.05f);
    if (!merger25) vec(b + "ln1.bias", d, 0.f, kScale);
    if (merger25) {  // SwiGLU gate, beside ffn_up (the names agree with the shapes)
      w.add_tensor(b + "ffn_gate.weight", mt, {d, ff}, src.matrix(mt, d, ff, kScale));
      vec(b + "ffn_gate.bias", ff, 0.f, kScale);
    }
    w.add_tensor(b + first + ".weight", mt, {d, ff}, src.matrix(mt, d, ff, kScale));
    vec(b + first + ".bias", ff, 0.f, kScale);
    w.add_tensor(b + second + ".weight", mt, {ff, d}, src.matrix(mt, ff, d, kScale));
    vec(b + second + ".bias", d, 0.f, kScale);
    vec(b + "ln2.weight", d, 1.f, 0.05f);
    if (!merger25) vec(b + "ln2.bias", d, 0.f, kScale);
  }
  if (p.post_ln) {
    vec("v.post_ln.weight", d, 1.f, 0.05f);
    if (!merger25) vec("v.post_ln.bias", d, 0.f, kScale);
  }
  if (adapter) {  // GLM-Edge adapter
    const int64_t e = p.projection_dim, aff = p.adapter_ff;
    w.add_tensor("adapter.conv.weight", mt, {2, 2, d, e}, src.matrix(mt, 4 * d, e, kScale));
    vec("adapter.conv.bias", e, 0.f, kScale);
    w.add_tensor("adapter.linear.linear.weight", mt, {e, e}, src.matrix(mt, e, e, kScale));
    vec("adapter.linear.norm1.weight", e, 1.f, 0.05f);
    vec("adapter.linear.norm1.bias", e, 0.f, kScale);
    w.add_tensor("adapter.linear.dense_h_to_4h.weight", mt, {e, aff}, src.matrix(mt, e, aff, kScale));
    w.add_tensor("adapter.linear.gate.weight", mt, {e, aff}, src.matrix(mt, e, aff, kScale));
    w.add_tensor("adapter.linear.dense_4h_to_h.weight", mt, {aff, e}, src.matrix(mt, aff, e, kScale));
    vec("adapter.boi", e, 0.f, 1.f);
    vec("adapter.eoi", e, 0.f, 1.f);
  } else if (gemma3) {
    // mm.input_projection is used as x * W: ne [text width, vision width].
    w.add_tensor("mm.input_projection.weight", mt, {p.projection_dim, d}, src.matrix(mt, p.projection_dim, d, kScale));
    vec("mm.soft_emb_norm.weight", d, 1.f, 0.05f);
  } else if (idefics3) {
    const int64_t in = d * p.scale_factor * p.scale_factor;
    w.add_tensor("mm.model.fc.weight", mt, {in, p.projection_dim}, src.matrix(mt, in, p.projection_dim, kScale));
  } else {
    const int64_t in = merger || merger25 ? 4 * d : d;  // the merger concatenates 2x2 patches
    w.add_tensor("mm.0.weight", mt, {in, p.mlp_hidden}, src.matrix(mt, in, p.mlp_hidden, kScale));
    vec("mm.0.bias", p.mlp_hidden, 0.f, kScale);
    w.add_tensor("mm.2.weight", mt, {p.mlp_hidden, p.projection_dim},
                 src.matrix(mt, p.mlp_hidden, p.projection_dim, kScale));
    vec("mm.2.bias", p.projection_dim, 0.f, kScale);
    if (!p.grid_pinpoints.empty()) vec("model.image_newline", p.projection_dim, 0.f, kScale);
  }
  return w.write(path);
}

}  // namespace zs::engine
