#include "engine/tokenizer/vocab.h"

#include <algorithm>
#include <cstdio>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/unicode.h"

namespace zs::engine {

namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv(uint64_t h, std::string_view s) {
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * kFnvPrime;
  return h;
}

bool is_null_id(int64_t id) { return id == -1 || id == 0xFFFFFFFFll; }

}  // namespace

size_t MergeKeyHash::operator()(std::string_view key) const { return fnv(kFnvOffset, key); }

size_t MergeKeyHash::operator()(const std::pair<std::string_view, std::string_view>& key) const {
  return fnv(fnv(fnv(kFnvOffset, key.first), " "), key.second);
}

std::optional<int32_t> Vocab::find(std::string_view text) const {
  auto it = token_to_id_.find(text);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

int32_t Vocab::merge_rank(std::string_view left, std::string_view right) const {
  auto it = merge_ranks_.find(std::pair<std::string_view, std::string_view>(left, right));
  return it == merge_ranks_.end() ? -1 : it->second;
}

core::Result<std::unique_ptr<Vocab>> Vocab::from_gguf(const GgufFile& file) {
  Spec spec;
  const auto model = file.get_string("tokenizer.ggml.model");
  if (!model) {
    return core::Status::error(file.name() +
                               ": no tokenizer in this GGUF (tokenizer.ggml.model is missing)");
  }
  const bool has_pre = file.find("tokenizer.ggml.pre") != nullptr;
  if (*model == "llama") {
    spec.type = VocabType::kSpm;
    spec.bos = 1;
    spec.eos = 2;
    spec.unk = 0;
  } else if (*model == "gpt2") {
    spec.type = VocabType::kBpe;
    // The reference's defaults for GPT-2 style files that name no special tokens.
    spec.bos = 11;
    spec.eos = 11;
  } else if (*model == "bert") {
    spec.type = VocabType::kWpm;
    spec.bos = 101;  // [CLS]
    spec.unk = 100;
    spec.sep = 102;
    spec.pad = 0;
    spec.mask = 103;
  } else {
    return core::Status::error(file.name() + ": tokenizer model '" + std::string(*model) +
                               "' (tokenizer.ggml.model) is not supported; supported: llama "
                               "(SentencePiece), gpt2 (byte-level BPE), bert (WordPiece)");
  }
  if (spec.type == VocabType::kBpe && has_pre) {
    const auto pre = file.get_string("tokenizer.ggml.pre");
    if (!pre) return core::Status::error(file.name() + ": tokenizer.ggml.pre is not a string");
    spec.pre = std::string(*pre);
  }

  const auto texts = file.get_string_array("tokenizer.ggml.tokens");
  if (texts.empty()) {
    return core::Status::error(file.name() +
                               ": tokenizer.ggml.tokens is missing, empty or not a string array");
  }
  const size_t n = texts.size();
  const auto scores = file.get_float_array("tokenizer.ggml.scores");
  if (file.find("tokenizer.ggml.scores") && scores.size() != n) {
    return core::Status::error(file.name() + ": tokenizer.ggml.scores has " +
                               std::to_string(scores.size()) + " entries for " +
                               std::to_string(n) + " tokens");
  }
  const auto types = file.get_int_array("tokenizer.ggml.token_type");
  if (file.find("tokenizer.ggml.token_type") && types.size() != n) {
    return core::Status::error(file.name() + ": tokenizer.ggml.token_type has " +
                               std::to_string(types.size()) + " entries for " +
                               std::to_string(n) + " tokens");
  }
  spec.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    spec.tokens[i].text = std::string(texts[i]);
    if (!scores.empty()) spec.tokens[i].score = scores[i];
    if (!types.empty()) {
      const int64_t t = types[i];
      // Unknown type codes are kept as "undefined", as the reference does.
      spec.tokens[i].type = (t >= 0 && t <= 6) ? static_cast<TokenType>(t) : TokenType::kUndefined;
    }
  }
  if (spec.type == VocabType::kBpe) {
    if (!file.find("tokenizer.ggml.merges")) {
      return core::Status::error(file.name() +
                                 ": BPE vocabulary without tokenizer.ggml.merges");
    }
    for (std::string_view m : file.get_string_array("tokenizer.ggml.merges")) {
      spec.merges.emplace_back(m);
    }
  }

  struct IdKey {
    const char* key;
    int64_t* dst;
  };
  const IdKey ids[] = {
      {"tokenizer.ggml.bos_token_id", &spec.bos},
      {"tokenizer.ggml.eos_token_id", &spec.eos},
      {"tokenizer.ggml.unknown_token_id", &spec.unk},
      {"tokenizer.ggml.eot_token_id", &spec.eot},
      {"tokenizer.ggml.eom_token_id", &spec.eom},
      {"tokenizer.ggml.seperator_token_id", &spec.sep},  // sic: the GGUF key is misspelt
      {"tokenizer.ggml.padding_token_id", &spec.pad},
      {"tokenizer.ggml.mask_token_id", &spec.mask},
      {"tokenizer.ggml.cls_token_id", &spec.cls},
  };
  for (const IdKey& k : ids) {
    if (!file.find(k.key)) continue;
    const auto v = file.get_int(k.key);
    if (!v) return core::Status::error(file.name() + ": " + k.key + " is not an integer");
    *k.dst = *v;
  }
  if (spec.type == VocabType::kWpm && !is_null_id(spec.cls)) spec.bos = spec.cls;  // BERT starts with [CLS]
  spec.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  spec.add_eos = file.get_bool("tokenizer.ggml.add_eos_token");
  spec.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");

  auto vocab = from_spec(std::move(spec));
  if (!vocab) return vocab.status().with_context(file.name());
  return vocab;
}

