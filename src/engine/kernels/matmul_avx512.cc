// AVX-512 kernels (F, BW, VL, DQ and VNNI; Ice Lake, Sapphire Rapids, Zen 4 and later).
//
// Every kernel computes a tile of weight rows x tokens per pass over the weights (4 x 4 when
// decoding, 2 x 8 for prompts): each weight block is unpacked once into registers and
// reused for every token of the tile, with one float accumulator per (row, token). Rows
// are walked in L2-sized chunks so prompts read each weight from memory once; decoding
// prefetches the next row tile.
//
// The quantized types use vpdpbusd (unsigned weight bytes x signed activation bytes). To
// avoid a multiply per sub-block scale, weights are unpacked so that each 32-bit lane of
// every register always holds values of the same sub-block; the four vpdpbusd of a block
// then sum into one register whose lanes are scaled by a per-lane float vector. The
// activations are permuted once per call (in pack) to match.
//
// Q8_0 prompts (8 tokens or more) take another route: the weights are repacked per call into
// 16-row panels (see "Q8_0 prompts" below), which removes the per-block unpacking and the
// horizontal sums that made Q8_0 prompts about half as fast per FLOP as Q4_K.
//
// The whole file is compiled for these instructions by the target pragma below (the
// per-function equivalent of __attribute__((target))); it is only entered after the
// driver has checked the CPU. Standard headers are included before the pragma so that no
// shared inline function is compiled with AVX-512.
#include <immintrin.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "engine/kernels/gemm_kernel.h"
#include "engine/quant/block_types.h"
#include "engine/quant/quantize.h"

#if defined(__clang__)  // clang has no target pragma; this attribute is its equivalent
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,bmi,bmi2")
#endif
// GCC 12 flags the deliberately undefined upper halves of the cast intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace zs::engine::kernels {
namespace {

#define ZS_INLINE inline __attribute__((always_inline))

using TileFn = void (*)(const GemmArgs&, int64_t, int64_t);

// No std:: function templates below this point: an out-of-line copy compiled for AVX-512
// could be merged by the linker with the portable one used elsewhere.
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Tile functions for every tile shape up to MR rows x MT tokens, indexed [rows-1][tokens-1].
template <int MR, int MT>
struct TileTable {
  TileFn fn[MR][MT];
};

template <template <class, int, int> class Tile, class U, int MR, int MT>
constexpr TileTable<MR, MT> make_tiles() {
  TileTable<MR, MT> t{};
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((t.fn[I / MT][I % MT] = &Tile<U, static_cast<int>(I / MT) + 1, static_cast<int>(I % MT) + 1>::run), ...);
  }
  (std::make_index_sequence<MR * MT>{});
  return t;
}

// Runs tiles over rows [r0, r1) and all tokens: row chunks sized for L2, then token tiles,
// then row tiles, so a chunk of weights is read from memory once and the activations of a
// token tile stay in L1.
template <int MR, int MT>
void run_tiles(const TileTable<MR, MT>& tiles, const GemmArgs& g, int64_t r0, int64_t r1, size_t row_bytes) {
  const int64_t chunk = max64(MR, (static_cast<int64_t>((192 * 1024) / (row_bytes ? row_bytes : 1)) / MR) * MR);
  for (int64_t rc = r0; rc < r1; rc += chunk) {
    const int64_t rend = min64(r1, rc + chunk);
    for (int64_t t0 = 0; t0 < g.n_tokens; t0 += MT) {
      const int nt = static_cast<int>(min64(MT, g.n_tokens - t0));
      for (int64_t r = rc; r < rend; r += MR) {
        const int nr = static_cast<int>(min64(MR, rend - r));
        tiles.fn[nr - 1][nt - 1](g, r, t0);
      }
    }
  }
}

// Two tile shapes: 4 rows x up to 4 tokens for decoding (more rows in flight), 2 rows x 8
// tokens for prompts (each unpacked block serves 8 tokens). Both keep 16 accumulators.
template <template <class, int, int> class Tile, class U>
void run_shapes(const GemmArgs& g, int64_t r0, int64_t r1, size_t row_bytes) {
  static constexpr TileTable<4, 4> kNarrow = make_tiles<Tile, U, 4, 4>();
  static constexpr TileTable<2, 8> kWide = make_tiles<Tile, U, 2, 8>();
  if (g.n_tokens >= 8) {
    run_tiles(kWide, g, r0, r1, row_bytes);
  } else {
    run_tiles(kNarrow, g, r0, r1, row_bytes);
  }
}

