#pragma once
// The paged key/value cache of one model instance: fixed-size blocks of positions, all
// allocated up front from one pool. Sequences map their positions to blocks through block
// tables. Full blocks are also named by a hash of every token from the start of the
// sequence, so that a later request with the same prefix (system prompt, same image) reuses
// them instead of recomputing; such blocks stay cached after their sequences end until the
// pool needs the space (least recently used first). Not thread-safe: one scheduler owns it.
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/model_config.h"

namespace zs::engine {

class KvPool {
 public:
  KvPool(const ModelConfig& config, Backend& backend, int n_blocks, int block_size);

  int block_size() const { return block_size_; }
  int n_blocks() const { return static_cast<int>(refs_.size()); }
  // Blocks that can be handed out now (free, or cached but unused).
  int n_available() const { return static_cast<int>(free_.size() + evictable_.size()); }
  int n_used() const { return n_blocks() - n_available(); }
  uint16_t* k(int layer) { return k_[layer]; }
  uint16_t* v(int layer) { return v_[layer]; }

  // A block for new positions, or -1 when every block is in use.
  int allocate();
  void retain(int block);
  void release(int block);

  // The cached block holding exactly this prefix hash (now retained), or -1.
  int find_cached(uint64_t prefix_hash);
  // Names a full block by its prefix hash so later sequences can share it.
  void publish(int block, uint64_t prefix_hash);

  uint64_t prefix_hits() const { return prefix_hits_; }

  // Drops every block's contents and the prefix cache, and gives the memory back through the
  // backend (an idle instance going to sleep). REQUIRES: no block in use. Returns the bytes.
  uint64_t discard(Backend& backend);

  // Hash of a block's tokens chained onto the hash of everything before it.
  static uint64_t chain_hash(uint64_t previous, const int32_t* tokens, int n);

 private:
  int block_size_;
  int64_t layer_values_ = 0;  // f16 values of one layer's keys (and of its values)
  std::vector<uint16_t*> k_, v_;
  std::vector<int> refs_;
  std::vector<uint64_t> hash_of_;  // 0 = not published
  std::vector<int> free_;
  std::list<int> evictable_;  // published blocks with no users, least recently used first
  std::unordered_map<int, std::list<int>::iterator> evictable_pos_;
  std::unordered_map<uint64_t, int> by_hash_;
  uint64_t prefix_hits_ = 0;
};

}  // namespace zs::engine
