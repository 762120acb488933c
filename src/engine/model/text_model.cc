#include "engine/model/text_model.h"


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
  ZS_RETURN_IF_ERROR(m->bind());
  return m;
}

Status TextModel::bind() {
  const ModelConfig& c = config_;
  binder_ = std::make_unique<TensorBinder>(*file_);
  TensorBinder& bind = *binder_;
  ZS_RETURN_IF_ERROR(bind.bind(token_embd_, "token_embd.weight", c.n_embd, c.n_vocab));
  if (bind.has("output.weight")) {
    ZS_RETURN_IF_ERROR(bind.bind(output_, "output.weight", c.n_embd, c.n_vocab));
  } else {
    output_ = token_embd_;  // tied embeddings
  }
  ZS_RETURN_IF_ERROR(bind.bind(output_norm_, "output_norm.weight", c.n_embd, true));
  ZS_RETURN_IF_ERROR(bind.bind(rope_freqs_, "rope_freqs.weight", c.rope_dims / 2, false));

  const bool biases = c.arch == TextArch::kQwen2;
  layers_.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& L = layers_[i];
    ZS_RETURN_IF_ERROR(bind.bind(L.attn_norm, p + "attn_norm.weight", c.n_embd, true));
    ZS_RETURN_IF_ERROR(bind.bind(L.wq, p + "attn_q.weight", c.n_embd, c.q_dim()));
    ZS_RETURN_IF_ERROR(bind.bind(L.wk, p + "attn_k.weight", c.n_embd, c.kv_dim()));
    ZS_RETURN_IF_ERROR(bind.bind(L.wv, p + "attn_v.weight", c.n_embd, c.kv_dim()));
    ZS_RETURN_IF_ERROR(bind.bind(L.wo, p + "attn_output.weight", c.q_dim(), c.n_embd));
    ZS_RETURN_IF_ERROR(bind.bind(L.bq, p + "attn_q.bias", c.q_dim(), biases));
    ZS_RETURN_IF_ERROR(bind.bind(L.bk, p + "attn_k.bias", c.kv_dim(), biases));
    ZS_RETURN_IF_ERROR(bind.bind(L.bv, p + "attn_v.bias", c.kv_dim(), biases));
    ZS_RETURN_IF_ERROR(bind.bind(L.ffn_norm, p + "ffn_norm.weight", c.n_embd, true));
    ZS_RETURN_IF_ERROR(bind.bind(L.ffn_gate, p + "ffn_gate.weight", c.n_embd, c.n_ff));
    ZS_RETURN_IF_ERROR(bind.bind(L.ffn_up, p + "ffn_up.weight", c.n_embd, c.n_ff));
    ZS_RETURN_IF_ERROR(bind.bind(L.ffn_down, p + "ffn_down.weight", c.n_ff, c.n_embd));
  }
  return Status::ok();
}

size_t TextModel::weight_bytes_per_token() const {
  auto bytes = [](const WeightView& w) { return w.row_stride * static_cast<size_t>(w.n_out); };
  size_t total = bytes(output_) + token_embd_.row_stride;
  for (const auto& L : layers_)
    total += bytes(L.wq) + bytes(L.wk) + bytes(L.wv) + bytes(L.wo) + bytes(L.ffn_gate) + bytes(L.ffn_up) +
             bytes(L.ffn_down);
  return total;
}

}  // namespace zs::engine
