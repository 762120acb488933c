#include "engine/model/random_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/random_tensors.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

using core::Status;

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 6 byte
  int size() const { return static_cast<int>(tokens.size()); }
  void add(std::string t, int type) {
    tokens.push_back(std::move(t));
    scores.push_back(-static_cast<float>(tokens.size()));
    types.push_back(type);
  }
  void add_bytes() {
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", b);
      add(buf, 6);
    }
  }
  // prefix + every lowercase string of length 1, 2, 3, ... (each piece's prefixes are pieces
  // too, so merge- and longest-match tokenizers reach all of them) until `n` tokens; with
  // `continuation`, each string is followed by the bare string (WordPiece's "##" piece as
  // the converter stores it).
  void add_strings(int n, const std::string& prefix, bool continuation) {
    for (int len = 1; size() < n; ++len) {
      std::vector<int> digits(len, 0);
      while (size() < n) {
        std::string s;
        for (int d : digits) s.push_back(static_cast<char>('a' + d));
        add(prefix + s, 1);
        if (continuation && size() < n) add(s, 1);
        int i = len - 1;
        while (i >= 0 && ++digits[i] == 26) digits[i--] = 0;
        if (i < 0) break;
      }
    }
  }
  void fit(int n) {
    tokens.resize(n);
    scores.resize(n);
    types.resize(n);
  }
};

const std::string kSpace = "\xE2\x96\x81";  // SentencePiece's "▁"

// SentencePiece-style pieces after the specials: "▁", printable ASCII characters, then
// "▁" + lowercase strings.
void add_spm_pieces(Vocab& v, int n) {
  v.add(kSpace, 1);
  for (char c = 33; c < 127; ++c) v.add(std::string(1, c), 1);
  v.add_strings(n, kSpace, false);
}

