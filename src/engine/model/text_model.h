#pragma once
// The weights of a llama/qwen2-family decoder, bound in place to a memory-mapped GGUF
// file. Loading validates every tensor's presence, type and shape against the metadata,
// and copies nothing but the small normalisation vectors that are not stored as f32.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/kernels/matmul.h"
#include "engine/model/model_config.h"

namespace zs::engine {

struct LayerWeights {
  const float* attn_norm = nullptr;
  WeightView wq, wk, wv, wo;
  const float* bq = nullptr;  // biases: qwen2 only
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* ffn_norm = nullptr;
  WeightView ffn_gate, ffn_up, ffn_down;
};

class TextModel {
 public:
  // Takes ownership of an opened GGUF file.
  static core::Result<std::unique_ptr<TextModel>> load(std::unique_ptr<GgufFile> file);
  static core::Result<std::unique_ptr<TextModel>> load(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const WeightView& token_embedding() const { return token_embd_; }
  const WeightView& output() const { return output_; }
  const float* output_norm() const { return output_norm_; }
  const float* rope_freq_factors() const { return rope_freqs_; }
  // Bytes of weights read per generated token (every matrix once, embeddings one row).
  size_t weight_bytes_per_token() const;

 private:
  TextModel() = default;
  core::Status bind();

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  std::vector<LayerWeights> layers_;
  WeightView token_embd_, output_;
  const float* output_norm_ = nullptr;
  const float* rope_freqs_ = nullptr;
  std::unique_ptr<TensorBinder> binder_;  // owns vectors converted to f32
};

}  // namespace zs::engine