template <int R, int T>
ZS_INLINE void store_tile(const GemmArgs& g, int64_t r0, int64_t t0, __m512 (&acc)[R][T]) {
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) g.y[(t0 + t) * g.y_stride + r0 + r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

ZS_INLINE float load_f16(const void* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// ============================================================== K-quants (Q8_K activations)

// One super-block of one token's activations. Lane l of the 16-lane vectors belongs to the
// same sub-block as lane l of the weight registers.
struct alignas(64) ActK {
  int8_t qs[256];
  float bsd[16];  // d * (sum of qs of the sub-block whose min multiplier is in lane l)
  float dl[16];   // d, times 1/16 in lanes whose weights are high nibbles left in place (Q4_K)
};
static_assert(sizeof(ActK) == 384);

// kPairs (Q4_K, Q5_K): lane l of every register belongs to sub-block l % 8, and register k,
// lane l holds values 4i..4i+3 of it, i = 2k + l / 8. Lanes 2c and 2c + 1 take the same 4
// stored bytes (the low and the high nibbles of 32-byte chunk c), so one dword permute and
// one fixed mask unpack a register. kSingles (Q6_K): register k holds, for each 16-value
// sub-block l (one lane), values 4k..4k+3.
enum class KLayout { kPairs, kSingles };

template <class U>
size_t act_bytes_k(int64_t n_in) {
  return static_cast<size_t>(n_in / 256) * sizeof(ActK);
}

// Where the activation dwords of one super-block go: output register k, lane l takes dword
// src[k][l] of the 64 quantized dwords (4 values each, natural order).
struct PackKTable {
  alignas(64) int32_t idx[4][16];  // src & 31, for a two-register permute
  uint16_t high[4];                // lanes whose source is in dwords 32-63
};

constexpr PackKTable make_pack_k_table(KLayout layout) {
  PackKTable t{};
  for (int k = 0; k < 4; ++k) {
    for (int l = 0; l < 16; ++l) {
      // kPairs: values 4i..4i+3 (i = 2k + l / 8) of sub-block l % 8; kSingles: values 4k..4k+3
      // of 16-value sub-block l.
      const int src = layout == KLayout::kPairs ? 8 * (l % 8) + 2 * k + l / 8 : 4 * l + k;
      t.idx[k][l] = src & 31;
      if (src >= 32) t.high[k] = static_cast<uint16_t>(t.high[k] | (1u << l));
    }
  }
  return t;
}

constexpr PackKTable kPackPairs = make_pack_k_table(KLayout::kPairs);
constexpr PackKTable kPackSingles = make_pack_k_table(KLayout::kSingles);

// Q8_K quantization of one token's activations, vectorized and fused with the layout above.
// Same values as quantize_row(kQ8_K): scale from the first value of largest magnitude,
// -127 / max, rounding to nearest even (the default MXCSR mode), codes capped at 127, and
// bsums over 16 values.
template <class U>
void pack_k(const float* x, int64_t n_in, void* dst) {
  constexpr KLayout L = U::kLayout;
  const PackKTable& tab = L == KLayout::kPairs ? kPackPairs : kPackSingles;
  auto* out = static_cast<ActK*>(dst);
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < n_in / 256; ++b, x += 256) {
    ActK& a = out[b];
    __m512 v[16];
    __m512 amax = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      v[j] = _mm512_loadu_ps(x + 16 * j);
      amax = _mm512_max_ps(amax, _mm512_and_ps(v[j], abs_mask));
    }
    const float m = _mm512_reduce_max_ps(amax);
    if (m == 0) {
      std::memset(&a, 0, sizeof a);
      continue;
    }
    float max = 0;
    for (int j = 0; j < 16; ++j) {
      const __mmask16 hit = _mm512_cmpeq_ps_mask(_mm512_and_ps(v[j], abs_mask), _mm512_set1_ps(m));
      if (hit) {
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, v[j]);
        max = lanes[__builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.f / max;
    const float d = 1 / iscale;
    const __m512 vs = _mm512_set1_ps(iscale);
    alignas(64) int32_t q[64];  // 256 codes as dwords of 4
    alignas(64) int32_t sums[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const __m512i c = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(vs, v[j])), _mm512_set1_epi32(127));
      sums[j] = _mm512_reduce_add_epi32(c);
      _mm_store_si128(reinterpret_cast<__m128i*>(q + 4 * j), _mm512_cvtsepi32_epi8(c));
    }
    const __m512i q0 = _mm512_load_si512(q), q1 = _mm512_load_si512(q + 16);
    const __m512i q2 = _mm512_load_si512(q + 32), q3 = _mm512_load_si512(q + 48);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      const __m512i idx = _mm512_load_si512(tab.idx[k]);
      const __m512i lo = _mm512_permutex2var_epi32(q0, idx, q1), hi = _mm512_permutex2var_epi32(q2, idx, q3);
      _mm512_store_si512(a.qs + 64 * k, _mm512_mask_blend_epi32(tab.high[k], lo, hi));
    }
    for (int l = 0; l < 16; ++l) {
      if constexpr (L == KLayout::kPairs) {
        // The weights' min multipliers come as [scales | mins] (see k4_row): lanes 0-7 are zero.
        a.bsd[l] = l < 8 ? 0.0f : d * static_cast<float>(sums[2 * (l - 8)] + sums[2 * (l - 8) + 1]);
      } else {
        a.bsd[l] = d * static_cast<float>(sums[l]);
      }
      // High nibbles (odd sub-blocks, odd lanes) left in place are worth 16 times their value.
      a.dl[l] = U::kHighNibblesInPlace && (l & 1) ? d / 16 : d;
    }
  }
}

// One weight super-block unpacked: four registers of unsigned values. The per-lane scale
// (dsc) and min (dmm) multipliers, d and dmin included, are decoded apart (scales_rows), for
// all rows of a tile at once.
struct RowK {
  __m512i q[4];
};

struct KTables {
  alignas(64) int32_t pair_idx[4][16];  // dword of the raw Q4_K/Q5_K quants for register k, lane l
  alignas(64) int32_t q5_rot[16];       // moves bit l % 8 of each byte to bit 4
  alignas(64) int16_t dd_idx[32];       // d, dmin of the 4 header lanes to words 0-7
  alignas(64) int32_t dd_row[4][16];    // d of row r in lanes 0-7, dmin in lanes 8-15
  alignas(64) int32_t q6_ql_idx[4][16];
  alignas(64) int32_t q6_qh_idx[4][16];
  alignas(64) int32_t q6_shift[16];
  alignas(64) int32_t q6_rot[16];
};

constexpr KTables make_k_tables() {
  KTables t{};
  for (int k = 0; k < 4; ++k) {
    for (int l = 0; l < 16; ++l) {
      t.pair_idx[k][l] = 8 * ((l / 2) % 4) + 2 * k + l / 8;
      const int n = l >> 3, g = (l >> 1) & 3, h = l & 1;
      t.q6_ql_idx[k][l] = 16 * n + 8 * (g & 1) + 4 * h + k;
      t.q6_qh_idx[k][l] = 8 * n + 4 * h + k;
    }
  }
  for (int l = 0; l < 16; ++l) {
    t.q5_rot[l] = (4 - l % 8) & 31;
    const int g = (l >> 1) & 3;
    t.q6_shift[l] = g >= 2 ? 4 : 0;
    t.q6_rot[l] = (4 - 2 * g) & 31;
  }
  for (int r = 0; r < 4; ++r) {
    t.dd_idx[2 * r] = static_cast<int16_t>(8 * r);
    t.dd_idx[2 * r + 1] = static_cast<int16_t>(8 * r + 1);
    for (int l = 0; l < 16; ++l) t.dd_row[r][l] = 2 * r + l / 8;
  }
  return t;
}

constexpr KTables kK = make_k_tables();

// Row r of k4_scales_rows: lane r of the decoded fields, times [d x 8, dmin x 8], in lane order.
template <int r>
ZS_INLINE void k4_row(__m512i sm, __m512 dd, __m512& dsc, __m512& dmm) {
  __m128i b;
  if constexpr (r == 0) {
    b = _mm512_castsi512_si128(sm);
  } else {
    b = _mm512_extracti32x4_epi32(sm, r);
  }
  const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b)),
                                 _mm512_permutexvar_ps(_mm512_load_si512(kK.dd_row[r]), dd));
  dsc = _mm512_shuffle_f32x4(f, f, 0x44);
  dmm = f;  // lanes 8-15; the activations' bsd is zero in lanes 0-7
}

// Scales and mins of R <= 4 Q4_K/Q5_K blocks (at blk + r * stride), decoded together: the
// 16-byte header of row r (d, dmin, the 12 bytes of 6-bit fields) goes to 128-bit lane r,
// byte shuffles turn each lane into sc0..7, m0..7, and each row then needs only a widening,
// a multiply by [d x 8, dmin x 8] and one 256-bit duplication of the scales to lane order
// (lane l: sub-block l % 8); the mins stay in lanes 8-15, where the activations' bsd
// expects them. Decoding one block at a time cost about 19 instructions per row; this
// costs about 9.
template <int R>
ZS_INLINE void k4_scales_rows(const uint8_t* blk, size_t stride, __m512 (&dsc)[R], __m512 (&dmm)[R]) {
  static_assert(R >= 1 && R <= 4);
  const auto header = [&](int r) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + r * stride)); };
  __m512i v = _mm512_castsi128_si512(header(0));
  if constexpr (R > 1) v = _mm512_inserti32x4(v, header(1), 1);
  if constexpr (R > 2) v = _mm512_inserti32x4(v, header(2), 2);
  if constexpr (R > 3) v = _mm512_inserti32x4(v, header(3), 3);
  // Per lane, bytes 0-3: s0..3 (sc0..3), 4-7: s8..11 (low nibbles: sc4..7), 8-11: s4..7
  // (m0..3), 12-15: s8..11 shifted down a nibble (m4..7); then the top two bits of s0..7 for
  // 4-7 and 12-15. sN is header byte 4 + N; pshufb gives 0 for index -1.
  const __m512i pidx = _mm512_broadcast_i32x4(_mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m512i qidx = _mm512_broadcast_i32x4(_mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
  const __m512i p = _mm512_srlv_epi32(_mm512_shuffle_epi8(v, pidx), _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4)));
  const __m512i q = _mm512_shuffle_epi8(v, qidx);
  const __m512i low = _mm512_broadcast_i32x4(_mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
  const __m512i top = _mm512_and_si512(_mm512_srli_epi16(q, 2), _mm512_set1_epi8(0x30));
  const __m512i sm = _mm512_ternarylogic_epi32(p, low, top, 0xEA);  // (p & low) | top
  // d0, dmin0, d1, dmin1, ... as floats.
  const __m512 dd = _mm512_castps256_ps512(
      _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi16(_mm512_load_si512(kK.dd_idx), v))));
  k4_row<0>(sm, dd, dsc[0], dmm[0]);
  if constexpr (R > 1) k4_row<1>(sm, dd, dsc[1], dmm[1]);
  if constexpr (R > 2) k4_row<2>(sm, dd, dsc[2], dmm[2]);
  if constexpr (R > 3) k4_row<3>(sm, dd, dsc[3], dmm[3]);
}

