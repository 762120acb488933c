// Matmul throughput of the quantized kernels against this machine's memory bandwidth.
//
//   bench_matmul [--threads N] [--n-in N] [--n-out N] [--quick] [--type Q4_K]
//
// Decode (one token, GEMV) is memory-bound: it is reported in GB/s of weights read and as a
// fraction of the measured read bandwidth. To measure memory rather than cache, the GEMV
// cycles through copies of the matrix spanning >= 1 GiB. Prefill (128 tokens) is
// compute-bound and reported in GFLOP/s (2 * n_in * n_out * tokens / time). Each line also
// gives the speed-up of the best instruction set over the scalar kernels, measured in the
// same run.
//
// For rows long enough that the prefetch reach is measured at run time (matmul.h,
// FarPrefetch), a "reach" line compares the two reaches forced, from memory, in alternated
// rounds (median of per-round ratios), and the gemv line is taken after the run-time
// measurement has chosen (its choice is printed).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "core/thread_pool.h"
#include "engine/kernels/gemm_kernel.h"
#include "engine/kernels/matmul.h"
#include "engine/quant/quantize.h"

namespace {

using zs::core::ThreadPool;
using zs::engine::GgmlType;
using Clock = std::chrono::steady_clock;

// The 1-minute load average: the numbers mean little when other work shares the cores.
double load_average() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Sums n bytes (a multiple of 128) with wide loads so that the loop is never the limit.
// With prefetch_ahead > 0, also prefetches that many bytes ahead: the kernels prefetch,
// so the baseline may too.
__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t n, size_t prefetch_ahead) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    if (prefetch_ahead) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i + prefetch_ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + prefetch_ahead + 64), _MM_HINT_T0);
    }
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return static_cast<uint64_t>(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) +
                               _mm256_extract_epi64(s, 3));
}

uint64_t read_scalar(const uint8_t* p, size_t n) {
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t s[8] = {};
  for (size_t i = 0; i + 8 <= n / 8; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += q[i + k];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

// Best-of-`reps` streaming read of a 1 GiB buffer split across the pool's threads.
double measure_read_bandwidth(ThreadPool& pool, std::vector<uint64_t>& buf, int reps) {
  const size_t bytes = size_t{1} << 30;
  const size_t n = bytes / 8;
  if (buf.size() != n) {
    buf.resize(n);
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i);
    });
  }
  const bool avx2 = __builtin_cpu_supports("avx2");
  double best = 0;
  volatile uint64_t sink = 0;
  // Plain streaming and streaming with software prefetch at a few distances; the best counts.
  for (size_t ahead : {size_t{0}, size_t{1024}, size_t{4096}}) {
    for (int rep = 0; rep < reps; ++rep) {
      const auto t0 = Clock::now();
      std::vector<uint64_t> sums(static_cast<size_t>(pool.size()), 0);
      pool.run([&](int t, int nt) {
        const size_t chunk = (bytes / nt) & ~size_t{127};
        const uint8_t* p = reinterpret_cast<const uint8_t*>(buf.data()) + chunk * t;
        sums[t] = avx2 ? read_avx2(p, chunk, ahead) : read_scalar(p, chunk);
      });
      const double dt = seconds_since(t0);
      for (auto v : sums) sink = sink + v;
      best = std::max(best, bytes / dt / 1e9);
    }
  }
  return best;
}

struct Weights {
  std::vector<uint8_t> data;  // `copies` consecutive copies of the matrix
  size_t matrix_bytes = 0;
  int copies = 0;
};

Weights make_weights(GgmlType type, int64_t n_in, int64_t n_out, size_t min_total) {
  Weights w;
  const size_t row = zs::engine::ggml_row_size(type, n_in);
  w.matrix_bytes = row * n_out;
  w.copies = static_cast<int>(std::max<size_t>(1, (min_total + w.matrix_bytes - 1) / w.matrix_bytes));
  w.data.resize(w.matrix_bytes * w.copies);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(n_in));
  for (int64_t r = 0; r < n_out; ++r) {
    for (auto& v : f) v = dist(rng);
    if (!zs::engine::quantize_row(type, f.data(), w.data.data() + r * row, n_in).is_ok()) std::abort();
  }
  for (int c = 1; c < w.copies; ++c) std::memcpy(w.data.data() + c * w.matrix_bytes, w.data.data(), w.matrix_bytes);
  return w;
}

