#pragma once
// A fast 128-bit non-cryptographic hash of a byte string, used as the identity of an image in
// caches. Two independent 64-bit lanes of multiply-fold mixing (the wyhash construction) with
// different constants and word orders, finalized with the length, so accidental collisions
// need ~2^64 distinct inputs. It is not a MAC: callers exposed to adversaries pick a secret seed.
#include <cstddef>
#include <cstdint>
#include <string>

namespace zs::engine {

struct ContentHash {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const ContentHash&) const = default;
  std::string hex() const;  // 32 hex digits, hi first
};

ContentHash content_hash(const void* data, size_t size, uint64_t seed = 0);

struct ContentHashHasher {
  size_t operator()(const ContentHash& h) const { return static_cast<size_t>(h.lo ^ (h.hi >> 7)); }
};

}  // namespace zs::engine
