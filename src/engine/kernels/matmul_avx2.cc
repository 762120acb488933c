// AVX2 (+FMA, F16C) kernels for x86-64 machines without AVX-512.
//
// One weight row x up to 4 tokens per tile: each block is unpacked once and used for every
// token. Without vpdpbusd the byte products go through vpmaddubsw (pairs to int16) and
// vpmaddwd, and that second step multiplies by the sub-block scale instead of by one, so the
// K-quant scales cost nothing extra. Types without an AVX2 kernel here use the scalar ones.
//
// The file is compiled for AVX2 by the target pragma below (the per-function equivalent of
// __attribute__((target))) and is only entered after the driver has checked the CPU.
#include <immintrin.h>

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

#include "engine/kernels/gemm_kernel.h"
#include "engine/quant/block_types.h"
#include "engine/quant/quantize.h"

#if defined(__clang__)  // clang has no target pragma; this attribute is its equivalent
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2")
#endif
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace zs::engine::kernels {
namespace {

#define ZS_INLINE inline __attribute__((always_inline))

// No std:: function templates below this point: an out-of-line copy compiled for AVX2
// could be merged by the linker with the portable one used elsewhere.
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

ZS_INLINE float load_f16(const uint16_t* p) { return _cvtsh_ss(*p); }

// The 8 scales (bytes 0-7) and 8 mins (bytes 8-15) of a Q4_K/Q5_K block, decoded from the
// 6-bit fields with byte shuffles on a 16-byte load starting at the scales.
ZS_INLINE __m128i k4_scales_mins(const uint8_t* scales) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales));
  const __m128i lowmask = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
  const __m128i top2 = _mm_set1_epi8(0x30);
  // pshufb gives 0 for index -1.
  const __m128i sp = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i spl = _mm_srlv_epi32(sp, _mm_setr_epi32(0, 0, 0, 4));
  const __m128i sq = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  return _mm_or_si128(_mm_and_si128(spl, lowmask), _mm_and_si128(_mm_srli_epi16(sq, 2), top2));
}

using TileFn = void (*)(const GemmArgs&, int64_t, int64_t);

ZS_INLINE float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Rows in L2-sized chunks; within a chunk every 4-token tile passes over all its rows.
void run_rows(const TileFn (&tiles)[4], const GemmArgs& g, int64_t r0, int64_t r1, size_t row_bytes) {
  const int64_t chunk = max64(1, static_cast<int64_t>((192 * 1024) / (row_bytes ? row_bytes : 1)));
  for (int64_t rc = r0; rc < r1; rc += chunk) {
    const int64_t rend = min64(r1, rc + chunk);
    for (int64_t t0 = 0; t0 < g.n_tokens; t0 += 4) {
      const int nt = static_cast<int>(min64(4, g.n_tokens - t0));
      for (int64_t r = rc; r < rend; ++r) tiles[nt - 1](g, r, t0);
    }
  }
}

template <int T>
ZS_INLINE void store_row(const GemmArgs& g, int64_t r, int64_t t0, const __m256 (&acc)[T]) {
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.y_stride + r] = hsum(acc[t]);
}

// ============================================================== K-quants

// One super-block of one token's activations: the Q8_K block as ggml stores it.
using ActK = BlockQ8K;

size_t act_bytes_k(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / 256) * sizeof(ActK)); }

void pack_k(const float* x, int64_t n_in, void* dst) { (void)quantize_row(GgmlType::kQ8_K, x, dst, n_in); }

// int16 broadcast of scale j from 8 int16 scales held in both 128-bit halves.
ZS_INLINE __m256i scale_pair(__m256i s16, int j) {
  const __m256i idx = _mm256_set1_epi16(static_cast<int16_t>((2 * j) | ((2 * j + 1) << 8)));
  return _mm256_shuffle_epi8(s16, idx);
}

