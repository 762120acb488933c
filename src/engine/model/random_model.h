#pragma once
// Writes a GGUF checkpoint with random weights in the exact shapes of a preset, quantized
// with one of the common file types: the metadata keys and tensor names the GGUF converter
// writes for the preset's architecture (fused attn_qkv / ffn_up for phi3 and chatglm, 3-D
// expert tensors for mixtures of experts, LongRoPE factors, encoder embeddings and norms),
// and a synthetic vocabulary of the preset's VocabStyle.
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/model/model_preset.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

// File types as users know them from Hugging Face file names.
enum class FileType { kF16, kQ8_0, kQ4_0, kQ4_K_M, kQ6_K };
core::Result<FileType> parse_file_type(const std::string& name);
int gguf_file_type_id(FileType ft);  // the `general.file_type` value (llama_ftype)

// The type a matrix gets in a file type (the mix follows the usual llama.cpp choices:
// e.g. Q4_K_M keeps attn_v/ffn_down of some layers and the output matrix in Q6_K (expert
// matrices stay Q4_K, as in the published Mixtral files), fused attn_qkv in Q5_K, attn_k/attn_v of 8-expert models in Q8_0, and falls back to
// 32-blocks where a row is not a multiple of 256). `tensor` is the name without "blk.N.".
GgmlType tensor_type_for(FileType ft, const std::string& tensor, int layer, int n_layer, int64_t n_in, bool is_output,
                         int n_expert = 0);

// One tensor of a generated file, before its contents exist.
struct PlannedTensor {
  enum class Fill { kMatrix, kVector, kValues };
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // ne[0] is the row length
  Fill fill = Fill::kMatrix;
  float mean = 0.f, scale = 0.02f;  // random values (kMatrix: scale only)
  std::vector<float> values;         // kValues: exactly these (LongRoPE factors)
  size_t bytes() const;
};

// Every tensor write_random_model writes for the preset, in file order (for size estimates
// and tests; nothing is generated).
std::vector<PlannedTensor> plan_random_model(const ModelPreset& preset, FileType file_type);
uint64_t estimate_file_bytes(const ModelPreset& preset, FileType file_type);  // tensor data only

core::Status write_random_model(const ModelPreset& preset, FileType file_type, const std::string& path,
                                uint64_t seed = 1);

}  // namespace zs::engine
