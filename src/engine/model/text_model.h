#pragma once
// The weights of a text model (decoder or embedding encoder), bound in place to a
// memory-mapped GGUF file by its family's code (family.h). Loading validates every tensor's
// presence, type and shape against the metadata, and copies nothing but the small vectors
// that are not stored as f32. Immutable after load; safe to share between threads.
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/tensor_binder.h"
#include "engine/kernels/matmul.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace zs::engine {

class TextModel {
 public:
  // Takes ownership of an opened GGUF file.
  static core::Result<std::unique_ptr<TextModel>> load(std::unique_ptr<GgufFile> file);
  static core::Result<std::unique_ptr<TextModel>> load(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  const ModelWeights& weights() const { return weights_; }
  const std::vector<LayerWeights>& layers() const { return weights_.layers; }
  const WeightView& token_embedding() const { return weights_.token_embd; }
  const WeightView& output() const { return weights_.output; }
  const float* output_norm() const { return weights_.output_norm; }
  // Bytes of weights one generated token reads: every matrix once (of a mixture of experts,
  // the router, the shared expert and its gate vector, and only the n_expert_used experts a
  // token uses), the output matrix, and one row of the input embeddings. Norm vectors and
  // biases are left out (a few KB).
  size_t weight_bytes_per_token() const;
  // All matrix bytes, every expert included.
  size_t weight_bytes_total() const;
  // Parameters as model cards count them: every matrix and embedding table (output counted
  // once when tied; position/token-type tables of encoders included); "active" counts only
  // the n_expert_used experts of each layer (equal to total for dense models).
  int64_t params_active() const;
  int64_t params_total() const;
  // 2 x the values of every layer matrix one token multiplies with (router, shared expert and
  // n_expert_used experts of a mixture), the output matrix left out (prefill computes logits
  // for the last position only).
  double matrix_flops_per_token() const;

 private:
  TextModel() = default;

  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<TensorBinder> binder_;  // owns vectors converted to f32
};

}  // namespace zs::engine