// Q4_K, or Q5_K (kQ5: the fifth bits come from qh, bit 2j / 2j+1 for chunk j's halves).
template <bool kQ5, int T>
void tile_q4k(const GemmArgs& g, int64_t r, int64_t t0) {
  using Block = std::conditional_t<kQ5, BlockQ5K, BlockQ4K>;
  __m256 acc[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const auto* w = reinterpret_cast<const Block*>(g.w + static_cast<size_t>(r) * g.row_stride);
  const ActK* act[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t)
    act[t] = reinterpret_cast<const ActK*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < g.n_in / 256; ++b) {
    // Reads 4 bytes past the scales (the first quants); they are masked off.
    const __m128i sm = k4_scales_mins(w[b].scales);
    const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    // mins as int16, each repeated for the two 16-value bsums of its sub-block
    const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    __m256i isum[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * j));
      __m256i lo = _mm256_and_si256(q, low4);
      __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
      if constexpr (kQ5) {
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh));
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
      }
      const __m256i sl = scale_pair(s16, 2 * j), sh = scale_pair(s16, 2 * j + 1);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) {
        const __m256i y0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[t][b].qs + 64 * j));
        const __m256i y1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[t][b].qs + 64 * j + 32));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), sl));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), sh));
      }
    }
    const float d = load_f16(&w[b].d), dmin = load_f16(&w[b].dmin);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[t][b].bsums));
      const __m256i msum = _mm256_madd_epi16(m16, bs);
      const float dy = act[t][b].d;
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dy), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(dmin * dy), acc[t]);
    }
  }
  store_row<T>(g, r, t0, acc);
}

template <int T>
void tile_q6k(const GemmArgs& g, int64_t r, int64_t t0) {
  __m256 acc[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const auto* w = reinterpret_cast<const BlockQ6K*>(g.w + static_cast<size_t>(r) * g.row_stride);
  const ActK* act[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t)
    act[t] = reinterpret_cast<const ActK*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03);
  for (int64_t b = 0; b < g.n_in / 256; ++b) {
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    // Scales 0-7 and 8-15 as int16 in both 128-bit halves, for the per-chunk broadcasts.
    const __m256i sc_lo = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(sc8));
    const __m256i sc_hi = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(sc8, 8)));
    __m256i isum[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      // Values are stored +32; remove 32 * sum(scale * bsum) up front.
      const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[t][b].bsums));
      isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
    }
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * n));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].ql + 64 * n + 32));
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qh + 32 * n));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(h, low2), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), low2), 4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), low2), 4)),
      };
#pragma GCC unroll 4
      for (int gq = 0; gq < 4; ++gq) {
        // Values 128n + 32gq .. +31 use scales 8n + 2gq (first 16, low 128-bit half after
        // maddubs) and 8n + 2gq + 1 (high half).
        const int k = 2 * gq;  // within the 8 scales of this half
        const __m256i idx = _mm256_setr_m128i(_mm_set1_epi16(static_cast<int16_t>((2 * k) | ((2 * k + 1) << 8))),
                                              _mm_set1_epi16(static_cast<int16_t>((2 * k + 2) | ((2 * k + 3) << 8))));
        const __m256i scv = _mm256_shuffle_epi8(n == 0 ? sc_lo : sc_hi, idx);
#pragma GCC unroll 4
        for (int t = 0; t < T; ++t) {
          const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(act[t][b].qs + 128 * n + 32 * gq));
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[gq], y), scv));
        }
      }
    }
    const float d = load_f16(&w[b].d);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * act[t][b].d), acc[t]);
    }
  }
  store_row<T>(g, r, t0, acc);
}

// ============================================================== 32-blocks

// One block of one token's activations.
struct alignas(32) Act32 {
  int8_t qs[32];
  int32_t corr[8];  // offset * (sum of the lane's 4 values): undoes the unsigned weight offset
  float d;
  float s;  // f16-rounded d * sum(qs), for the min term of the *_1 types (as ggml's Q8_1)
  float pad[6];
};
static_assert(sizeof(Act32) == 96);

size_t act_bytes_32(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / 32) * sizeof(Act32)); }

