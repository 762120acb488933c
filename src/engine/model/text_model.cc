#include "engine/model/text_model.h"

#include "engine/quant/quantize.h"

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

Result<WeightView> TextModel::matrix(const std::string& name, int64_t n_in, int64_t n_out) const {
  const GgufTensorInfo* t = file_->find_tensor(name);
  if (!t) return Status::error("tensor '" + name + "' is missing");
  if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected [" +
                         std::to_string(n_in) + ", " + std::to_string(n_out) + "]");
  auto traits = ggml_type_traits(static_cast<uint32_t>(t->type));
  if (!traits->computable)
    return Status::error("tensor '" + name + "' has type " + std::string(traits->name) +
                         ", which zeroserve cannot compute yet (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, "
                         "Q8_0, Q4_K, Q5_K, Q6_K)");
  WeightView w;
  w.type = t->type;
  w.data = t->data;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_stride = t->row_bytes();
  return w;
}

Result<const float*> TextModel::vector_f32(const std::string& name, int64_t n, bool required) {
  const GgufTensorInfo* t = file_->find_tensor(name);
  if (!t) {
    if (required) return Status::error("tensor '" + name + "' is missing");
    return static_cast<const float*>(nullptr);
  }
  if (t->n_elements() != n)
    return Status::error("tensor '" + name + "' has shape " + t->shape_string() + ", expected " + std::to_string(n) +
                         " values");
  if (t->type == GgmlType::kF32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0)
    return reinterpret_cast<const float*>(t->data);
  auto v = std::make_unique<std::vector<float>>(n);
  Status s = dequantize_row(t->type, t->data, v->data(), n);
  if (!s) return s.with_context("tensor '" + name + "'");
  converted_.push_back(std::move(v));
  return static_cast<const float*>(converted_.back()->data());
}

Status TextModel::bind() {
  const ModelConfig& c = config_;
  auto embd = matrix("token_embd.weight", c.n_embd, c.n_vocab);
  if (!embd) return embd.status();
  token_embd_ = embd.value();
  if (file_->find_tensor("output.weight")) {
    auto out = matrix("output.weight", c.n_embd, c.n_vocab);
    if (!out) return out.status();
    output_ = out.value();
  } else {
    output_ = token_embd_;  // tied embeddings
  }
  auto norm = vector_f32("output_norm.weight", c.n_embd, true);
  if (!norm) return norm.status();
  output_norm_ = norm.value();
  auto freqs = vector_f32("rope_freqs.weight", c.rope_dims / 2, false);
  if (!freqs) return freqs.status();
  rope_freqs_ = freqs.value();

  const bool biases = c.arch == TextArch::kQwen2;
  layers_.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& L = layers_[i];
    auto bind_matrix = [&](WeightView& dst, const char* n, int64_t n_in, int64_t n_out) -> Status {
      auto r = matrix(p + n, n_in, n_out);
      if (!r) return r.status();
      dst = r.value();
      return Status::ok();
    };
    auto bind_vector = [&](const float*& dst, const char* n, int64_t len, bool required) -> Status {
      auto r = vector_f32(p + n, len, required);
      if (!r) return r.status();
      dst = r.value();
      return Status::ok();
    };
    ZS_RETURN_IF_ERROR(bind_vector(L.attn_norm, "attn_norm.weight", c.n_embd, true));
    ZS_RETURN_IF_ERROR(bind_matrix(L.wq, "attn_q.weight", c.n_embd, c.q_dim()));
    ZS_RETURN_IF_ERROR(bind_matrix(L.wk, "attn_k.weight", c.n_embd, c.kv_dim()));
    ZS_RETURN_IF_ERROR(bind_matrix(L.wv, "attn_v.weight", c.n_embd, c.kv_dim()));
    ZS_RETURN_IF_ERROR(bind_matrix(L.wo, "attn_output.weight", c.q_dim(), c.n_embd));
    ZS_RETURN_IF_ERROR(bind_vector(L.bq, "attn_q.bias", c.q_dim(), biases));
    ZS_RETURN_IF_ERROR(bind_vector(L.bk, "attn_k.bias", c.kv_dim(), biases));
    ZS_RETURN_IF_ERROR(bind_vector(L.bv, "attn_v.bias", c.kv_dim(), biases));
    ZS_RETURN_IF_ERROR(bind_vector(L.ffn_norm, "ffn_norm.weight", c.n_embd, true));
    ZS_RETURN_IF_ERROR(bind_matrix(L.ffn_gate, "ffn_gate.weight", c.n_embd, c.n_ff));
    ZS_RETURN_IF_ERROR(bind_matrix(L.ffn_up, "ffn_up.weight", c.n_embd, c.n_ff));
    ZS_RETURN_IF_ERROR(bind_matrix(L.ffn_down, "ffn_down.weight", c.n_ff, c.n_embd));
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
