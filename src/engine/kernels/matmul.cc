#include "engine/kernels/matmul.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "core/log.h"
#include "core/mutex.h"
#include "engine/kernels/gemm_kernel.h"
#include "engine/kernels/prefetch_tuner.h"

namespace zs::engine {
namespace {

using kernels::GemmArgs;
using kernels::GemmKernel;
using kernels::Isa;
using kernels::PrefetchReach;
using kernels::PrefetchTuner;

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

std::atomic<bool>& wide_enabled() {
  static std::atomic<bool> on{true};
  return on;
}

// The kernel for a product with n_tokens tokens (prompts may get a wide variant).
const GemmKernel* select_kernel(GgmlType type, int64_t n_tokens) {
  const GemmKernel* k = select_kernel(type);
  if (k->wide != nullptr && n_tokens >= k->wide_min_tokens && wide_enabled().load(std::memory_order_relaxed))
    return k->wide;
  return k;
}

// ============================================================== Prefetch reach

std::optional<FarPrefetch> parse_far_prefetch(std::string_view s) {
  if (s == "auto") return FarPrefetch::kAuto;
  if (s == "on") return FarPrefetch::kOn;
  if (s == "off") return FarPrefetch::kOff;
  return std::nullopt;
}

// How far the decode kernels prefetch long rows. Process-wide, like the instruction set: it
// describes the machine's memory system. After the tuner has decided (a few tokens into the
// first decode), a call costs one atomic load; until then, two short critical sections.
class ReachControl {
 public:
  ReachControl() {
    if (const char* env = std::getenv("ZS_FAR_PREFETCH")) {
      if (auto m = parse_far_prefetch(env)) {
        set_mode(*m);
      } else {
        core::log_warn("matmul", std::string("ZS_FAR_PREFETCH=") + env + " is not auto, on or off: measuring (auto)");
      }
    }
  }

  FarPrefetch set_mode(FarPrefetch mode) EXCLUDES(mu_) {
    core::MutexLock lock(mu_);
    const FarPrefetch old = mode_;
    mode_ = mode;
    tuner_ = PrefetchTuner();  // a new "auto" measures anew
    fixed_.store(mode == FarPrefetch::kOn ? 1 : mode == FarPrefetch::kOff ? 0 : -1, std::memory_order_relaxed);
    return old;
  }

  // The reach for a call, and whether the call is to be timed and reported to end().
  PrefetchReach begin(int64_t bytes, bool& timed) EXCLUDES(mu_) {
    const int fixed = fixed_.load(std::memory_order_relaxed);
    timed = fixed < 0;
    if (!timed) return fixed ? PrefetchReach::kFar : PrefetchReach::kNear;
    core::MutexLock lock(mu_);
    return tuner_.next(bytes);
  }

  void end(PrefetchReach reach, int64_t bytes, int64_t ns) EXCLUDES(mu_) {
    core::MutexLock lock(mu_);
    if (mode_ != FarPrefetch::kAuto || tuner_.decided()) return;  // forced meanwhile
    tuner_.record(reach, bytes, ns);
    if (!tuner_.decided()) return;
    fixed_.store(tuner_.choice() == PrefetchReach::kFar ? 1 : 0, std::memory_order_relaxed);
    const std::string line = "prefetch reach " + report_locked();
    lock.unlock();  // no I/O under the lock
    core::log_info("matmul", line);
  }

  std::string report() EXCLUDES(mu_) {
    core::MutexLock lock(mu_);
    return report_locked();
  }

 private:
  std::string report_locked() REQUIRES(mu_) {
    if (mode_ == FarPrefetch::kOn) return "far (forced)";
    if (mode_ == FarPrefetch::kOff) return "near (forced)";
    if (!tuner_.decided()) return "auto, measuring";
    char buf[192];
    std::snprintf(buf, sizeof buf, "auto: %s (far/near x%.2f; far %.1f GB/s, near %.1f GB/s, medians of %d decode products each)",
                  tuner_.choice() == PrefetchReach::kFar ? "far" : "near", tuner_.far_gain(),
                  tuner_.median_gbps(PrefetchReach::kFar), tuner_.median_gbps(PrefetchReach::kNear),
                  tuner_.recorded(PrefetchReach::kFar));
    return buf;
  }