// Q8_0 uses the sign trick instead of an offset; Q4_0 and Q5_0 store values +8 / +16; the
// *_1 types need no offset but the block sum.
template <class U>
void pack_32(const float* x, int64_t n_in, void* dst) {
  auto* out = static_cast<Act32*>(dst);
  for (int64_t b = 0; b < n_in / 32; ++b) {
    BlockQ8_1 q;
    Act32& a = out[b];
    std::memset(&a, 0, sizeof a);
    if constexpr (U::kHasMin) {
      (void)quantize_row(GgmlType::kQ8_1, x + 32 * b, &q, 32);
      a.s = load_f16(&q.s);
    } else {
      BlockQ8_0 q0;
      (void)quantize_row(GgmlType::kQ8_0, x + 32 * b, &q0, 32);
      q.d = q0.d;
      std::memcpy(q.qs, q0.qs, 32);
    }
    std::memcpy(a.qs, q.qs, 32);
    // maddubs+madd lanes: int32 lane l covers bytes 4l..4l+3 of the 32.
    for (int l = 0; l < 8; ++l) {
      a.corr[l] = -U::kOffset * (q.qs[4 * l] + q.qs[4 * l + 1] + q.qs[4 * l + 2] + q.qs[4 * l + 3]);
    }
    a.d = load_f16(&q.d);
  }
}

// The 32 nibbles of a block in value order (low nibbles are values 0-15).
ZS_INLINE __m256i nibbles(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// 16 in byte j where bit j of the 32-bit qh is set.
ZS_INLINE __m256i fifth_bits(const uint8_t* qh) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(h)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

struct Q8_0Unpack {
  using Block = BlockQ8_0;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 0;
  static ZS_INLINE __m256i quants(const Block& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
};
struct Q4_0Unpack {
  using Block = BlockQ4_0;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 8;
  static ZS_INLINE __m256i quants(const Block& b) { return nibbles(b.qs); }
};
struct Q4_1Unpack {
  using Block = BlockQ4_1;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  static ZS_INLINE __m256i quants(const Block& b) { return nibbles(b.qs); }
};
struct Q5_0Unpack {
  using Block = BlockQ5_0;
  static constexpr bool kHasMin = false;
  static constexpr int kOffset = 16;
  static ZS_INLINE __m256i quants(const Block& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};
struct Q5_1Unpack {
  using Block = BlockQ5_1;
  static constexpr bool kHasMin = true;
  static constexpr int kOffset = 0;
  static ZS_INLINE __m256i quants(const Block& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};

template <class U, int T>
void tile_32(const GemmArgs& g, int64_t r, int64_t t0) {
  constexpr bool kSigned = std::is_same_v<U, Q8_0Unpack>;
  __m256 acc[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  float min_sum[T] = {};
  const auto* w = reinterpret_cast<const typename U::Block*>(g.w + static_cast<size_t>(r) * g.row_stride);
  const Act32* act[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t)
    act[t] = reinterpret_cast<const Act32*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < g.n_in / 32; ++b) {
    const __m256i wq = U::quants(w[b]);
    const float d = load_f16(&w[b].d);
    // Q8_0 weights are signed: |w| times y with w's sign is the unsigned x signed form
    // maddubs needs. The other types are unsigned already.
    const __m256i wu = kSigned ? _mm256_sign_epi8(wq, wq) : wq;
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      __m256i y = _mm256_load_si256(reinterpret_cast<const __m256i*>(act[t][b].qs));
      if constexpr (kSigned) y = _mm256_sign_epi8(y, wq);
      __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, y), ones);
      if constexpr (U::kOffset != 0) {
        s = _mm256_add_epi32(s, _mm256_load_si256(reinterpret_cast<const __m256i*>(act[t][b].corr)));
      }
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * act[t][b].d), acc[t]);
      if constexpr (U::kHasMin) min_sum[t] += load_f16(&w[b].m) * act[t][b].s;
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) g.y[(t0 + t) * g.y_stride + r] = hsum(acc[t]) + min_sum[t];
}

// ============================================================== Prompts: 8-row panels (Q8_0, Q4_K)

