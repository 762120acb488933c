// attend_block's kernel for AVX-512 (16 keys per register, 32 registers): attention_block.h,
// compiled for these instructions by the target pragma below. Entered only after attend_block
// has checked the CPU. The headers it shares are included before the pragma, so that no shared
// inline function is compiled for more than it declares.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/backend/cpu_attention.h"
#include "engine/backend/simd_exp.h"

#if defined(__clang__)  // clang has no target pragma; this attribute is its equivalent
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma,f16c")
#endif

#define ZS_ATTENTION_WIDE 1
#include "engine/backend/attention_block.h"

namespace zs::engine::cpu {

void attend_block_avx512(const BlockAttention& a) { dispatch_block(a); }

}  // namespace zs::engine::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