  core::Mutex mu_;
  FarPrefetch mode_ GUARDED_BY(mu_) = FarPrefetch::kAuto;
  PrefetchTuner tuner_ GUARDED_BY(mu_);
  std::atomic<int> fixed_{-1};  // -1 while measuring, else 1 = far, 0 = near
};

ReachControl& reach_control() {
  static ReachControl control;
  return control;
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

constexpr int kMaxGroup = 16;

// One dispatch for up to kMaxGroup matrices applied to the same activations: each distinct
// activation format is packed once (by all threads together when there are fewer tokens
// than threads), then row chunks of all matrices are claimed from one counter, so the
// threads stream the matrices back to back and no thread waits between them.
//
// Chunks are claimed from shared counters rather than split evenly, so a thread that runs
// slower (a core shared with other work) does less; they shrink as the work runs out
// (guided scheduling: half of what remains per thread, between kMinChunkBytes and
// kMaxChunkBytes of weights), so that the threads finish together instead of one
// waiting for the other's last large chunk.
class GroupJob {
 public:
  static constexpr int64_t kMaxChunkBytes = 256 * 1024;  // long enough to stream
  static constexpr int64_t kMinChunkBytes = 32 * 1024;

  // ws[i] must be valid and all have the same n_in.
  // xs[i]: the activations of matrix i (packed once per distinct input and format).
  GroupJob(const WeightView* ws, float* const* ys, int n, const float* const* xs, int64_t n_tokens, int threads)
      : n_(n), n_tokens_(n_tokens), n_in_(ws[0].n_in), threads_(threads) {
    size_t act_total = 0;
    for (int i = 0; i < n; ++i) {
      const GemmKernel* k = select_kernel(ws[i].type, n_tokens);
      int f = 0;
      while (f < n_formats_ && !(formats_[f].k->pack == k->pack && formats_[f].k->act_bytes == k->act_bytes &&
                                 formats_[f].x == xs[i]))
        ++f;
      if (f == n_formats_) {
        Format& fm = formats_[n_formats_++];
        fm.k = k;
        fm.x = xs[i];
        fm.act_stride = k->act_bytes(n_in_);
        fm.offset = act_total;
        act_total += fm.act_stride * static_cast<size_t>(n_tokens);
      }
      Part& p = parts_[i];
      p.k = k;
      p.format = f;
      p.row_bytes = static_cast<int64_t>(std::max<size_t>(1, ggml_row_size(ws[i].type, n_in_)));
      p.first = i == 0 ? 0 : parts_[i - 1].first + ws[i - 1].n_out;
      GemmArgs& a = p.args;
      a.w = static_cast<const uint8_t*>(ws[i].data);
      a.row_stride = ws[i].row_stride;
      a.n_in = n_in_;
      a.act_stride = formats_[f].act_stride;
      a.n_tokens = n_tokens;
      a.y = ys[i];
      a.y_stride = ws[i].n_out;
    }
    total_rows_ = parts_[n - 1].first + ws[n - 1].n_out;
    bytes_after_[n - 1] = 0;
    for (int i = n - 2; i >= 0; --i) bytes_after_[i] = bytes_after_[i + 1] + ws[i + 1].n_out * parts_[i + 1].row_bytes;
    act_bytes_ = act_total;
    // Fewer tokens than threads: split each token's packing into pieces of whole units.
    const int unit = formats_[0].k->pack_unit;
    bool split = n_tokens < threads && unit > 0 && n_in_ % unit == 0 && n_in_ / unit >= threads;
    for (int f = 1; f < n_formats_; ++f) split = split && formats_[f].k->pack_unit == unit;
    if (split) {
      pieces_ = threads;
      units_per_token_ = n_in_ / unit;
    }
  }

  size_t act_bytes() const { return act_bytes_; }
  // Weight bytes the product reads.
  int64_t weight_bytes() const { return bytes_after_[0] + parts_[0].args.y_stride * parts_[0].row_bytes; }
  // Whether the prefetch reach changes anything: a decode product (kernels prefetch only for
  // at most 2 tokens) with a long row tile in a kernel that reads the setting.
  bool has_long_decode_rows() const {
    if (n_tokens_ > 2) return false;
    for (int i = 0; i < n_; ++i) {
      const Part& p = parts_[i];
      if (p.k->honours_far_prefetch && kernels::is_long_tile(p.args.row_stride))
        return true;
    }
    return false;
  }
  void set_far_prefetch(bool far) {
    for (int i = 0; i < n_; ++i) parts_[i].args.far_prefetch = far;
  }

  void set_act(uint8_t* act) {
    act_ = act;
    for (int i = 0; i < n_; ++i) parts_[i].args.act = act + formats_[parts_[i].format].offset;
  }

  void run() {
    const int64_t n_pack = static_cast<int64_t>(n_formats_) * n_tokens_ * pieces_;
    for (int64_t j; (j = next_pack_.fetch_add(1, std::memory_order_relaxed)) < n_pack;) {
      const Format& fm = formats_[j / (n_tokens_ * pieces_)];
      const int64_t t = (j / pieces_) % n_tokens_, piece = j % pieces_;
      const float* x = fm.x + t * n_in_;
      uint8_t* dst = act_ + fm.offset + static_cast<size_t>(t) * fm.act_stride;
      if (pieces_ == 1) {
        fm.k->pack(x, n_in_, dst);
      } else {
        // Units are packed independently (pack_unit's contract), so a piece is a shorter row.
        const int64_t unit = fm.k->pack_unit;
        const int64_t u0 = units_per_token_ * piece / pieces_, u1 = units_per_token_ * (piece + 1) / pieces_;
        fm.k->pack(x + u0 * unit, (u1 - u0) * unit, dst + static_cast<size_t>(u0) * fm.k->act_bytes(unit));
      }
      packed_.fetch_add(1, std::memory_order_release);
    }
    while (packed_.load(std::memory_order_acquire) < n_pack) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    int i;
    int64_t r0, r1;
    while (claim(i, r0, r1)) parts_[i].k->gemm(parts_[i].args, r0, r1);
  }

 private:
  struct Format {
    const GemmKernel* k;
    const float* x;  // the activations this format packs
    size_t act_stride;
    size_t offset;  // of this format's activations in the packed buffer
  };
  struct Part {
    const GemmKernel* k;
    int format;
    GemmArgs args;
    int64_t first;  // global index of row 0
    int64_t row_bytes;
  };

  // Next chunk of rows [r0, r1) of matrix i; false when all are taken.
  bool claim(int& i, int64_t& r0, int64_t& r1) {
    int64_t pos = next_row_.load(std::memory_order_relaxed);
    for (;;) {
      if (pos >= total_rows_) return false;
      i = 0;
      while (i + 1 < n_ && pos >= parts_[i + 1].first) ++i;
      const Part& p = parts_[i];
      const int64_t end = p.first + p.args.y_stride;
      const int64_t remaining = bytes_after_[i] + (end - pos) * p.row_bytes;
      const int64_t bytes =
          std::clamp<int64_t>(remaining / (2 * static_cast<int64_t>(threads_)), kMinChunkBytes, kMaxChunkBytes);
      const int64_t align = p.k->row_align;
      const int64_t rows = std::max<int64_t>(align, (bytes / p.row_bytes + align - 1) / align * align);
      const int64_t next = std::min(end, pos + rows);
      if (next_row_.compare_exchange_weak(pos, next, std::memory_order_relaxed)) {
        r0 = pos - p.first;
        r1 = next - p.first;
        return true;
      }
    }
  }

  Part parts_[kMaxGroup];
  Format formats_[kMaxGroup];
  int64_t bytes_after_[kMaxGroup];  // weight bytes of the matrices after matrix i
  int n_;
  int n_formats_ = 0;
  int64_t n_tokens_;
  int64_t n_in_;
  int threads_;
  int64_t total_rows_ = 0;
  size_t act_bytes_ = 0;
  int64_t pieces_ = 1;
  int64_t units_per_token_ = 1;
  uint8_t* act_ = nullptr;
  std::atomic<int64_t> next_pack_{0};
  std::atomic<int64_t> packed_{0};
  std::atomic<int64_t> next_row_{0};
};

thread_local Scratch t_scratch;

void run_group(const WeightView* ws, float* const* ys, int n, const float* const* xs, int64_t n_tokens,
               core::ThreadPool& pool) {
  GroupJob job(ws, ys, n, xs, n_tokens, pool.size());
  job.set_act(t_scratch.get(job.act_bytes()));
  // Everything the threads need is behind one pointer: a lambda capturing only that fits
  // std::function's inline storage, so dispatching allocates nothing.
  if (!job.has_long_decode_rows()) {
    pool.run_shared([&job](int, int) { job.run(); });
    return;
  }
  bool timed = false;
  const int64_t bytes = job.weight_bytes();
  const PrefetchReach reach = reach_control().begin(bytes, timed);
  job.set_far_prefetch(reach == PrefetchReach::kFar);
  const auto start = std::chrono::steady_clock::now();
  pool.run_shared([&job](int, int) { job.run(); });
  if (timed) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    reach_control().end(reach, bytes, ns);
  }
}

}  // namespace

void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y, core::ThreadPool& pool) {
  if (n_tokens <= 0) return;
  if (!validate_weight(w).is_ok()) {
    std::fill(y, y + n_tokens * std::max<int64_t>(w.n_out, 0), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  run_group(&w, &y, 1, &x, n_tokens, pool);
}

void matmul_group(const WeightView* ws, float* const* ys, int n, const float* x, int64_t n_tokens,
                  core::ThreadPool& pool) {
  const float* xs[kMaxGroup];
  for (int i = 0; i < kMaxGroup; ++i) xs[i] = x;
  for (int first = 0; first < n; first += kMaxGroup)
    matmul_multi(ws + first, ys + first, xs, std::min(kMaxGroup, n - first), n_tokens, pool);
}

void matmul_multi(const WeightView* ws, float* const* ys, const float* const* xs, int n, int64_t n_tokens,
                  core::ThreadPool& pool) {
  if (n_tokens <= 0 || n <= 0) return;
  if (n > kMaxGroup) {
    matmul_multi(ws, ys, xs, kMaxGroup, n_tokens, pool);
    matmul_multi(ws + kMaxGroup, ys + kMaxGroup, xs + kMaxGroup, n - kMaxGroup, n_tokens, pool);
    return;
  }
  // Matrices that cannot join (invalid ones, which matmul fills with NaN, or other row
  // lengths) go on their own; the rest share one dispatch, each activation format packed once
  // (e.g. a Q6_K attn_v among Q4_K in a Q4_K_M file).
  WeightView same[kMaxGroup];
  float* same_y[kMaxGroup];
  const float* same_x[kMaxGroup];
  int n_same = 0;
  for (int i = 0; i < n; ++i) {
    if (validate_weight(ws[i]).is_ok() && (n_same == 0 || ws[i].n_in == same[0].n_in)) {
      same[n_same] = ws[i];
      same_x[n_same] = xs[i];
      same_y[n_same++] = ys[i];
    } else {
      matmul(ws[i], xs[i], n_tokens, ys[i], pool);
    }
  }
  if (n_same > 0) run_group(same, same_y, n_same, same_x, n_tokens, pool);
}

std::string_view kernel_isa() {
  switch (static_cast<Isa>(active_isa().load(std::memory_order_relaxed))) {
    case Isa::kAvx512: return "avx512-vnni";
    case Isa::kAvx2: return "avx2";
    case Isa::kScalar: break;
  }
  return "scalar";
}

bool set_wide_kernels(bool enabled) { return wide_enabled().exchange(enabled, std::memory_order_relaxed); }

FarPrefetch set_far_prefetch(FarPrefetch mode) { return reach_control().set_mode(mode); }

std::string far_prefetch_report() { return reach_control().report(); }

bool force_kernel_isa(std::string_view isa) {
  auto want = parse_isa(isa);
  if (!want || static_cast<int>(*want) > static_cast<int>(best_isa())) return false;
  active_isa().store(static_cast<int>(*want), std::memory_order_relaxed);
  return true;
}

}  // namespace zs::engine

namespace zs::engine::kernels {

uint8_t* thread_panel_buffer(size_t bytes) {
  struct Buffer {
    uint8_t* data = nullptr;
    size_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (bytes > buf.capacity) {
    std::free(buf.data);
    buf.capacity = round_up_64(bytes);
    buf.data = static_cast<uint8_t*>(std::aligned_alloc(64, buf.capacity));
  }
  return buf.data;
}

}  // namespace zs::engine::kernels
