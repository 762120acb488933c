#include "engine/batch/kv_pool.h"

namespace zs::engine {

KvPool::KvPool(const ModelConfig& c, Backend& backend, int n_blocks, int block_size) : block_size_(block_size) {
  layer_values_ = static_cast<int64_t>(n_blocks) * block_size * c.kv_dim();
  for (int l = 0; l < c.n_layer; ++l) {
    k_.push_back(backend.alloc_f16(layer_values_));
    v_.push_back(backend.alloc_f16(layer_values_));
  }
  refs_.assign(n_blocks, 0);
  hash_of_.assign(n_blocks, 0);
  for (int b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

uint64_t KvPool::discard(Backend& backend) {
  const int64_t bytes = layer_values_ * static_cast<int64_t>(sizeof(uint16_t));
  for (size_t l = 0; l < k_.size(); ++l) {
    backend.discard(k_[l], bytes);
    backend.discard(v_[l], bytes);
  }
  evictable_.clear();
  evictable_pos_.clear();
  by_hash_.clear();
  hash_of_.assign(hash_of_.size(), 0);
  free_.clear();
  for (int b = n_blocks() - 1; b >= 0; --b) free_.push_back(b);
  return static_cast<uint64_t>(bytes) * 2 * k_.size();
}

int KvPool::allocate() {
  int b = -1;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else if (!evictable_.empty()) {
    b = evictable_.front();
    evictable_.pop_front();
    evictable_pos_.erase(b);
    by_hash_.erase(hash_of_[b]);
    hash_of_[b] = 0;
  }
  if (b >= 0) refs_[b] = 1;
  return b;
}

void KvPool::retain(int block) {
  if (refs_[block]++ == 0) {
    auto it = evictable_pos_.find(block);
    if (it != evictable_pos_.end()) {
      evictable_.erase(it->second);
      evictable_pos_.erase(it);
    }
  }
}

void KvPool::release(int block) {
  if (--refs_[block] > 0) return;
  if (hash_of_[block] != 0) {
    evictable_pos_[block] = evictable_.insert(evictable_.end(), block);
  } else {
    free_.push_back(block);
  }
}

int KvPool::find_cached(uint64_t prefix_hash) {
  auto it = by_hash_.find(prefix_hash);
  if (it == by_hash_.end()) return -1;
  retain(it->second);
  ++prefix_hits_;
  return it->second;
}

void KvPool::publish(int block, uint64_t prefix_hash) {
  if (prefix_hash == 0 || hash_of_[block] != 0 || by_hash_.count(prefix_hash)) return;
  hash_of_[block] = prefix_hash;
  by_hash_[prefix_hash] = block;
}

uint64_t KvPool::chain_hash(uint64_t previous, const int32_t* tokens, int n) {
  // FNV-1a over the token ids, seeded by the previous block's hash; never 0.
  uint64_t h = previous ^ 0xcbf29ce484222325ull;
  for (int i = 0; i < n; ++i) {
    uint32_t t = static_cast<uint32_t>(tokens[i]);
    for (int byte = 0; byte < 4; ++byte) {
      h ^= (t >> (8 * byte)) & 0xff;
      h *= 0x100000001b3ull;
    }
  }
  return h == 0 ? 1 : h;
}

}  // namespace zs::engine
