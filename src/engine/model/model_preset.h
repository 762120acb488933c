#pragma once
// Shapes of real models, for generating random-weight checkpoints that load and run
// exactly like the real ones (benchmarks, tests, the built-in default deployment). Every
// figure comes from the model's published config.json, written under the metadata keys the
// GGUF converter uses for that architecture; only the vocabulary is synthetic (VocabStyle).
// Thread-safety: the preset table is immutable.
#include <string>
#include <vector>

#include "core/status.h"

namespace zs::engine {

// The synthetic vocabulary a generated file carries (tokenization must work, the text is
// gibberish by design).
enum class VocabStyle {
  kSentencePiece,  // `llama` tokenizer: <unk> <s> </s>, bytes, ChatML markers, "▁"-pieces
  kGemma,          // `llama` tokenizer with Gemma's ids (<pad> <eos> <bos> <unk>), turn markers, no space prefix
  kPhi3,           // `llama` tokenizer, 32000 pieces + Phi-3's <|endoftext|> <|user|> <|end|> ... up to n_vocab
  kMistralV3,      // `llama` tokenizer with Mistral v3's controls ([INST] ... [TOOL_CALLS] ..., ids 3-767), bytes, pieces
  kWordPiece,      // `bert` tokenizer: [PAD] [unused*] [UNK] [CLS] [SEP] [MASK], words and "##" pieces
};

struct ModelPreset {
  std::string name;
  std::string arch;  // general.architecture: llama, qwen2, qwen2moe, qwen2vl, qwen3, qwen3moe, gemma2, gemma3, phi3,
                     // chatglm, bert, nomic-bert
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
  float rope_base, rms_eps;
  bool tied_embeddings;

  // Family figures; 0 / empty means the key or tensor is absent from the file.
  int head_dim = 0;   // attention.key_length = value_length when not n_embd / n_head (gemma2)
  int rope_dims = 0;  // rope.dimension_count when only part of each head rotates (chatglm: half)
  int n_expert = 0, n_expert_used = 0;
  int n_ff_exp = 0;    // expert_feed_forward_length (qwen2moe); 0: experts are n_ff wide (Mixtral)
  int n_ff_shexp = 0;  // expert_shared_feed_forward_length (qwen2moe)
  int sliding_window = 0;  // attention.sliding_window (gemma2, phi3)
  float attn_softcap = 0.f, final_softcap = 0.f;  // gemma2
  std::vector<int> rope_sections = {};  // qwen2vl: rope.dimension_sections (M-RoPE)
  float rope_base_swa = 0.f;      // gemma3: rope.freq_base_swa of the sliding blocks
  float rope_scale_linear = 0.f;  // gemma3: rope.scaling.factor (linear) of the global blocks
  int rope_orig_ctx = 0;  // LongRoPE (phi3): rope.scaling.original_context_length, with the factors below
  std::vector<float> rope_factors_long = {}, rope_factors_short = {};
  int pooling = 0;       // encoders: pooling_type (1 mean, 2 cls)
  float norm_eps = 0.f;  // encoders: attention.layer_norm_epsilon
  VocabStyle vocab = VocabStyle::kSentencePiece;
  int full_layers = 0;  // block count of the real model (n_layer differs after with_layers)

  int head_dim_or_default() const { return head_dim > 0 ? head_dim : n_embd / n_head; }
  int expert_ff() const { return n_ff_exp > 0 ? n_ff_exp : n_ff; }
  bool is_encoder() const { return arch == "bert" || arch == "nomic-bert"; }
  bool is_moe() const { return n_expert > 0; }
};

core::Result<ModelPreset> find_model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

// The preset cut to its first n_layer blocks (every other shape unchanged), for machines
// without memory for the whole model. Error unless 1 <= n_layer <= the preset's block count.
core::Result<ModelPreset> with_layers(const ModelPreset& preset, int n_layer);

}  // namespace zs::engine
