#include "engine/model/forward.h"

#include <cmath>
#include <cstring>

namespace zs::engine {

using core::Status;

void BatchRows::clear() {
  tokens.clear();
  embeddings.clear();
  positions.clear();
  block_tables.clear();
  logit_rows.clear();
  rope_positions.clear();
  visible_end.clear();
}

void BatchRows::set_rope_position(RopePosition p) {
  rope_positions.insert(rope_positions.end(), {p.t, p.h, p.w, p.e});
}

void BatchRows::add_token(int32_t token, int32_t position, const int32_t* table, bool want_logits) {
  if (want_logits) logit_rows.push_back(static_cast<int32_t>(size()));
  tokens.push_back(token);
  embeddings.push_back(nullptr);
  positions.push_back(position);
  block_tables.push_back(table);
}

void BatchRows::add_embedding(const float* embedding, int32_t position, const int32_t* table, bool want_logits) {
  if (want_logits) logit_rows.push_back(static_cast<int32_t>(size()));
  tokens.push_back(-1);
  embeddings.push_back(embedding);
  positions.push_back(position);
  block_tables.push_back(table);
}

Forward::Forward(const TextModel& model, Backend& backend, KvPool& kv, int max_rows, int n_ctx)
    : model_(model), backend_(backend), kv_(kv), max_rows_(std::max(1, max_rows)) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  rope_factors_ = w.rope_freqs;
  if (w.rope_factors_long) {
    // The reference pads the context to a multiple of 32 before comparing.
    const int padded = (std::max(1, n_ctx) + 31) / 32 * 32;
    rope_factors_ = padded > c.rope_n_ctx_orig ? w.rope_factors_long : w.rope_factors_short;
  }
  const int64_t b = max_rows_;
  x_ = backend.alloc(b * c.n_embd);
  h_ = backend.alloc(b * c.n_embd);
  q_ = backend.alloc(b * c.q_dim());
  k_ = backend.alloc(b * c.kv_dim());
  v_ = backend.alloc(b * c.kv_dim());
  attn_ = backend.alloc(b * std::max(c.q_dim(), c.n_embd));
  gate_ = backend.alloc(b * std::max(1, c.n_ff));
  up_ = backend.alloc(b * std::max(1, c.n_ff));
  last_ = backend.alloc(b * c.n_embd);
  if (c.is_moe()) moe_ = std::make_unique<MoeFfn>(c, backend, max_rows_);
  cache_rows_.resize(max_rows_);
}

