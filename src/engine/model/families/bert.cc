// Embedding models. `bert` (BGE, MiniLM, ...): absolute position embeddings, token types,
// LayerNorm of the embeddings, post-norm blocks with biased Q/K/V/output, GELU MLP. `nomic-bert`:
// the same post-norm blocks with a fused attn_qkv, NEOX rope instead of position embeddings, and
// a SwiGLU FFN. Both attend bidirectionally and pool (`<arch>.pooling_type`) into one vector;
// the graph is engine/model/encoder.h. In LayerWeights the post-norms are attn_post_norm
// (`attn_output_norm`) and ffn_post_norm (`layer_output_norm`), applied after the residual add.
#include "engine/model/family.h"

namespace zs::engine {
namespace {

using core::Status;

Status configure(const GgufFile& file, ModelConfig& c) {
  c.causal = false;
  c.rope_mode = c.arch == TextArch::kNomicBert ? RopeMode::kNeox : RopeMode::kNone;
  c.ffn_act = c.arch == TextArch::kNomicBert ? FfnActivation::kSilu : FfnActivation::kGelu;
  if (auto causal = file.get_bool(c.arch_name + ".attention.causal"); causal && *causal)
    return Status::error(c.arch_name + ".attention.causal is true, but " + c.arch_name + " models are bidirectional");
  int pooling = static_cast<int>(Pooling::kCls);
  ZS_RETURN_IF_ERROR(read_int_key(file, c.arch_name, "pooling_type", &pooling, 0, false));
  if (pooling > static_cast<int>(Pooling::kLast))
    return Status::error(c.arch_name + ".pooling_type " + std::to_string(pooling) +
                         " is not supported (0 none, 1 mean, 2 cls, 3 last)");
  c.pooling = static_cast<Pooling>(pooling);
  if (c.pooling == Pooling::kNone) c.pooling = Pooling::kCls;
  c.n_token_types = 2;
  if (file.find("tokenizer.ggml.token_type_count"))
    c.n_token_types = static_cast<int>(file.get_int("tokenizer.ggml.token_type_count").value_or(2));
  if (auto* t = file.find_tensor("token_types.weight")) c.n_token_types = static_cast<int>(t->ne[1]);
  return Status::ok();
}

Status bind(TensorBinder& b, const ModelConfig& c, ModelWeights& w) {
  const bool nomic = c.arch == TextArch::kNomicBert;
  ZS_RETURN_IF_ERROR(b.bind(w.token_embd, "token_embd.weight", c.n_embd, c.n_vocab));
  ZS_RETURN_IF_ERROR(b.bind(w.token_types, "token_types.weight", static_cast<int64_t>(c.n_embd) * c.n_token_types,
                            false));
  ZS_RETURN_IF_ERROR(
      b.bind(w.position_embd, "position_embd.weight", static_cast<int64_t>(c.n_embd) * c.n_ctx_train, !nomic));
  ZS_RETURN_IF_ERROR(b.bind(w.embd_norm, "token_embd_norm.weight", c.n_embd, true));
  ZS_RETURN_IF_ERROR(b.bind(w.embd_norm_b, "token_embd_norm.bias", c.n_embd, true));
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    LayerWeights& L = w.layers[i];
    if (nomic) {
      ZS_RETURN_IF_ERROR(family::bind_attention_fused(b, c, i, L));
      ZS_RETURN_IF_ERROR(family::bind_ffn(b, c, i, L));
    } else {
      ZS_RETURN_IF_ERROR(family::bind_attention(b, c, i, L, true));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_up, family::blk(i, "ffn_up.weight"), c.n_embd, c.n_ff));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_down, family::blk(i, "ffn_down.weight"), c.n_ff, c.n_embd));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_up_b, family::blk(i, "ffn_up.bias"), c.n_ff, true));
      ZS_RETURN_IF_ERROR(b.bind(L.ffn_down_b, family::blk(i, "ffn_down.bias"), c.n_embd, true));
    }
    ZS_RETURN_IF_ERROR(b.bind(L.bo, family::blk(i, "attn_output.bias"), c.n_embd, !nomic));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_post_norm, family::blk(i, "attn_output_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(b.bind(L.attn_post_norm_b, family::blk(i, "attn_output_norm.bias"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_post_norm, family::blk(i, "layer_output_norm.weight"), c.n_embd, true));
    ZS_RETURN_IF_ERROR(b.bind(L.ffn_post_norm_b, family::blk(i, "layer_output_norm.bias"), c.n_embd, true));
  }
  return Status::ok();
}

}  // namespace

extern const ModelFamily kBertFamily{"bert", TextArch::kBert, configure, bind};
extern const ModelFamily kNomicBertFamily{"nomic-bert", TextArch::kNomicBert, configure, bind};

}  // namespace zs::engine
