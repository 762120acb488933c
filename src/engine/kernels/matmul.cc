#include "engine/kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "engine/kernels/gemm_kernel.h"

namespace zs::engine {
namespace {

using kernels::GemmArgs;
using kernels::GemmKernel;
using kernels::Isa;

// Each level needs everything its kernel file is compiled for (see the target pragmas).
Isa detect_isa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
#if defined(__clang__)  // clang 14 cannot query f16c/bmi by name; every AVX2 CPU has them
  const bool base = __builtin_cpu_supports("fma");
#else
  const bool base = __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi") &&
                    __builtin_cpu_supports("bmi2");
#endif
  if (!base) return Isa::kScalar;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2")) {
    return Isa::kAvx2;
  }
#endif
  return Isa::kScalar;
}

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

std::optional<Isa> parse_isa(std::string_view s) {
  if (s == "scalar") return Isa::kScalar;
  if (s == "avx2") return Isa::kAvx2;
  if (s == "avx512" || s == "avx512-vnni") return Isa::kAvx512;
  return std::nullopt;
}

// The instruction set in use: the best one, lowered by ZS_ISA or force_kernel_isa.
// Process-wide because it describes the machine, not any one model.
std::atomic<int>& active_isa() {
  static std::atomic<int> isa{[] {
    Isa best = best_isa();
    if (const char* env = std::getenv("ZS_ISA")) {
      auto want = parse_isa(env);
      if (want && static_cast<int>(*want) <= static_cast<int>(best)) return static_cast<int>(*want);
    }
    return static_cast<int>(best);
  }()};
  return isa;
}

const GemmKernel* select_kernel(GgmlType type) {
  const int isa = active_isa().load(std::memory_order_relaxed);
  if (isa >= static_cast<int>(Isa::kAvx512)) {
    if (auto* k = kernels::avx512_kernel(type)) return k;
  }
  if (isa >= static_cast<int>(Isa::kAvx2)) {
    if (auto* k = kernels::avx2_kernel(type)) return k;
  }
  return kernels::scalar_kernel(type);
}

// Packed activations of the calling thread, reused across calls so that steady-state
// decoding allocates nothing.
class Scratch {
 public:
  uint8_t* get(size_t bytes) {
    if (bytes > capacity_) {
      capacity_ = std::max(bytes, capacity_ * 2);
      buf_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, kernels::round_up_64(capacity_))));
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> buf_;
  size_t capacity_ = 0;
};

}  // namespace

core::Status validate_weight(const WeightView& w) {
  auto traits = ggml_type_traits(static_cast<uint32_t>(w.type));
  if (!traits) return core::Status::error("unknown tensor type " + std::to_string(static_cast<uint32_t>(w.type)));
  if (!traits->computable || kernels::scalar_kernel(w.type) == nullptr) {
    return core::Status::error("no matmul kernel for tensor type " + std::string(traits->name));
  }
  if (w.n_in <= 0 || w.n_out <= 0) return core::Status::error("weight matrix has an empty dimension");
  if (w.n_in % traits->block_size != 0) {
    return core::Status::error("weight rows of " + std::to_string(w.n_in) + " values are not a multiple of the " +
                               std::string(traits->name) + " block size " + std::to_string(traits->block_size));
  }
  if (w.row_stride < ggml_row_size(w.type, w.n_in)) {
    return core::Status::error("weight row stride " + std::to_string(w.row_stride) + " is smaller than a row (" +
                               std::to_string(ggml_row_size(w.type, w.n_in)) + " bytes)");
  }
  if (w.data == nullptr) return core::Status::error("weight matrix has no data");
  return core::Status::ok();
}

