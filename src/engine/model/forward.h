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

// The rotary position of a row for M-RoPE models (Qwen2-VL): text advances all components
// together; an image's rows take their grid coordinates (see MultimodalPrompt).
struct RopePosition {
  int32_t t = 0, h = 0, w = 0, e = 0;
  static RopePosition text(int32_t p) { return {p, p, p, 0}; }
  // Row k of an image grid `cols` wide (row-major) placed when the counter is at c; the
  // counter then advances by grid_span(rows, cols).
  static RopePosition grid(int32_t c, int32_t k, int32_t cols) { return {c, c + k / cols, c + k % cols, 0}; }
  static int32_t grid_span(int32_t rows, int32_t cols) { return rows > cols ? rows : cols; }
};

struct BatchRows {
  std::vector<int32_t> tokens;              // per row; ignored where an embedding is given
  std::vector<const float*> embeddings;     // per row: n_embd values, or nullptr for a token row
  std::vector<int32_t> positions;           // per row: its place in the sequence (KV row, causal mask)
  std::vector<const int32_t*> block_tables; // per row: its sequence's table
  std::vector<int32_t> logit_rows;          // rows whose next-token logits are wanted
  // M-RoPE models: 4 values per row (RopePosition); when empty, rows rotate by `positions`.
  std::vector<int32_t> rope_positions;
  // Per row, or empty: the row sees its sequence's positions below this (an image's rows see
  // the whole image; all of its rows must then be in the same batch).
  std::vector<int32_t> visible_end;

  int64_t size() const { return static_cast<int64_t>(positions.size()); }
  void clear();
  void add_token(int32_t token, int32_t position, const int32_t* table, bool want_logits);
  void add_embedding(const float* embedding, int32_t position, const int32_t* table, bool want_logits);
  // The rotary position of the row added last (M-RoPE models; add one for every row or none).
  void set_rope_position(RopePosition p);
  // Where the visible positions of the row added last end (one for every row or none).
  void set_visible_end(int32_t end) { visible_end.push_back(end); }
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
  std::vector<int32_t> mrope_;  // text rotary positions of M-RoPE models
};

}  // namespace zs::engine
