#pragma once
// Writes a GGUF checkpoint with random weights in the exact shapes of a preset, quantized
// with one of the common file types, and a synthetic SentencePiece-style vocabulary.
#include <cstdint>
#include <string>

#include "core/status.h"
#include "engine/model/model_preset.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

// File types as users know them from Hugging Face file names.
enum class FileType { kF16, kQ8_0, kQ4_0, kQ4_K_M, kQ6_K };
core::Result<FileType> parse_file_type(const std::string& name);

// The type a tensor gets in a file type (the mix follows the usual llama.cpp choices:
// e.g. Q4_K_M keeps attn_v/ffn_down of some layers and the output matrix in Q6_K, and
// falls back to 32-blocks where a row is not a multiple of 256).
GgmlType tensor_type_for(FileType ft, const std::string& tensor, int layer, int n_layer, int64_t n_in, bool is_output);

core::Status write_random_model(const ModelPreset& preset, FileType file_type, const std::string& path,
                                uint64_t seed = 1);

}  // namespace zs::engine
