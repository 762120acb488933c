#include "engine/model/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace zs::engine {

using core::Status;

Session::Session(const TextModel& model, Backend& backend, int n_ctx, int max_batch)
    : model_(model), backend_(backend), n_ctx_(n_ctx), max_batch_(std::max(1, max_batch)) {
  const ModelConfig& c = model.config();
  for (int i = 0; i < c.n_layer; ++i) {
    k_cache_.push_back(backend.alloc_f16(static_cast<int64_t>(n_ctx) * c.kv_dim()));
    v_cache_.push_back(backend.alloc_f16(static_cast<int64_t>(n_ctx) * c.kv_dim()));
  }
  const int64_t b = max_batch_;
  x_ = backend.alloc(b * c.n_embd);
  h_ = backend.alloc(b * c.n_embd);
  q_ = backend.alloc(b * c.q_dim());
  k_ = backend.alloc(b * c.kv_dim());
  v_ = backend.alloc(b * c.kv_dim());
  attn_ = backend.alloc(b * std::max(c.q_dim(), c.n_embd));
  gate_ = backend.alloc(b * c.n_ff);
  up_ = backend.alloc(b * c.n_ff);
  last_ = backend.alloc(c.n_embd);
  logits_.resize(c.n_vocab);
  positions_.resize(max_batch_);
}

void Session::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

Status Session::eval(const int32_t* tokens, int64_t n) {
  for (int64_t done = 0; done < n; done += max_batch_)
    ZS_RETURN_IF_ERROR(forward(tokens + done, nullptr, std::min<int64_t>(max_batch_, n - done)));
  return Status::ok();
}

Status Session::eval_embeddings(const float* embeddings, int64_t n) {
  const int64_t d = model_.config().n_embd;
  for (int64_t done = 0; done < n; done += max_batch_)
    ZS_RETURN_IF_ERROR(forward(nullptr, embeddings + done * d, std::min<int64_t>(max_batch_, n - done)));
  return Status::ok();
}

Status Session::forward(const int32_t* tokens, const float* embeddings, int64_t n) {
  const ModelConfig& c = model_.config();
  if (n_past_ + n > n_ctx_)
    return Status::error("the sequence needs " + std::to_string(n_past_ + n) + " positions but the context holds " +
                         std::to_string(n_ctx_));
  if (tokens) {
    ZS_RETURN_IF_ERROR(backend_.get_rows(model_.token_embedding(), tokens, n, x_));
  } else {
    std::memcpy(x_, embeddings, sizeof(float) * n * c.n_embd);
  }
  for (int64_t t = 0; t < n; ++t) positions_[t] = static_cast<int32_t>(n_past_ + t);

  RopeParams rq{c.n_head, c.head_dim, c.rope_dims, c.rope_base, c.rope_freq_scale, c.rope_mode(),
                model_.rope_freq_factors()};
  RopeParams rk = rq;
  rk.n_head = c.n_head_kv;
  AttentionArgs att;
  att.q = q_;
  att.n_tokens = n;
  att.positions = positions_.data();
  att.n_head = c.n_head;
  att.n_head_kv = c.n_head_kv;
  att.head_dim = c.head_dim;
  att.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  att.out = attn_;

  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = model_.layers()[l];
    backend_.rms_norm(x_, L.attn_norm, n, c.n_embd, c.rms_eps, h_);
    backend_.matmul(L.wq, h_, n, q_);
    backend_.matmul(L.wk, h_, n, k_);
    backend_.matmul(L.wv, h_, n, v_);
    if (L.bq) backend_.add_bias(q_, L.bq, n, c.q_dim());
    if (L.bk) backend_.add_bias(k_, L.bk, n, c.kv_dim());
    if (L.bv) backend_.add_bias(v_, L.bv, n, c.kv_dim());
    backend_.rope(q_, n, positions_.data(), rq);
    backend_.rope(k_, n, positions_.data(), rk);
    backend_.store_kv(k_, v_, n, positions_.data(), c.kv_dim(), k_cache_[l], v_cache_[l]);
    att.k_cache = k_cache_[l];
    att.v_cache = v_cache_[l];
    backend_.attention(att);
    backend_.matmul(L.wo, attn_, n, h_);
    backend_.add(x_, h_, n * c.n_embd);

    backend_.rms_norm(x_, L.ffn_norm, n, c.n_embd, c.rms_eps, h_);
    backend_.matmul(L.ffn_gate, h_, n, gate_);
    backend_.matmul(L.ffn_up, h_, n, up_);
    backend_.silu_mul(gate_, up_, n * c.n_ff);
    backend_.matmul(L.ffn_down, gate_, n, h_);
    backend_.add(x_, h_, n * c.n_embd);
  }
  backend_.rms_norm(x_ + (n - 1) * c.n_embd, model_.output_norm(), 1, c.n_embd, c.rms_eps, last_);
  backend_.matmul(model_.output(), last_, 1, logits_.data());
  n_past_ += static_cast<int>(n);
  return Status::ok();
}

}  // namespace zs::engine
