// The kernel of cpu::attend_block (cpu_attention.h, BlockAttention), written once for two
// builds: cpu_attention_avx2.cc and cpu_attention_avx512.cc include this file after their target
// pragma, with ZS_ATTENTION_WIDE 0 (AVX2: 8 keys per register) or 1 (AVX-512: 16 keys per
// register, 32 registers). Everything here has internal linkage; nothing else includes it.
//
// Per block and tile of keys: the keys are widened to f32 and transposed once (kt[i * 32 + j] =
// key j's value i), then the query heads of the block, two at a time, take their scores from
// them with one register per group of keys; then per head the softmax; then per tile the
// values, widened once, are added by every head. The arithmetic is attend_group's (see
// tile_scores): the same bits.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "engine/backend/cpu_attention.h"
#include "engine/backend/simd_exp.h"

#ifndef ZS_ATTENTION_WIDE
#error "define ZS_ATTENTION_WIDE (0 or 1) before including attention_block.h"
#endif

namespace zs::engine::cpu {
namespace {

#define ZS_INLINE inline __attribute__((always_inline))

constexpr int kTileKeys = kBlockTileKeys;

struct Tile {
  int64_t row, n;  // first cache row, positions
};
// The tile at position p: at most kTileKeys consecutive rows of one page, before `end`.
ZS_INLINE Tile tile_at(const BlockAttention& a, int64_t p, int64_t end) {
  const int64_t off = p % a.block_size;
  return {static_cast<int64_t>(a.table[p / a.block_size]) * a.block_size + off,
          std::min<int64_t>({end - p, a.block_size - off, kTileKeys})};
}

ZS_INLINE float soft_cap(float s, float softcap, float inv_cap) {
  return softcap > 0 ? std::tanh(s * inv_cap) * softcap : s;
}

// Rows become columns: afterwards r[l][x] is what r[x][l] was.
ZS_INLINE void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int x = 0; x < 8; x += 2) {
    t[x] = _mm256_unpacklo_ps(r[x], r[x + 1]);      // x0 y0 x1 y1 | x4 y4 x5 y5
    t[x + 1] = _mm256_unpackhi_ps(r[x], r[x + 1]);  // x2 y2 x3 y3 | x6 y6 x7 y7
  }
  for (int x = 0; x < 8; x += 4) {
    u[x] = _mm256_shuffle_ps(t[x], t[x + 2], 0x44);          // column 0 of rows x..x+3 | 4
    u[x + 1] = _mm256_shuffle_ps(t[x], t[x + 2], 0xee);      // 1 | 5
    u[x + 2] = _mm256_shuffle_ps(t[x + 1], t[x + 3], 0x44);  // 2 | 6
    u[x + 3] = _mm256_shuffle_ps(t[x + 1], t[x + 3], 0xee);  // 3 | 7
  }
  for (int l = 0; l < 4; ++l) {
    r[l] = _mm256_permute2f128_ps(u[l], u[l + 4], 0x20);
    r[l + 4] = _mm256_permute2f128_ps(u[l], u[l + 4], 0x31);
  }
}

// ---------------------------------------------------------------- Registers

// The two register widths, as the kernels below use them: W floats per register.
struct Ymm {
  using T = __m256;
  static constexpr int W = 8;
  static ZS_INLINE T zero() { return _mm256_setzero_ps(); }
  static ZS_INLINE T load(const float* p) { return _mm256_loadu_ps(p); }
  static ZS_INLINE T bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static ZS_INLINE T set1(float x) { return _mm256_set1_ps(x); }
  static ZS_INLINE T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static ZS_INLINE T add(T a, T b) { return _mm256_add_ps(a, b); }
  static ZS_INLINE T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static ZS_INLINE void store(float* p, T x) { _mm256_storeu_ps(p, x); }
};
#if ZS_ATTENTION_WIDE
struct Zmm {
  using T = __m512;
  static constexpr int W = 16;
  static ZS_INLINE T zero() { return _mm512_setzero_ps(); }
  static ZS_INLINE T load(const float* p) { return _mm512_loadu_ps(p); }
  static ZS_INLINE T bcast(const float* p) { return _mm512_set1_ps(*p); }
  static ZS_INLINE T set1(float x) { return _mm512_set1_ps(x); }
  static ZS_INLINE T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static ZS_INLINE T add(T a, T b) { return _mm512_add_ps(a, b); }
  static ZS_INLINE T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static ZS_INLINE void store(float* p, T x) { _mm512_storeu_ps(p, x); }
};
using Wide = Zmm;  // the build's widest registers
#else
using Wide = Ymm;
#endif
// Keys per score register, and so the granularity to which tiles are padded with zero keys.
constexpr int kKeyGroup = Wide::W;

