#pragma once
// One sequence's inference state over a TextModel, for single-stream use (`zeroserve run`,
// `golden`, `bench`): a private paged KV cache covering n_ctx positions and a forward pass.
// eval() appends tokens (or embeddings, for images) and leaves the logits of the last one.
// Prompts longer than the batch are evaluated in chunks. The worker's continuous batching
// drives Forward directly with many sequences instead.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/batch/kv_pool.h"
#include "engine/model/forward.h"
#include "engine/model/text_model.h"

namespace zs::engine {

class Session {
 public:
  Session(const TextModel& model, Backend& backend, int n_ctx, int max_batch = 256);

  core::Status eval(const int32_t* tokens, int64_t n);
  core::Status eval(const std::vector<int32_t>& tokens) { return eval(tokens.data(), static_cast<int64_t>(tokens.size())); }
  // n rows of n_embd values each, fed in place of token embeddings. For M-RoPE models a
  // grid_rows x grid_cols grid (row-major, n = rows * cols) takes its coordinates as rotary
  // positions, and later text continues after max(rows, cols) (see MultimodalPrompt).
  // bidirectional: the n rows see each other (one batch, however many; Qwen2-VL, Gemma 3); a
  // sliding window still hides keys earlier than the window before each row. Otherwise the
  // rows attend causally like text (Qwen2.5-VL).
  core::Status eval_embeddings(const float* embeddings, int64_t n, int grid_rows = 0, int grid_cols = 0,
                               bool bidirectional = false);

  const float* logits() const { return logits_.data(); }
  int n_vocab() const { return model_.config().n_vocab; }
  int n_past() const { return n_past_; }
  int n_ctx() const { return n_ctx_; }
  // Forgets positions from n on (n <= n_past), e.g. to start a new prompt on a shared prefix.
  void truncate(int n);

 private:
  core::Status eval_rows(const int32_t* tokens, const float* embeddings, int64_t n, int grid_rows = 0,
                         int grid_cols = 0, bool bidirectional = false);

  const TextModel& model_;
  Backend& backend_;
  int n_ctx_;
  int n_past_ = 0;
  int rope_delta_ = 0;  // M-RoPE: rotary position of the next text position minus n_past_
  std::unique_ptr<KvPool> kv_;
  std::unique_ptr<Forward> forward_;
  std::vector<int32_t> block_table_;
  BatchRows rows_;
  std::vector<float> logits_;
};

}  // namespace zs::engine
