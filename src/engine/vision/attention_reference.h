#pragma once
// The plain definition of the vision encoders' full (non-causal) attention, one query and
// one head at a time: what Backend::attention_full computed before it went through the
// matmul kernels. Tests hold the backend to it and bench_vision measures against it.
#include <cstdint>

#include "core/thread_pool.h"

namespace zs::engine {

// q, k, v, out: n_tokens rows of n_head * head_dim values; (query, head) pairs are split
// across the pool's threads.
void attention_full_reference(const float* q, const float* k, const float* v, int64_t n_tokens, int n_head,
                              int head_dim, float scale, float* out, core::ThreadPool& pool);

}  // namespace zs::engine