Status Forward::run(const BatchRows& batch, float* logits) {
  const ModelConfig& c = model_.config();
  const int64_t n = batch.size();
  if (n == 0) return Status::ok();
  if (n > max_rows_) return Status::error("batch of " + std::to_string(n) + " rows exceeds " + std::to_string(max_rows_));
  if (c.is_encoder()) return Status::error("'" + c.arch_name + "' is an embedding model: it has no next-token logits");
  const int bs = kv_.block_size();
  for (int64_t t = 0; t < n; ++t) {
    float* row = x_ + t * c.n_embd;
    if (batch.embeddings[t]) {
      std::memcpy(row, batch.embeddings[t], sizeof(float) * c.n_embd);
    } else {
      ZS_RETURN_IF_ERROR(backend_.get_rows(model_.token_embedding(), &batch.tokens[t], 1, row));
      if (c.embd_scale > 0) backend_.scale(row, c.embd_scale, c.n_embd);
    }
    const int32_t p = batch.positions[t];
    cache_rows_[t] = batch.block_tables[t][p / bs] * bs + p % bs;
  }

  RopeParams rq{c.n_head, c.head_dim, c.rope_dims, c.rope_base, c.rope_freq_scale, c.rope_mode, rope_factors_,
                c.rope_attn_factor, c.rope_sections};
  const int32_t* rope_pos = batch.positions.data();
  if (c.rope_mode == RopeMode::kMrope) {
    if (batch.rope_positions.empty()) {  // text only: every component is the position
      mrope_.clear();
      for (int64_t t = 0; t < n; ++t) {
        const RopePosition p = RopePosition::text(batch.positions[t]);
        mrope_.insert(mrope_.end(), {p.t, p.h, p.w, p.e});
      }
      rope_pos = mrope_.data();
    } else if (static_cast<int64_t>(batch.rope_positions.size()) != 4 * n) {
      return Status::error("M-RoPE batch has " + std::to_string(batch.rope_positions.size()) +
                           " rope position values for " + std::to_string(n) + " rows");
    } else {
      rope_pos = batch.rope_positions.data();
    }
  }
  RopeParams rk = rq;
  rk.n_head = c.n_head_kv;
  AttentionArgs att;
  att.q = q_;
  att.n_tokens = n;
  att.positions = batch.positions.data();
  att.block_tables = batch.block_tables.data();
  att.block_size = bs;
  att.n_head = c.n_head;
  att.n_head_kv = c.n_head_kv;
  att.head_dim = c.head_dim;
  att.scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  att.softcap = c.attn_softcap;
  att.scale_q_first = c.attn_prescale_q;
  // Windowed blocks may rotate with a base and scaling of their own (gemma3).
  RopeParams rq_swa = rq, rk_swa = rk;
  if (c.rope_base_swa > 0) {
    rq_swa.base = rk_swa.base = c.rope_base_swa;
    rq_swa.freq_scale = rk_swa.freq_scale = c.rope_freq_scale_swa;
  }
  if (!batch.visible_end.empty()) {
    if (static_cast<int64_t>(batch.visible_end.size()) != n)
      return Status::error("batch has " + std::to_string(batch.visible_end.size()) + " visibility limits for " +
                           std::to_string(n) + " rows");
    att.visible_end = batch.visible_end.data();
  }
  att.out = attn_;

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = model_.layers()[l];
    // Attention.
    backend_.rms_norm(x_, L.attn_norm, n, c.n_embd, c.rms_eps, h_);
    const WeightView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {q_, k_, v_};
    backend_.matmul_group(qkv, qkv_out, 3, h_, n);
    if (L.bq) backend_.add_bias(q_, L.bq, n, c.q_dim());
    if (L.bk) backend_.add_bias(k_, L.bk, n, c.kv_dim());
    if (L.bv) backend_.add_bias(v_, L.bv, n, c.kv_dim());
    // qwen3, gemma3: each head of Q and K normalised on its own.
    if (L.attn_q_norm) backend_.rms_norm(q_, L.attn_q_norm, n * c.n_head, c.head_dim, c.rms_eps, q_);
    if (L.attn_k_norm) backend_.rms_norm(k_, L.attn_k_norm, n * c.n_head_kv, c.head_dim, c.rms_eps, k_);
    const bool windowed = c.window_on_layer(l);
    if (c.rope_mode != RopeMode::kNone) {
      backend_.rope(q_, n, rope_pos, windowed ? rq_swa : rq);
      backend_.rope(k_, n, rope_pos, windowed ? rk_swa : rk);
    }
    backend_.store_kv(k_, v_, n, cache_rows_.data(), c.kv_dim(), kv_.k(l), kv_.v(l));
    att.k_cache = kv_.k(l);
    att.v_cache = kv_.v(l);
    att.window = windowed ? c.sliding_window : 0;
    backend_.attention(att);
    backend_.matmul(L.wo, attn_, n, h_);
    if (L.bo) backend_.add_bias(h_, L.bo, n, c.n_embd);
    if (L.attn_post_norm) backend_.rms_norm(h_, L.attn_post_norm, n, c.n_embd, c.rms_eps, h_);
    backend_.add(x_, h_, n * c.n_embd);

    // Feed-forward.
    backend_.rms_norm(x_, L.ffn_norm, n, c.n_embd, c.rms_eps, h_);
    float* ffn_out = h_;
    if (moe_) {
      ffn_out = last_;  // the experts read h_ while they write
      moe_->run(L, h_, n, ffn_out);
    } else {
      const WeightView gate_up[2] = {L.ffn_gate, L.ffn_up};
      float* const gate_up_out[2] = {gate_, up_};
      backend_.matmul_group(gate_up, gate_up_out, 2, h_, n);
      gated_activation(backend_, c.ffn_act, gate_, up_, n * c.n_ff);
      backend_.matmul(L.ffn_down, gate_, n, h_);
    }
    if (L.ffn_post_norm) backend_.rms_norm(ffn_out, L.ffn_post_norm, n, c.n_embd, c.rms_eps, ffn_out);
    backend_.add(x_, ffn_out, n * c.n_embd);
  }
  const int64_t n_out = static_cast<int64_t>(batch.logit_rows.size());
  for (int64_t i = 0; i < n_out; ++i)
    backend_.rms_norm(x_ + static_cast<int64_t>(batch.logit_rows[i]) * c.n_embd, model_.output_norm(), 1, c.n_embd,
                      c.rms_eps, last_ + i * c.n_embd);
  if (n_out > 0) {
    backend_.matmul(model_.output(), last_, n_out, logits);
    if (c.final_softcap > 0) backend_.softcap(logits, c.final_softcap, n_out * c.n_vocab);
  }
  return Status::ok();
}

}  // namespace zs::engine