core::Result<std::unique_ptr<Vocab>> Vocab::from_spec(Spec spec) {
  std::unique_ptr<Vocab> v(new Vocab());
  ZS_RETURN_IF_ERROR(v->finish(spec));
  v->tokens_ = std::move(spec.tokens);
  // Built after tokens_ got its final storage: the keys are views into it. A text seen
  // twice maps to its last id, as in the reference.
  v->token_to_id_.reserve(v->tokens_.size());
  for (size_t i = 0; i < v->tokens_.size(); ++i) {
    v->token_to_id_[v->tokens_[i].text] = static_cast<int32_t>(i);
  }

  Vocab& self = *v;
  auto find_text = [&](std::string_view t) -> int32_t {
    auto it = self.token_to_id_.find(t);
    return it == self.token_to_id_.end() ? kNoToken : it->second;
  };
  auto make_control = [&](int32_t id) {
    if (id != kNoToken && self.tokens_[id].type != TokenType::kControl) {
      self.tokens_[id].type = TokenType::kControl;
    }
  };

  // Byte fallback tokens.
  for (int b = 0; b < 256; ++b) {
    int32_t id = kNoToken;
    if (self.type_ == VocabType::kSpm) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", b);
      id = find_text(hex);
      if (id == kNoToken) id = find_text(std::string(1, static_cast<char>(b)));
      if (id == kNoToken) id = self.unk_;
    } else {
      id = find_text(byte_to_bpe_char(static_cast<uint8_t>(b)));
    }
    self.byte_tokens_[b] = id;
  }

  // End-of-turn and fill-in-the-middle tokens are recognised by their text when the file does
  // not name them (the reference's convention); they are then treated as control tokens.
  static constexpr std::string_view kEotTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
  if (self.eot_ == kNoToken) {
    for (std::string_view t : kEotTexts) {
      if (int32_t id = find_text(t); id != kNoToken) {
        self.eot_ = id;
        make_control(id);
        break;
      }
    }
  }
  if (self.eom_ == kNoToken) {
    if (int32_t id = find_text("<|eom_id|>"); id != kNoToken) {
      self.eom_ = id;
      make_control(id);
    }
  }
  auto first_of = [&](std::initializer_list<std::string_view> texts) {
    for (std::string_view t : texts) {
      if (int32_t id = find_text(t); id != kNoToken) return id;
    }
    return kNoToken;
  };
  const std::string_view kFimBegin = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>";
  const std::string_view kFimHole = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>";
  const std::string_view kFimEnd = "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>";
  const int32_t fim_ids[] = {
      first_of({"<|fim_prefix|>", "<fim-prefix>", kFimBegin, "<fim_prefix>", "<PRE>",
                "\xE2\x96\x81<PRE>"}),
      first_of({"<|fim_suffix|>", "<fim-suffix>", kFimHole, "<fim_suffix>", "<SUF>",
                "\xE2\x96\x81<SUF>"}),
      first_of({"<|fim_middle|>", "<fim-middle>", kFimEnd, "<fim_middle>", "<MID>",
                "\xE2\x96\x81<MID>"}),
  };
  for (int32_t id : fim_ids) make_control(id);
  // Padding, repository and file-separator FIM tokens also end generation.
  const int32_t fim_eog[] = {
      first_of({"<|fim_pad|>", "<fim-pad>", "<fim_pad>"}),
      first_of({"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}),
      first_of({"<|file_sep|>", "<|file_separator|>", "<fim-sep>"}),
  };
  for (int32_t id : fim_eog) {
    if (id != kNoToken) {
      make_control(id);
      self.eog_.insert(id);
    }
  }
  static constexpr std::string_view kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
      "<EOT>", "_<EOT>",
      "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};
  for (std::string_view t : kEogTexts) {
    if (int32_t id = find_text(t); id != kNoToken) {
      self.eog_.insert(id);
      make_control(id);
    }
  }
  for (int32_t id : {self.eos_, self.eot_, self.eom_}) {
    if (id != kNoToken) self.eog_.insert(id);
  }

  for (size_t i = 0; i < self.tokens_.size(); ++i) {
    const TokenType t = self.tokens_[i].type;
    if ((t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) &&
        !self.tokens_[i].text.empty()) {
      self.special_tokens_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(self.special_tokens_.begin(), self.special_tokens_.end(),
                   [&](int32_t a, int32_t b) {
                     return self.tokens_[a].text.size() > self.tokens_[b].text.size();
                   });
  return v;
}

core::Status Vocab::finish(const Spec& spec) {
  type_ = spec.type;
  const size_t n = spec.tokens.size();
  if (n == 0) return core::Status::error("the vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) return core::Status::error("too many tokens");

  auto check_id = [&](int64_t raw, const char* what, bool required_valid,
                      int32_t& dst) -> core::Status {
    if (is_null_id(raw)) {
      dst = kNoToken;
    } else if (raw >= 0 && raw < static_cast<int64_t>(n)) {
      dst = static_cast<int32_t>(raw);
    } else if (required_valid) {
      return core::Status::error(std::string(what) + " token id " + std::to_string(raw) +
                                 " is outside the vocabulary of " + std::to_string(n) +
                                 " tokens");
    } else {
      dst = kNoToken;  // unused by tokenization; tolerated like the reference does
    }
    return core::Status::ok();
  };
  ZS_RETURN_IF_ERROR(check_id(spec.bos, "BOS", true, bos_));
  ZS_RETURN_IF_ERROR(check_id(spec.eos, "EOS", true, eos_));
  ZS_RETURN_IF_ERROR(check_id(spec.unk, "unknown", true, unk_));
  ZS_RETURN_IF_ERROR(check_id(spec.eot, "end-of-turn", true, eot_));
  ZS_RETURN_IF_ERROR(check_id(spec.eom, "end-of-message", true, eom_));
  ZS_RETURN_IF_ERROR(check_id(spec.pad, "padding", false, pad_));
  ZS_RETURN_IF_ERROR(check_id(spec.sep, "separator", false, sep_));
  for (const VocabToken& t : spec.tokens) max_token_length_ = std::max(max_token_length_, t.text.size());

  if (type_ == VocabType::kSpm) {
    add_space_prefix_ = spec.add_space_prefix.value_or(true);
    add_bos_ = spec.add_bos.value_or(true);
    add_eos_ = spec.add_eos.value_or(false);
  } else if (type_ == VocabType::kWpm) {
    add_bos_ = spec.add_bos.value_or(true);
    add_eos_ = spec.add_eos.value_or(false);
  } else if (type_ == VocabType::kBpe) {
    std::string_view pre = spec.pre;
    if (pre.empty()) pre = "default";
    auto pt = pre_tokenizer_from_name(pre);
    if (!pt) return pt.status();
    pre_type_ = pt.value();
    const bool llama3 = pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" ||
                        pre == "falcon3";
    ignore_merges_ = llama3;
    if (pre == "chatglm-bpe") bos_ = kNoToken;
    add_space_prefix_ = spec.add_space_prefix.value_or(false);
    add_bos_ = spec.add_bos.value_or(llama3);
    add_eos_ = spec.add_eos.value_or(false);

    if (spec.merges.empty()) {
      return core::Status::error("BPE vocabulary has no merges (tokenizer.ggml.merges)");
    }
    merge_ranks_.reserve(spec.merges.size());
    for (size_t i = 0; i < spec.merges.size(); ++i) {
      const std::string& m = spec.merges[i];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos) {
        return core::Status::error("BPE merge " + std::to_string(i) + " ('" + m +
                                   "') is not two tokens separated by a space");
      }
      merge_ranks_.try_emplace(m, static_cast<int32_t>(i));  // the first rank wins
    }
  }
  return core::Status::ok();
}

}  // namespace zs::engine
