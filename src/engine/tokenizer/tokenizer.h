#pragma once
// Text <-> token ids for a GGUF model, from its `tokenizer.ggml.*` metadata. Supports
// SentencePiece-style vocabularies (`llama`) and byte-level BPE (`gpt2`) with the
// pre-tokenizers named by `tokenizer.ggml.pre`; token ids match llama.cpp's tokenizer.
// A Tokenizer is immutable after construction and safe to use from several threads.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/tokenizer/vocab.h"

namespace zs::engine {

class GgufFile;

class Tokenizer {
 public:
  // Fails with a message naming the problem when the vocabulary is missing, inconsistent
  // (array lengths, special ids outside the vocabulary, no merges) or of an unsupported kind.
  static core::Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file);
  static core::Result<std::unique_ptr<Tokenizer>> from_vocab(std::unique_ptr<Vocab> vocab);

  // add_bos: add the vocabulary's leading (and, if it asks for one, trailing) special tokens,
  // i.e. BOS when add_bos_by_default(). parse_special: recognise control-token texts such as
  // "<|im_start|>" or "<s>" in `text`; user-defined tokens are always recognised. Any bytes,
  // including invalid UTF-8, are accepted.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // Bytes this token contributes to the output text (SentencePiece: U+2581 becomes a space and
  // <0xNN> its byte; BPE: the byte-level mapping undone). Control and unknown tokens give ""
  // unless render_special. Out-of-range ids give "".
  std::string token_to_piece(int32_t id, bool render_special = false) const;
  // Concatenated pieces. For SentencePiece vocabularies with add_space_prefix, the space
  // added in front of the text by encode() is removed again (after any leading control
  // tokens), so decode(encode(x)) == x wherever the vocabulary can represent x.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  // Control tokens that are part of the output text (a family's tool-call markers such as
  // "[TOOL_CALLS]" or "<|tool_call|>"): token_to_piece and decode write their text as if they
  // were user-defined tokens. encode() is unchanged: their text in a prompt becomes the token
  // only with parse_special. Ids that are not control tokens are ignored. Not thread-safe:
  // call before the tokenizer is shared.
  void render_as_text(const std::vector<int32_t>& ids);

  int32_t bos() const { return vocab_->bos(); }
  int32_t eos() const { return vocab_->eos(); }
  int32_t eot() const { return vocab_->eot(); }
  bool add_bos_by_default() const { return vocab_->add_bos(); }
  // EOS, end-of-turn and the like (<|im_end|>, <|eot_id|>, <end_of_turn>, ...).
  bool is_end_of_generation(int32_t id) const { return vocab_->is_end_of_generation(id); }
  bool is_control(int32_t id) const { return vocab_->valid(id) && vocab_->is_control(id); }

  int32_t n_vocab() const { return vocab_->size(); }
  // The token's text as stored in the vocabulary ("" for out-of-range ids).
  std::string_view token_text(int32_t id) const;
  std::optional<int32_t> find_token(std::string_view text) const { return vocab_->find(text); }
  const Vocab& vocab() const { return *vocab_; }

 private:
  explicit Tokenizer(std::unique_ptr<Vocab> vocab);

  std::vector<bool> rendered_;  // render_as_text, by id (empty: none)

  struct Fragment {
    int32_t token;  // kNoToken for plain text
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> split_special(std::string_view text, bool parse_special) const;

  std::unique_ptr<Vocab> vocab_;
  // Trie over the texts of special tokens, to find which of them occur in a text in one pass.
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = kNoToken;
  };
  std::vector<TrieNode> trie_;
};

}  // namespace zs::engine