const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const char* kGemmaTemplate =
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{'<start_of_turn>model\\n'}}{% endif %}";
const char* kPhi3Template =
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}{{'<|system|>\\n' + "
    "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}"
    "{{ eos_token }}{% endif %}";
// A short template with Mistral v3's markers (detected as mistral-v3), not the published one.
const char* kMistralV3Template =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{% if tools and loop.last %}"
    "[AVAILABLE_TOOLS] {{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}[INST] {{ message['content'] }}[/INST]"
    "{% elif message['role'] == 'tool' %}[TOOL_RESULTS] {{ message['content'] }}[/TOOL_RESULTS]{% else %}"
    " {{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

// The pieces of a SentencePiece-style (`llama` tokenizer) vocabulary.
void write_llama_tokens(const Vocab& v, GgufWriter& w) {
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_f32_array("tokenizer.ggml.scores", v.scores);
  w.set_i32_array("tokenizer.ggml.token_type", v.types);
}

// SentencePiece's leading specials as Llama-style vocabularies have them: <unk> <s> </s>
// (ids 0, 1, 2).
void add_spm_specials(Vocab& v) {
  v.add("<unk>", 2);
  v.add("<s>", 3);
  v.add("</s>", 3);
}

// Their ids, with BOS added to every prompt.
void write_spm_special_ids(GgufWriter& w) {
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
}

void write_vocab(const ModelPreset& p, GgufWriter& w) {
  Vocab v;
  const int n = p.n_vocab;
  switch (p.vocab) {
    case VocabStyle::kSentencePiece:
      add_spm_specials(v);
      v.add_bytes();
      v.add("<|im_start|>", 3);
      v.add("<|im_end|>", 3);
      if (p.arch == "qwen2vl") {  // the markers the image is wrapped in
        v.add("<|vision_start|>", 3);
        v.add("<|vision_end|>", 3);
      }
      add_spm_pieces(v, n);
      v.fit(n);
      write_llama_tokens(v, w);
      write_spm_special_ids(w);
      w.set_string("tokenizer.chat_template", kChatMlTemplate);
      break;
    case VocabStyle::kGemma:
      v.add("<pad>", 3);
      v.add("<eos>", 3);
      v.add("<bos>", 3);
      v.add("<unk>", 2);
      v.add("<mask>", 3);
      v.add("<start_of_turn>", 3);
      v.add("<end_of_turn>", 3);
      if (p.arch == "gemma3") {  // the markers an image is wrapped in
        v.add("<start_of_image>", 3);
        v.add("<end_of_image>", 3);
      }
      v.add_bytes();
      add_spm_pieces(v, n);
      v.fit(n);
      write_llama_tokens(v, w);
      w.set_u32("tokenizer.ggml.bos_token_id", 2);
      w.set_u32("tokenizer.ggml.eos_token_id", 1);
      w.set_u32("tokenizer.ggml.unknown_token_id", 3);
      w.set_u32("tokenizer.ggml.padding_token_id", 0);
      w.set_u32("tokenizer.ggml.eot_token_id", 6);
      w.set_bool("tokenizer.ggml.add_bos_token", true);
      w.set_bool("tokenizer.ggml.add_eos_token", false);
      w.set_bool("tokenizer.ggml.add_space_prefix", false);
      w.set_string("tokenizer.chat_template", kGemmaTemplate);
      break;
    case VocabStyle::kPhi3: {
      const int n_base = std::min(n, 32000);
      add_spm_specials(v);
      v.add_bytes();
      add_spm_pieces(v, n_base);
      v.fit(n_base);
      const int first_special = v.size();
      for (const char* t : {"<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>",
                            "<|placeholder3|>", "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>",
                            "<|placeholder6|>", "<|user|>"})
        v.add(t, 3);
      for (int i = 7; v.size() < n; ++i) v.add("<|placeholder" + std::to_string(i) + "|>", 3);
      v.fit(n);
      write_llama_tokens(v, w);
      w.set_u32("tokenizer.ggml.bos_token_id", 1);
      if (first_special + 7 < n) {
        w.set_u32("tokenizer.ggml.eos_token_id", first_special);
        w.set_u32("tokenizer.ggml.eot_token_id", first_special + 7);
        w.set_u32("tokenizer.ggml.padding_token_id", first_special);
      } else {
        w.set_u32("tokenizer.ggml.eos_token_id", 2);
      }
      w.set_u32("tokenizer.ggml.unknown_token_id", 0);
      w.set_bool("tokenizer.ggml.add_bos_token", true);
      w.set_bool("tokenizer.ggml.add_eos_token", false);
      w.set_string("tokenizer.chat_template", kPhi3Template);
      break;
    }
    case VocabStyle::kMistralV3: {
      add_spm_specials(v);
      for (const char* t : {"[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                            "[TOOL_RESULTS]", "[/TOOL_RESULTS]"})
        v.add(t, 3);
      for (int i = 8; v.size() < 768; ++i) v.add("[control_" + std::to_string(i) + "]", 3);
      v.add_bytes();
      add_spm_pieces(v, n);
      v.fit(n);
      write_llama_tokens(v, w);
      write_spm_special_ids(w);
      w.set_bool("tokenizer.ggml.add_eos_token", false);
      w.set_string("tokenizer.chat_template", kMistralV3Template);
      break;
    }
    case VocabStyle::kWordPiece: {
      v.add("[PAD]", 3);
      for (int i = 0; i < 99; ++i) v.add("[unused" + std::to_string(i) + "]", 1);
      v.add("[UNK]", 2);
      v.add("[CLS]", 3);
      v.add("[SEP]", 3);
      v.add("[MASK]", 3);
      // The converter stores WordPiece pieces with a phantom space: a word start "x" as "▁x",
      // a continuation "##x" as "x". Punctuation and digits, then lowercase words.
      for (char c = 33; c < 127; ++c) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) continue;  // uncased; letters follow
        v.add(kSpace + std::string(1, c), 1);
        v.add(std::string(1, c), 1);
      }
      v.add_strings(n, kSpace, true);
      v.fit(n);
      w.set_u32("tokenizer.ggml.token_type_count", 2);
      w.set_string("tokenizer.ggml.model", "bert");
      w.set_string("tokenizer.ggml.pre", p.arch == "bert" ? "bert-bge" : "jina-v2-en");
      w.set_string_array("tokenizer.ggml.tokens", v.tokens);
      w.set_i32_array("tokenizer.ggml.token_type", v.types);
      w.set_u32("tokenizer.ggml.unknown_token_id", 100);
      w.set_u32("tokenizer.ggml.seperator_token_id", 102);  // sic: the GGUF key is misspelt
      w.set_u32("tokenizer.ggml.padding_token_id", 0);
      w.set_u32("tokenizer.ggml.cls_token_id", 101);
      w.set_u32("tokenizer.ggml.mask_token_id", 103);
      break;
    }
  }
}

void write_metadata(const ModelPreset& p, FileType ft, GgufWriter& w) {
  const std::string a = p.arch + ".";
  const int hd = p.head_dim_or_default();
  w.set_string("general.architecture", p.arch);
  w.set_string("general.name", p.name + "-random" + (p.n_layer != p.full_layers ? "-" + std::to_string(p.n_layer) + "-layers" : ""));
  w.set_u32(a + "context_length", p.n_ctx);
  w.set_u32(a + "embedding_length", p.n_embd);
  w.set_u32(a + "block_count", p.n_layer);
  w.set_u32(a + "feed_forward_length", p.n_ff);
  w.set_u32(a + "attention.head_count", p.n_head);
  w.set_u32("general.file_type", gguf_file_type_id(ft));
  if (p.is_encoder()) {
    w.set_f32(a + "attention.layer_norm_epsilon", p.norm_eps);
    w.set_bool(a + "attention.causal", false);
    w.set_u32(a + "pooling_type", p.pooling);
    if (p.arch == "nomic-bert") w.set_f32(a + "rope.freq_base", p.rope_base);
  } else {
    w.set_u32(a + "attention.head_count_kv", p.n_head_kv);
    w.set_f32(a + "attention.layer_norm_rms_epsilon", p.rms_eps);
    if (p.arch == "llama" || p.arch == "qwen2" || p.arch == "qwen2vl") {
      w.set_u32(a + "rope.dimension_count", hd);
      w.set_f32(a + "rope.freq_base", p.rope_base);
      w.set_u32(a + "vocab_size", p.n_vocab);
      if (!p.rope_sections.empty())
        w.set_i32_array(a + "rope.dimension_sections", {p.rope_sections.begin(), p.rope_sections.end()});
    } else if (p.arch == "qwen2moe") {
      w.set_f32(a + "rope.freq_base", p.rope_base);
    } else if (p.arch == "qwen3" || p.arch == "qwen3moe") {
      w.set_u32(a + "attention.key_length", hd);
      w.set_u32(a + "attention.value_length", hd);
      w.set_f32(a + "rope.freq_base", p.rope_base);
    } else if (p.arch == "gemma3") {
      // No sliding_window_pattern key: converters do not write it (the period is 6).
      w.set_u32(a + "attention.key_length", hd);
      w.set_u32(a + "attention.value_length", hd);
      w.set_u32(a + "attention.sliding_window", p.sliding_window);
      w.set_f32(a + "rope.freq_base", p.rope_base);
      w.set_f32(a + "rope.freq_base_swa", p.rope_base_swa);
      if (p.rope_scale_linear > 0) {
        w.set_string(a + "rope.scaling.type", "linear");
        w.set_f32(a + "rope.scaling.factor", p.rope_scale_linear);
      }
    } else if (p.arch == "gemma2") {
      w.set_u32(a + "attention.key_length", hd);
      w.set_u32(a + "attention.value_length", hd);
      w.set_f32(a + "attn_logit_softcapping", p.attn_softcap);
      w.set_f32(a + "final_logit_softcapping", p.final_softcap);
      w.set_u32(a + "attention.sliding_window", p.sliding_window);
    } else if (p.arch == "phi3") {
      w.set_u32(a + "rope.scaling.original_context_length", p.rope_orig_ctx > 0 ? p.rope_orig_ctx : p.n_ctx);
      w.set_u32(a + "rope.dimension_count", hd);
      w.set_f32(a + "rope.freq_base", p.rope_base);
      w.set_u32(a + "attention.sliding_window", p.sliding_window);
      if (p.rope_orig_ctx > 0 && p.n_ctx > p.rope_orig_ctx) {
        // As the converter computes it: sqrt(1 + ln(scale) / ln(original context)).
        const double scale = static_cast<double>(p.n_ctx) / p.rope_orig_ctx;
        w.set_f32(a + "rope.scaling.attn_factor",
                  static_cast<float>(std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(p.rope_orig_ctx)))));
      }
    } else if (p.arch == "chatglm") {
      w.set_u32(a + "rope.dimension_count", p.rope_dims > 0 ? p.rope_dims : hd);
      w.set_f32(a + "rope.freq_base", p.rope_base);
    }
    if (p.is_moe()) {
      w.set_u32(a + "expert_count", p.n_expert);
      w.set_u32(a + "expert_used_count", p.n_expert_used);
      if (p.n_ff_exp > 0) w.set_u32(a + "expert_feed_forward_length", p.n_ff_exp);
      if (p.n_ff_shexp > 0) w.set_u32(a + "expert_shared_feed_forward_length", p.n_ff_shexp);
    }
  }
  write_vocab(p, w);
  w.set_u32("general.quantization_version", 2);
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

int gguf_file_type_id(FileType ft) {
  switch (ft) {
    case FileType::kF16: return 1;
    case FileType::kQ4_0: return 2;
    case FileType::kQ8_0: return 7;
    case FileType::kQ4_K_M: return 15;
    case FileType::kQ6_K: return 18;
  }
  return 0;
}

GgmlType tensor_type_for(FileType ft, const std::string& tensor, int layer, int n_layer, int64_t n_in, bool is_output,
                         int n_expert) {
  GgmlType t = GgmlType::kF16;
  switch (ft) {
    case FileType::kF16: return GgmlType::kF16;
    case FileType::kQ8_0: return GgmlType::kQ8_0;
    case FileType::kQ4_0: t = is_output ? GgmlType::kQ6_K : GgmlType::kQ4_0; break;
    case FileType::kQ6_K: t = GgmlType::kQ6_K; break;
    case FileType::kQ4_K_M:
      if (is_output) {
        t = GgmlType::kQ6_K;
      } else if ((tensor == "attn_v.weight" || tensor == "ffn_down.weight" || tensor == "ffn_down_shexp.weight") &&
                 use_more_bits(layer, n_layer)) {
        t = GgmlType::kQ6_K;
      } else if (tensor == "attn_qkv.weight") {
        t = GgmlType::kQ5_K;
      } else {
        t = GgmlType::kQ4_K;
      }
      break;
  }
  // For 8-expert models the reference spends the few extra bytes on K and V.
  if (n_expert == 8 && !is_output && (tensor == "attn_v.weight" || tensor == "attn_k.weight")) t = GgmlType::kQ8_0;
  return fallback_for_small_rows(t, n_in);
}

size_t PlannedTensor::bytes() const {
  size_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= static_cast<size_t>(ne[i]);
  return ggml_row_size(type, ne[0]) * rows;
}

std::vector<PlannedTensor> plan_random_model(const ModelPreset& p, FileType ft) {
  std::vector<PlannedTensor> out;
  const int64_t d = p.n_embd, hd = p.head_dim_or_default(), q = hd * p.n_head, kv = hd * p.n_head_kv, ff = p.n_ff;
  auto vec = [&](const std::string& name, int64_t n, float mean, float scale) {
    out.push_back({name, GgmlType::kF32, {n}, PlannedTensor::Fill::kVector, mean, scale, {}});
  };
  auto f32_matrix = [&](const std::string& name, std::vector<int64_t> ne) {
    out.push_back({name, GgmlType::kF32, std::move(ne), PlannedTensor::Fill::kMatrix, 0.f, 0.02f, {}});
  };
  // A matrix (or a stack of n_expert matrices) of the file type's choice for `short_name`.
  auto mat = [&](int layer, const std::string& short_name, int64_t n_in, int64_t n_out, int64_t n_stack = 0,
                 bool is_output = false) {
    const std::string name = layer < 0 ? short_name : "blk." + std::to_string(layer) + "." + short_name;
    const GgmlType t = tensor_type_for(ft, short_name, layer, p.n_layer, n_in, is_output, p.n_expert);
    std::vector<int64_t> ne = {n_in, n_out};
    if (n_stack > 0) ne.push_back(n_stack);
    out.push_back({name, t, std::move(ne), PlannedTensor::Fill::kMatrix, 0.f, 0.02f, {}});
  };
  auto blk = [](int i, const char* t) { return "blk." + std::to_string(i) + "." + t; };

  if (p.is_encoder()) {
    const bool nomic = p.arch == "nomic-bert";
    mat(-1, "token_embd.weight", d, p.n_vocab);
    f32_matrix("token_types.weight", {d, 2});
    if (!nomic) f32_matrix("position_embd.weight", {d, p.n_ctx});
    vec("token_embd_norm.weight", d, 1.f, 0.05f);
    vec("token_embd_norm.bias", d, 0.f, 0.02f);
    for (int i = 0; i < p.n_layer; ++i) {
      if (nomic) {
        mat(i, "attn_qkv.weight", d, 3 * d);
      } else {
        mat(i, "attn_q.weight", d, d);
        vec(blk(i, "attn_q.bias"), d, 0.f, 0.02f);
        mat(i, "attn_k.weight", d, d);
        vec(blk(i, "attn_k.bias"), d, 0.f, 0.02f);
        mat(i, "attn_v.weight", d, d);
        vec(blk(i, "attn_v.bias"), d, 0.f, 0.02f);
      }
      mat(i, "attn_output.weight", d, d);
      if (!nomic) vec(blk(i, "attn_output.bias"), d, 0.f, 0.02f);
      vec(blk(i, "attn_output_norm.weight"), d, 1.f, 0.05f);
      vec(blk(i, "attn_output_norm.bias"), d, 0.f, 0.02f);
      mat(i, "ffn_up.weight", d, ff);
      if (nomic) {
        mat(i, "ffn_gate.weight", d, ff);
      } else {
        vec(blk(i, "ffn_up.bias"), ff, 0.f, 0.02f);
      }
      mat(i, "ffn_down.weight", ff, d);
      if (!nomic) vec(blk(i, "ffn_down.bias"), d, 0.f, 0.02f);
      vec(blk(i, "layer_output_norm.weight"), d, 1.f, 0.05f);
      vec(blk(i, "layer_output_norm.bias"), d, 0.f, 0.02f);
    }
    return out;
  }

  const bool fused = p.arch == "phi3" || p.arch == "chatglm";
  const bool qkv_bias = p.arch == "qwen2" || p.arch == "qwen2moe" || p.arch == "qwen2vl" || p.arch == "chatglm";
  const bool post_norms = p.arch == "gemma2" || p.arch == "gemma3";
  const bool qk_norms = p.arch == "qwen3" || p.arch == "qwen3moe" || p.arch == "gemma3";
  mat(-1, "token_embd.weight", d, p.n_vocab, 0, p.tied_embeddings);
  if (!p.tied_embeddings) mat(-1, "output.weight", d, p.n_vocab, 0, true);
  vec("output_norm.weight", d, 1.f, 0.05f);
  if (!p.rope_factors_long.empty()) {
    out.push_back({"rope_factors_long.weight", GgmlType::kF32, {static_cast<int64_t>(p.rope_factors_long.size())},
                   PlannedTensor::Fill::kValues, 0.f, 0.f, p.rope_factors_long});
    out.push_back({"rope_factors_short.weight", GgmlType::kF32, {static_cast<int64_t>(p.rope_factors_short.size())},
                   PlannedTensor::Fill::kValues, 0.f, 0.f, p.rope_factors_short});
  }
  for (int i = 0; i < p.n_layer; ++i) {
    vec(blk(i, "attn_norm.weight"), d, 1.f, 0.05f);
    if (fused) {
      mat(i, "attn_qkv.weight", d, q + 2 * kv);
      if (qkv_bias) vec(blk(i, "attn_qkv.bias"), q + 2 * kv, 0.f, 0.02f);
    } else {
      mat(i, "attn_q.weight", d, q);
      mat(i, "attn_k.weight", d, kv);
      mat(i, "attn_v.weight", d, kv);
    }
    mat(i, "attn_output.weight", q, d);
    if (qk_norms) {
      vec(blk(i, "attn_q_norm.weight"), hd, 1.f, 0.05f);
      vec(blk(i, "attn_k_norm.weight"), hd, 1.f, 0.05f);
    }
    if (!fused && qkv_bias) {  // after attn_output: the order (and random stream) of the first presets
      vec(blk(i, "attn_q.bias"), q, 0.f, 0.02f);
      vec(blk(i, "attn_k.bias"), kv, 0.f, 0.02f);
      vec(blk(i, "attn_v.bias"), kv, 0.f, 0.02f);
    }
    if (post_norms) vec(blk(i, "post_attention_norm.weight"), d, 1.f, 0.05f);
    vec(blk(i, "ffn_norm.weight"), d, 1.f, 0.05f);
    if (p.is_moe()) {
      const int64_t fe = p.expert_ff();
      f32_matrix(blk(i, "ffn_gate_inp.weight"), {d, p.n_expert});
      mat(i, "ffn_gate_exps.weight", d, fe, p.n_expert);
      mat(i, "ffn_up_exps.weight", d, fe, p.n_expert);
      mat(i, "ffn_down_exps.weight", fe, d, p.n_expert);
      if (p.n_ff_shexp > 0) {
        vec(blk(i, "ffn_gate_inp_shexp.weight"), d, 0.f, 0.02f);
        mat(i, "ffn_gate_shexp.weight", d, p.n_ff_shexp);
        mat(i, "ffn_up_shexp.weight", d, p.n_ff_shexp);
        mat(i, "ffn_down_shexp.weight", p.n_ff_shexp, d);
      }
    } else if (fused) {
      mat(i, "ffn_up.weight", d, 2 * ff);
      mat(i, "ffn_down.weight", ff, d);
    } else {
      mat(i, "ffn_gate.weight", d, ff);
      mat(i, "ffn_up.weight", d, ff);
      mat(i, "ffn_down.weight", ff, d);
    }
    if (post_norms) vec(blk(i, "post_ffw_norm.weight"), d, 1.f, 0.05f);
  }
  return out;
}

uint64_t estimate_file_bytes(const ModelPreset& p, FileType ft) {
  uint64_t total = 0;
  for (const auto& t : plan_random_model(p, ft)) total += t.bytes();
  return total;
}

Status write_random_model(const ModelPreset& p, FileType ft, const std::string& path, uint64_t seed) {
  const int hd = p.head_dim_or_default();
  if (p.n_head <= 0 || p.n_head_kv <= 0 || p.n_head % p.n_head_kv != 0 || hd <= 0 || hd % 2 != 0 ||
      (p.head_dim == 0 && p.n_embd % p.n_head != 0))
    return Status::error("preset '" + p.name + "' has inconsistent head counts");
  if (p.rope_factors_long.size() != p.rope_factors_short.size() ||
      (!p.rope_factors_long.empty() && static_cast<int>(p.rope_factors_long.size()) * 2 != hd))
    return Status::error("preset '" + p.name + "' needs head_dim / 2 LongRoPE factors of each kind");
  GgufWriter w;
  write_metadata(p, ft, w);
  RandomTensors src(seed);
  for (const auto& t : plan_random_model(p, ft)) {
    switch (t.fill) {
      case PlannedTensor::Fill::kMatrix: {
        int64_t rows = 1;
        for (size_t i = 1; i < t.ne.size(); ++i) rows *= t.ne[i];
        w.add_tensor(t.name, t.type, t.ne, src.matrix(t.type, t.ne[0], rows, t.scale));
        break;
      }
      case PlannedTensor::Fill::kVector:
        w.add_tensor(t.name, t.type, t.ne, src.vector(t.ne[0], t.mean, t.scale));
        break;
      case PlannedTensor::Fill::kValues: {
        std::vector<uint8_t> bytes(t.values.size() * sizeof(float));
        std::memcpy(bytes.data(), t.values.data(), bytes.size());
        w.add_tensor_bytes(t.name, t.type, t.ne, std::move(bytes));
        break;
      }
    }
  }
  return w.write(path);
}

}  // namespace zs::engine
