#pragma once
// Multi-threaded products of a weight matrix (any computable type, used in place from the
// GGUF mapping) with a batch of f32 activation rows.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

// A weight matrix of n_out rows with n_in values each, rows row_stride bytes apart.
struct WeightView {
  GgmlType type = GgmlType::kF32;
  const void* data = nullptr;
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_stride = 0;
};

// y[t * n_out + r] = dot(W row r, x[t * n_in ...]) for t < n_tokens and r < w.n_out.
// Activations are converted first to the type the weight's dot product takes
// (Q8_0/Q8_1 for 32-blocks, Q8_K for K-quants, F16 for F16, BF16 for BF16), as the
// reference implementation does, so results match it closely.
// The weight must pass validate_weight (callers check once, at load); an invalid one makes
// matmul fill y with NaN rather than read out of bounds.
void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, core::ThreadPool& pool);

// Why `w` cannot be multiplied (type without kernels, n_in not a multiple of the block
// size, rows overlapping, null data), or ok.
core::Status validate_weight(const WeightView& w);

// Several matrices applied to the same activations (e.g. Q, K and V): the activations are
// packed once per format the matrices take (a Q6_K attn_v among Q4_K Q and K adds a second)
// and all products run in one dispatch. Results equal separate matmul() calls.
void matmul_group(const WeightView* ws, float* const* ys, int n, const float* x, int64_t n_tokens,
                  core::ThreadPool& pool);

// Several matrices with the same row length, each applied to its own activations xs[i]
// (n_tokens rows each; e.g. the down products of the experts one token chose): one dispatch,
// each distinct input packed once per format. Results equal separate matmul() calls.
void matmul_multi(const WeightView* ws, float* const* ys, const float* const* xs, int n, int64_t n_tokens,
                  core::ThreadPool& pool);

// The instruction set the kernels use on this machine ("avx512-vnni", "avx2", "scalar").
std::string_view kernel_isa();
// Forces a lower instruction set for tests/benchmarks ("scalar", "avx2", "avx512");
// returns false when the machine lacks it. Also read once from env ZS_ISA.
bool force_kernel_isa(std::string_view isa);

// Enables (the default) or disables the kernels used only for prompts (weights repacked per
// call into panels of rows: AVX-512 Q8_0, Q4_K and Q6_K in 16-row panels, AVX2 Q8_0 and Q4_K in
// 8-row panels); returns the previous setting. For tests and benchmarks that compare both paths.
bool set_wide_kernels(bool enabled);

// How far the decode kernels prefetch the weights of long rows (kernels/prefetch_tuner.h):
// one row tile ahead ("near") or also the tile after it ("far"). In kAuto (the default) the
// first decode products of the process measure both and keep the faster; kOn and kOff force
// one (tests, benchmarks). Also read once from env ZS_FAR_PREFETCH (auto, on, off).
// Setting kAuto starts a new measurement. Returns the previous mode. Results never depend on
// it: only the order in which memory is fetched changes.
enum class FarPrefetch { kAuto, kOn, kOff };
FarPrefetch set_far_prefetch(FarPrefetch mode);
// What is in use, in words: "far (forced)", "auto, measuring", "auto: far (far/near x1.21;
// far 31.2 GB/s, near 25.9 GB/s, medians of 32 decode products each)".
std::string far_prefetch_report();

}  // namespace zs::engine