// For prompts (at least the format's kMinTokens tokens) Q8_0 and Q4_K weights are repacked, per call
// and per L2-sized chunk of rows, into panels of 8 rows: per 32-value block, eight registers
// whose dword lane l holds 4 consecutive values of row l, then the block's per-row scales. A
// token's 4 activation bytes are broadcast to all lanes, so one vpmaddubsw advances 8 rows by
// 4 values with no unpacking, a block's 8 sums take one convert and one FMA per token (Q4_K:
// per super-block), and the 8 outputs of a (panel, token) are stored with one instruction
// instead of 8 horizontal sums. The repacking (an 8 x 8 dword transpose per panel block) is
// reused by every token of the call; the file itself is never modified.
//
// Q8_0 values stay signed: the product is vpsignb (the activation takes the weight's sign),
// vpmaddubsw with |w| and vpmaddwd by one; |w| <= 128 and |y| <= 127, so the pair sums (at
// most 32512) never saturate. Q4_K nibbles are unsigned already: the 8 vpmaddubsw results of
// a 32-value block are summed as int16 (at most 8 x 2 x 15 x 128 = 30720), and one vpmaddwd by
// the rows' 6-bit scales takes them to int32, so a super-block needs one convert and two FMAs
// (scales, mins) per token. Activations are those the narrow kernels take (Q8_0 blocks; Q8_K
// with its bsums summed per 32 values), so results agree with them to float rounding.

constexpr int kPanelRows = 8;
constexpr size_t kPanelChunkBytes = 128 * 1024;  // packed rows per pass, L2-resident

// v[i] holds row i's 32 bytes as 8 dwords; after this, v[j] lane l holds dword j of row l.
ZS_INLINE void transpose_8x8_dwords(__m256i (&v)[8]) {
  __m256i t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);      // rows i, i+1: dwords 0, 1 | 4, 5
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);  // dwords 2, 3 | 6, 7
  }
#pragma GCC unroll 2
  for (int h = 0; h < 8; h += 4) {  // rows h..h+3
    u[h] = _mm256_unpacklo_epi64(t[h], t[h + 2]);          // dword 0 | 4
    u[h + 1] = _mm256_unpackhi_epi64(t[h], t[h + 2]);      // dword 1 | 5
    u[h + 2] = _mm256_unpacklo_epi64(t[h + 1], t[h + 3]);  // dword 2 | 6
    u[h + 3] = _mm256_unpackhi_epi64(t[h + 1], t[h + 3]);  // dword 3 | 7
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
    v[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
  }
}

// The 8 rows' f16 values at byte `off` of each row, as f32.
ZS_INLINE __m256 panel_f16(const uint8_t* const (&rows)[kPanelRows], size_t off) {
  alignas(16) uint16_t h[kPanelRows];
  for (int l = 0; l < kPanelRows; ++l) std::memcpy(&h[l], rows[l] + off, 2);
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

ZS_INLINE __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

struct PanelArgs {
  const uint8_t* panels;  // panel 0 of the packed chunk
  size_t panel_bytes;
  int64_t nb;  // panel blocks per row
  const uint8_t* act;
  size_t act_stride;
  float* y;
  int64_t y_stride;
};

// Stores the T tokens' 8 outputs of a panel (only the first last_rows rows of a partial one).
template <int T>
ZS_INLINE void store_panel(const PanelArgs& g, int64_t row0, int64_t t0, int last_rows, const __m256 (&acc)[T]) {
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(last_rows), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    float* y = g.y + (t0 + t) * g.y_stride + row0;
    if (last_rows == kPanelRows) {
      _mm256_storeu_ps(y, acc[t]);
    } else {
      _mm256_maskstore_ps(y, mask, acc[t]);
    }
  }
}

struct PanelQ8_0 {
  struct Act {  // one 32-value block of one token
    int8_t qs[32];
    float d;
  };
  static constexpr int kValues = 32;                 // values per panel block
  static constexpr size_t kBlockBytes = 8 * 32 + 32;  // 8 registers of quants + 8 f32 scales
  // Measured per call against the 32-block kernel (bench_quant --only a, ZS_ISA=avx2): see
  // docs/engine.md, "Prompts on AVX2".
  static constexpr int kMinTokens = 8;

