#pragma once
// The CPU backend's attention kernels over the paged f16 key/value cache, with an F16C/AVX2
// path chosen at run time and a scalar path that is its reference. Pure functions of their
// arguments: thread-safe for disjoint outputs, never fail (arguments are the caller's to check).
#include <cstdint>
#include <type_traits>

namespace zs::engine::cpu {

// The n_q query heads that share one key/value head (grouped-query attention), and the paged
// cache they read: position p lives in cache row table[p / block_size] * block_size +
// p % block_size; row r's keys of this head start at k + r * row_stride (values likewise).
// Scores are scale * (q . k_j), then softcap * tanh(score / softcap) when softcap > 0.
struct KvHeadGroup {
  int n_q = 1;
  const uint16_t* k = nullptr;
  const uint16_t* v = nullptr;
  int64_t row_stride = 0;  // f16 values per cache row (kv_dim)
  int head_dim = 0;
  const int32_t* table = nullptr;
  int block_size = 0;
  float scale = 1.f;
  float softcap = 0.f;
};

// One query's heads attending to the visible positions [first, end) of one sequence, as
// Backend::attention defines it: per head, p = softmax(score) with each probability rounded to
// f16 as the reference does, and out = sum_j p_j v_j. Heads are computed one after another over
// each page of keys, so a page read from memory serves all of them; each head's result does
// not depend on n_q.
struct GroupAttention : KvHeadGroup {
  const float* q = nullptr;  // n_q x head_dim values, already rounded to f16 precision
  int64_t first = 0, end = 0;  // first < end
  float* scores = nullptr;  // scratch of at least n_q x (end - first) values
  float* out = nullptr;     // n_q x head_dim values; may not overlap q
};

// Several queries of one sequence (a prompt's rows, a speculating sequence's draft rows), each
// with the heads of the group; token i's heads see positions [first[i], end[i]). Each page of
// keys and values is converted to f32 once and then serves every query of the block, so a
// block reads the cache once instead of once per query, and the scores come from a kernel that
// keeps 8 keys per register (16 with AVX-512). Each head's result is bit-identical to
// attend_group's for that head alone (the same products, summed in the same order): a token's
// attention does not depend on whether it came in a prompt, among draft rows or alone.
struct BlockAttention : KvHeadGroup {
  const float* q = nullptr;  // n_tok x n_q x head_dim values, already rounded to f16 precision
  int n_tok = 1;
  const int64_t* first = nullptr;  // per token; first[i] < end[i]
  const int64_t* end = nullptr;
  float* out = nullptr;  // token i's n_q x head_dim values at out + i * out_stride
  int64_t out_stride = 0;
  float* scratch = nullptr;  // block_attention_scratch(*this) values
};
int64_t block_attention_scratch(const BlockAttention& a);

// The fastest path this CPU has (AVX2 + F16C + FMA, else scalar). The paths sum in different
// orders and the AVX2 path's exp is a polynomial within 2 ulp of std::exp, so they agree to
// float rounding (a probability's f16 rounding may flip); each is deterministic, whatever the
// batch or thread count around it.
void attend_group(const GroupAttention& a);
// The scalar path, always available (the reference for tests).
void attend_group_scalar(const GroupAttention& a);
// The fastest path this CPU has: the AVX-512 build of the block kernel where the CPU has it and
// avx512 is true (false keeps to the AVX2 build: tests, ZS_ISA=avx2), else the AVX2 build. A
// single query (it streams its keys once, prefetched), head sizes that are not a multiple of 8,
// and CPUs without AVX2 take attend_group per token.
void attend_block(const BlockAttention& a, bool avx512 = true);

// Internal to the backend: attend_block's kernels, one file per instruction set
// (cpu_attention_avx2.cc, cpu_attention_avx512.cc, both from attention_block.h); callers have
// checked the CPU and that head_dim is a multiple of 8. A block takes keys and values in tiles
// of at most kBlockTileKeys positions of one page.
constexpr int kBlockTileKeys = 32;
// Calls fn(std::integral_constant<int, C>) with C = head_dim / 8 for the head sizes the kernels
// unroll for (8 to 128), else C = 0 (any head size).
template <class Fn>
inline void with_head_chunks(int head_dim, Fn&& fn) {
  switch (head_dim) {
    case 8: return fn(std::integral_constant<int, 1>{});
    case 16: return fn(std::integral_constant<int, 2>{});
    case 32: return fn(std::integral_constant<int, 4>{});
    case 64: return fn(std::integral_constant<int, 8>{});
    case 128: return fn(std::integral_constant<int, 16>{});
    default: return fn(std::integral_constant<int, 0>{});
  }
}
void attend_block_avx2(const BlockAttention& a);
void attend_block_avx512(const BlockAttention& a);

// y[i] = exp(x[i]) for x[i] <= 0, as attend_group's path computes its probabilities (the AVX2
// polynomial, or std::exp without AVX2). For tests.
void exp_nonpositive(const float* x, float* y, int64_t n);

// dst[i] = f16(src[i])
void store_f16(const float* src, uint16_t* dst, int n);

}  // namespace zs::engine::cpu
