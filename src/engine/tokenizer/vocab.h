#pragma once
// The vocabulary of a GGUF model (`tokenizer.ggml.*` metadata), validated: token texts,
// scores, types, BPE merge ranks, special token ids and the flags that steer tokenization.
// Defaults and special-token conventions follow llama.cpp, the reference the engine is held to.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace zs::engine {

class GgufFile;

// Merge table lookups take (left, right) views without building the "left right" key.
struct MergeKeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const;
  size_t operator()(const std::pair<std::string_view, std::string_view>& key) const;
};
struct MergeKeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  bool operator()(const std::pair<std::string_view, std::string_view>& a,
                  std::string_view b) const {
    return b.size() == a.first.size() + 1 + a.second.size() && b.starts_with(a.first) &&
           b[a.first.size()] == ' ' && b.ends_with(a.second);
  }
  bool operator()(std::string_view b,
                  const std::pair<std::string_view, std::string_view>& a) const {
    return (*this)(a, b);
  }
};

constexpr int32_t kNoToken = -1;

enum class VocabType { kSpm, kBpe, kWpm };

// GGUF `tokenizer.ggml.token_type` values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct VocabToken {
  std::string text;
  float score = 0.0f;
  TokenType type = TokenType::kNormal;
};

class Vocab {
 public:
  static core::Result<std::unique_ptr<Vocab>> from_gguf(const GgufFile& file);
  // Builds from plain data (tests and synthetic vocabularies); validates like from_gguf.
  struct Spec {
    VocabType type = VocabType::kSpm;
    std::string pre = "default";
    std::vector<VocabToken> tokens;
    std::vector<std::string> merges;  // BPE only: "left right", best first
    int64_t bos = kNoToken, eos = kNoToken, unk = kNoToken, eot = kNoToken, eom = kNoToken;
    int64_t pad = kNoToken, sep = kNoToken, mask = kNoToken, cls = kNoToken;
    std::optional<bool> add_bos, add_eos, add_space_prefix;
  };
  static core::Result<std::unique_ptr<Vocab>> from_spec(Spec spec);

  VocabType type() const { return type_; }
  PreTokenizerType pre_type() const { return pre_type_; }
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const VocabToken& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  bool valid(int32_t id) const { return id >= 0 && id < size(); }
  std::optional<int32_t> find(std::string_view text) const;
  // Rank of merging `left` and `right` (lower merges first), or -1.
  int32_t merge_rank(std::string_view left, std::string_view right) const;
  // The token for a raw byte (<0xNN> for SentencePiece, its mapped character for BPE).
  int32_t byte_token(uint8_t byte) const { return byte_tokens_[byte]; }
  size_t max_token_length() const { return max_token_length_; }

  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  int32_t unk() const { return unk_; }
  int32_t eot() const { return eot_; }
  int32_t pad() const { return pad_; }
  int32_t sep() const { return sep_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool add_space_prefix() const { return add_space_prefix_; }
  bool ignore_merges() const { return ignore_merges_; }
  bool is_end_of_generation(int32_t id) const { return eog_.count(id) != 0; }
  // Control, user-defined and unknown tokens: recognised in text before normal tokenization,
  // longest first (ties by id).
  const std::vector<int32_t>& special_tokens() const { return special_tokens_; }
  bool is_control(int32_t id) const {
    const TokenType t = token(id).type;
    return t == TokenType::kControl || t == TokenType::kUnknown;
  }

 private:
  Vocab() = default;
  core::Status finish(const Spec& spec);

  VocabType type_ = VocabType::kSpm;
  PreTokenizerType pre_type_ = PreTokenizerType::kDefault;
  std::vector<VocabToken> tokens_;
  std::unordered_map<std::string_view, int32_t> token_to_id_;  // views into tokens_
  std::unordered_map<std::string, int32_t, MergeKeyHash, MergeKeyEq> merge_ranks_;  // "left right"
  int32_t byte_tokens_[256] = {};
  int32_t bos_ = kNoToken, eos_ = kNoToken, unk_ = kNoToken, eot_ = kNoToken;
  int32_t eom_ = kNoToken, pad_ = kNoToken, sep_ = kNoToken;
  size_t max_token_length_ = 0;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false, ignore_merges_ = false;
  std::unordered_set<int32_t> eog_;
  std::vector<int32_t> special_tokens_;
};

}  // namespace zs::engine