// Odd lanes keep the high nibbles; Q4_K leaves them in place (x16, undone by the
// activations' dl).
ZS_INLINE __m512i odd_high_mask() {
  return _mm512_set1_epi64(static_cast<int64_t>(0xF0F0F0F00F0F0F0Full));
}

struct Q4KUnpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4K);
  static constexpr KLayout kLayout = KLayout::kPairs;
  static constexpr bool kHighNibblesInPlace = true;
  static ZS_INLINE void unpack(const uint8_t* blk, RowK& u) {
    const uint8_t* qs = blk + 16;
    const __m512i q0 = _mm512_loadu_si512(qs), q1 = _mm512_loadu_si512(qs + 64);
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
      u.q[k] = _mm512_and_si512(_mm512_permutex2var_epi32(q0, _mm512_load_si512(kK.pair_idx[k]), q1), odd_high_mask());
    }
  }
  template <int R>
  static ZS_INLINE void scales_rows(const uint8_t* blk, size_t stride, __m512 (&dsc)[R], __m512 (&dmm)[R]) {
    k4_scales_rows<R>(blk, stride, dsc, dmm);
  }
};

struct Q5KUnpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ5K);
  static constexpr KLayout kLayout = KLayout::kPairs;
  static constexpr bool kHighNibblesInPlace = false;
  static ZS_INLINE void unpack(const uint8_t* blk, RowK& u) {
    const uint8_t* qh = blk + 16;
    const uint8_t* qs = blk + 48;
    const __m512i q0 = _mm512_loadu_si512(qs), q1 = _mm512_loadu_si512(qs + 64);
    const __m512i shift = _mm512_set1_epi64(int64_t{4} << 32);  // odd lanes: high nibbles
    const __m512i rot = _mm512_load_si512(kK.q5_rot);
    const __m512i low4 = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    // Lanes 0-7 take fifth bits from qh bytes 8k..8k+3, lanes 8-15 from 8k+4..8k+7.
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
      const __m512i lo = _mm512_srlv_epi32(_mm512_permutex2var_epi32(q0, _mm512_load_si512(kK.pair_idx[k]), q1), shift);
      const __m512i h = _mm512_permutexvar_epi32(
          halves, _mm512_castsi128_si512(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(qh + 8 * k))));
      const __m512i hi = _mm512_and_si512(_mm512_rolv_epi32(h, rot), bit4);
      u.q[k] = _mm512_ternarylogic_epi32(lo, low4, hi, 0xEA);  // (lo & 0x0F) | hi
    }
  }
  template <int R>
  static ZS_INLINE void scales_rows(const uint8_t* blk, size_t stride, __m512 (&dsc)[R], __m512 (&dmm)[R]) {
    k4_scales_rows<R>(blk, stride, dsc, dmm);
  }
};

struct Q6KUnpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ6K);
  static constexpr KLayout kLayout = KLayout::kSingles;
  static constexpr bool kHighNibblesInPlace = false;
  static ZS_INLINE void unpack(const uint8_t* blk, RowK& u) {
    const __m512i l0 = _mm512_loadu_si512(blk), l1 = _mm512_loadu_si512(blk + 64);
    const __m512i h = _mm512_loadu_si512(blk + 128);
    const __m512i shift = _mm512_load_si512(kK.q6_shift), rot = _mm512_load_si512(kK.q6_rot);
    const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
      const __m512i lo =
          _mm512_srlv_epi32(_mm512_permutex2var_epi32(l0, _mm512_load_si512(kK.q6_ql_idx[k]), l1), shift);
      const __m512i hi = _mm512_and_si512(
          _mm512_rolv_epi32(_mm512_permutexvar_epi32(_mm512_load_si512(kK.q6_qh_idx[k]), h), rot), bits45);
      u.q[k] = _mm512_ternarylogic_epi32(lo, low4, hi, 0xEA);
    }
  }
  template <int R>
  static ZS_INLINE void scales_rows(const uint8_t* blk, size_t stride, __m512 (&dsc)[R], __m512 (&dmm)[R]) {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const uint8_t* b = blk + r * stride;
      // Values are stored +32: the -32 * scale * (sum of activations) term goes through dmm.
      const __m512 d = _mm512_set1_ps(load_f16(b + 208));
      dsc[r] = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)))), d);
      dmm[r] = _mm512_mul_ps(dsc[r], _mm512_set1_ps(32.0f));
    }
  }
};

template <class U, int R, int T>
struct TileK {
  static void run(const GemmArgs& g, int64_t r0, int64_t t0) {
    __m512 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    const int64_t nb = g.n_in / 256;
    const bool far = !is_long_tile(g.row_stride, R) || g.far_prefetch;
    const uint8_t* w = g.w + static_cast<size_t>(r0) * g.row_stride;
    const ActK* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      act[t] = reinterpret_cast<const ActK*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    for (int64_t b = 0; b < nb; ++b) {
      __m512 dsc[R], dmm[R];
      U::template scales_rows<R>(w + b * U::kBlockBytes, g.row_stride, dsc, dmm);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const uint8_t* blk = w + r * g.row_stride + b * U::kBlockBytes;
        if constexpr (T <= 2) {
          // Decoding is memory-bound: fetch the same block of the next row tile ahead of use,
          // into L1, and when `far` the tile after it into L2 (gemm_kernel.h: always for short
          // tiles, where one tile ahead is too close to hide the latency; for long ones as the
          // driver measured).
          const uint8_t* next = blk + R * g.row_stride;
          for (size_t o = 0; o < U::kBlockBytes; o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(next + o), _MM_HINT_T0);
          if (far) {
            for (size_t o = 0; o < U::kBlockBytes; o += 64)
              _mm_prefetch(reinterpret_cast<const char*>(next + R * g.row_stride + o), _MM_HINT_T1);
          }
        }
        RowK u;
        U::unpack(blk, u);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const ActK& a = act[t][b];
          __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.q[0], _mm512_load_si512(a.qs));
          s = _mm512_dpbusd_epi32(s, u.q[1], _mm512_load_si512(a.qs + 64));
          s = _mm512_dpbusd_epi32(s, u.q[2], _mm512_load_si512(a.qs + 128));
          s = _mm512_dpbusd_epi32(s, u.q[3], _mm512_load_si512(a.qs + 192));
          const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(s), dsc[r]);
          acc[r][t] = _mm512_fmadd_ps(f, _mm512_load_ps(a.dl), acc[r][t]);
          acc[r][t] = _mm512_fnmadd_ps(dmm[r], _mm512_load_ps(a.bsd), acc[r][t]);
        }
      }
    }
    store_tile<R, T>(g, r0, t0, acc);
  }
};