  static size_t act_bytes(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / 32) * sizeof(Act)); }

  static void pack_act(const float* x, int64_t n_in, void* dst) {
    auto* out = static_cast<Act*>(dst);
    for (int64_t b = 0; b < n_in / 32; ++b) {
      BlockQ8_0 q;
      (void)quantize_row(GgmlType::kQ8_0, x + 32 * b, &q, 32);
      std::memcpy(out[b].qs, q.qs, 32);
      out[b].d = load_f16(&q.d);
    }
  }

  // Packs rows[0..8) (missing rows repeat the last; their lanes are never stored) into one
  // panel of n_in / 32 blocks.
  static void pack_panel(const uint8_t* const (&rows)[kPanelRows], int64_t n_in, uint8_t* dst) {
    for (int64_t b = 0; b < n_in / 32; ++b) {
      const size_t off = static_cast<size_t>(b) * sizeof(BlockQ8_0);
      __m256i v[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[i] + off + 2));
      transpose_8x8_dwords(v);
      uint8_t* out = dst + static_cast<size_t>(b) * kBlockBytes;
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32 * j), v[j]);
      _mm256_store_ps(reinterpret_cast<float*>(out + 256), panel_f16(rows, off));
    }
  }

  // One panel x T tokens.
  template <int T>
  static void tile(const PanelArgs& g, int64_t panel, int64_t row0, int64_t t0, int last_rows) {
    __m256 acc[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const Act* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) act[t] = reinterpret_cast<const Act*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    const uint8_t* wp = g.panels + static_cast<size_t>(panel) * g.panel_bytes;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < g.nb; ++b) {
      const uint8_t* wb = wp + static_cast<size_t>(b) * kBlockBytes;
      __m256i s[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 32 * j));
        const __m256i wa = _mm256_abs_epi8(wv);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256i p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(bcast4(act[t][b].qs + 4 * j), wv));
          s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p, ones));
        }
      }
      const __m256 dw = _mm256_load_ps(reinterpret_cast<const float*>(wb + 256));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t)
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(dw, _mm256_set1_ps(act[t][b].d)), acc[t]);
    }
    store_panel<T>(g, row0, t0, last_rows, acc);
  }
};

struct PanelQ4_K {
  struct Act {  // one super-block of one token: Q8_K with its bsums summed per 32 values
    int8_t qs[kQKK];
    float d;
    int16_t bsums[8];
  };
  static constexpr int kValues = kQKK;
  // Per super-block: 8 sub-blocks x 8 registers of nibbles (as bytes), the 8 sub-blocks' scale
  // registers (lane l: row l's 6-bit scale as two int16), 4 min registers (lane l: row l's
  // mins of sub-blocks 2i and 2i + 1 as int16), then d and dmin of the 8 rows as f32.
  static constexpr size_t kScales = 64 * 32, kMins = kScales + 8 * 32, kD = kMins + 4 * 32, kDmin = kD + 32;
  static constexpr size_t kBlockBytes = kDmin + 32;
  // Panels lost at 8 tokens on 2048 -> 8192 (0.86x) and won from 16 on both shapes (see
  // docs/engine.md, "Prompts on AVX2").
  static constexpr int kMinTokens = 16;

