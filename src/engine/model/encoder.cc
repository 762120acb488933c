#include "engine/model/encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace zs::engine {

using core::Result;
using core::Status;

Encoder::Encoder(const TextModel& model, Backend& backend, int max_rows)
    : model_(model), backend_(backend), max_rows_(std::max(1, max_rows)) {
  const ModelConfig& c = model.config();
  max_input_ = std::min(max_rows_, c.n_ctx_train);
  const int64_t b = max_rows_;
  x_ = backend.alloc(b * c.n_embd);
  h_ = backend.alloc(b * c.n_embd);
  q_ = backend.alloc(b * c.q_dim());
  k_ = backend.alloc(b * c.kv_dim());
  v_ = backend.alloc(b * c.kv_dim());
  attn_ = backend.alloc(b * std::max(c.q_dim(), c.n_embd));
  gate_ = backend.alloc(b * c.n_ff);
  up_ = backend.alloc(b * c.n_ff);
  positions_.resize(max_rows_);
}

Result<std::vector<std::vector<float>>> Encoder::embed(const std::vector<std::vector<int32_t>>& inputs) {
  const ModelConfig& c = model_.config();
  if (!c.is_encoder()) return Status::error("'" + c.arch_name + "' is not an embedding model");
  if (c.n_head_kv != c.n_head) return Status::error("grouped-query attention in an embedding model is not supported");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    if (in.empty()) return Status::error("input " + std::to_string(i) + " has no tokens");
    if (static_cast<int>(in.size()) > max_input_)
      return Status::error("input " + std::to_string(i) + " has " + std::to_string(in.size()) +
                           " tokens, more than the model's context of " + std::to_string(max_input_));
    for (int32_t id : in)
      if (id < 0 || id >= c.n_vocab)
        return Status::error("input " + std::to_string(i) + " has token id " + std::to_string(id) +
                             " outside the vocabulary of " + std::to_string(c.n_vocab));
  }
  std::vector<std::vector<float>> out(inputs.size());
  std::vector<const std::vector<int32_t>*> pass;
  std::vector<size_t> pass_index;
  int rows = 0;
  auto flush = [&]() -> Status {
    if (pass.empty()) return Status::ok();
    std::vector<float> pooled;
    ZS_RETURN_IF_ERROR(run_pass(pass, &pooled));
    for (size_t j = 0; j < pass.size(); ++j)
      out[pass_index[j]].assign(pooled.begin() + j * c.n_embd, pooled.begin() + (j + 1) * c.n_embd);
    pass.clear();
    pass_index.clear();
    rows = 0;
    return Status::ok();
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (rows + static_cast<int>(inputs[i].size()) > max_rows_) ZS_RETURN_IF_ERROR(flush());
    pass.push_back(&inputs[i]);
    pass_index.push_back(i);
    rows += static_cast<int>(inputs[i].size());
  }
  ZS_RETURN_IF_ERROR(flush());
  return out;
}