template <class U>
void gemm_k(const GemmArgs& g, int64_t r0, int64_t r1) {
  run_shapes<TileK, U>(g, r0, r1, static_cast<size_t>(g.n_in / 256) * U::kBlockBytes);
}

template <class U>
constexpr GemmKernel kKernelK{&act_bytes_k<U>, &pack_k<U>, &gemm_k<U>, 256,  // ActK per super-block
                               nullptr, 0, 4, /*honours_far_prefetch=*/true};

// ============================================================== 32-blocks (Q8_0 / Q8_1)

// Two blocks (64 values, natural order) of one token's activations.
struct alignas(64) Act32 {
  int8_t qs[64];
  int32_t corr[16];  // starts the integer sum: removes the offset that made weights unsigned
  float d[16];       // activation scale of the lane's block
  float s[16];       // (d * sum of the block's qs) / 8, for the min term of *_1 types
};
static_assert(sizeof(Act32) == 256);

template <class U>
size_t act_bytes_32(int64_t n_in) {
  return static_cast<size_t>((n_in / 32 + 1) / 2) * sizeof(Act32);
}

template <class U>
void pack_32(const float* x, int64_t n_in, void* dst) {
  auto* out = static_cast<Act32*>(dst);
  const int64_t nb = n_in / 32;
  for (int64_t p = 0; p < (nb + 1) / 2; ++p) {
    Act32& a = out[p];
    std::memset(&a, 0, sizeof a);
    for (int half = 0; half < 2 && 2 * p + half < nb; ++half) {
      BlockQ8_1 q;
      float d, s = 0;
      if constexpr (U::kHasMin) {
        (void)quantize_row(GgmlType::kQ8_1, x + 32 * (2 * p + half), &q, 32);
        d = f16_to_f32(q.d);
        s = f16_to_f32(q.s);
      } else {
        BlockQ8_0 q0;
        (void)quantize_row(GgmlType::kQ8_0, x + 32 * (2 * p + half), &q0, 32);
        std::memcpy(q.qs, q0.qs, 32);
        d = f16_to_f32(q0.d);
      }
      std::memcpy(a.qs + 32 * half, q.qs, 32);
      for (int l = 8 * half; l < 8 * half + 8; ++l) {
        a.d[l] = d;
        a.s[l] = s / 8;
        const int sum = a.qs[4 * l] + a.qs[4 * l + 1] + a.qs[4 * l + 2] + a.qs[4 * l + 3];
        a.corr[l] = U::corr_factor(l) * sum;
      }
    }
  }
}

struct Row32 {
  __m512i q;
  __m512 d, m;
};

// [x0 x 8 lanes, x1 x 8 lanes] from two f16 values.
ZS_INLINE __m512 spread2_f16(const uint8_t* pa, const uint8_t* pb) {
  uint16_t a, b;
  std::memcpy(&a, pa, 2);
  std::memcpy(&b, pb, 2);
  const __m128 v = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(a | (static_cast<uint32_t>(b) << 16))));
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(v));
}

// Lanes 4-7 and 12-15 hold high nibbles left in place (x16).
ZS_INLINE __m512 nibble_fix_32() {
  const float h = 1.0f / 16;
  return _mm512_set_ps(h, h, h, h, 1, 1, 1, 1, h, h, h, h, 1, 1, 1, 1);
}

// [qs_a lo, qs_a hi, qs_b lo, qs_b hi] as 16-byte lanes, before nibble masking.
ZS_INLINE __m512i dup_nibble_bytes(const uint8_t* qa, const uint8_t* qb) {
  const __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qa)));
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qb)));
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

ZS_INLINE __m512i nibble_mask_32() {
  return _mm512_set_epi64(static_cast<int64_t>(0xF0F0F0F0F0F0F0F0ull), static_cast<int64_t>(0xF0F0F0F0F0F0F0F0ull),
                          0x0F0F0F0F0F0F0F0Fll, 0x0F0F0F0F0F0F0F0Fll, static_cast<int64_t>(0xF0F0F0F0F0F0F0F0ull),
                          static_cast<int64_t>(0xF0F0F0F0F0F0F0F0ull), 0x0F0F0F0F0F0F0F0Fll, 0x0F0F0F0F0F0F0F0Fll);
}

// Low nibbles in lanes 0-3 / 8-11, high nibbles shifted down in lanes 4-7 / 12-15, plus the
// fifth bits from qh (one bit per value) as bit 4.
ZS_INLINE __m512i q5_bytes(const uint8_t* qa, const uint8_t* qb, const uint8_t* ha, const uint8_t* hb) {
  const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  const __m512i lo = _mm512_and_si512(_mm512_srlv_epi64(dup_nibble_bytes(qa, qb), shift), _mm512_set1_epi8(0x0F));
  uint32_t a, b;
  std::memcpy(&a, ha, 4);
  std::memcpy(&b, hb, 4);
  const __mmask64 k = _cvtu64_mask64(a | (static_cast<uint64_t>(b) << 32));
  return _mm512_or_si512(lo, _mm512_maskz_mov_epi8(k, _mm512_set1_epi8(0x10)));
}

struct Q8_0Unpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  static constexpr int corr_factor(int) { return -128; }
  static ZS_INLINE void unpack(const uint8_t* a, const uint8_t* b, Row32& u) {
    const __m512i q =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 2))),
                           _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 2)), 1);
    u.q = _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));  // signed -> unsigned (+128)
    u.d = spread2_f16(a, b);
  }
};

struct Q4_0Unpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr bool kHasMin = false;
  static constexpr int corr_factor(int l) { return ((l / 4) & 1) ? -8 * 16 : -8; }
  static ZS_INLINE void unpack(const uint8_t* a, const uint8_t* b, Row32& u) {
    u.q = _mm512_and_si512(dup_nibble_bytes(a + 2, b + 2), nibble_mask_32());
    u.d = _mm512_mul_ps(spread2_f16(a, b), nibble_fix_32());
  }
};

struct Q4_1Unpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_1);
  static constexpr bool kHasMin = true;
  static constexpr int corr_factor(int) { return 0; }
  static ZS_INLINE void unpack(const uint8_t* a, const uint8_t* b, Row32& u) {
    u.q = _mm512_and_si512(dup_nibble_bytes(a + 4, b + 4), nibble_mask_32());
    u.d = _mm512_mul_ps(spread2_f16(a, b), nibble_fix_32());
    u.m = spread2_f16(a + 2, b + 2);
  }
};