  static size_t act_bytes(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / kQKK) * sizeof(Act)); }

  static void pack_act(const float* x, int64_t n_in, void* dst) {
    auto* out = static_cast<Act*>(dst);
    for (int64_t sb = 0; sb < n_in / kQKK; ++sb) {
      BlockQ8K q;
      (void)quantize_row(GgmlType::kQ8_K, x + kQKK * sb, &q, kQKK);
      std::memcpy(out[sb].qs, q.qs, kQKK);
      out[sb].d = q.d;
      for (int j = 0; j < 8; ++j) out[sb].bsums[j] = static_cast<int16_t>(q.bsums[2 * j] + q.bsums[2 * j + 1]);
    }
  }

  static void pack_panel(const uint8_t* const (&rows)[kPanelRows], int64_t n_in, uint8_t* dst) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t sb = 0; sb < n_in / kQKK; ++sb) {
      const size_t off = static_cast<size_t>(sb) * sizeof(BlockQ4K);
      uint8_t* out = dst + static_cast<size_t>(sb) * kBlockBytes;
      // Each 32-byte run of nibbles holds sub-blocks 2i (low nibbles) and 2i + 1 (high).
#pragma GCC unroll 1
      for (int i = 0; i < 4; ++i) {
        __m256i lo[8], hi[8];
#pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) {
          const __m256i q = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(rows[l] + off + offsetof(BlockQ4K, qs) + 32 * i));
          lo[l] = _mm256_and_si256(q, low4);
          hi[l] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        }
        transpose_8x8_dwords(lo);
        transpose_8x8_dwords(hi);
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32 * (8 * (2 * i) + k)), lo[k]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32 * (8 * (2 * i + 1) + k)), hi[k]);
        }
      }
      // Scales and mins: row l's 16 bytes (8 scales, 8 mins) widened to int16 and spread so
      // that lane l of sub-block j's register holds scale j twice.
      alignas(32) int16_t sc[8][16], mn[4][16];
      for (int l = 0; l < 8; ++l) {
        alignas(16) uint8_t sm[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(sm), k4_scales_mins(rows[l] + off + offsetof(BlockQ4K, scales)));
        for (int j = 0; j < 8; ++j) sc[j][2 * l] = sc[j][2 * l + 1] = sm[j];
        for (int i = 0; i < 4; ++i) {
          mn[i][2 * l] = sm[8 + 2 * i];
          mn[i][2 * l + 1] = sm[8 + 2 * i + 1];
        }
      }
      std::memcpy(out + kScales, sc, sizeof sc);
      std::memcpy(out + kMins, mn, sizeof mn);
      _mm256_store_ps(reinterpret_cast<float*>(out + kD), panel_f16(rows, off + offsetof(BlockQ4K, d)));
      _mm256_store_ps(reinterpret_cast<float*>(out + kDmin), panel_f16(rows, off + offsetof(BlockQ4K, dmin)));
    }
  }

  template <int T>
  static void tile(const PanelArgs& g, int64_t panel, int64_t row0, int64_t t0, int last_rows) {
    __m256 acc[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const Act* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) act[t] = reinterpret_cast<const Act*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    const uint8_t* wp = g.panels + static_cast<size_t>(panel) * g.panel_bytes;
    for (int64_t sb = 0; sb < g.nb; ++sb) {
      const uint8_t* wb = wp + static_cast<size_t>(sb) * kBlockBytes;
      __m256i s[T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
      for (int j = 0; j < 8; ++j) {
        __m256i p[T];
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) p[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
          const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + 32 * (8 * j + k)));
#pragma GCC unroll 8
          for (int t = 0; t < T; ++t)
            p[t] = _mm256_add_epi16(p[t], _mm256_maddubs_epi16(wv, bcast4(act[t][sb].qs + 32 * j + 4 * k)));
        }
        const __m256i scale = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + kScales + 32 * j));
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(p[t], scale));
      }
      const __m256 d = _mm256_load_ps(reinterpret_cast<const float*>(wb + kD));
      const __m256 dmin = _mm256_load_ps(reinterpret_cast<const float*>(wb + kDmin));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        __m256i m = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m256i mins = _mm256_load_si256(reinterpret_cast<const __m256i*>(wb + kMins + 32 * i));
          m = _mm256_add_epi32(m, _mm256_madd_epi16(mins, bcast4(reinterpret_cast<const int8_t*>(act[t][sb].bsums + 2 * i))));
        }
        const __m256 dy = _mm256_set1_ps(act[t][sb].d);
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(d, dy), acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), _mm256_mul_ps(dmin, dy), acc[t]);
      }
    }
    store_panel<T>(g, row0, t0, last_rows, acc);
  }
};

using PanelTileFn = void (*)(const PanelArgs&, int64_t panel, int64_t row0, int64_t t0, int last_rows);

template <class F, int MT>
struct PanelTileTable {
  PanelTileFn fn[MT];
};

template <class F, int MT>
constexpr PanelTileTable<F, MT> make_panel_tiles() {
  PanelTileTable<F, MT> t{};
  [&]<size_t... I>(std::index_sequence<I...>) { ((t.fn[I] = &F::template tile<static_cast<int>(I) + 1>), ...); }
  (std::make_index_sequence<MT>{});
  return t;
}

