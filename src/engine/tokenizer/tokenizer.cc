#include "engine/tokenizer/tokenizer.h"

#include <algorithm>

#include "engine/gguf/gguf_file.h"
#include "engine/tokenizer/bpe_encoder.h"
#include "engine/tokenizer/spm_encoder.h"
#include "engine/tokenizer/unicode.h"
#include "engine/tokenizer/wpm_encoder.h"

namespace zs::engine {

core::Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file) {
  auto vocab = Vocab::from_gguf(file);
  if (!vocab) return vocab.status();
  return from_vocab(std::move(vocab.value()));
}

core::Result<std::unique_ptr<Tokenizer>> Tokenizer::from_vocab(std::unique_ptr<Vocab> vocab) {
  if (!vocab) return core::Status::error("no vocabulary");
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(vocab)));
}

Tokenizer::Tokenizer(std::unique_ptr<Vocab> vocab) : vocab_(std::move(vocab)) {
  trie_.emplace_back();
  for (int32_t id : vocab_->special_tokens()) {
    int32_t node = 0;
    for (char ch : vocab_->token(id).text) {
      const auto c = static_cast<uint8_t>(ch);
      auto& kids = trie_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), c,
                                 [](const auto& p, uint8_t v) { return p.first < v; });
      if (it != kids.end() && it->first == c) {
        node = it->second;
      } else {
        const auto child = static_cast<int32_t>(trie_.size());
        kids.insert(it, {c, child});
        trie_.emplace_back();  // may reallocate: `kids` is not used after this
        node = child;
      }
    }
    trie_[node].token = id;
  }
}

std::string_view Tokenizer::token_text(int32_t id) const {
  return vocab_->valid(id) ? std::string_view(vocab_->token(id).text) : std::string_view();
}

std::vector<Tokenizer::Fragment> Tokenizer::split_special(std::string_view text,
                                                          bool parse_special) const {
  std::vector<Fragment> frags{{kNoToken, 0, text.size()}};
  if (trie_.size() <= 1) return frags;

  // Which special tokens occur anywhere in the text.
  std::vector<char> present(static_cast<size_t>(vocab_->size()), 0);
  bool any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    int32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      const auto c = static_cast<uint8_t>(text[j]);
      const auto& kids = trie_[node].children;
      auto it = std::lower_bound(kids.begin(), kids.end(), c,
                                 [](const auto& p, uint8_t v) { return p.first < v; });
      if (it == kids.end() || it->first != c) break;
      node = it->second;
      if (trie_[node].token != kNoToken) {
        present[trie_[node].token] = 1;
        any = true;
      }
    }
  }
  if (!any) return frags;

  // Longest special token first, each one splitting every remaining text fragment at all of
  // its occurrences (the reference's order, which decides overlapping matches).
  std::vector<Fragment> next;
  for (int32_t id : vocab_->special_tokens()) {
    if (!present[id]) continue;
    if (!parse_special && vocab_->is_control(id)) continue;
    const std::string_view needle = vocab_->token(id).text;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      while (pos < end) {
        const size_t hit = text.substr(0, end).find(needle, pos);
        if (hit == std::string_view::npos) break;
        if (hit > pos) next.push_back({kNoToken, pos, hit - pos});
        next.push_back({id, hit, needle.size()});
        pos = hit + needle.size();
      }
      if (pos < end) next.push_back({kNoToken, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && vocab_->add_bos() && vocab_->bos() != kNoToken) out.push_back(vocab_->bos());
  const std::vector<Fragment> frags =
      text.empty() ? std::vector<Fragment>{} : split_special(text, parse_special);

  if (vocab_->type() == VocabType::kSpm) {
    // A space is put in front of the text and of every text that follows a special token.
    bool after_special = true;
    std::string buf;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        after_special = true;
        continue;
      }
      buf.clear();
      if (vocab_->add_space_prefix() && after_special) buf.push_back(' ');
      buf.append(text.substr(f.offset, f.length));
      spm_encode(*vocab_, buf, out);
      after_special = false;
    }
  } else {
    const bool wpm = vocab_->type() == VocabType::kWpm;
    for (const Fragment& f : frags) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
      } else if (wpm) {
        wpm_encode(*vocab_, text.substr(f.offset, f.length), out);
      } else {
        bpe_encode(*vocab_, text.substr(f.offset, f.length), out);
      }
    }
  }
  if (add_bos && vocab_->add_eos() && vocab_->eos() != kNoToken) out.push_back(vocab_->eos());
  // BERT inputs end with [SEP].
  if (add_bos && vocab_->type() == VocabType::kWpm && vocab_->sep() != kNoToken) {
    out.push_back(vocab_->sep());
  }
  return out;
}

void Tokenizer::render_as_text(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    if (!vocab_->valid(id) || vocab_->token(id).type != TokenType::kControl) continue;
    if (rendered_.empty()) rendered_.assign(static_cast<size_t>(vocab_->size()), false);
    rendered_[static_cast<size_t>(id)] = true;
  }
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (!vocab_->valid(id)) return {};
  const VocabToken& tok = vocab_->token(id);
  switch (tok.type) {
    case TokenType::kControl:
    case TokenType::kUnknown:
      if (render_special || (static_cast<size_t>(id) < rendered_.size() && rendered_[static_cast<size_t>(id)]))
        return tok.text;
      return {};
    case TokenType::kUserDefined:
      return tok.text;
    case TokenType::kNormal:
      break;
    case TokenType::kByte:
      if (vocab_->type() == VocabType::kSpm && tok.text.size() == 6 &&
          tok.text.starts_with("<0x") && tok.text[5] == '>') {
        auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          return -1;
        };
        const int hi = hex(tok.text[3]);
        const int lo = hex(tok.text[4]);
        if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
      }
      return {};
    default:
      return {};  // unused and undefined tokens produce no text
  }
  if (vocab_->type() != VocabType::kBpe) {
    std::string out;
    out.reserve(tok.text.size());
    const std::string_view t = tok.text;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t.compare(i, 3, "\xE2\x96\x81") == 0) {
        out.push_back(' ');
        i += 2;
      } else {
        out.push_back(t[i]);
      }
    }
    return out;
  }
  std::string out;
  for (uint32_t cpt : utf8_to_codepoints(tok.text)) {
    const int b = bpe_char_to_byte(cpt);
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      append_utf8(cpt, out);  // not a byte-level character: keep it as text
    }
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  bool strip_space = (vocab_->type() == VocabType::kSpm && vocab_->add_space_prefix()) ||
                     vocab_->type() == VocabType::kWpm;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (strip_space && vocab_->valid(id) && vocab_->is_control(id)) {
      out += piece;
      continue;  // the prefix space sits after BOS and other leading control tokens
    }
    if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_space = false;
    out += piece;
  }
  return out;
}

}  // namespace zs::engine