struct Q5_0Unpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ5_0);
  static constexpr bool kHasMin = false;
  static constexpr int corr_factor(int) { return -16; }
  static ZS_INLINE void unpack(const uint8_t* a, const uint8_t* b, Row32& u) {
    u.q = q5_bytes(a + 6, b + 6, a + 2, b + 2);
    u.d = spread2_f16(a, b);
  }
};

struct Q5_1Unpack {
  static constexpr size_t kBlockBytes = sizeof(BlockQ5_1);
  static constexpr bool kHasMin = true;
  static constexpr int corr_factor(int) { return 0; }
  static ZS_INLINE void unpack(const uint8_t* a, const uint8_t* b, Row32& u) {
    u.q = q5_bytes(a + 8, b + 8, a + 4, b + 4);
    u.d = spread2_f16(a, b);
    u.m = spread2_f16(a + 2, b + 2);
  }
};

template <class U, int R, int T, bool kFar>
ZS_INLINE void step_32(const uint8_t* w, size_t stride, size_t off_a, size_t off_b, const Act32* const (&act)[T],
                       int64_t p, __m512 (&acc)[R][T]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if constexpr (T <= 2) {
      // Decoding is memory-bound: fetch the same blocks of the next row tile ahead of use, and
      // when kFar those of the tile after it into L2 (as in TileK).
      const char* next = reinterpret_cast<const char*>(w + (R + r) * stride + off_a);
      _mm_prefetch(next, _MM_HINT_T0);
      _mm_prefetch(next + 2 * U::kBlockBytes - 1, _MM_HINT_T0);
      if constexpr (kFar) {
        _mm_prefetch(next + R * stride, _MM_HINT_T1);
        _mm_prefetch(next + R * stride + 2 * U::kBlockBytes - 1, _MM_HINT_T1);
      }
    }
    Row32 u;
    U::unpack(w + r * stride + off_a, w + r * stride + off_b, u);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const Act32& a = act[t][p];
      const __m512i s = _mm512_dpbusd_epi32(_mm512_load_si512(a.corr), u.q, _mm512_load_si512(a.qs));
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(u.d, _mm512_load_ps(a.d)), acc[r][t]);
      if constexpr (U::kHasMin) acc[r][t] = _mm512_fmadd_ps(u.m, _mm512_load_ps(a.s), acc[r][t]);
    }
  }
}

template <class U, int R, int T>
struct Tile32 {
  static void run(const GemmArgs& g, int64_t r0, int64_t t0) {
    __m512 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    const uint8_t* w = g.w + static_cast<size_t>(r0) * g.row_stride;
    const Act32* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      act[t] = reinterpret_cast<const Act32*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    if (T <= 2 && (!is_long_tile(g.row_stride, R) || g.far_prefetch)) {
      walk<true>(g, w, act, acc);
    } else {
      walk<false>(g, w, act, acc);
    }
    store_tile<R, T>(g, r0, t0, acc);
  }

  template <bool kFar>
  static ZS_INLINE void walk(const GemmArgs& g, const uint8_t* w, const Act32* const (&act)[T], __m512 (&acc)[R][T]) {
    const int64_t nb = g.n_in / 32;
    constexpr size_t bs = U::kBlockBytes;
    for (int64_t p = 0; p < nb / 2; ++p)
      step_32<U, R, T, kFar>(w, g.row_stride, 2 * p * bs, (2 * p + 1) * bs, act, p, acc);
    // An odd last block pairs with itself; its activation half is zero.
    if (nb & 1) step_32<U, R, T, kFar>(w, g.row_stride, (nb - 1) * bs, (nb - 1) * bs, act, nb / 2, acc);
  }
};

template <class U>
void gemm_32(const GemmArgs& g, int64_t r0, int64_t r1) {
  run_shapes<Tile32, U>(g, r0, r1, static_cast<size_t>(g.n_in / 32) * U::kBlockBytes);
}

template <class U>
constexpr GemmKernel kKernel32{&act_bytes_32<U>, &pack_32<U>, &gemm_32<U>, 256,  // Act32 per 64 values
                               nullptr, 0, 4, /*honours_far_prefetch=*/true};

// ============================================================== Prompts: 16-row panels (Q8_0, Q4_K, Q6_K)

// For prompts (at least kPanelMinTokens tokens) Q8_0, Q4_K and Q6_K weights are repacked, per
// call and per L2-sized chunk of rows, into panels of 16 rows: for each 32-value block (16 for
// Q6_K, whose scales cover 16 values), eight (four) registers whose lane l holds 4
// consecutive values of row l as unsigned bytes (Q8_0 made unsigned by +128; Q4_K's nibbles
// and Q6_K's 6-bit values already are), then the 16 rows' block scales as f32 (and, for the
// K-quants, the 16 block mins: Q6_K's -32 offset is a min of 32 x scale). A token's 4 activation bytes are broadcast to all lanes, so
// one vpdpbusd advances 16 rows by 4 values with no unpacking, and a block's 16 sums take one
// convert and one FMA per token (Q4_K: one more for the min term); the 16 outputs of a
// (panel, token) are contiguous in y and are stored with one instruction instead of 16
// horizontal sums. Q8_0's +128 offset is removed by starting each block's integer sum at
// -128 * (sum of the activation block). The repacking (a 16 x 8 dword transpose per panel
// block) is reused by every token of the call, so it costs ~1/n_tokens of the products; the
// file itself is never modified.
//
// Activations are those the narrow kernels take (Q8_0 blocks for Q8_0; Q8_K super-blocks for
// the K-quants, cut into blocks sharing the super-block's scale), so results agree with them
// to float rounding.

constexpr int kPanelRows = 16;
// Below 8 tokens the panels gain little or lose (measured per call against the 32-block
// kernel on 2048 x 8192 and 8192 x 2048: 4 tokens 0.86-1.21x, 6 tokens 1.08-1.50x, 8 tokens
// 1.70x, 16 tokens 2.0x, 64 tokens 2.8x).
constexpr int kPanelMinTokens = 8;
constexpr size_t kPanelChunkBytes = 256 * 1024;  // packed rows per pass, L2-resident

// One 32-value block of one token's activations.
struct ActP {
  int8_t qs[32];
  float d;
  int32_t corr;  // Q8_0: -128 * sum of qs (starts the integer sum)
};
// K-quants: a Q8_K super-block cut into blocks of kValues values sharing its scale.
template <int kValues>
struct ActPK {
  int8_t qs[kValues];
  float d;     // the super-block's scale
  float dsum;  // d * sum of qs, for the min term
};
static_assert(sizeof(ActP) == 40 && sizeof(ActPK<32>) == 40 && sizeof(ActPK<16>) == 24);

// The activations of the K-quant panels, blocks of kValues (a multiple of 16, Q8_K's bsums).
template <int kValues>
struct PanelActK {
  using Act = ActPK<kValues>;

  static size_t act_bytes(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / kValues) * sizeof(Act)); }

  static void pack_act(const float* x, int64_t n_in, void* dst) {
    constexpr int kBlocks = kQKK / kValues, kSums = kValues / 16;
    auto* out = static_cast<Act*>(dst);
    for (int64_t sb = 0; sb < n_in / kQKK; ++sb) {
      BlockQ8K q;
      (void)quantize_row(GgmlType::kQ8_K, x + kQKK * sb, &q, kQKK);
      for (int k = 0; k < kBlocks; ++k) {
        Act& a = out[kBlocks * sb + k];
        std::memcpy(a.qs, q.qs + kValues * k, kValues);
        int sum = 0;
        for (int i = 0; i < kSums; ++i) sum += q.bsums[kSums * k + i];
        a.d = q.d;
        a.dsum = q.d * static_cast<float>(sum);
      }
    }
  }
};

