// The CPU attention op (Backend::attention over a paged f16 cache) on bench-1b's shapes (32
// query heads, 8 key/value heads of 64 values, 16-position pages), against baselines taken in
// the same run:
//   decode   one query per head at a context of D positions: the keys and values read per
//            call as GB/s, against the machine's measured read bandwidth (the roofline)
//   prefill  a causal prompt of T tokens: effective GFLOP/s with 2 threads against 1 thread
//            (ideal 2x: causal rows have unequal work, so a static split leaves a thread idle),
//            and with the queries in blocks (cpu::attend_block, the default) against one by one
//            (set_cpu_attention_blocks(false): the kernel that prompts took before blocks)
// Rounds alternate the variants; medians. Options: --rounds N (default 7), --threads N (2),
// --depth N (only decode, at N positions).
#include <cstring>
#include <random>

#include "bench_util.h"
#include "core/memory_bandwidth.h"
#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/quant/quantize.h"

using namespace zs;
using namespace zs::bench;

namespace {

constexpr int kHeads = 32, kKvHeads = 8, kHeadDim = 64, kBlock = 16;

struct Case {
  int64_t positions;  // cache length
  std::vector<uint16_t> k, v;
  std::vector<int32_t> table;
  std::vector<float> q, out;
  std::vector<int32_t> pos;
  std::vector<const int32_t*> tables;
};

Case make_case(int64_t positions, int64_t queries, std::mt19937& rng) {
  Case c;
  c.positions = positions;
  const int64_t kv_dim = kKvHeads * kHeadDim, pages = (positions + kBlock - 1) / kBlock;
  c.table.resize(static_cast<size_t>(pages));
  for (int64_t i = 0; i < pages; ++i) c.table[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  std::shuffle(c.table.begin(), c.table.end(), rng);
  std::normal_distribution<float> d(0.f, 1.f);
  c.k.resize(static_cast<size_t>(pages * kBlock * kv_dim));
  c.v.resize(c.k.size());
  for (auto& x : c.k) x = engine::f32_to_f16(d(rng));
  for (auto& x : c.v) x = engine::f32_to_f16(d(rng));
  c.q.resize(static_cast<size_t>(queries * kHeads * kHeadDim));
  for (auto& x : c.q) x = d(rng);
  c.out.resize(c.q.size());
  // Decode: one query at the last position; prefill: queries at positions 0..queries-1.
  for (int64_t t = 0; t < queries; ++t) c.pos.push_back(static_cast<int32_t>(queries == 1 ? positions - 1 : t));
  c.tables.assign(static_cast<size_t>(queries), c.table.data());
  return c;
}

double run_once(engine::Backend& b, Case& c) {
  engine::AttentionArgs a;
  a.q = c.q.data();
  a.n_tokens = static_cast<int64_t>(c.pos.size());
  a.positions = c.pos.data();
  a.block_tables = c.tables.data();
  a.block_size = kBlock;
  a.k_cache = c.k.data();
  a.v_cache = c.v.data();
  a.n_head = kHeads;
  a.n_head_kv = kKvHeads;
  a.head_dim = kHeadDim;
  a.scale = 0.125f;
  a.out = c.out.data();
  const auto t = Clock::now();
  b.attention(a);
  return seconds_between(t, Clock::now());
}

double median_of(std::vector<double> v) { return quantile(std::move(v), 0.5); }

}  // namespace

int main(int argc, char** argv) {
  int rounds = 7, threads = 2;
  std::vector<int64_t> depths = {512, 2048, 8192}, prompts = {512, 2048};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--depth") && i + 1 < argc) depths = {std::atoll(argv[++i])}, prompts.clear();
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else die(std::string("unknown option ") + argv[i]);
  }
  std::mt19937 rng(1);
  auto multi = engine::make_cpu_backend(threads);
  auto single = engine::make_cpu_backend(1);
  core::ThreadPool pool(threads);
  std::printf("bench_attention: %d query heads, %d kv heads of %d, pages of %d, %d threads, %d rounds, load %.2f\n",
              kHeads, kKvHeads, kHeadDim, kBlock, threads, rounds, load_average());

  for (int64_t depth : depths) {
    Case c = make_case(depth, 1, rng);
    const double bytes = static_cast<double>(depth) * kKvHeads * kHeadDim * 2 * 2;
    std::vector<double> gbs, bw;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> t;
      for (int i = 0; i < 21; ++i) t.push_back(run_once(*multi, c));
      gbs.push_back(bytes / median_of(t) / 1e9);
      bw.push_back(core::measure_read_bandwidth(pool, size_t{256} << 20, 2) / 1e9);
    }
    std::vector<double> frac;
    for (size_t i = 0; i < gbs.size(); ++i) frac.push_back(gbs[i] / bw[i]);
    std::printf("  decode at %5lld positions: %.2f ms per call, keys and values at %.1f GB/s (memory %.1f GB/s)\n",
                static_cast<long long>(depth), bytes / median_of(gbs) / 1e6, median_of(gbs), median_of(bw));
    std::printf("RESULT attention decode %lld positions, KV GB/s / read bandwidth: %.2f (rounds %.2f-%.2f)\n",
                static_cast<long long>(depth), median_of(frac), quantile(frac, 0), quantile(frac, 1));
  }
  for (int64_t tokens : prompts) {
    Case c = make_case(tokens, tokens, rng);
    const double flops = 2.0 * 2 * kHeads * kHeadDim * (static_cast<double>(tokens) * (tokens + 1) / 2);
    std::vector<double> ratio, g2, blocks, g_one;
    auto one_by_one = [&] {
      engine::set_cpu_attention_blocks(false);
      const double t = run_once(*multi, c);
      engine::set_cpu_attention_blocks(true);
      return t;
    };
    for (int r = 0; r < rounds; ++r) {
      double t1, t2, t3;
      if (r % 2) {
        t1 = run_once(*single, c);
        t3 = one_by_one();
        t2 = run_once(*multi, c);
      } else {
        t2 = run_once(*multi, c);
        t3 = one_by_one();
        t1 = run_once(*single, c);
      }
      ratio.push_back(t1 / t2);
      blocks.push_back(t3 / t2);
      g2.push_back(flops / t2 / 1e9);
      g_one.push_back(flops / t3 / 1e9);
    }
    std::printf("  prefill of %lld tokens: %.1f GFLOP/s with %d threads\n", static_cast<long long>(tokens), median_of(g2),
                threads);
    std::printf("RESULT attention prefill %lld tokens, %d threads / 1 thread: %.2fx (rounds %.2f-%.2f; ideal %dx)\n",
                static_cast<long long>(tokens), threads, median_of(ratio), quantile(ratio, 0), quantile(ratio, 1), threads);
    std::printf("  queries one by one: %.1f GFLOP/s\n", median_of(g_one));
    std::printf("RESULT attention prefill %lld tokens, blocks / one by one: %.2fx (rounds %.2f-%.2f)\n",
                static_cast<long long>(tokens), median_of(blocks), quantile(blocks, 0), quantile(blocks, 1));
  }
  return 0;
}
