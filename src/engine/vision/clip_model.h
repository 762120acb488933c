#pragma once
// A vision encoder and projector from an `mmproj` GGUF (`clip` architecture): a ViT in the
// CLIP or SigLIP variant followed by a projector into the text model's embedding space.
// Weights are bound in place to the memory-mapped file.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/image/preprocess.h"
#include "engine/kernels/matmul.h"
#include "engine/vision/gemma3_projector.h"
#include "engine/vision/glm_adapter.h"

namespace zs::engine {

// mlp: LLaVA-1.5, and LLaVA-1.6 when the file has image_grid_pinpoints (anyres tiling);
// idefics3: SmolVLM; qwen2vl_merger: Qwen2-VL (native resolution); adapter: GLM-Edge-V;
// qwen2.5vl_merger: Qwen2.5-VL (native resolution, RMSNorm, SwiGLU, window attention);
// gemma3: Gemma 3 (average pooling, soft_emb_norm, input_projection; gemma3_projector.h).
enum class ProjectorType { kMlp, kIdefics3, kQwen2VlMerger, kAdapter, kQwen25VlMerger, kGemma3 };

struct ClipConfig {
  ProjectorType projector = ProjectorType::kMlp;
  std::string projector_name;
  int image_size = 0;
  int patch_size = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_layer = 0;       // blocks stored in the file
  int n_layer_run = 0;   // blocks evaluated (LLaVA feeds the projector the second-to-last block)
  int projection_dim = 0;
  int scale_factor = 1;  // pixel shuffle (idefics3); average-pooling kernel (gemma3)
  // idefics3: clip.vision.preproc_image_size (the HF size.longest_edge) when the file has it:
  // then images are tiled the 2026 reference's way (idefics3_reference.h); 0: Hugging Face's.
  int preproc_image_size = 0;
  float eps = 1e-6f;
  bool use_gelu = true;  // false: quick GELU
  bool has_class_token = false;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
  // LLaVA-1.6 anyres: the grid resolutions (width, height) an image may be tiled at, from
  // clip.vision.image_grid_pinpoints; each a multiple of image_size. Empty for LLaVA-1.5.
  std::vector<ImageSize> grid_pinpoints;
  // Qwen2.5-VL: block il attends over the whole image when (il + 1) % n_wa_pattern == 0 and
  // inside its window otherwise (clip.vision.n_wa_pattern); the FFN is SwiGLU (clip.use_silu).
  int n_wa_pattern = 0;
  bool use_silu = false;
  // The reference build whose rounding the encoder reproduces: k2026 for the projectors held
  // to ../shared/golden/2026 (gemma3, idefics3): f16 patch convolution, and the LayerNorm,
  // attention and GELU arithmetic of engine/backend/ref2026.h.
  RefBuild ref_build = RefBuild::k2025;

  bool is_anyres() const { return projector == ProjectorType::kMlp && !grid_pinpoints.empty(); }
  // Qwen2-VL and Qwen2.5-VL: images at their own size, 2x2 patches per token, M-RoPE grid.
  bool native_resolution() const {
    return projector == ProjectorType::kQwen2VlMerger || projector == ProjectorType::kQwen25VlMerger;
  }
  // Qwen2.5-VL: whether block il attends over the whole image (else inside windows).
  bool full_attention_block(int il) const {
    return projector != ProjectorType::kQwen25VlMerger || (n_wa_pattern > 0 && (il + 1) % n_wa_pattern == 0);
  }
  int patches_per_side() const { return image_size / patch_size; }
  int n_patches() const { return patches_per_side() * patches_per_side(); }
  // Embedding vectors one image (or one tile) becomes; GLM-Edge's include its boi/eoi rows.
  int tokens_per_image() const {
    if (projector == ProjectorType::kAdapter) return glm_adapter_tokens(patches_per_side());
    return n_patches() / (scale_factor * scale_factor);
  }

  static core::Result<ClipConfig> from_gguf(const GgufFile& file);
};

struct ClipLayer {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  WeightView wq, wk, wv, wo, fc1, fc2;
  const float *bq, *bk, *bv, *bo, *fc1_b, *fc2_b;
  // Qwen2.5-VL's SwiGLU: fc2(silu(ffn_gate x) * fc1 x); empty elsewhere. ln1/ln2 are RMSNorm
  // there (ln1_b, ln2_b null).
  WeightView ffn_gate{};
  const float* ffn_gate_b = nullptr;
};

class ClipModel {
 public:
  static core::Result<std::unique_ptr<ClipModel>> load(const std::string& path);
  static core::Result<std::unique_ptr<ClipModel>> load(std::unique_ptr<GgufFile> file);

  const ClipConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }

  WeightView patch_embd;                  // [3 * patch * patch] -> n_embd
  WeightView patch_embd_1;                // qwen2vl_merger: the conv's second temporal half
  const float* patch_bias = nullptr;
  const float* class_embd = nullptr;
  const float* position_embd = nullptr;   // [n_positions][n_embd]
  const float *pre_ln_w = nullptr, *pre_ln_b = nullptr;
  const float *post_ln_w = nullptr, *post_ln_b = nullptr;
  std::vector<ClipLayer> layers;
  // Projector: mlp = mm0 -> GELU -> mm2; idefics3 = pixel shuffle -> mm0 (no bias);
  // qwen2vl_merger = post_ln, 2x2 blocks concatenated -> mm0 -> GELU -> mm2 (qwen2.5vl_merger:
  // the same with an RMSNorm post_ln).
  WeightView mm0, mm2;
  const float *mm0_b = nullptr, *mm2_b = nullptr;
  // LLaVA-1.6: loaded for completeness; the reference feeds no newline rows (docs/engine.md).
  const float* image_newline = nullptr;
  // GLM-Edge-V (projector adapter).
  GlmAdapterWeights glm;
  // Gemma 3 (projector gemma3).
  Gemma3ProjectorWeights gemma3;

 private:
  ClipModel() = default;
  core::Status bind();

  std::unique_ptr<GgufFile> file_;
  ClipConfig config_;
  std::unique_ptr<TensorBinder> binder_;  // owns vectors converted to f32
  std::vector<uint16_t> patch_embd_f16_;  // gemma3, idefics3: the f32 patch kernel rounded to f16
};

}  // namespace zs::engine
