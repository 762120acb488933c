#pragma once
// One forward pass of a text model over a batch of rows from any number of sequences: each
// row is a token or an embedding at a position of some sequence, whose keys and values go
// to (and are read from) the paged KV cache through that sequence's block table. The
// matrix products run once over all rows, so weights are read once per step for the batch.
// This one decoder graph computes every decoder family; the family's knobs in ModelConfig
// (soft-capping, post-norms, sliding window, GELU or SiLU gating, experts, LongRoPE) select
// the variations. Not thread-safe: one caller at a time.
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/batch/kv_pool.h"
#include "engine/model/moe.h"
#include "engine/model/text_model.h"

namespace zs::engine {

struct BatchRows {
  std::vector<int32_t> tokens;              // per row; ignored where an embedding is given
  std::vector<const float*> embeddings;     // per row: n_embd values, or nullptr for a token row
  std::vector<int32_t> positions;           // per row
  std::vector<const int32_t*> block_tables; // per row: its sequence's table
  std::vector<int32_t> logit_rows;          // rows whose next-token logits are wanted

  int64_t size() const { return static_cast<int64_t>(positions.size()); }
  void clear();
  void add_token(int32_t token, int32_t position, const int32_t* table, bool want_logits);
  void add_embedding(const float* embedding, int32_t position, const int32_t* table, bool want_logits);
};

class Forward {
 public:
  // max_rows: the most rows one call may carry. n_ctx: the instance's context size, which
  // chooses LongRoPE's factor set the way the reference does (see families/phi3.cc).
  Forward(const TextModel& model, Backend& backend, KvPool& kv, int max_rows, int n_ctx);

  // logits receives logit_rows.size() rows of n_vocab values.
  core::Status run(const BatchRows& batch, float* logits);
  int max_rows() const { return max_rows_; }

 private:
  const TextModel& model_;
  Backend& backend_;
  KvPool& kv_;
  int max_rows_;
  const float* rope_factors_;  // the frequency divisors in use, or null
  std::unique_ptr<MoeFfn> moe_;
  float *x_, *h_, *q_, *k_, *v_, *attn_, *gate_, *up_, *last_;
  std::vector<int32_t> cache_rows_;
};

}  // namespace zs::engine
