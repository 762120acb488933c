#pragma once
// Internal interface between the matmul driver (matmul.cc) and the per-ISA kernel files.
// Each kernel converts activations into its own layout (the values are those of the
// weight's vec-dot type, possibly permuted to suit the instruction set) and multiplies.
#include <cstddef>
#include <cstdint>

#include "engine/quant/ggml_type.h"

namespace zs::engine::kernels {

enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct GemmArgs {
  const uint8_t* w = nullptr;  // row 0 of the weight matrix
  size_t row_stride = 0;
  int64_t n_in = 0;
  const uint8_t* act = nullptr;  // packed activations, one row of act_stride bytes per token
  size_t act_stride = 0;
  int64_t n_tokens = 0;
  float* y = nullptr;  // y[t * y_stride + r]
  int64_t y_stride = 0;
  // Decoding (at most 2 tokens) with long row tiles: also prefetch the tile after the next
  // one, into L2. Read only by kernels with GemmKernel::honours_far_prefetch; the driver
  // sets it from the PrefetchTuner (prefetch_tuner.h). Short tiles always do.
  bool far_prefetch = false;
};

// Decoding walks the weights in tiles of kDecodeTileRows rows. A tile of at least
// kLongTileBytes is long: whether prefetching two tiles ahead pays for it depends on the
// machine (see prefetch_tuner.h), so GemmArgs::far_prefetch decides; shorter tiles are too
// short for one tile ahead to hide the memory latency and always prefetch two ahead.
constexpr int kDecodeTileRows = 4;
constexpr size_t kLongTileBytes = 16 * 1024;
inline bool is_long_tile(size_t row_stride, int rows = kDecodeTileRows) {
  return static_cast<size_t>(rows) * row_stride >= kLongTileBytes;
}

struct GemmKernel {
  // Bytes one token's packed activations take; a multiple of 64.
  size_t (*act_bytes)(int64_t n_in) = nullptr;
  // Packs one token's activations (dst is 64-byte aligned).
  void (*pack)(const float* x, int64_t n_in, void* dst) = nullptr;
  // Computes the outputs of rows [r0, r1) for all tokens.
  void (*gemm)(const GemmArgs& args, int64_t r0, int64_t r1) = nullptr;
  // When nonzero: every run of pack_unit values packs independently into act_bytes(pack_unit)
  // bytes, so pack(x + k * pack_unit, m * pack_unit, dst + k * act_bytes(pack_unit)) packs a
  // piece of a row; the driver then splits a single token's packing between threads.
  int pack_unit = 0;
  // When set, calls with at least wide_min_tokens tokens use `wide` instead (a kernel with its
  // own activation layout that pays a per-call cost only prompts amortize).
  const GemmKernel* wide = nullptr;
  int wide_min_tokens = 0;
  // Row chunks handed to gemm are multiples of this many rows (except a matrix's last).
  int row_align = 4;
  // Whether gemm reads GemmArgs::far_prefetch (so the driver's measurement means something).
  bool honours_far_prefetch = false;
};

// Kernels of one instruction set, or nullptr where that set has none for the type (the
// driver then falls back to a lower set). The scalar set covers every computable type.
const GemmKernel* scalar_kernel(GgmlType type);
const GemmKernel* avx2_kernel(GgmlType type);
const GemmKernel* avx512_kernel(GgmlType type);

inline size_t round_up_64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

// The calling thread's scratch for repacked weights (the prompt kernels' panels): at least
// `bytes`, 64-byte aligned, grown as needed and kept for the thread's next call. Defined in
// the portable driver so that no ISA file's copy of it is shared with another.
uint8_t* thread_panel_buffer(size_t bytes);

}  // namespace zs::engine::kernels
