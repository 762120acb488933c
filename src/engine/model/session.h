#pragma once
// One sequence's inference state over a TextModel: its f16 KV cache and activation
// buffers. eval() appends tokens (or precomputed embeddings, for images) to the sequence
// and leaves the logits of the last one. Prompts longer than the batch are evaluated in chunks.
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/model/text_model.h"

namespace zs::engine {

class Session {
 public:
  // n_ctx: most positions the sequence may hold; max_batch: tokens per forward pass.
  Session(const TextModel& model, Backend& backend, int n_ctx, int max_batch = 256);

  core::Status eval(const int32_t* tokens, int64_t n);
  core::Status eval(const std::vector<int32_t>& tokens) { return eval(tokens.data(), static_cast<int64_t>(tokens.size())); }
  // n rows of n_embd values each, fed in place of token embeddings.
  core::Status eval_embeddings(const float* embeddings, int64_t n);

  const float* logits() const { return logits_.data(); }
  int n_vocab() const { return model_.config().n_vocab; }
  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  // Forgets positions from n on (n <= n_past), e.g. to start a new prompt on a shared prefix.
  void truncate(int n);

 private:
  core::Status forward(const int32_t* tokens, const float* embeddings, int64_t n);

  const TextModel& model_;
  Backend& backend_;
  int n_ctx_;
  int max_batch_;
  int n_past_ = 0;
  std::vector<uint16_t*> k_cache_, v_cache_;  // per layer, n_ctx rows of kv_dim
  float *x_, *h_, *q_, *k_, *v_, *attn_, *gate_, *up_, *last_;
  std::vector<float> logits_;
  std::vector<int32_t> positions_;
};

}  // namespace zs::engine
