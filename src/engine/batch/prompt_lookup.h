#pragma once
// Prompt-lookup drafting for speculative decoding: the tokens that followed the latest earlier
// occurrence of the sequence's last n tokens (n from `max_ngram` down to `min_ngram`) are
// proposed as its next tokens. Costs O(length x n) per call, no state. Negative ids (image
// positions) never match and end a draft.
#include <cstdint>
#include <vector>

namespace zs::engine {

struct PromptLookup {
  int max_ngram = 3;
  int min_ngram = 2;
};

// Up to `max_tokens` tokens proposed after `ids`; empty when no n-gram recurs.
std::vector<int32_t> prompt_lookup_draft(const std::vector<int32_t>& ids, int max_tokens, PromptLookup options = {});

}  // namespace zs::engine
