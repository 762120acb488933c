#include "engine/model/text_model.h"

#include "engine/model/family.h"

namespace zs::engine {

using core::Result;
using core::Status;

Result<std::unique_ptr<TextModel>> TextModel::load(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file) return file.status();
  auto model = load(std::move(file.value()));
  if (!model) return model.status().with_context("loading '" + path + "'");
  return model;
}

Result<std::unique_ptr<TextModel>> TextModel::load(std::unique_ptr<GgufFile> file) {
  std::unique_ptr<TextModel> m(new TextModel());
  m->file_ = std::move(file);
  auto config = ModelConfig::from_gguf(*m->file_);
  if (!config) return config.status();
  m->config_ = config.value();
  m->binder_ = std::make_unique<TensorBinder>(*m->file_);
  ZS_RETURN_IF_ERROR(find_family(m->config_.arch_name)->bind(*m->binder_, m->config_, m->weights_));
  return m;
}

namespace {

size_t bytes(const WeightView& w) { return w.data ? w.row_stride * static_cast<size_t>(w.n_out) : 0; }
int64_t values(const WeightView& w) { return w.data ? w.n_in * w.n_out : 0; }

// Matrix bytes of one layer, counting `experts` of its experts.
size_t layer_bytes(const LayerWeights& L, int experts, int n_embd) {
  size_t total = bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.ffn_gate) + bytes(L.ffn_up) +
                 bytes(L.ffn_down) + bytes(L.ffn_gate_inp) + bytes(L.gate_shexp) + bytes(L.up_shexp) +
                 bytes(L.down_shexp);
  if (L.ffn_gate_inp_shexp) total += sizeof(float) * static_cast<size_t>(n_embd);
  if (L.gate_exps)
    total += static_cast<size_t>(experts) * (bytes(L.gate_exps.first) + bytes(L.up_exps.first) + bytes(L.down_exps.first));
  return total;
}

// Matrix values of one layer, counting `experts` of its experts.
int64_t layer_values(const LayerWeights& L, int experts, int n_embd) {
  int64_t total = values(L.wq) + values(L.wk) + values(L.wv) + values(L.wo) + values(L.ffn_gate) + values(L.ffn_up) +
                  values(L.ffn_down) + values(L.ffn_gate_inp) + values(L.gate_shexp) + values(L.up_shexp) +
                  values(L.down_shexp);
  if (L.ffn_gate_inp_shexp) total += n_embd;
  if (L.gate_exps)
    total += experts * (values(L.gate_exps.first) + values(L.up_exps.first) + values(L.down_exps.first));
  return total;
}

}  // namespace

size_t TextModel::weight_bytes_per_token() const {
  size_t total = (config_.is_encoder() ? 0 : bytes(weights_.output)) + weights_.token_embd.row_stride;
  for (const auto& L : weights_.layers) total += layer_bytes(L, config_.n_expert_used, config_.n_embd);
  return total;
}

size_t TextModel::weight_bytes_total() const {
  size_t total = bytes(weights_.token_embd);
  if (weights_.output.data != weights_.token_embd.data) total += bytes(weights_.output);
  for (const auto& L : weights_.layers) total += layer_bytes(L, config_.n_expert, config_.n_embd);
  return total;
}

namespace {

int64_t params(const TextModel& m, int experts) {
  const ModelConfig& c = m.config();
  const ModelWeights& w = m.weights();
  int64_t total = values(w.token_embd);
  if (w.output.data != w.token_embd.data) total += values(w.output);
  if (w.position_embd) total += static_cast<int64_t>(c.n_embd) * c.n_ctx_train;
  if (w.token_types) total += static_cast<int64_t>(c.n_embd) * c.n_token_types;
  for (const auto& L : w.layers) total += layer_values(L, experts, c.n_embd);
  return total;
}

}  // namespace

int64_t TextModel::params_active() const { return params(*this, config_.n_expert_used); }
int64_t TextModel::params_total() const { return params(*this, config_.n_expert); }

double TextModel::matrix_flops_per_token() const {
  double f = 0;
  for (const auto& L : weights_.layers)
    f += 2.0 * static_cast<double>(layer_values(L, config_.n_expert_used, config_.n_embd));
  return f;
}

}  // namespace zs::engine
