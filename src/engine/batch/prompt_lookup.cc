#include "engine/batch/prompt_lookup.h"

#include <algorithm>

namespace zs::engine {

std::vector<int32_t> prompt_lookup_draft(const std::vector<int32_t>& ids, int max_tokens, PromptLookup options) {
  std::vector<int32_t> draft;
  const int len = static_cast<int>(ids.size());
  if (max_tokens <= 0) return draft;
  for (int n = std::min(options.max_ngram, len - 1); n >= std::max(1, options.min_ngram); --n) {
    const int32_t* key = ids.data() + (len - n);
    if (std::any_of(key, key + n, [](int32_t t) { return t < 0; })) continue;
    // The latest earlier occurrence: it ends before the last position, so a token follows it.
    for (int start = len - n - 1; start >= 0; --start) {
      if (!std::equal(key, key + n, ids.data() + start)) continue;
      for (int p = start + n; p < len && static_cast<int>(draft.size()) < max_tokens && ids[p] >= 0; ++p)
        draft.push_back(ids[p]);
      if (!draft.empty()) return draft;
    }
  }
  return draft;
}

}  // namespace zs::engine
