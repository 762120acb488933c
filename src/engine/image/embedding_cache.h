#pragma once
// A cache of vision-encoder outputs keyed by the content of the encoded image, so a repeated
// image (the same photo in every turn of a chat, a popular URL) is encoded once. Least recently
// used entries are evicted to stay under a byte budget. Thread-safe.
//
// The budget counts what the cache holds; a value handed out stays alive while a caller holds
// it, even after eviction. Concurrent misses on the same key may compute it twice; the second
// insert replaces the first (same content, so same value).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "engine/image/content_hash.h"

namespace zs::engine {

// What one image encodes to: every view's embedding rows, view after view, and the tile
// grid the views came from, so that a cache hit restores the prompt layout.
struct CachedEmbedding {
  std::vector<float> values;
  int grid_rows = 0;  // 0 x 0: a single view
  int grid_cols = 0;
  int pos_rows = 0;  // Qwen2-VL: the merged grid the rows' rotary positions come from
  int pos_cols = 0;
};

class EmbeddingCache {
 public:
  using Value = std::shared_ptr<const CachedEmbedding>;

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t insertions = 0;
    uint64_t evictions = 0;
    size_t entries = 0;
    size_t bytes = 0;
    size_t byte_budget = 0;
  };

  // Bookkeeping charged per entry on top of its floats (list node, map node, control block).
  static constexpr size_t kEntryOverheadBytes = 128;

  // `seed` keys the hash; by default a random one per cache, so nobody outside the process
  // can precompute colliding images.
  explicit EmbeddingCache(size_t byte_budget);
  EmbeddingCache(size_t byte_budget, uint64_t seed);

  // The key of an encoded image. `salt` separates what differs for identical bytes (model and
  // preprocessing identity) when one cache serves several encoders.
  ContentHash key_for(const uint8_t* data, size_t size, std::string_view salt = {}) const;

  // The cached value (now most recently used), or null; counts a hit or a miss.
  Value find(const ContentHash& key);
  // Stores a value, evicting least recently used entries as needed. A value bigger than the
  // whole budget is not stored (returns false). Replaces an existing entry for the key.
  bool insert(const ContentHash& key, Value value);
  // find(), else compute (outside the lock), insert and return. A failed compute is passed on
  // and nothing is stored.
  core::Result<Value> get_or_compute(const ContentHash& key,
                                     const std::function<core::Result<CachedEmbedding>()>& compute);

  bool contains(const ContentHash& key) const;  // no counting, no recency change
  void clear();
  Stats stats() const;

  static size_t entry_bytes(const CachedEmbedding& value) {
    return value.values.size() * sizeof(float) + kEntryOverheadBytes;
  }

 private:
  struct Entry {
    ContentHash key;
    Value value;
    size_t bytes;
  };
  using List = std::list<Entry>;  // front = most recently used

  void evict_until_fits(size_t incoming) REQUIRES(mutex_);

  const size_t byte_budget_;
  const uint64_t seed_;
  mutable core::Mutex mutex_;
  List lru_ GUARDED_BY(mutex_);
  std::unordered_map<ContentHash, List::iterator, ContentHashHasher> index_ GUARDED_BY(mutex_);
  size_t bytes_ GUARDED_BY(mutex_) = 0;
  Stats counters_ GUARDED_BY(mutex_);
};

}  // namespace zs::engine