// Offsets of the 16 rows from row 0, as gather indices (the K-quant panels read the rows'
// super-block headers with gathers).
ZS_INLINE __m512i panel_row_offsets(const uint8_t* const (&rows)[kPanelRows]) {
  alignas(64) int32_t offs[kPanelRows];
  for (int l = 0; l < kPanelRows; ++l) offs[l] = static_cast<int32_t>(rows[l] - rows[0]);
  return _mm512_load_si512(offs);
}

// vpermt2d indices of the 8 x 8 dword transpose done in each 256-bit half: stage s swaps bit
// s of the register index with bit s of the lane index; [s][c] builds the register whose bit
// s is c from the pair (bit s = 0, bit s = 1).
struct PanelTables {
  alignas(64) int32_t idx[3][2][16];
};

constexpr PanelTables make_panel_tables() {
  PanelTables t{};
  for (int s = 0; s < 3; ++s) {
    for (int c = 0; c < 2; ++c) {
      for (int lane = 0; lane < 16; ++lane) {
        const int h = lane >> 3, j = lane & 7;
        const int d = (j >> s) & 1;
        const int src = (j & ~(1 << s)) | (c << s);
        t.idx[s][c][lane] = 16 * d + 8 * h + src;
      }
    }
  }
  return t;
}

constexpr PanelTables kP = make_panel_tables();

// v[i] holds, as dwords, row i's 32 bytes in lanes 0-7 and row i + 8's in lanes 8-15; after
// this, v[j] lane l holds bytes 4j..4j+3 of row l.
ZS_INLINE void transpose_panel_block(__m512i (&v)[8]) {
#pragma GCC unroll 3
  for (int st = 0; st < 3; ++st) {
    const __m512i i0 = _mm512_load_si512(kP.idx[st][0]), i1 = _mm512_load_si512(kP.idx[st][1]);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      if ((i >> st) & 1) continue;
      const __m512i a = v[i], c = v[i | (1 << st)];
      v[i] = _mm512_permutex2var_epi32(a, i0, c);
      v[i | (1 << st)] = _mm512_permutex2var_epi32(a, i1, c);
    }
  }
}

ZS_INLINE __m512i load_row_pair(const uint8_t* a, const uint8_t* b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)), 1);
}

struct PanelQ8_0 {
  using Act = ActP;
  static constexpr int kRegs = 8;  // registers of quants per block: 4 * kRegs values
  static constexpr bool kMin = false;
  static constexpr size_t kBlockBytes = 8 * 64 + 64;  // 8 registers of quants + 16 f32 scales

  static size_t act_bytes(int64_t n_in) { return round_up_64(static_cast<size_t>(n_in / 32) * sizeof(ActP)); }

  static void pack_act(const float* x, int64_t n_in, void* dst) {
    auto* out = static_cast<ActP*>(dst);
    for (int64_t b = 0; b < n_in / 32; ++b) {
      BlockQ8_0 q;
      (void)quantize_row(GgmlType::kQ8_0, x + 32 * b, &q, 32);
      std::memcpy(out[b].qs, q.qs, 32);
      out[b].d = f16_to_f32(q.d);
      int sum = 0;
      for (int j = 0; j < 32; ++j) sum += q.qs[j];
      out[b].corr = -128 * sum;
    }
  }

  // Packs rows[0..16) (missing rows repeat the last; their lanes are never stored) into one
  // panel of n_in / 32 blocks.
  static void pack_panel(const uint8_t* const (&rows)[kPanelRows], int64_t n_in, uint8_t* dst) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int64_t b = 0; b < n_in / 32; ++b) {
      const size_t off = static_cast<size_t>(b) * sizeof(BlockQ8_0);
      __m512i v[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) v[i] = load_row_pair(rows[i] + off + 2, rows[i + 8] + off + 2);
      transpose_panel_block(v);
      uint8_t* out = dst + static_cast<size_t>(b) * kBlockBytes;
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) _mm512_store_si512(out + 64 * j, _mm512_xor_si512(v[j], flip));
      alignas(32) uint16_t dh[kPanelRows];
      for (int l = 0; l < kPanelRows; ++l) std::memcpy(&dh[l], rows[l] + off, 2);
      _mm512_store_ps(out + 512, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(dh))));
    }
  }
};

struct PanelQ4_K : PanelActK<32> {
  static constexpr int kRegs = 8;
  static constexpr bool kMin = true;
  static constexpr size_t kBlockBytes = 8 * 64 + 64 + 64;  // quants, 16 f32 scales, 16 f32 mins

  static void pack_panel(const uint8_t* const (&rows)[kPanelRows], int64_t n_in, uint8_t* dst) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    // The 16 rows' super-block headers are read with gathers (offsets from row 0) and decoded
    // for all rows at once: per header, d and dmin (f16) and 12 bytes of 6-bit scales and mins
    // (unpack_scales_k4's layout).
    const __m512i vidx = panel_row_offsets(rows);
    const __m512i m8 = _mm512_set1_epi32(0xFF), m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(0x0F);
    for (int64_t sb = 0; sb < n_in / kQKK; ++sb) {
      const size_t off = static_cast<size_t>(sb) * sizeof(BlockQ4K);
      const uint8_t* base = rows[0] + off;
      const __m512i dd = _mm512_i32gather_epi32(vidx, base, 1);
      const __m512i q0 = _mm512_i32gather_epi32(vidx, base + 4, 1);   // scales[0..3]
      const __m512i q4 = _mm512_i32gather_epi32(vidx, base + 8, 1);   // scales[4..7]
      const __m512i q8 = _mm512_i32gather_epi32(vidx, base + 12, 1);  // scales[8..11]
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(dd, _mm512_set1_epi32(0xFFFF))));
      const __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
      __m512 sc[8], mn[8];
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i b0 = _mm512_and_si512(_mm512_srli_epi32(q0, 8 * j), m8);
        const __m512i b4 = _mm512_and_si512(_mm512_srli_epi32(q4, 8 * j), m8);
        const __m512i b8 = _mm512_and_si512(_mm512_srli_epi32(q8, 8 * j), m8);
        const __m512i s_lo = _mm512_and_si512(b0, m6), m_lo = _mm512_and_si512(b4, m6);
        const __m512i s_hi = _mm512_or_si512(_mm512_and_si512(b8, m4), _mm512_slli_epi32(_mm512_srli_epi32(b0, 6), 4));
        const __m512i m_hi = _mm512_or_si512(_mm512_srli_epi32(b8, 4), _mm512_slli_epi32(_mm512_srli_epi32(b4, 6), 4));
        sc[j] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(s_lo));
        mn[j] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m_lo));
        sc[j + 4] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(s_hi));
        mn[j + 4] = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m_hi));
      }
      // Sub-blocks 2c and 2c + 1: the low and the high nibbles of the 32 bytes at 32 * c.
      for (int c = 0; c < 4; ++c) {
        const size_t q = off + offsetof(BlockQ4K, qs) + 32 * static_cast<size_t>(c);
        __m512i lo[8], hi[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) {
          const __m512i raw = load_row_pair(rows[i] + q, rows[i + 8] + q);
          lo[i] = _mm512_and_si512(raw, low4);
          hi[i] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
        }
        transpose_panel_block(lo);
        transpose_panel_block(hi);
        uint8_t* out = dst + static_cast<size_t>(8 * sb + 2 * c) * kBlockBytes;
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
          _mm512_store_si512(out + 64 * j, lo[j]);
          _mm512_store_si512(out + kBlockBytes + 64 * j, hi[j]);
        }
        _mm512_store_ps(out + 512, sc[2 * c]);
        _mm512_store_ps(out + 576, mn[2 * c]);
        _mm512_store_ps(out + kBlockBytes + 512, sc[2 * c + 1]);
        _mm512_store_ps(out + kBlockBytes + 576, mn[2 * c + 1]);
      }
    }
  }
};

