// The content hash behaves like a 128-bit random function on the inputs that matter (single
// bit flips, lengths, seeds), and the cache counts, evicts and shares values as documented.
#include <gtest/gtest.h>

#include <bitset>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>

#include "engine/image/content_hash.h"
#include "engine/image/embedding_cache.h"

namespace zs::engine {
namespace {

ContentHash hash_of(const std::vector<uint8_t>& b, uint64_t seed = 0) {
  return content_hash(b.data(), b.size(), seed);
}

int bits_differing(const ContentHash& a, const ContentHash& b) {
  return static_cast<int>(std::bitset<64>(a.lo ^ b.lo).count() + std::bitset<64>(a.hi ^ b.hi).count());
}

TEST(ContentHash, DeterministicAndSeeded) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  EXPECT_EQ(hash_of(data), hash_of(data));
  EXPECT_NE(hash_of(data, 1), hash_of(data, 2));
  EXPECT_EQ(hash_of(data).hex().size(), 32u);
}

TEST(ContentHash, LengthMatters) {
  std::set<std::pair<uint64_t, uint64_t>> seen;
  for (size_t n = 0; n <= 64; ++n) {
    const ContentHash h = hash_of(std::vector<uint8_t>(n, 0));
    EXPECT_TRUE(seen.insert({h.lo, h.hi}).second) << n;
  }
}

TEST(ContentHash, EveryBitFlipAvalanches) {
  // Flipping any single bit of a 100-byte input changes about half of the 128 output bits, in
  // both halves.
  std::mt19937_64 rng(1);
  std::vector<uint8_t> data(100);
  for (auto& v : data) v = static_cast<uint8_t>(rng());
  const ContentHash base = hash_of(data);
  double total = 0;
  int flips = 0;
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= 1 << bit;
      const ContentHash h = hash_of(data);
      data[byte] ^= 1 << bit;
      const int d = bits_differing(base, h);
      EXPECT_GT(d, 30) << byte << ":" << bit;
      EXPECT_LT(d, 98) << byte << ":" << bit;
      EXPECT_NE(h.lo, base.lo);
      EXPECT_NE(h.hi, base.hi);
      total += d;
      ++flips;
    }
  }
  EXPECT_NEAR(total / flips, 64.0, 2.0);
}

TEST(ContentHash, NoCollisionsOnStructuredInputs) {
  // Counters, shifted single bytes and prefixes: the inputs weak hashes collide on.
  std::unordered_set<uint64_t> lo;
  std::unordered_set<uint64_t> hi;
  size_t n = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    const ContentHash h = content_hash(&i, sizeof i);
    lo.insert(h.lo);
    hi.insert(h.hi);
    ++n;
  }
  std::vector<uint8_t> buf(64, 0);
  for (size_t pos = 0; pos < 64; ++pos) {
    for (int v = 1; v < 256; ++v) {
      buf[pos] = static_cast<uint8_t>(v);
      const ContentHash h = hash_of(buf);
      lo.insert(h.lo);
      hi.insert(h.hi);
      ++n;
    }
    buf[pos] = 0;
  }
  EXPECT_EQ(lo.size(), n);
  EXPECT_EQ(hi.size(), n);
}

EmbeddingCache::Value floats(size_t n, float v) {
  return std::make_shared<const CachedEmbedding>(CachedEmbedding{std::vector<float>(n, v)});
}

ContentHash key(uint64_t i) { return ContentHash{i, ~i}; }

TEST(EmbeddingCache, HitsAndMisses) {
  EmbeddingCache cache(1 << 20, 7);
  EXPECT_EQ(cache.find(key(1)), nullptr);
  EXPECT_TRUE(cache.insert(key(1), floats(10, 1.5f)));
  auto v = cache.find(key(1));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->values[9], 1.5f);
  const auto s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.insertions, 1u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, 10 * sizeof(float) + EmbeddingCache::kEntryOverheadBytes);
}

TEST(EmbeddingCache, EvictsLeastRecentlyUsedUnderBudget) {
  const size_t entry = EmbeddingCache::entry_bytes(CachedEmbedding{std::vector<float>(100)});
  EmbeddingCache cache(3 * entry, 7);
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(cache.insert(key(i), floats(100, static_cast<float>(i))));
  ASSERT_NE(cache.find(key(0)), nullptr);  // 0 is now the most recent; 1 the least
  ASSERT_TRUE(cache.insert(key(3), floats(100, 3)));
  EXPECT_FALSE(cache.contains(key(1)));
  EXPECT_TRUE(cache.contains(key(0)));
  EXPECT_TRUE(cache.contains(key(2)));
  EXPECT_TRUE(cache.contains(key(3)));
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_LE(cache.stats().bytes, 3 * entry);
  // A large value pushes out as many as it needs.
  ASSERT_TRUE(cache.insert(key(4), floats(250, 4)));
  EXPECT_EQ(cache.stats().entries, 1u);
  EXPECT_TRUE(cache.contains(key(4)));
}