// Seconds per matmul, best of `reps` timed rounds of `iters` calls cycling through the copies.
double time_matmul(const Weights& w, GgmlType type, int64_t n_in, int64_t n_out, const std::vector<float>& x,
                   int64_t n_tokens, std::vector<float>& y, ThreadPool& pool, int iters, int reps, bool cycle) {
  auto view = [&](int i) {
    const int c = cycle ? i % w.copies : 0;
    return zs::engine::WeightView{type, w.data.data() + c * w.matrix_bytes, n_in, n_out,
                                  zs::engine::ggml_row_size(type, n_in)};
  };
  zs::engine::matmul(view(0), x.data(), n_tokens, y.data(), pool);  // warm-up, scratch allocation
  double best = 1e30;
  int next = 1;
  for (int rep = 0; rep < reps; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) zs::engine::matmul(view(next++), x.data(), n_tokens, y.data(), pool);
    best = std::min(best, seconds_since(t0) / iters);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t n_in = 2048, n_out = 8192;
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--n-in" && i + 1 < argc)
      n_in = std::atoll(argv[++i]);
    else if (a == "--n-out" && i + 1 < argc)
      n_out = std::atoll(argv[++i]);
    else if (a == "--quick")
      quick = true;
    else if (a == "--type" && i + 1 < argc)
      only = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_matmul [--threads N] [--n-in N] [--n-out N] [--quick] [--type Q4_K]\n");
      return 2;
    }
  }
  ThreadPool pool(threads);
  const std::string best_isa(zs::engine::kernel_isa());
  std::printf("threads: %d, kernels: %s, matrix: n_in=%lld x n_out=%lld, load average %.2f\n", threads,
              best_isa.c_str(), static_cast<long long>(n_in), static_cast<long long>(n_out), load_average());
  // Re-measured before every type (other work on the machine makes single readings low);
  // fractions use the best reading so far.
  std::vector<uint64_t> bw_buf;
  double bw = measure_read_bandwidth(pool, bw_buf, 5);
  std::printf("memory read bandwidth: %.1f GB/s (1 GiB streaming read, with and without prefetch, best of 15)\n", bw);

  const int64_t prefill_tokens = 128;
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_in * prefill_tokens));
  for (auto& v : x) v = dist(rng);
  std::vector<float> y(static_cast<size_t>(n_out * prefill_tokens));

  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kF16}) {
    const std::string name(zs::engine::ggml_type_name(type));
    if (!only.empty() && only != name) continue;
    const Weights w = make_weights(type, n_in, n_out, size_t{1} << 30);
    const double mb = w.matrix_bytes / 1e6;
    const double flops = 2.0 * n_in * n_out * prefill_tokens;

    bw = std::max(bw, measure_read_bandwidth(pool, bw_buf, 2));
    zs::engine::force_kernel_isa(best_isa);
    const bool long_rows = zs::engine::kernels::is_long_tile(zs::engine::ggml_row_size(type, n_in));
    std::string reach_line;
    if (long_rows) {
      const int rounds = quick ? 5 : 9;
      std::vector<double> far_s, near_s, ratio;
      for (int r = 0; r < rounds; ++r) {
        double t[2];
        for (int k = 0; k < 2; ++k) {
          const bool far = (k + r) % 2 == 0;
          zs::engine::set_far_prefetch(far ? zs::engine::FarPrefetch::kOn : zs::engine::FarPrefetch::kOff);
          t[far ? 1 : 0] = time_matmul(w, type, n_in, n_out, x, 1, y, pool, quick ? 30 : 100, 1, true);
        }
        near_s.push_back(t[0]);
        far_s.push_back(t[1]);
        ratio.push_back(t[0] / t[1]);
      }
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%-5s reach   far %.1f GB/s, near %.1f GB/s: far/near x%.2f (median of %d alternated rounds, %.2f-%.2f)\n",
                    name.c_str(), w.matrix_bytes / zs::bench::median(far_s) / 1e9, w.matrix_bytes / zs::bench::median(near_s) / 1e9,
                    zs::bench::median(ratio), rounds, *std::min_element(ratio.begin(), ratio.end()),
                    *std::max_element(ratio.begin(), ratio.end()));
      reach_line = buf;
      // Let the run-time measurement choose, as decoding would, before the gemv line.
      zs::engine::set_far_prefetch(zs::engine::FarPrefetch::kAuto);
      (void)time_matmul(w, type, n_in, n_out, x, 1, y, pool, 200, 1, true);
    }
    const double gemv = time_matmul(w, type, n_in, n_out, x, 1, y, pool, quick ? 50 : 200, quick ? 3 : 10, true);
    const double gemv_hot = time_matmul(w, type, n_in, n_out, x, 1, y, pool, quick ? 50 : 200, quick ? 3 : 10, false);
    const double prefill =
        time_matmul(w, type, n_in, n_out, x, prefill_tokens, y, pool, quick ? 2 : 5, quick ? 3 : 6, false);
    // Types whose prompts take the 16-row panels: against their narrow kernel, alternated.
    std::string panels_line;
    if (type == GgmlType::kQ8_0 || type == GgmlType::kQ4_K || type == GgmlType::kQ6_K) {
      std::vector<double> ratio;
      for (int r = 0; r < (quick ? 5 : 9); ++r) {
        double t[2];
        for (int k = 0; k < 2; ++k) {
          const bool wide = (k + r) % 2 == 0;
          zs::engine::set_wide_kernels(wide);
          t[wide ? 1 : 0] = time_matmul(w, type, n_in, n_out, x, prefill_tokens, y, pool, 2, 1, false);
        }
        ratio.push_back(t[0] / t[1]);
      }
      zs::engine::set_wide_kernels(true);
      char buf[160];
      std::snprintf(buf, sizeof buf, "%-5s panels  prefill panels / narrow kernel x%.2f (median of %zu alternated rounds, %.2f-%.2f)\n",
                    name.c_str(), zs::bench::median(ratio), ratio.size(), *std::min_element(ratio.begin(), ratio.end()),
                    *std::max_element(ratio.begin(), ratio.end()));
      panels_line = buf;
    }

    zs::engine::force_kernel_isa("scalar");
    const double gemv_s = time_matmul(w, type, n_in, n_out, x, 1, y, pool, quick ? 3 : 10, 2, true);
    const double prefill_s = time_matmul(w, type, n_in, n_out, x, prefill_tokens, y, pool, 1, 1, false);
    zs::engine::force_kernel_isa(best_isa);

    const double gbs = w.matrix_bytes / gemv / 1e9;
    std::printf(
        "%-5s gemv    %-11s %7.3f ms  %6.1f GB/s  = %.2f of bandwidth  (%.1f MB; cache-hot %.1f GB/s) | scalar %8.3f "
        "ms | x%.1f\n",
        name.c_str(), best_isa.c_str(), gemv * 1e3, gbs, gbs / bw, mb, w.matrix_bytes / gemv_hot / 1e9, gemv_s * 1e3,
        gemv_s / gemv);
    if (long_rows) std::printf("%s      prefetch reach in use: %s\n", reach_line.c_str(), zs::engine::far_prefetch_report().c_str());
    std::printf("%-5s prefill %-11s %7.2f ms  %6.1f GFLOP/s (%lld tokens) | scalar %8.1f ms %6.1f GFLOP/s | x%.1f\n",
                name.c_str(), best_isa.c_str(), prefill * 1e3, flops / prefill / 1e9,
                static_cast<long long>(prefill_tokens), prefill_s * 1e3, flops / prefill_s / 1e9, prefill_s / prefill);
    std::printf("%s", panels_line.c_str());
    std::fflush(stdout);
  }
  std::printf("best memory read bandwidth seen: %.1f GB/s; load average at the end: %.2f\n", bw, load_average());
  return 0;
}
