#include "engine/model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace zs::engine {

void route_token(const float* logits, int n_expert, int k, bool normalize, ExpertChoice* out) {
  float max_l = -INFINITY;
  for (int e = 0; e < n_expert; ++e) max_l = std::max(max_l, logits[e]);
  std::vector<float> p(n_expert);
  double sum = 0;
  for (int e = 0; e < n_expert; ++e) sum += (p[e] = std::exp(logits[e] - max_l));
  for (int e = 0; e < n_expert; ++e) p[e] = static_cast<float>(p[e] / sum);
  std::vector<int> order(n_expert);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  double chosen = 0;
  for (int i = 0; i < k; ++i) chosen += p[order[i]];
  for (int i = 0; i < k; ++i) {
    out[i].expert = order[i];
    out[i].weight = normalize ? static_cast<float>(p[order[i]] / chosen) : p[order[i]];
  }
}

MoeFfn::MoeFfn(const ModelConfig& c, Backend& backend, int max_rows) : c_(c), backend_(backend) {
  const int64_t b = std::max(1, max_rows);
  const int64_t e = std::max<int64_t>(b, c.n_expert_used);  // the single-token path keeps every chosen expert's rows
  router_ = backend.alloc(b * c.n_expert);
  gathered_ = backend.alloc(b * c.n_embd);
  gate_ = backend.alloc(e * c.n_ff_exp);
  up_ = backend.alloc(e * c.n_ff_exp);
  expert_out_ = backend.alloc(e * c.n_embd);
  if (c.n_ff_shexp > 0) {
    sh_gate_ = backend.alloc(b * c.n_ff_shexp);
    sh_up_ = backend.alloc(b * c.n_ff_shexp);
    sh_out_ = backend.alloc(b * c.n_embd);
  } else {
    sh_gate_ = sh_up_ = sh_out_ = nullptr;
  }
  choices_.resize(static_cast<size_t>(b) * c.n_expert_used);
  rows_of_expert_.resize(c.n_expert);
}

void gated_activation(Backend& backend, FfnActivation act, float* gate, const float* up, int64_t n) {
  if (act == FfnActivation::kGelu) {
    backend.gelu(gate, n);
    backend.mul(gate, up, n);
  } else {
    backend.silu_mul(gate, up, n);
  }
}

void MoeFfn::run(const LayerWeights& L, const float* h, int64_t n, float* out) {
  const int d = c_.n_embd, k = c_.n_expert_used;
  backend_.matmul(L.ffn_gate_inp, h, n, router_);
  for (auto& rows : rows_of_expert_) rows.clear();
  for (int64_t t = 0; t < n; ++t) {
    route_token(router_ + t * c_.n_expert, c_.n_expert, k, c_.expert_weights_norm, &choices_[t * k]);
    for (int i = 0; i < k; ++i) rows_of_expert_[choices_[t * k + i].expert].push_back(static_cast<int32_t>(t));
  }
  std::memset(out, 0, sizeof(float) * n * d);
  experts_run_ = 0;
  if (n == 1 && k <= kMaxSingleExperts) {
    run_single(L, h, out);
    return;
  }
  for (int e = 0; e < c_.n_expert; ++e) {
    const auto& rows = rows_of_expert_[e];
    if (rows.empty()) continue;
    ++experts_run_;
    const int64_t m = static_cast<int64_t>(rows.size());
    for (int64_t r = 0; r < m; ++r) std::memcpy(gathered_ + r * d, h + rows[r] * d, sizeof(float) * d);
    const WeightView gate_up[2] = {L.gate_exps.at(e), L.up_exps.at(e)};
    float* const gate_up_out[2] = {gate_, up_};
    backend_.matmul_group(gate_up, gate_up_out, 2, gathered_, m);
    gated_activation(backend_, c_.ffn_act, gate_, up_, m * c_.n_ff_exp);
    backend_.matmul(L.down_exps.at(e), gate_, m, expert_out_);
    for (int64_t r = 0; r < m; ++r) {
      const int64_t t = rows[r];
      float w = 0;
      for (int i = 0; i < k; ++i)
        if (choices_[t * k + i].expert == e) w = choices_[t * k + i].weight;
      float* o = out + t * d;
      const float* x = expert_out_ + r * d;
      for (int j = 0; j < d; ++j) o[j] += w * x[j];
    }
  }
  add_shared_expert(L, h, n, out);
}

