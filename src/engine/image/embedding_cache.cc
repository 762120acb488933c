#include "engine/image/embedding_cache.h"

#include <random>

namespace zs::engine {
namespace {

uint64_t random_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

}  // namespace

EmbeddingCache::EmbeddingCache(size_t byte_budget) : EmbeddingCache(byte_budget, random_seed()) {}

EmbeddingCache::EmbeddingCache(size_t byte_budget, uint64_t seed)
    : byte_budget_(byte_budget), seed_(seed) {}

ContentHash EmbeddingCache::key_for(const uint8_t* data, size_t size, std::string_view salt) const {
  uint64_t seed = seed_;
  if (!salt.empty()) {
    const ContentHash s = content_hash(salt.data(), salt.size(), seed_);
    seed = s.lo ^ s.hi;
  }
  return content_hash(data, size, seed);
}

EmbeddingCache::Value EmbeddingCache::find(const ContentHash& key) {
  core::MutexLock lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++counters_.misses;
    return nullptr;
  }
  ++counters_.hits;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void EmbeddingCache::evict_until_fits(size_t incoming) {
  while (!lru_.empty() && bytes_ + incoming > byte_budget_) {
    Entry& victim = lru_.back();
    bytes_ -= victim.bytes;
    index_.erase(victim.key);
    lru_.pop_back();
    ++counters_.evictions;
  }
}

bool EmbeddingCache::insert(const ContentHash& key, Value value) {
  if (!value) return false;
  const size_t bytes = entry_bytes(*value);
  if (bytes > byte_budget_) return false;
  core::MutexLock lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  evict_until_fits(bytes);
  lru_.push_front(Entry{key, std::move(value), bytes});
  index_.emplace(key, lru_.begin());
  bytes_ += bytes;
  ++counters_.insertions;
  return true;
}

core::Result<EmbeddingCache::Value> EmbeddingCache::get_or_compute(
    const ContentHash& key, const std::function<core::Result<CachedEmbedding>()>& compute) {
  if (Value hit = find(key)) return hit;
  auto computed = compute();
  if (!computed) return computed.status();
  Value value = std::make_shared<const CachedEmbedding>(std::move(computed).value());
  insert(key, value);
  return value;
}

bool EmbeddingCache::contains(const ContentHash& key) const {
  core::MutexLock lock(mutex_);
  return index_.count(key) != 0;
}

void EmbeddingCache::clear() {
  core::MutexLock lock(mutex_);
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

EmbeddingCache::Stats EmbeddingCache::stats() const {
  core::MutexLock lock(mutex_);
  Stats s = counters_;
  s.entries = lru_.size();
  s.bytes = bytes_;
  s.byte_budget = byte_budget_;
  return s;
}

}  // namespace zs::engine