Status Encoder::run_pass(const std::vector<const std::vector<int32_t>*>& inputs, std::vector<float>* pooled) {
  const ModelConfig& c = model_.config();
  const ModelWeights& w = model_.weights();
  const int d = c.n_embd;
  std::vector<int64_t> starts;
  int64_t n = 0;
  for (const auto* in : inputs) {
    starts.push_back(n);
    for (size_t p = 0; p < in->size(); ++p) positions_[n + p] = static_cast<int32_t>(p);
    n += static_cast<int64_t>(in->size());
  }
  starts.push_back(n);
  ++passes_;

  // Embeddings: token + token type 0 + absolute position (bert), then LayerNorm.
  for (size_t s = 0; s < inputs.size(); ++s)
    ZS_RETURN_IF_ERROR(backend_.get_rows(w.token_embd, inputs[s]->data(), static_cast<int64_t>(inputs[s]->size()),
                                         x_ + starts[s] * d));
  for (int64_t t = 0; t < n; ++t) {
    float* row = x_ + t * d;
    if (w.token_types) backend_.add(row, w.token_types, d);
    if (w.position_embd) backend_.add(row, w.position_embd + static_cast<int64_t>(positions_[t]) * d, d);
  }
  backend_.layer_norm(x_, w.embd_norm, w.embd_norm_b, n, d, c.norm_eps, x_);

  RopeParams rope{c.n_head, c.head_dim, c.rope_dims, c.rope_base, c.rope_freq_scale, c.rope_mode, nullptr, 1.f};
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerWeights& L = w.layers[l];
    const WeightView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {q_, k_, v_};
    backend_.matmul_group(qkv, qkv_out, 3, x_, n);
    if (L.bq) backend_.add_bias(q_, L.bq, n, c.q_dim());
    if (L.bk) backend_.add_bias(k_, L.bk, n, c.kv_dim());
    if (L.bv) backend_.add_bias(v_, L.bv, n, c.kv_dim());
    if (c.rope_mode != RopeMode::kNone) {
      backend_.rope(q_, n, positions_.data(), rope);
      backend_.rope(k_, n, positions_.data(), rope);
    }
    for (size_t s = 0; s < inputs.size(); ++s) {
      const int64_t off = starts[s], len = starts[s + 1] - starts[s];
      backend_.attention_full(q_ + off * c.q_dim(), k_ + off * c.kv_dim(), v_ + off * c.kv_dim(), len, c.n_head,
                              c.head_dim, scale, attn_ + off * c.q_dim());
    }
    backend_.matmul(L.wo, attn_, n, h_);
    if (L.bo) backend_.add_bias(h_, L.bo, n, d);
    backend_.add(x_, h_, n * d);
    backend_.layer_norm(x_, L.attn_post_norm, L.attn_post_norm_b, n, d, c.norm_eps, x_);

    if (L.ffn_gate.data) {  // SwiGLU (nomic-bert)
      const WeightView gate_up[2] = {L.ffn_gate, L.ffn_up};
      float* const gate_up_out[2] = {gate_, up_};
      backend_.matmul_group(gate_up, gate_up_out, 2, x_, n);
      backend_.silu_mul(gate_, up_, n * c.n_ff);
    } else {  // GELU MLP (bert)
      backend_.matmul(L.ffn_up, x_, n, gate_);
      if (L.ffn_up_b) backend_.add_bias(gate_, L.ffn_up_b, n, c.n_ff);
      backend_.gelu(gate_, n * c.n_ff);
    }
    backend_.matmul(L.ffn_down, gate_, n, h_);
    if (L.ffn_down_b) backend_.add_bias(h_, L.ffn_down_b, n, d);
    backend_.add(x_, h_, n * d);
    backend_.layer_norm(x_, L.ffn_post_norm, L.ffn_post_norm_b, n, d, c.norm_eps, x_);
  }

  pooled->assign(inputs.size() * d, 0.f);
  for (size_t s = 0; s < inputs.size(); ++s)
    pool_rows(x_ + starts[s] * d, starts[s + 1] - starts[s], d, c.pooling, pooled->data() + s * d);
  return Status::ok();
}

void pool_rows(const float* hidden, int64_t len, int d, Pooling pooling, float* out) {
  switch (pooling) {
    case Pooling::kMean: {
      std::vector<double> acc(d, 0.0);
      for (int64_t t = 0; t < len; ++t)
        for (int j = 0; j < d; ++j) acc[j] += hidden[t * d + j];
      for (int j = 0; j < d; ++j) out[j] = static_cast<float>(acc[j] / len);
      return;
    }
    case Pooling::kLast: std::memcpy(out, hidden + (len - 1) * d, sizeof(float) * d); return;
    case Pooling::kCls:
    case Pooling::kNone: std::memcpy(out, hidden, sizeof(float) * d); return;
  }
}

void l2_normalize(float* v, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
  if (ss <= 0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(ss));
  for (int64_t i = 0; i < n; ++i) v[i] *= inv;
}

}  // namespace zs::engine