// Tiles of 1 panel x MT tokens.
template <class F, int MT>
void gemm_p_tiles(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr PanelTileTable<F, MT> kTiles = make_panel_tiles<F, MT>();
  const int64_t nb = g.n_in / F::kValues;
  const size_t panel_bytes = static_cast<size_t>(nb) * F::kBlockBytes;
  const int64_t chunk_panels = max64(1, static_cast<int64_t>(kPanelChunkBytes / panel_bytes));
  uint8_t* buf = thread_panel_buffer(panel_bytes * static_cast<size_t>(min64(chunk_panels, (r1 - r0 + 7) / 8)));
  const PanelArgs pa{buf, panel_bytes, nb, g.act, g.act_stride, g.y, g.y_stride};
  for (int64_t rc = r0; rc < r1; rc += chunk_panels * kPanelRows) {
    const int64_t rend = min64(r1, rc + chunk_panels * kPanelRows);
    const int64_t np = (rend - rc + kPanelRows - 1) / kPanelRows;
    for (int64_t p = 0; p < np; ++p) {
      const int valid = static_cast<int>(min64(kPanelRows, rend - rc - kPanelRows * p));
      const uint8_t* rows[kPanelRows];
      const uint8_t* w = g.w + static_cast<size_t>(rc + kPanelRows * p) * g.row_stride;
      for (int l = 0; l < kPanelRows; ++l) rows[l] = w + static_cast<size_t>(l < valid ? l : valid - 1) * g.row_stride;
      F::pack_panel(rows, g.n_in, buf + static_cast<size_t>(p) * panel_bytes);
    }
    for (int64_t t0 = 0; t0 < g.n_tokens; t0 += MT) {
      const int nt = static_cast<int>(min64(MT, g.n_tokens - t0));
      for (int64_t p = 0; p < np; ++p) {
        const int last_rows = static_cast<int>(min64(kPanelRows, rend - rc - kPanelRows * p));
        kTiles.fn[nt - 1](pa, p, rc + kPanelRows * p, t0, last_rows);
      }
    }
  }
}

// 1 panel x 4 tokens: for Q8_0, 2 x 2, 1 x 5, 2 x 3 and 1 x 6 measured the same or up to 10%
// slower on Zen 4 (ZS_ISA=avx2), and 1 x 4 needs the fewest registers.
template <class F>
void gemm_p(const GemmArgs& g, int64_t r0, int64_t r1) {
  gemm_p_tiles<F, 4>(g, r0, r1);
}

template <class F>
constexpr GemmKernel kKernelPanels{&F::act_bytes, &F::pack_act, &gemm_p<F>, 0, nullptr, 0, kPanelRows};

// ============================================================== F32 / F16

size_t act_bytes_f(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in) * 4); }

template <GgmlType kType>
void pack_f(const float* x, int64_t n_in, void* dst) {
  auto* out = static_cast<float*>(dst);
  for (int64_t i = 0; i < n_in; ++i) {
    if constexpr (kType == GgmlType::kF16) {
      out[i] = f16_to_f32(f32_to_f16(x[i]));
    } else if constexpr (kType == GgmlType::kBF16) {
      out[i] = bf16_to_f32(f32_to_bf16(x[i]));
    } else {
      out[i] = x[i];
    }
  }
  for (int64_t i = n_in; i < static_cast<int64_t>(act_bytes_f(n_in) / 4); ++i) out[i] = 0.0f;
}

template <GgmlType kType>
ZS_INLINE __m256 load8(const uint8_t* row, int64_t i) {
  if constexpr (kType == GgmlType::kBF16) {
    const __m256i v = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  } else if constexpr (kType == GgmlType::kF16) {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(row) + i)));
  } else {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
}