TEST(EmbeddingCache, ValueLargerThanBudgetIsNotStored) {
  EmbeddingCache cache(1000, 7);
  EXPECT_FALSE(cache.insert(key(1), floats(1000, 0)));
  EXPECT_FALSE(cache.insert(key(2), nullptr));
  EXPECT_EQ(cache.stats().entries, 0u);
}

TEST(EmbeddingCache, ReplaceKeepsAccountingRight) {
  EmbeddingCache cache(1 << 20, 7);
  cache.insert(key(1), floats(10, 1));
  cache.insert(key(1), floats(20, 2));
  const auto s = cache.stats();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, EmbeddingCache::entry_bytes(CachedEmbedding{std::vector<float>(20)}));
  EXPECT_EQ(cache.find(key(1))->values[0], 2.0f);
}

TEST(EmbeddingCache, EvictedValueStaysAliveForItsHolder) {
  EmbeddingCache cache(EmbeddingCache::entry_bytes(CachedEmbedding{std::vector<float>(10)}), 7);
  cache.insert(key(1), floats(10, 1));
  auto held = cache.find(key(1));
  cache.insert(key(2), floats(10, 2));
  EXPECT_FALSE(cache.contains(key(1)));
  EXPECT_EQ(held->values[0], 1.0f);
}

TEST(EmbeddingCache, GetOrComputeComputesOnce) {
  EmbeddingCache cache(1 << 20, 7);
  int calls = 0;
  auto compute = [&]() -> core::Result<CachedEmbedding> {
    ++calls;
    return CachedEmbedding{{1, 2, 3}, 2, 1};
  };
  auto a = cache.get_or_compute(key(5), compute);
  auto b = cache.get_or_compute(key(5), compute);
  ASSERT_TRUE(a.is_ok());
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(a.value().get(), b.value().get());  // the same shared value
  EXPECT_EQ(a.value()->grid_rows, 2);
  auto failed = cache.get_or_compute(key(6), []() -> core::Result<CachedEmbedding> {
    return core::Status::error("encoder failed");
  });
  EXPECT_FALSE(failed.is_ok());
  EXPECT_EQ(failed.status().message(), "encoder failed");
  EXPECT_FALSE(cache.contains(key(6)));
}

TEST(EmbeddingCache, KeysFollowContentSeedAndSalt) {
  EmbeddingCache a(1 << 20, 1), b(1 << 20, 2), a2(1 << 20, 1);
  const std::vector<uint8_t> img1 = {1, 2, 3}, img2 = {1, 2, 4};
  EXPECT_EQ(a.key_for(img1.data(), img1.size()), a2.key_for(img1.data(), img1.size()));
  EXPECT_NE(a.key_for(img1.data(), img1.size()), a.key_for(img2.data(), img2.size()));
  EXPECT_NE(a.key_for(img1.data(), img1.size()), b.key_for(img1.data(), img1.size()));
  EXPECT_NE(a.key_for(img1.data(), img1.size(), "clip-a"), a.key_for(img1.data(), img1.size(), "clip-b"));
  EXPECT_NE(a.key_for(img1.data(), img1.size(), "clip-a"), a.key_for(img1.data(), img1.size()));
  // The default seed is random per cache.
  EmbeddingCache r1(1 << 20), r2(1 << 20);
  EXPECT_NE(r1.key_for(img1.data(), img1.size()), r2.key_for(img1.data(), img1.size()));
}

TEST(EmbeddingCache, ConcurrentUseKeepsInvariants) {
  const size_t entry = EmbeddingCache::entry_bytes(CachedEmbedding{std::vector<float>(16)});
  EmbeddingCache cache(20 * entry, 7);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&cache, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 5000; ++i) {
        const uint64_t k = rng() % 50;
        if (auto v = cache.find(key(k))) {
          ASSERT_EQ(v->values[0], static_cast<float>(k));
        } else {
          cache.insert(key(k), floats(16, static_cast<float>(k)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, 8u * 5000);
  EXPECT_LE(s.bytes, 20 * entry);
  EXPECT_EQ(s.bytes, s.entries * entry);
  EXPECT_GE(s.insertions, s.evictions + s.entries);  // the rest were replacements
}

}  // namespace
}  // namespace zs::engine
