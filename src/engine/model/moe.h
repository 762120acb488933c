#pragma once
// Mixture-of-experts FFN: a router picks n_expert_used of n_expert experts per token, and
// only those experts run. Tokens of a batch routed to the same expert are gathered and go
// through that expert in one product, so each chosen expert's weights are read once per step
// however many tokens chose it; experts nobody chose are not read at all. A single token
// (decode) runs all its experts' products in two dispatches (gate/up together, then downs).
// Not thread-safe: one per Forward.
#include <cstdint>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/model_config.h"
#include "engine/model/model_weights.h"

namespace zs::engine {

struct ExpertChoice {
  int expert = 0;
  float weight = 0.f;
};

// gate = act(gate) * up, with the family's activation (GELU through the reference's table, or
// SiLU): the gated FFNs of every decoder family, dense and expert alike.
void gated_activation(Backend& backend, FfnActivation act, float* gate, const float* up, int64_t n);

// One token's routing: p = softmax(logits); the k largest p (ties: the lower expert index
// first); weights p themselves, or p / (sum of the k chosen) when `normalize`.
void route_token(const float* logits, int n_expert, int k, bool normalize, ExpertChoice* out);

class MoeFfn {
 public:
  MoeFfn(const ModelConfig& config, Backend& backend, int max_rows);

  // out[t] = sum over token t's chosen experts e of w_e * down_e(act(gate_e h) * up_e h),
  // plus the shared expert behind its sigmoid gate when the layer has one.
  void run(const LayerWeights& L, const float* h, int64_t n, float* out);

  // Expert matrices the last run() multiplied with (each chosen expert counted once).
  int experts_run_last() const { return experts_run_; }

 private:
  static constexpr int kMaxSingleExperts = 8;  // experts per token the single-token path takes
  void run_single(const LayerWeights& L, const float* h, float* out);
  void add_shared_expert(const LayerWeights& L, const float* h, int64_t n, float* out);
  void add_shared_output(const LayerWeights& L, const float* h, int64_t n, float* out);

  const ModelConfig& c_;
  Backend& backend_;
  std::vector<float> router_logits_;
  std::vector<ExpertChoice> choices_;
  std::vector<std::vector<int32_t>> rows_of_expert_;
  float *gathered_, *gate_, *up_, *expert_out_, *sh_gate_, *sh_up_, *sh_out_;
  float* router_;
  int experts_run_ = 0;
};

}  // namespace zs::engine