template <GgmlType kType, int T>
void tile_f(const GemmArgs& g, int64_t r, int64_t t0) {
  __m256 acc[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  const uint8_t* w = g.w + static_cast<size_t>(r) * g.row_stride;
  const float* act[T];
#pragma GCC unroll 4
  for (int t = 0; t < T; ++t)
    act[t] = reinterpret_cast<const float*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
  int64_t i = 0;
  for (; i + 8 <= g.n_in; i += 8) {
    const __m256 wv = load8<kType>(w, i);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_load_ps(act[t] + i), acc[t]);
  }
  if (i < g.n_in) {
    // Tail: copy the last values so no byte past the row is read.
    const size_t esize = kType == GgmlType::kF32 ? 4 : 2;
    alignas(32) uint8_t tail[32] = {};
    std::memcpy(tail, w + i * esize, static_cast<size_t>(g.n_in - i) * esize);
    const __m256 wv = load8<kType>(tail, 0);
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_load_ps(act[t] + i), acc[t]);
  }
  store_row<T>(g, r, t0, acc);
}

// ============================================================== tables

template <bool kQ5>
void gemm_q4k(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr TileFn kTiles[4] = {tile_q4k<kQ5, 1>, tile_q4k<kQ5, 2>, tile_q4k<kQ5, 3>, tile_q4k<kQ5, 4>};
  run_rows(kTiles, g, r0, r1, static_cast<size_t>(g.n_in / 256) * (kQ5 ? sizeof(BlockQ5K) : sizeof(BlockQ4K)));
}
void gemm_q6k(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr TileFn kTiles[4] = {tile_q6k<1>, tile_q6k<2>, tile_q6k<3>, tile_q6k<4>};
  run_rows(kTiles, g, r0, r1, static_cast<size_t>(g.n_in / 256) * sizeof(BlockQ6K));
}
template <class U>
void gemm_32(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr TileFn kTiles[4] = {tile_32<U, 1>, tile_32<U, 2>, tile_32<U, 3>, tile_32<U, 4>};
  run_rows(kTiles, g, r0, r1, static_cast<size_t>(g.n_in / 32) * sizeof(typename U::Block));
}
template <GgmlType kType>
void gemm_f(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr TileFn kTiles[4] = {tile_f<kType, 1>, tile_f<kType, 2>, tile_f<kType, 3>, tile_f<kType, 4>};
  run_rows(kTiles, g, r0, r1, static_cast<size_t>(g.n_in) * (kType == GgmlType::kF32 ? 4 : 2));
}

constexpr GemmKernel kQ5K{&act_bytes_k, &pack_k, &gemm_q4k<true>};
constexpr GemmKernel kQ6K{&act_bytes_k, &pack_k, &gemm_q6k};
template <class U>
constexpr GemmKernel kKernel32{&act_bytes_32, &pack_32<U>, &gemm_32<U>};
// Q8_0 and Q4_K: the narrow kernels, and the panels for prompts.
constexpr GemmKernel kKernelQ8_0{&act_bytes_32, &pack_32<Q8_0Unpack>, &gemm_32<Q8_0Unpack>, 0,
                                 &kKernelPanels<PanelQ8_0>, PanelQ8_0::kMinTokens};
constexpr GemmKernel kKernelQ4_K{&act_bytes_k, &pack_k, &gemm_q4k<false>, 0, &kKernelPanels<PanelQ4_K>,
                                 PanelQ4_K::kMinTokens};
template <GgmlType kType>
constexpr GemmKernel kKernelF{&act_bytes_f, &pack_f<kType>, &gemm_f<kType>};

}  // namespace

const GemmKernel* avx2_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K: return &kKernelQ4_K;
    case GgmlType::kQ5_K: return &kQ5K;
    case GgmlType::kQ6_K: return &kQ6K;
    case GgmlType::kQ8_0: return &kKernelQ8_0;
    case GgmlType::kQ4_0: return &kKernel32<Q4_0Unpack>;
    case GgmlType::kQ4_1: return &kKernel32<Q4_1Unpack>;
    case GgmlType::kQ5_0: return &kKernel32<Q5_0Unpack>;
    case GgmlType::kQ5_1: return &kKernel32<Q5_1Unpack>;
    case GgmlType::kF32: return &kKernelF<GgmlType::kF32>;
    case GgmlType::kF16: return &kKernelF<GgmlType::kF16>;
    case GgmlType::kBF16: return &kKernelF<GgmlType::kBF16>;
    default: return nullptr;
  }
}

}  // namespace zs::engine::kernels

#pragma GCC diagnostic pop
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
