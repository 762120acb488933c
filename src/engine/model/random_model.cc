#include "engine/model/random_model.h"

#include <cmath>
#include <memory>
#include <cstring>
#include <random>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/random_tensors.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

using core::Status;

// A SentencePiece-style vocabulary: control tokens, the 256 byte tokens, ChatML markers,
// single characters, then "▁" + every lowercase string of length 1, 2, 3, ... so that each
// piece's prefixes are also pieces and the merge-based tokenizer can reach all of them.
void build_vocab(int n_vocab, std::vector<std::string>* tokens, std::vector<float>* scores,
                 std::vector<int32_t>* types) {
  auto add = [&](std::string t, int type) {
    tokens->push_back(std::move(t));
    scores->push_back(-static_cast<float>(tokens->size()));
    types->push_back(type);
  };
  add("<unk>", 2);
  add("<s>", 3);
  add("</s>", 3);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    add(buf, 6);
  }
  add("<|im_start|>", 3);
  add("<|im_end|>", 3);
  const std::string space = "\xE2\x96\x81";
  add(space, 1);
  for (char c = 33; c < 127; ++c) add(std::string(1, c), 1);
  for (int len = 1; static_cast<int>(tokens->size()) < n_vocab; ++len) {
    std::vector<int> digits(len, 0);
    while (static_cast<int>(tokens->size()) < n_vocab) {
      std::string s = space;
      for (int d : digits) s.push_back(static_cast<char>('a' + d));
      add(s, 1);
      int i = len - 1;
      while (i >= 0 && ++digits[i] == 26) digits[i--] = 0;
      if (i < 0) break;
    }
  }
  tokens->resize(n_vocab);
  scores->resize(n_vocab);
  types->resize(n_vocab);
}

bool use_more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

GgmlType fallback_for_small_rows(GgmlType t, int64_t n_in) {
  if (n_in % 256 == 0) return t;
  switch (t) {
    case GgmlType::kQ4_K: return GgmlType::kQ5_0;
    case GgmlType::kQ5_K: return GgmlType::kQ5_1;
    case GgmlType::kQ6_K: return GgmlType::kQ8_0;
    default: return t;
  }
}

}  // namespace

core::Result<FileType> parse_file_type(const std::string& name) {
  if (name == "f16") return FileType::kF16;
  if (name == "q8_0") return FileType::kQ8_0;
  if (name == "q4_0") return FileType::kQ4_0;
  if (name == "q4_k_m") return FileType::kQ4_K_M;
  if (name == "q6_k") return FileType::kQ6_K;
  return Status::error("unknown file type '" + name + "' (known: f16, q8_0, q4_0, q4_k_m, q6_k)");
}

GgmlType tensor_type_for(FileType ft, const std::string& tensor, int layer, int n_layer, int64_t n_in, bool is_output) {
  GgmlType t = GgmlType::kF16;
  switch (ft) {
    case FileType::kF16: return GgmlType::kF16;
    case FileType::kQ8_0: return GgmlType::kQ8_0;
    case FileType::kQ4_0: t = is_output ? GgmlType::kQ6_K : GgmlType::kQ4_0; break;
    case FileType::kQ6_K: t = GgmlType::kQ6_K; break;
    case FileType::kQ4_K_M:
      if (is_output) {
        t = GgmlType::kQ6_K;
      } else if ((tensor == "attn_v.weight" || tensor == "ffn_down.weight") && use_more_bits(layer, n_layer)) {
        t = GgmlType::kQ6_K;
      } else {
        t = GgmlType::kQ4_K;
      }
      break;
  }
  return fallback_for_small_rows(t, n_in);
}

Status write_random_model(const ModelPreset& p, FileType ft, const std::string& path, uint64_t seed) {
  if (p.n_embd % p.n_head != 0 || p.n_head % p.n_head_kv != 0)
    return Status::error("preset '" + p.name + "' has inconsistent head counts");
  GgufWriter w;
  const std::string a = p.arch + ".";
  w.set_string("general.architecture", p.arch);
  w.set_string("general.name", p.name + "-random");
  w.set_u32(a + "context_length", p.n_ctx);
  w.set_u32(a + "embedding_length", p.n_embd);
  w.set_u32(a + "block_count", p.n_layer);
  w.set_u32(a + "feed_forward_length", p.n_ff);
  w.set_u32(a + "attention.head_count", p.n_head);
  w.set_u32(a + "attention.head_count_kv", p.n_head_kv);
  w.set_u32(a + "rope.dimension_count", p.n_embd / p.n_head);
  w.set_f32(a + "rope.freq_base", p.rope_base);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", p.rms_eps);
  w.set_u32(a + "vocab_size", p.n_vocab);
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  build_vocab(p.n_vocab, &tokens, &scores, &types);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_string("tokenizer.chat_template",
               "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
  w.set_u32("general.quantization_version", 2);

  RandomTensors src(seed);
  const int64_t d = p.n_embd, hd = p.n_embd / p.n_head, kv = hd * p.n_head_kv, ff = p.n_ff;
  const float s = 0.02f;
  auto mat = [&](const std::string& name, const std::string& short_name, int layer, int64_t n_in, int64_t n_out,
                 bool is_output) {
    GgmlType t = tensor_type_for(ft, short_name, layer, p.n_layer, n_in, is_output);
    w.add_tensor(name, t, {n_in, n_out}, src.matrix(t, n_in, n_out, s));
  };
  mat("token_embd.weight", "token_embd.weight", 0, d, p.n_vocab, p.tied_embeddings);
  if (!p.tied_embeddings) mat("output.weight", "output.weight", 0, d, p.n_vocab, true);
  w.add_tensor("output_norm.weight", GgmlType::kF32, {d}, src.vector(d, 1.f, 0.05f));
  for (int i = 0; i < p.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    w.add_tensor(b + "attn_norm.weight", GgmlType::kF32, {d}, src.vector(d, 1.f, 0.05f));
    mat(b + "attn_q.weight", "attn_q.weight", i, d, d, false);
    mat(b + "attn_k.weight", "attn_k.weight", i, d, kv, false);
    mat(b + "attn_v.weight", "attn_v.weight", i, d, kv, false);
    mat(b + "attn_output.weight", "attn_output.weight", i, d, d, false);
    if (p.arch == "qwen2") {
      w.add_tensor(b + "attn_q.bias", GgmlType::kF32, {d}, src.vector(d, 0.f, 0.02f));
      w.add_tensor(b + "attn_k.bias", GgmlType::kF32, {kv}, src.vector(kv, 0.f, 0.02f));
      w.add_tensor(b + "attn_v.bias", GgmlType::kF32, {kv}, src.vector(kv, 0.f, 0.02f));
    }
    w.add_tensor(b + "ffn_norm.weight", GgmlType::kF32, {d}, src.vector(d, 1.f, 0.05f));
    mat(b + "ffn_gate.weight", "ffn_gate.weight", i, d, ff, false);
    mat(b + "ffn_up.weight", "ffn_up.weight", i, d, ff, false);
    mat(b + "ffn_down.weight", "ffn_down.weight", i, ff, d, false);
  }
  return w.write(path);
}

}  // namespace zs::engine