ZS_INLINE __m512i load_rows4(const uint8_t* a, const uint8_t* b, const uint8_t* c, const uint8_t* d) {
  __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)), 2);
  return _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(d)), 3);
}

// idx[j], lanes 0-7: dword j of the 4 rows of a (lanes 0-3) then of b (4-7), as
// _mm512_permutex2var_epi32(a, idx[j], b) takes them; lanes 8-15 are unused.
struct Transpose4Tables {
  alignas(64) int32_t idx[4][16];
};
constexpr Transpose4Tables make_transpose4() {
  Transpose4Tables t{};
  for (int j = 0; j < 4; ++j)
    for (int o = 0; o < 8; ++o) t.idx[j][o] = (o < 4 ? 0 : 16) + 4 * (o % 4) + j;
  return t;
}
constexpr Transpose4Tables kT4 = make_transpose4();

// Q6_K has one scale per 16 values, so its panel blocks are 16 values (4 registers). Values
// are stored 0-63 (as in the file); the -32 offset goes through the min term (32 x scale).
struct PanelQ6_K : PanelActK<16> {
  static constexpr int kRegs = 4;
  static constexpr bool kMin = true;
  static constexpr size_t kBlockBytes = 4 * 64 + 64 + 64;  // quants, 16 f32 scales, 16 f32 mins

  // Value i of a super-block (the file's layout): half h = i / 128, then within it l < 32 and
  // group g < 4 with i = 128 h + 32 g + l: ql[64 h + 32 (g & 1) + l], low nibble for g < 2 and
  // high nibble otherwise, plus 2 bits of qh[32 h + l] at bit 2 g. Sub-block k (16 values,
  // scale k) is h = k / 8, g = (k % 8) / 2, l in 16 (k % 2) .. + 15.
  static void pack_panel(const uint8_t* const (&rows)[kPanelRows], int64_t n_in, uint8_t* dst) {
    const __m512i vidx = panel_row_offsets(rows);
    const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(0x03);
    for (int64_t sb = 0; sb < n_in / kQKK; ++sb) {
      const size_t off = static_cast<size_t>(sb) * sizeof(BlockQ6K);
      const uint8_t* base = rows[0] + off;
      // d is the f16 at 208 (read as the high half of the dword at 206: the block ends at 210).
      const __m512 d = _mm512_cvtph_ps(
          _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_i32gather_epi32(vidx, base + offsetof(BlockQ6K, d) - 2, 1), 16)));
      __m512 sc[16];
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) {
        const __m512i g = _mm512_i32gather_epi32(vidx, base + offsetof(BlockQ6K, scales) + 4 * m, 1);
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j)
          sc[4 * m + j] = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(g, 24 - 8 * j), 24)));
      }
      for (int k = 0; k < 16; ++k) {
        const int h = k / 8, g = (k % 8) / 2, p = k % 2;
        const size_t ql = off + offsetof(BlockQ6K, ql) + 64 * h + 32 * (g & 1) + 16 * p;
        const size_t qh = off + offsetof(BlockQ6K, qh) + 32 * h + 16 * p;
        __m512i v[4];
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) {
          const uint8_t* const* r = rows + 4 * m;
          const __m512i lo = load_rows4(r[0] + ql, r[1] + ql, r[2] + ql, r[3] + ql);
          const __m512i hi = load_rows4(r[0] + qh, r[1] + qh, r[2] + qh, r[3] + qh);
          const __m512i nib = _mm512_and_si512(g >= 2 ? _mm512_srli_epi16(lo, 4) : lo, low4);
          const __m512i top = _mm512_and_si512(_mm512_srli_epi16(hi, 2 * g), low2);
          v[m] = _mm512_or_si512(nib, _mm512_slli_epi16(top, 4));
        }
        uint8_t* out = dst + static_cast<size_t>(16 * sb + k) * kBlockBytes;
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
          const __m512i idx = _mm512_load_si512(kT4.idx[j]);
          const __m512i a = _mm512_permutex2var_epi32(v[0], idx, v[1]);  // rows 0-7
          const __m512i b = _mm512_permutex2var_epi32(v[2], idx, v[3]);  // rows 8-15
          _mm512_store_si512(out + 64 * j, _mm512_inserti64x4(a, _mm512_castsi512_si256(b), 1));
        }
        _mm512_store_ps(out + 256, sc[k]);
        _mm512_store_ps(out + 320, _mm512_mul_ps(sc[k], _mm512_set1_ps(32.0f)));
      }
    }
  }
};

struct PanelArgs {
  const uint8_t* panels;  // panel 0 of the packed chunk
  size_t panel_bytes;
  int64_t nb;  // panel blocks (4 * F::kRegs values) per row
  const uint8_t* act;
  size_t act_stride;
  float* y;
  int64_t y_stride;
};

using PanelTileFn = void (*)(const PanelArgs&, int64_t panel, int64_t row0, int64_t t0, __mmask16 last_mask);

// R panels (16R rows, rows row0..) x T tokens (t0..): 2RT accumulators (integer block sums
// and float totals) and R weight registers.
template <class F, int R, int T>
struct TileP {
  static void run(const PanelArgs& g, int64_t panel, int64_t row0, int64_t t0, __mmask16 last_mask) {
    using Act = typename F::Act;
    __m512 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    const Act* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) act[t] = reinterpret_cast<const Act*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    const uint8_t* wp = g.panels + static_cast<size_t>(panel) * g.panel_bytes;
    for (int64_t b = 0; b < g.nb; ++b) {
      const uint8_t* wb = wp + static_cast<size_t>(b) * F::kBlockBytes;
      __m512i s[R][T];
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        __m512i c;
        if constexpr (F::kMin) {
          c = _mm512_setzero_si512();
        } else {
          c = _mm512_set1_epi32(act[t][b].corr);
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) s[r][t] = c;
      }
#pragma GCC unroll 8
      for (int j = 0; j < F::kRegs; ++j) {
        __m512i wv[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wv[r] = _mm512_load_si512(wb + r * g.panel_bytes + 64 * j);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          int32_t a4;
          std::memcpy(&a4, act[t][b].qs + 4 * j, 4);
          const __m512i a = _mm512_set1_epi32(a4);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) s[r][t] = _mm512_dpbusd_epi32(s[r][t], wv[r], a);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512 dw = _mm512_load_ps(wb + r * g.panel_bytes + 64 * F::kRegs);
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r][t]), _mm512_mul_ps(dw, _mm512_set1_ps(act[t][b].d)),
                                      acc[r][t]);
          if constexpr (F::kMin) {
            const __m512 mw = _mm512_load_ps(wb + r * g.panel_bytes + 64 * F::kRegs + 64);
            acc[r][t] = _mm512_fnmadd_ps(mw, _mm512_set1_ps(act[t][b].dsum), acc[r][t]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      float* y = g.y + (t0 + t) * g.y_stride + row0;
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        _mm512_mask_storeu_ps(y + kPanelRows * r, r == R - 1 ? last_mask : static_cast<__mmask16>(0xFFFF), acc[r][t]);
      }
    }
  }
};

