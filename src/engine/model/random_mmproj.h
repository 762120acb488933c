#pragma once
// Writes a vision projector (`mmproj` GGUF, `clip` architecture) with random weights in the
// shapes, tensor names and metadata keys of published files, for benchmarks and tests that
// need a real-sized (or a tiny) vision encoder without downloading one.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

struct MmprojPreset {
  std::string name;
  std::string projector_type;  // "mlp" (LLaVA-1.5/1.6), "idefics3" (SmolVLM), "adapter" (GLM-Edge-V),
                               // "qwen2vl_merger" (Qwen2-VL), "qwen2.5vl_merger" (Qwen2.5-VL),
                               // "gemma3" (Gemma 3)
  int image_size = 0;
  int patch_size = 0;
  int n_embd = 0;
  int n_layer = 0;  // blocks stored in the file
  int n_head = 0;
  int n_ff = 0;
  bool class_token = false;
  bool pre_ln = false;   // CLIP: LayerNorm before the blocks
  bool post_ln = false;  // SigLIP: LayerNorm after them
  bool patch_bias = false;
  bool use_gelu = true;  // false: quick GELU
  // The legacy LLaVA converter stores the MLP's first matrix as ffn_down and the second as
  // ffn_up; newer converters use the names the other way round.
  bool ffn_names_swapped = false;
  float eps = 1e-6f;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
  int scale_factor = 1;     // idefics3 pixel shuffle; gemma3 pooling kernel (written only when not 4)
  int preproc_image_size = 0;  // idefics3: clip.vision.preproc_image_size (0: not written)
  int mlp_hidden = 0;       // mlp: width between mm.0 and mm.2
  int projection_dim = 0;   // the text model's embedding width
  int clip_projection_dim = 0;  // clip.vision.projection_dim as the converter writes it
  // LLaVA-1.6 anyres: (width, height) grid resolutions and the model.image_newline tensor.
  std::vector<std::array<int, 2>> grid_pinpoints;
  // GLM-Edge-V adapter: the SwiGLU width (conv output = projection_dim).
  int adapter_ff = 0;
  // Qwen2.5-VL: clip.vision.n_wa_pattern (block il full-attention when (il + 1) % it == 0);
  // its blocks have RMSNorm and a SwiGLU FFN (ffn_gate, ffn_up, ffn_down), n_ff wide.
  int n_wa_pattern = 0;
};

core::Result<MmprojPreset> find_mmproj_preset(const std::string& name);
std::vector<std::string> mmproj_preset_names();

// matrix_type: F32 or F16 for the matrices (patch embedding, attention, MLP, projector);
// norms, biases, class and position embeddings are F32 as the converters write them.
core::Status write_random_mmproj(const MmprojPreset& preset, GgmlType matrix_type, const std::string& path,
                                 uint64_t seed = 1);

}  // namespace zs::engine
