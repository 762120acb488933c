#pragma once
// The CPU backend's attention kernels over the paged f16 key/value cache, with an F16C/AVX2
// path chosen at run time and a scalar path that is its reference. Pure functions of their
// arguments: thread-safe for disjoint outputs, never fail (arguments are the caller's to check).
#include <cstdint>

namespace zs::engine::cpu {

// The n_q query heads that share one key/value head (grouped-query attention) attending to the
// visible positions [first, end) of one sequence, as Backend::attention defines it: per head,
// score_j = scale * (q . k_j) (then softcap * tanh(score / softcap) when softcap > 0),
// p = softmax(score) with each probability rounded to f16 as the reference does, and
// out = sum_j p_j v_j. Position p lives in cache row table[p / block_size] * block_size +
// p % block_size; row r's keys of this head start at k + r * row_stride (values likewise).
// Heads are computed one after another over each page of keys, so a page read from memory
// serves all of them; each head's result does not depend on n_q.
struct GroupAttention {
  const float* q = nullptr;  // n_q x head_dim values, already rounded to f16 precision
  int n_q = 1;
  const uint16_t* k = nullptr;
  const uint16_t* v = nullptr;
  int64_t row_stride = 0;  // f16 values per cache row (kv_dim)
  int head_dim = 0;
  const int32_t* table = nullptr;
  int block_size = 0;
  int64_t first = 0, end = 0;  // first < end
  float scale = 1.f;
  float softcap = 0.f;
  float* scores = nullptr;  // scratch of at least n_q x (end - first) values
  float* out = nullptr;     // n_q x head_dim values; may not overlap q
};

// The fastest path this CPU has (AVX2 + F16C + FMA, else scalar). The paths sum in different
// orders and the AVX2 path's exp is a polynomial within 2 ulp of std::exp, so they agree to
// float rounding (a probability's f16 rounding may flip); each is deterministic, whatever the
// batch or thread count around it.
void attend_group(const GroupAttention& a);
// The scalar path, always available (the reference for tests).
void attend_group_scalar(const GroupAttention& a);

// y[i] = exp(x[i]) for x[i] <= 0, as attend_group's path computes its probabilities (the AVX2
// polynomial, or std::exp without AVX2). For tests.
void exp_nonpositive(const float* x, float* y, int64_t n);

// dst[i] = f16(src[i])
void store_f16(const float* src, uint16_t* dst, int n);

}  // namespace zs::engine::cpu