// ---------------------------------------------------------------- Scores

// out_r[0, W K) = scale * (q_r . key j) for R heads (R = 1 or 2) and K groups of W keys of the
// transposed tile. attend_group sums a key's products in 8 lanes (lane l: q[8c + l] * key[8c + l]
// over c) and adds the lanes as ((0 + 4) + (1 + 5)) + ((2 + 6) + (3 + 7)). Here lane j of a
// register holds key j instead, and each of the eight sums is formed over c in the same order,
// then added in the same order: the same bits, whatever the register width. The sums are made
// P pairs at a time (lanes m and m + 4, which the reduction adds first), so that a pass holds
// R x K x 2P registers (8 with the shapes used: enough FMAs in flight, few enough for AVX2's 16
// registers) and, with two heads, every load of keys serves both: one load per FMA.
// C: head_dim / 8 when fixed at compile time (0: nc).
template <class V, int C, int K, int R>
ZS_INLINE void tile_scores(const float* q0, int64_t q_stride, int nc, const float* kt, float scale, float* out0,
                           int64_t out_stride) {
  using T = typename V::T;
  constexpr int P = R == 2 ? 1 : 2;
  T half[R][K][4];  // lane m + lane m + 4
  const int n = C > 0 ? C : nc;
#pragma GCC unroll 4
  for (int m0 = 0; m0 < 4; m0 += P) {
    T acc[R][K][P][2];
#pragma GCC unroll 16
    for (int i = 0; i < R * K * P * 2; ++i) acc[i / (K * P * 2)][i / (P * 2) % K][i / 2 % P][i % 2] = V::zero();
    for (int c = 0; c < n; ++c) {
#pragma GCC unroll 4
      for (int i = 0; i < 2 * P; ++i) {
        const int p = i / 2, h = i % 2, l = m0 + p + 4 * h;
        const float* row = kt + (8 * c + l) * kTileKeys;
        T kv[K];
#pragma GCC unroll 2
        for (int k = 0; k < K; ++k) kv[k] = V::load(row + V::W * k);
#pragma GCC unroll 2
        for (int r = 0; r < R; ++r) {
          const T qb = V::bcast(q0 + r * q_stride + 8 * c + l);
#pragma GCC unroll 2
          for (int k = 0; k < K; ++k) acc[r][k][p][h] = V::fma(qb, kv[k], acc[r][k][p][h]);
        }
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < R * K * P; ++i) {
      const int r = i / (K * P), k = i / P % K, p = i % P;
      half[r][k][m0 + p] = V::add(acc[r][k][p][0], acc[r][k][p][1]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R * K; ++i) {
    const int r = i / K, k = i % K;
    const T d = V::add(V::add(half[r][k][0], half[r][k][1]), V::add(half[r][k][2], half[r][k][3]));
    V::store(out0 + r * out_stride + V::W * k, V::mul(d, V::set1(scale)));
  }
}

// The scores of R heads (q_stride apart; outputs out_stride apart) for the w keys at kt + c:
// one or two groups of Wide::W.
template <int C, int R>
ZS_INLINE void group_scores(const float* q, int64_t q_stride, int nc, const float* kt, int64_t c, int w, float scale,
                            float* out, int64_t out_stride) {
  if (w == 2 * Wide::W) return tile_scores<Wide, C, 2, R>(q, q_stride, nc, kt + c, scale, out, out_stride);
  tile_scores<Wide, C, 1, R>(q, q_stride, nc, kt + c, scale, out, out_stride);
}

// ---------------------------------------------------------------- Values

// R heads (head r: probabilities pr[r * pr_stride + j], output out[r * hd, (r + 1) * hd) with
// hd = W * C) add n rows of widened values (vt[j * hd + i]) in position order, as attend_group
// does for one head; each load of values serves all R heads.
template <class V, int C, int R>
ZS_INLINE void add_values(const float* pr, int64_t pr_stride, float* out, const float* vt, int64_t n) {
  using T = typename V::T;
  T acc[R][C];
#pragma GCC unroll 16
  for (int i = 0; i < R * C; ++i) acc[i / C][i % C] = V::load(out + V::W * i);
  for (int64_t j = 0; j < n; ++j) {
    T pb[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) pb[r] = V::set1(pr[r * pr_stride + j]);
    const float* vr = vt + j * V::W * C;
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const T vv = V::load(vr + V::W * c);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] = V::fma(pb[r], vv, acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R * C; ++i) V::store(out + V::W * i, acc[i / C][i % C]);
}

// The n_heads heads of one token add n rows of the tile: head g's probabilities are
// pr[g * len, g * len + n), its output out[g * hd, (g + 1) * hd).
template <int C>
ZS_INLINE void heads_add_values(const float* pr, int64_t len, float* out, const float* vt, int hd, int n_heads,
                                int64_t n) {
  int g = 0;
  if constexpr (C > 0 && C % (Wide::W / 8) == 0) {
    // 16 registers of sums: 4 heads of 64 values, 2 of 128 (AVX-512); each load serves them all.
    constexpr int CW = C / (Wide::W / 8), R = CW <= 4 ? 4 : CW <= 8 ? 2 : 1;
    constexpr int kR = ZS_ATTENTION_WIDE ? R : 1;  // AVX2 has 16 registers: one head at a time
    for (; g + kR <= n_heads; g += kR) add_values<Wide, CW, kR>(pr + g * len, len, out + g * hd, vt, n);
    for (; g < n_heads; ++g) add_values<Wide, CW, 1>(pr + g * len, len, out + g * hd, vt, n);
    return;
  }
  if constexpr (C > 0) {
    for (; g < n_heads; ++g) add_values<Ymm, C, 1>(pr + g * len, len, out + g * hd, vt, n);
    return;
  }
  for (; g < n_heads; ++g)
    for (int64_t j = 0; j < n; ++j) {
      const __m256 pb = _mm256_set1_ps(pr[g * len + j]);
      const float* vr = vt + j * hd;
      float* o = out + g * hd;
      for (int c = 0; c < hd / 8; ++c)
        _mm256_storeu_ps(o + 8 * c, _mm256_fmadd_ps(pb, _mm256_loadu_ps(vr + 8 * c), _mm256_loadu_ps(o + 8 * c)));
    }
}

// ---------------------------------------------------------------- The block

// Token t's scores sit in the scratch as n_q rows of end - first, token after token.
template <int C>
void block_kernel(const BlockAttention& a) {
  const int hd = C > 0 ? 8 * C : a.head_dim;
  const int nc = hd / 8;
  const float inv_cap = a.softcap > 0 ? 1.0f / a.softcap : 0.f;
  int64_t lo = a.first[0], hi = a.end[0], total = 0;
  for (int t = 0; t < a.n_tok; ++t) {
    lo = std::min(lo, a.first[t]);
    hi = std::max(hi, a.end[t]);
    total += a.n_q * (a.end[t] - a.first[t]);
  }
  float* const scores = a.scratch;
  float* const kt = scores + total;       // hd x kTileKeys
  float* const vt = kt + hd * kTileKeys;  // kTileKeys x hd
  constexpr int kPartStride = kTileKeys;  // scores of up to a tile's keys, of up to two heads
  alignas(64) float part[2 * kPartStride];

  // Scores.
  for (int64_t p = lo; p < hi;) {
    const Tile tile = tile_at(a, p, hi);
    // Transposed, padded with zero keys to whole groups.
    for (int64_t j = 0; j < (tile.n + kKeyGroup - 1) / kKeyGroup * kKeyGroup; j += 8) {
      const uint16_t* k = a.k + (tile.row + j) * a.row_stride;
      const int64_t n = std::clamp<int64_t>(tile.n - j, 0, 8);
      for (int c = 0; c < nc; ++c) {
        __m256 r[8];
        for (int x = 0; x < 8; ++x)
          r[x] = x < n ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + x * a.row_stride + 8 * c)))
                       : _mm256_setzero_ps();
        transpose8(r);
        for (int l = 0; l < 8; ++l) _mm256_storeu_ps(kt + (8 * c + l) * kTileKeys + j, r[l]);
      }
    }
    int64_t off = 0;
    for (int t = 0; t < a.n_tok; ++t) {
      const int64_t len = a.end[t] - a.first[t];
      const int64_t j0 = std::max(p, a.first[t]) - p, j1 = std::min(p + tile.n, a.end[t]) - p;
      const int64_t end_group = (j1 + kKeyGroup - 1) / kKeyGroup * kKeyGroup;
      for (int g = 0; j0 < j1 && g < a.n_q;) {
        const int rows = g + 1 < a.n_q ? 2 : 1;  // two heads share each load of keys
        const float* q = a.q + (static_cast<int64_t>(t) * a.n_q + g) * hd;
        float* s = scores + off + g * len;  // s[r * len + base + j]: head g + r, position p + j (j0 <= j < j1)
        const int64_t base = p - a.first[t];
        for (int64_t c = j0 / kKeyGroup * kKeyGroup; c < end_group;) {
          const int w = c + 2 * kKeyGroup <= end_group ? 2 * kKeyGroup : kKeyGroup;
          // Whole groups of visible keys go straight to the scores; edges and soft-capping via part.
          const bool whole = a.softcap == 0 && c >= j0 && c + w <= j1;
          float* dst = whole ? s + base + c : part;
          const int64_t dst_stride = whole ? len : kPartStride;
          if (rows == 2) {
            group_scores<C, 2>(q, hd, nc, kt, c, w, a.scale, dst, dst_stride);
          } else {
            group_scores<C, 1>(q, hd, nc, kt, c, w, a.scale, dst, dst_stride);
          }
          if (!whole)
            for (int r = 0; r < rows; ++r)
              for (int64_t j = std::max(c, j0); j < std::min(c + w, j1); ++j)
                s[r * len + base + j] = soft_cap(part[r * kPartStride + j - c], a.softcap, inv_cap);
          c += w;
        }
        g += rows;
      }
      off += a.n_q * len;
    }
    p += tile.n;
  }

  // Probabilities.
  for (int64_t t = 0, off = 0; t < a.n_tok; ++t) {
    const int64_t len = a.end[t] - a.first[t];
    for (int g = 0; g < a.n_q; ++g, off += len) {
      softmax_f16_avx2(scores + off, len);
      float* out = a.out + t * a.out_stride + g * hd;
      for (int i = 0; i < hd; ++i) out[i] = 0.f;
    }
  }

  // Values.
  for (int64_t p = lo; p < hi;) {
    const Tile tile = tile_at(a, p, hi);
    const uint16_t* v = a.v + tile.row * a.row_stride;
    for (int64_t j = 0; j < tile.n; ++j, v += a.row_stride)
      for (int c = 0; c < nc; ++c)
        _mm256_storeu_ps(vt + j * hd + 8 * c, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 8 * c))));
    int64_t off = 0;
    for (int t = 0; t < a.n_tok; ++t) {
      const int64_t len = a.end[t] - a.first[t];
      const int64_t j0 = std::max(p, a.first[t]) - p, j1 = std::min(p + tile.n, a.end[t]) - p;
      if (j0 < j1)
        heads_add_values<C>(scores + off + (p - a.first[t]) + j0, len, a.out + t * a.out_stride, vt + j0 * hd, hd, a.n_q,
                            j1 - j0);
      off += a.n_q * len;
    }
    p += tile.n;
  }
}

// The entry point: head sizes that the scores and values unroll for, else any multiple of 8.
ZS_INLINE void dispatch_block(const BlockAttention& a) {
  with_head_chunks(a.head_dim, [&](auto c) { block_kernel<decltype(c)::value>(a); });
}

#undef ZS_INLINE

}  // namespace
}  // namespace zs::engine::cpu
