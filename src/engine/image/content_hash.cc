#include "engine/image/content_hash.h"

#include <cstdio>
#include <cstring>

namespace zs::engine {
namespace {

// Odd constants with balanced bits (wyhash's secrets and splitmix64's multipliers).
constexpr uint64_t kA0 = 0xa0761d6478bd642full;
constexpr uint64_t kA1 = 0xe7037ed1a0b428dbull;
constexpr uint64_t kB0 = 0x8ebc6af09c88c6e3ull;
constexpr uint64_t kB1 = 0x589965cc75374cc3ull;
constexpr uint64_t kF0 = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kF1 = 0xbf58476d1ce4e5b9ull;
constexpr uint64_t kF2 = 0x94d049bb133111ebull;

// Full 64x64 -> 128-bit product folded back to 64 bits: every input bit reaches every output bit.
inline uint64_t mix(uint64_t a, uint64_t b) {
  const unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

inline uint64_t read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only; the hash is an in-process identity, never persisted
}

}  // namespace

ContentHash content_hash(const void* data, size_t size, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t a = seed ^ kA0;
  uint64_t b = ((seed << 32) | (seed >> 32)) ^ kB0;
  size_t left = size;
  auto block = [&](const uint8_t* q) {
    const uint64_t w0 = read64(q);
    const uint64_t w1 = read64(q + 8);
    // The lanes see the words in opposite roles, so an input that cancels one lane's
    // multiplier (w ^ k == 0) leaves the other lane intact.
    a = mix(w0 ^ kA1, w1 ^ a);
    b = mix(w1 ^ kB1, w0 ^ b ^ kF0);
  };
  for (; left >= 16; left -= 16, p += 16) block(p);
  if (left > 0) {
    uint8_t tail[16] = {};
    std::memcpy(tail, p, left);
    block(tail);
  }
  // The length separates inputs that differ only by trailing zero bytes.
  a = mix(a ^ kF1, static_cast<uint64_t>(size) ^ kF0);
  b = mix(b ^ kF2, static_cast<uint64_t>(size) ^ kA1 ^ a);
  return ContentHash{mix(a ^ kB1, b ^ kF1), mix(b ^ kA0, a ^ kF2)};
}

std::string ContentHash::hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(hi),
                static_cast<unsigned long long>(lo));
  return buf;
}

}  // namespace zs::engine