namespace {

// Chunks of whole 4-row tiles, large enough to stream (~256 KB of weights) and small
// enough that every thread gets several.
int64_t chunk_rows_for(const WeightView& w, int threads) {
  const int64_t row_bytes = static_cast<int64_t>(std::max<size_t>(1, ggml_row_size(w.type, w.n_in)));
  const int64_t per_thread = (w.n_out + 4 * threads - 1) / (4 * threads);
  int64_t chunk_rows = std::min<int64_t>(std::max<int64_t>(1, (256 * 1024) / row_bytes), per_thread);
  return std::max<int64_t>(4, (chunk_rows + 3) & ~int64_t{3});
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, core::ThreadPool& pool) {
  if (n_tokens <= 0) return;
  if (!validate_weight(w).is_ok()) {
    std::fill(y, y + n_tokens * std::max<int64_t>(w.n_out, 0), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  const GemmKernel* k = select_kernel(w.type);
  const size_t act_stride = k->act_bytes(w.n_in);
  thread_local Scratch scratch;
  uint8_t* act = scratch.get(act_stride * static_cast<size_t>(n_tokens));

  GemmArgs args;
  args.w = static_cast<const uint8_t*>(w.data);
  args.row_stride = w.row_stride;
  args.n_in = w.n_in;
  args.act = act;
  args.act_stride = act_stride;
  args.n_tokens = n_tokens;
  args.y = y;
  args.y_stride = w.n_out;

  // Everything the threads need, behind one pointer: a lambda capturing only that fits
  // std::function's inline storage, so dispatching allocates nothing.
  struct Job {
    const GemmKernel* k;
    const GemmArgs* args;
    const float* x;
    uint8_t* act;  // where pack writes; args->act reads the same memory
    int64_t chunk_rows;
    std::atomic<int64_t> next_token{0};
    std::atomic<int64_t> packed_tokens{0};
    std::atomic<int64_t> next_row{0};

    // Tokens and then row chunks are claimed from shared counters rather than split
    // evenly, so a thread that runs slower (a core shared with other work) does less.
    void run() {
      const int64_t n_tokens = args->n_tokens;
      for (int64_t t; (t = next_token.fetch_add(1, std::memory_order_relaxed)) < n_tokens;) {
        k->pack(x + t * args->n_in, args->n_in, act + static_cast<size_t>(t) * args->act_stride);
        packed_tokens.fetch_add(1, std::memory_order_release);
      }
      while (packed_tokens.load(std::memory_order_acquire) < n_tokens) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      const int64_t n_out = args->y_stride;
      for (int64_t r0; (r0 = next_row.fetch_add(chunk_rows, std::memory_order_relaxed)) < n_out;) {
        k->gemm(*args, r0, std::min(n_out, r0 + chunk_rows));
      }
    }
  };
  Job job{k, &args, x, act, chunk_rows_for(w, pool.size())};
  pool.run([&job](int, int) { job.run(); });
}

void matmul_group(const WeightView* ws, float* const* ys, int n, const float* x, int64_t n_tokens,
                  core::ThreadPool& pool) {
  if (n_tokens <= 0 || n <= 0) return;
  // Sharing needs one activation format: the same packing and the same row length. Matrices
  // that differ from the first (e.g. a Q6_K attn_v among Q4_K in a Q4_K_M file) go on their own.
  const GemmKernel* k0 = select_kernel(ws[0].type);
  auto shares = [&](int i) {
    const GemmKernel* ki = select_kernel(ws[i].type);
    return validate_weight(ws[i]).is_ok() && ws[i].n_in == ws[0].n_in && ki->pack == k0->pack &&
           ki->act_bytes == k0->act_bytes;
  };
  if (n == 1 || !shares(0)) {
    for (int i = 0; i < n; ++i) matmul(ws[i], x, n_tokens, ys[i], pool);
    return;
  }
  if (n <= 4) {
    WeightView same[4], other[4];
    float* same_y[4];
    float* other_y[4];
    int n_same = 0, n_other = 0;
    for (int i = 0; i < n; ++i) {
      if (shares(i)) {
        same[n_same] = ws[i];
        same_y[n_same++] = ys[i];
      } else {
        other[n_other] = ws[i];
        other_y[n_other++] = ys[i];
      }
    }
    if (n_other > 0) {
      matmul_group(same, same_y, n_same, x, n_tokens, pool);
      matmul_group(other, other_y, n_other, x, n_tokens, pool);
      return;
    }
  }
  constexpr int kMaxGroup = 4;
  if (n > kMaxGroup) {
    matmul_group(ws, ys, kMaxGroup, x, n_tokens, pool);
    matmul_group(ws + kMaxGroup, ys + kMaxGroup, n - kMaxGroup, x, n_tokens, pool);
    return;
  }
  const size_t act_stride = k0->act_bytes(ws[0].n_in);
  thread_local Scratch scratch;
  uint8_t* act = scratch.get(act_stride * static_cast<size_t>(n_tokens));
  // One dispatch for the whole group: the activations are packed once, then row chunks of
  // every matrix are claimed from one counter, so the threads stream the matrices back to back.
  struct GroupJob {
    const GemmKernel* kernels[kMaxGroup];
    GemmArgs args[kMaxGroup];
    int64_t chunk_rows[kMaxGroup];
    int64_t first_chunk[kMaxGroup + 1];
    int n;
    const float* x;
    uint8_t* act;
    int64_t n_tokens;
    int64_t n_in;
    size_t act_stride;
    std::atomic<int64_t> next_token{0};
    std::atomic<int64_t> packed_tokens{0};
    std::atomic<int64_t> next_chunk{0};

    void run() {
      for (int64_t t; (t = next_token.fetch_add(1, std::memory_order_relaxed)) < n_tokens;) {
        kernels[0]->pack(x + t * n_in, n_in, act + static_cast<size_t>(t) * act_stride);
        packed_tokens.fetch_add(1, std::memory_order_release);
      }
      while (packed_tokens.load(std::memory_order_acquire) < n_tokens) {
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      for (int64_t c; (c = next_chunk.fetch_add(1, std::memory_order_relaxed)) < first_chunk[n];) {
        int i = 0;
        while (c >= first_chunk[i + 1]) ++i;
        const int64_t r0 = (c - first_chunk[i]) * chunk_rows[i];
        kernels[i]->gemm(args[i], r0, std::min(args[i].y_stride, r0 + chunk_rows[i]));
      }
    }
  };
  GroupJob job;
  job.n = n;
  job.x = x;
  job.act = act;
  job.n_tokens = n_tokens;
  job.n_in = ws[0].n_in;
  job.act_stride = act_stride;
  job.first_chunk[0] = 0;
  for (int i = 0; i < n; ++i) {
    job.kernels[i] = select_kernel(ws[i].type);
    GemmArgs& a = job.args[i];
    a.w = static_cast<const uint8_t*>(ws[i].data);
    a.row_stride = ws[i].row_stride;
    a.n_in = ws[i].n_in;
    a.act = act;
    a.act_stride = act_stride;
    a.n_tokens = n_tokens;
    a.y = ys[i];
    a.y_stride = ws[i].n_out;
    job.chunk_rows[i] = chunk_rows_for(ws[i], pool.size());
    job.first_chunk[i + 1] = job.first_chunk[i] + (ws[i].n_out + job.chunk_rows[i] - 1) / job.chunk_rows[i];
  }
  pool.run([&job](int, int) { job.run(); });
}

std::string_view kernel_isa() {
  switch (static_cast<Isa>(active_isa().load(std::memory_order_relaxed))) {
    case Isa::kAvx512: return "avx512-vnni";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: break;
  }
  return "scalar";
}

bool force_kernel_isa(std::string_view isa) {
  auto want = parse_isa(isa);
  if (!want || static_cast<int>(*want) > static_cast<int>(best_isa())) return false;
  active_isa().store(static_cast<int>(*want), std::memory_order_relaxed);
  return true;
}

}  // namespace zs::engine
