#pragma once
// The graph of embedding models (`bert`, `nomic-bert`): bidirectional post-norm transformer
// blocks over each input, then pooling (CLS, mean or last token, as the file says) into one
// vector per input. Many inputs run in one forward pass: their rows are packed together so
// every weight matrix is read once per pass, and attention stays within each input.
// Not thread-safe: one caller at a time (the worker serialises embedding requests).
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/model/text_model.h"

namespace zs::engine {

class Encoder {
 public:
  // max_rows: tokens per forward pass; inputs are packed whole into passes of at most that.
  Encoder(const TextModel& model, Backend& backend, int max_rows = 512);

  // The pooled vector of each input, before any normalisation. Every input must hold 1 to
  // max_input_tokens() ids inside the vocabulary; otherwise an error naming the input.
  core::Result<std::vector<std::vector<float>>> embed(const std::vector<std::vector<int32_t>>& inputs);

  int dim() const { return model_.config().n_embd; }
  int max_input_tokens() const { return max_input_; }
  Pooling pooling() const { return model_.config().pooling; }
  // Forward passes run so far (for tests of batching).
  int64_t passes() const { return passes_; }

 private:
  core::Status run_pass(const std::vector<const std::vector<int32_t>*>& inputs, std::vector<float>* pooled);

  const TextModel& model_;
  Backend& backend_;
  int max_rows_;
  int max_input_;
  int64_t passes_ = 0;
  float *x_, *h_, *q_, *k_, *v_, *attn_, *gate_, *up_;
  std::vector<int32_t> positions_;
};

// One input's vector from its len rows of d hidden values: row 0 (CLS), the mean of all rows
// (MEAN, [CLS] and [SEP] included), or the last row (LAST).
void pool_rows(const float* hidden, int64_t len, int d, Pooling pooling, float* out);

// v /= ||v||_2 (left unchanged when its norm is 0).
void l2_normalize(float* v, int64_t n);

}  // namespace zs::engine
