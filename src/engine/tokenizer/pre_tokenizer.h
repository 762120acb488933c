#pragma once
// Splits text into words before byte-level BPE merging, as the `tokenizer.ggml.pre` of a
// GGUF vocabulary prescribes. Each pre-tokenizer is a list of regular expressions applied one
// after another (each refines the previous split; text between matches becomes a word of its
// own). The expressions are implemented by hand on Unicode classes from ICU, reproducing the
// leftmost-first (ECMAScript / backtracking) match that the reference implementation uses.
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::engine {

enum class PreTokenizerType {
  kDefault,        // punctuation runs, GPT-2 expression, digit runs, groups of 3 digits
  kGpt2,           // GPT-2 expression only (gpt-2, mpt, olmo, jais, phi-2, roberta ...)
  kLlama3,         // llama-bpe / llama3 / dbrx / smaug / chatglm-bpe (digits in groups of 3)
  kQwen2,          // the llama3 expression with single digits (qwen2, stablelm2, megrez)
  kDeepseekLlm,
  kDeepseekCoder,
  kFalcon,
  kStarcoder,      // single digits, then GPT-2 (starcoder, refact, command-r, smollm ...)
  kBloom,          // bloom, poro-chat, gpt3-finnish
  kViking,
};

// Maps a `tokenizer.ggml.pre` value to its splitter; unknown names are an error (guessing
// would silently give wrong token ids).
core::Result<PreTokenizerType> pre_tokenizer_from_name(std::string_view name);

// Words of `text` in order; their concatenation equals `text` after invalid UTF-8 bytes have
// been replaced by U+FFFD (as the reference does).
std::vector<std::string> pre_tokenize(PreTokenizerType type, std::string_view text);

}  // namespace zs::engine