// One token (decode): every chosen expert sees the same input, so the gate/up products of
// all of them and of the shared expert run in one dispatch, and their down products (each on
// its own activations) in another: three dispatches per layer with the router instead of
// 2 per expert + 3. Each product is computed exactly as the per-expert path computes it, and
// the outputs are added in the same order (ascending expert, then the shared expert).
void MoeFfn::run_single(const LayerWeights& L, const float* h, float* out) {
  const int d = c_.n_embd, k = c_.n_expert_used, fe = c_.n_ff_exp;
  ExpertChoice chosen[kMaxSingleExperts];
  std::copy(choices_.begin(), choices_.begin() + k, chosen);
  for (int i = 1; i < k; ++i)  // ascending expert index (insertion sort of at most 8)
    for (int j = i; j > 0 && chosen[j].expert < chosen[j - 1].expert; --j) std::swap(chosen[j], chosen[j - 1]);
  const bool shared = L.ffn_gate_inp_shexp != nullptr;
  WeightView ws[2 * kMaxSingleExperts + 2];
  float* ys[2 * kMaxSingleExperts + 2];
  const float* xs[kMaxSingleExperts + 1];
  int n = 0;
  for (int i = 0; i < k; ++i) {
    ws[n] = L.gate_exps.at(chosen[i].expert);
    ys[n++] = gate_ + i * fe;
    ws[n] = L.up_exps.at(chosen[i].expert);
    ys[n++] = up_ + i * fe;
  }
  if (shared) {
    ws[n] = L.gate_shexp;
    ys[n++] = sh_gate_;
    ws[n] = L.up_shexp;
    ys[n++] = sh_up_;
  }
  backend_.matmul_group(ws, ys, n, h, 1);
  for (int i = 0; i < k; ++i) gated_activation(backend_, c_.ffn_act, gate_ + i * fe, up_ + i * fe, fe);
  if (shared) gated_activation(backend_, c_.ffn_act, sh_gate_, sh_up_, c_.n_ff_shexp);
  // Down products: experts share a row length; the shared expert's may differ (the backend
  // then runs it on its own).
  n = 0;
  for (int i = 0; i < k; ++i) {
    ws[n] = L.down_exps.at(chosen[i].expert);
    xs[n] = gate_ + i * fe;
    ys[n++] = expert_out_ + i * d;
  }
  if (shared) {
    ws[n] = L.down_shexp;
    xs[n] = sh_gate_;
    ys[n++] = sh_out_;
  }
  backend_.matmul_multi(ws, ys, xs, n, 1);
  experts_run_ = k;
  for (int i = 0; i < k; ++i) {
    const float w = chosen[i].weight;
    const float* x = expert_out_ + i * d;
    for (int j = 0; j < d; ++j) out[j] += w * x[j];
  }
  if (shared) add_shared_output(L, h, 1, out);
}

void MoeFfn::add_shared_expert(const LayerWeights& L, const float* h, int64_t n, float* out) {
  if (L.ffn_gate_inp_shexp) {
    const WeightView gate_up[2] = {L.gate_shexp, L.up_shexp};
    float* const gate_up_out[2] = {sh_gate_, sh_up_};
    backend_.matmul_group(gate_up, gate_up_out, 2, h, n);
    gated_activation(backend_, c_.ffn_act, sh_gate_, sh_up_, n * c_.n_ff_shexp);
    backend_.matmul(L.down_shexp, sh_gate_, n, sh_out_);
    add_shared_output(L, h, n, out);
  }
}

// out[t] += sigmoid(shexp_gate . h[t]) * sh_out_[t].
void MoeFfn::add_shared_output(const LayerWeights& L, const float* h, int64_t n, float* out) {
  const int d = c_.n_embd;
  for (int64_t t = 0; t < n; ++t) {
    const float* ht = h + t * d;
    float z = 0;
    for (int j = 0; j < d; ++j) z += L.ffn_gate_inp_shexp[j] * ht[j];
    const float g = 1.0f / (1.0f + std::exp(-z));
    float* o = out + t * d;
    const float* x = sh_out_ + t * d;
    for (int j = 0; j < d; ++j) o[j] += g * x[j];
  }
}

}  // namespace zs::engine