template <int MR, int MT>
struct PanelTileTable {
  PanelTileFn fn[MR][MT];
};

template <class F, int MR, int MT>
constexpr PanelTileTable<MR, MT> make_panel_tiles() {
  PanelTileTable<MR, MT> t{};
  [&]<size_t... I>(std::index_sequence<I...>) {
    ((t.fn[I / MT][I % MT] = &TileP<F, static_cast<int>(I / MT) + 1, static_cast<int>(I % MT) + 1>::run), ...);
  }
  (std::make_index_sequence<MR * MT>{});
  return t;
}

template <class F, int MR, int MT>
void gemm_p_tiles(const GemmArgs& g, int64_t r0, int64_t r1) {
  static constexpr PanelTileTable<MR, MT> kTiles = make_panel_tiles<F, MR, MT>();
  const int64_t nb = g.n_in / (4 * F::kRegs);
  const size_t panel_bytes = static_cast<size_t>(nb) * F::kBlockBytes;
  const int64_t chunk_panels = max64(1, static_cast<int64_t>(kPanelChunkBytes / panel_bytes));
  uint8_t* buf = thread_panel_buffer(panel_bytes * static_cast<size_t>(min64(chunk_panels, (r1 - r0 + 15) / 16)));
  PanelArgs pa{buf, panel_bytes, nb, g.act, g.act_stride, g.y, g.y_stride};
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
      for (int64_t p = 0; p < np; p += MR) {
        const int npan = static_cast<int>(min64(MR, np - p));
        const int64_t last_rows = min64(kPanelRows, rend - rc - kPanelRows * (p + npan - 1));
        const __mmask16 mask = static_cast<__mmask16>((1u << last_rows) - 1);
        kTiles.fn[npan - 1][nt - 1](pa, p, rc + kPanelRows * p, t0, mask);
      }
    }
  }
}

// 2 panels x 6 tokens: on Zen 5, 2 x 4, 2 x 5, 2 x 7 and 3 x 4 measured the same within the
// noise; 1 x 8 was ~10% slower and 1 x 12 (spilling) half as fast.
template <class F>
void gemm_p(const GemmArgs& g, int64_t r0, int64_t r1) {
  gemm_p_tiles<F, 2, 6>(g, r0, r1);
}

template <class F>
constexpr GemmKernel kKernelPanels{&F::act_bytes, &F::pack_act, &gemm_p<F>, 0, nullptr, 0, kPanelRows};
// Q8_0: the 32-block kernel, and the panels for prompts.
constexpr GemmKernel kKernelQ8_0{&act_bytes_32<Q8_0Unpack>, &pack_32<Q8_0Unpack>, &gemm_32<Q8_0Unpack>, 256,
                                 &kKernelPanels<PanelQ8_0>, kPanelMinTokens, 4, /*honours_far_prefetch=*/true};
// Q6_K: the K-quant kernel, and the panels for prompts.
// Its panels pay from 16 tokens (bench_quant, weights from memory, panels / narrow: 8 tokens
// 0.94-1.01x, 16 tokens 1.04-1.06x, 128 tokens 1.20-1.32x on Zen 4).
constexpr GemmKernel kKernelQ6_K{&act_bytes_k<Q6KUnpack>, &pack_k<Q6KUnpack>, &gemm_k<Q6KUnpack>, 256,
                                 &kKernelPanels<PanelQ6_K>, 16, 4, /*honours_far_prefetch=*/true};
// Q4_K: the K-quant kernel, and the panels for prompts.
constexpr GemmKernel kKernelQ4_K{&act_bytes_k<Q4KUnpack>, &pack_k<Q4KUnpack>, &gemm_k<Q4KUnpack>, 256,
                                 &kKernelPanels<PanelQ4_K>, kPanelMinTokens, 4, /*honours_far_prefetch=*/true};

// ============================================================== F32 / F16 / BF16

// Activations are f32 values already rounded to the weight's precision (what ggml's
// conversion to F16/BF16 gives), zero-padded to a multiple of 16.
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
ZS_INLINE __m512 load_w(const uint8_t* row, int64_t i, __mmask16 m) {
  if constexpr (kType == GgmlType::kF32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kType == GgmlType::kF16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + i));
  } else {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
}

template <GgmlType kType, int R, int T>
ZS_INLINE void step_f(const uint8_t* w, size_t stride, int64_t i, __mmask16 m, const float* const (&act)[T],
                      __m512 (&acc)[R][T]) {
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if constexpr (T <= 2) {
      _mm_prefetch(reinterpret_cast<const char*>(w + (R + r) * stride) + i * (kType == GgmlType::kF32 ? 4 : 2),
                   _MM_HINT_T0);
    }
    const __m512 wv = load_w<kType>(w + r * stride, i, m);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fmadd_ps(wv, _mm512_load_ps(act[t] + i), acc[r][t]);
  }
}

template <GgmlType kT>
struct FType {
  static constexpr GgmlType kType = kT;
};

template <class F, int R, int T>
struct TileF {
  static void run(const GemmArgs& g, int64_t r0, int64_t t0) {
    constexpr GgmlType kType = F::kType;
    __m512 acc[R][T];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
    }
    const uint8_t* w = g.w + static_cast<size_t>(r0) * g.row_stride;
    const float* act[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
      act[t] = reinterpret_cast<const float*>(g.act + static_cast<size_t>(t0 + t) * g.act_stride);
    int64_t i = 0;
    for (; i + 16 <= g.n_in; i += 16) step_f<kType, R, T>(w, g.row_stride, i, 0xFFFF, act, acc);
    if (i < g.n_in) {
      step_f<kType, R, T>(w, g.row_stride, i, static_cast<__mmask16>((1u << (g.n_in - i)) - 1), act, acc);
    }
    store_tile<R, T>(g, r0, t0, acc);
  }
};

template <GgmlType kType>
void gemm_f(const GemmArgs& g, int64_t r0, int64_t r1) {
  run_shapes<TileF, FType<kType>>(g, r0, r1, static_cast<size_t>(g.n_in) * (kType == GgmlType::kF32 ? 4 : 2));
}

template <GgmlType kType>
constexpr GemmKernel kKernelF{&act_bytes_f, &pack_f<kType>, &gemm_f<kType>, 256};  // 1 KB, no padding

}  // namespace

const GemmKernel* avx512_kernel(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_K: return &kKernelQ4_K;
    case GgmlType::kQ5_K: return &kKernelK<Q5KUnpack>;
    case GgmlType::kQ6_K: return &kKernelQ6_K;
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
