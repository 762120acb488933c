// The CPU implementation of Backend: matrix products come from engine/kernels, the
// element-wise operations are simple loops split across the thread pool.
#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu_attention.h"
#include "engine/backend/f16_table.h"
#include "engine/backend/ref2026.h"
#include "engine/backend/simd_exp.h"
#include "engine/kernels/matmul.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

// Below these sizes an operation is not worth waking another thread for (a wake-up and the
// wait for it cost about a microsecond): elements of an element-wise operation, and
// multiply-adds (keys x head dim x group) of a chunk of attention jobs. See docs/engine.md, "Attention
// and the thread pool".
constexpr int64_t kElementwiseGrain = 1024;
constexpr int64_t kAttentionGrainMacs = 16384;
// A prompt's queries see more keys the later they sit: chunks of them differ in cost, and
// claiming many evens the threads out.
constexpr int kAttentionChunksPerThread = 8;
// Queries of one sequence attended together (cpu::BlockAttention): at most this many, and
// fewer when their scores would pass this many values (about 512 KB, kept in L2).
constexpr int64_t kAttentionBlockTokens = 16;
constexpr int64_t kAttentionBlockScores = 128 * 1024;

std::atomic<bool>& blocks_enabled() {
  static std::atomic<bool> on{true};
  return on;
}

// --- Helpers of gelu() and attention_full().

// GELU (tanh approximation). Built once; immutable afterwards.
const float* gelu_f16_table() {
  static const std::vector<float> table = f16_function_table([](float v) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + 0.044715f * v * v)));
  });
  return table.data();
}

// Quick GELU x * sigmoid(1.702 x). Built once; immutable afterwards.
const float* gelu_quick_f16_table() {
  static const std::vector<float> table =
      f16_function_table([](float v) { return v * (1.0f / (1.0f + std::exp(-1.702f * v))); });
  return table.data();
}

// In place: row = softmax(row * scale), with the sum in double like the scalar reference.
void softmax_scaled_scalar(float* row, int64_t n, float scale) {
  float max_s = -INFINITY;
  for (int64_t j = 0; j < n; ++j) max_s = std::max(max_s, row[j] *= scale);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (row[j] = std::exp(row[j] - max_s));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void softmax_scaled_avx2(float* row, int64_t n, float scale) {
  const __m256 vscale = _mm256_set1_ps(scale);
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + j), vscale);
    _mm256_storeu_ps(row + j, v);
    vmax = _mm256_max_ps(vmax, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float max_s = *std::max_element(lanes, lanes + 8);
  for (int64_t i = j; i < n; ++i) max_s = std::max(max_s, row[i] *= scale);
  const double sum = cpu::exp_shifted_sum_avx2(row, n, max_s);
  const float inv = static_cast<float>(1.0 / sum);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), vinv));
  for (; j < n; ++j) row[j] *= inv;
}
#endif

#if defined(__x86_64__)
// y = cap * tanh(y / cap), with tanh(u) = sign(u) (1 - e) / (1 + e), e = exp(-2|u|) in (0, 1].
__attribute__((target("avx2,fma"))) void softcap_avx2(float* y, int64_t n, float cap) {
  const __m256 vcap = _mm256_set1_ps(cap), vinv = _mm256_set1_ps(-2.0f / cap), one = _mm256_set1_ps(1.f);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(y + i);
    const __m256 sign = _mm256_and_ps(v, sign_bit);
    const __m256 e = cpu::exp_nonpositive_avx2(_mm256_mul_ps(_mm256_andnot_ps(sign_bit, v), vinv));
    const __m256 t = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_or_ps(t, sign), vcap));
  }
  for (; i < n; ++i) y[i] = std::tanh(y[i] / cap) * cap;
}
#endif

void softmax_scaled(float* row, int64_t n, float scale) {
#if defined(__x86_64__)
  if (has_avx2_fma()) return softmax_scaled_avx2(row, n, scale);
#endif
  softmax_scaled_scalar(row, n, scale);
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int n_threads)
      : pool_(n_threads > 0 ? n_threads : core::ThreadPool::default_threads()) {}

  std::string_view name() const override { return "cpu"; }
  int threads() const override { return pool_.size(); }

  float* alloc(int64_t n_floats) override {
    return static_cast<float*>(zeroed(sizeof(float) * static_cast<size_t>(n_floats)));
  }

  uint16_t* alloc_f16(int64_t n_values) override {
    return static_cast<uint16_t*>(zeroed(sizeof(uint16_t) * static_cast<size_t>(n_values)));
  }

  // Whole pages inside the buffer go back to the kernel (they read as zeros when touched
  // again); large buffers are mmapped by calloc, so that is nearly all of them.
  void discard(void* buffer, int64_t bytes) override {
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(buffer) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<uintptr_t>(buffer) + static_cast<uintptr_t>(bytes)) & ~(page - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
  void park() override { pool_.park(); }

  void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y) override {
    engine::matmul(w, x, n_tokens, y, pool_);
  }

  void matmul_group(const WeightView* ws, float* const* ys, int n, const float* x, int64_t n_tokens) override {
    engine::matmul_group(ws, ys, n, x, n_tokens, pool_);
  }
  void matmul_multi(const WeightView* ws, float* const* ys, const float* const* xs, int n, int64_t n_tokens) override {
    engine::matmul_multi(ws, ys, xs, n, n_tokens, pool_);
  }

  core::Status get_rows(const WeightView& table, const int32_t* ids, int64_t n, float* out) override {
    for (int64_t t = 0; t < n; ++t) {
      if (ids[t] < 0 || ids[t] >= table.n_out)
        return core::Status::error("token id " + std::to_string(ids[t]) + " is outside the vocabulary of " +
                                   std::to_string(table.n_out));
      const auto* row = static_cast<const uint8_t*>(table.data) + static_cast<size_t>(ids[t]) * table.row_stride;
      ZS_RETURN_IF_ERROR(dequantize_row(table.type, row, out + t * table.n_in, table.n_in));
    }
    return core::Status::ok();
  }

  void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t dim, float eps, float* out) override {
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xr = x + t * dim;
      float* o = out + t * dim;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
      const float scale = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
      for (int64_t i = 0; i < dim; ++i) o[i] = xr[i] * scale * weight[i];
    }
  }

  void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t dim) override {
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t i = 0; i < dim; ++i) y[t * dim + i] += bias[i];
  }

  void add(float* y, const float* x, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  }

  void silu_mul(float* gate, const float* up, int64_t n) override {
    pool_.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
      }
    }, kElementwiseGrain);
  }

  void mul(float* y, const float* x, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
  }

  void scale(float* y, float s, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] *= s;
  }

  void softcap(float* y, float cap, int64_t n) override {
    // As the reference: tanh(y / cap) * cap (to within an ulp of tanh; it runs over every
    // logit of a 256k vocabulary each step, so the vector path matters).
    [[maybe_unused]] const bool simd = has_avx2_fma();
    const float inv = 1.0f / cap;
    pool_.parallel_for(n, [&](int64_t b, int64_t e) {
#if defined(__x86_64__)
      if (simd) return softcap_avx2(y + b, e - b, cap);
#endif
      for (int64_t i = b; i < e; ++i) y[i] = std::tanh(y[i] * inv) * cap;
    }, kElementwiseGrain);
  }

  void rope(float* x, int64_t n_tokens, const int32_t* positions, const RopeParams& p) override {
    const int half = p.rope_dims / 2;
    const bool mrope = p.mode == RopeMode::kMrope;
    const bool neox = p.mode == RopeMode::kNeox || mrope;
    // M-RoPE: which position component each rotary pair takes.
    std::vector<int> component(half, 0);
    if (mrope) {
      const int sum = p.sections[0] + p.sections[1] + p.sections[2] + p.sections[3];
      for (int i = 0; i < half; ++i) {
        int r = i % sum, s = 0;
        while (s < 3 && r >= p.sections[s]) r -= p.sections[s++];
        component[i] = s;
      }
    }
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int i = 0; i < half; ++i) {
        const int32_t position = mrope ? positions[t * 4 + component[i]] : positions[t];
        float theta = static_cast<float>(position) * p.freq_scale * std::pow(p.base, -2.0f * i / p.rope_dims);
        if (p.freq_factors) theta /= p.freq_factors[i];
        cos_t[i] = std::cos(theta);
        sin_t[i] = std::sin(theta);
      }
      for (int h = 0; h < p.n_head; ++h) {
        float* v = x + (t * p.n_head + h) * p.head_dim;
        for (int i = 0; i < half; ++i) {
          const int a = neox ? i : 2 * i;
          const int b = neox ? i + half : 2 * i + 1;
          const float x0 = v[a], x1 = v[b];
          v[a] = (x0 * cos_t[i] - x1 * sin_t[i]) * p.attn_factor;
          v[b] = (x0 * sin_t[i] + x1 * cos_t[i]) * p.attn_factor;
        }
      }
    }
  }

  void rope_2d(float* x, int64_t n_tokens, const int32_t* ys, const int32_t* xs, int n_head, int head_dim,
               float base) override {
    const int half = head_dim / 2, quarter = head_dim / 4;
    std::vector<float> freq(half);
    for (int j = 0; j < half; ++j)
      freq[j] = std::pow(base, -2.0f * static_cast<float>(j < quarter ? j : j - quarter) / static_cast<float>(half));
    pool_.parallel_for(n_tokens, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        for (int h = 0; h < n_head; ++h) {
          float* v = x + (t * n_head + h) * head_dim;
          for (int j = 0; j < half; ++j) {
            const float theta = static_cast<float>(j < quarter ? ys[t] : xs[t]) * freq[j];
            const float c = std::cos(theta), sn = std::sin(theta);
            const float x0 = v[j], x1 = v[j + half];
            v[j] = x0 * c - x1 * sn;
            v[j + half] = x0 * sn + x1 * c;
          }
        }
    });
  }

  void store_kv(const float* k, const float* v, int64_t n_tokens, const int32_t* rows, int64_t kv_dim,
                uint16_t* k_cache, uint16_t* v_cache) override {
    for (int64_t t = 0; t < n_tokens; ++t) {
      cpu::store_f16(k + t * kv_dim, k_cache + static_cast<int64_t>(rows[t]) * kv_dim, static_cast<int>(kv_dim));
      cpu::store_f16(v + t * kv_dim, v_cache + static_cast<int64_t>(rows[t]) * kv_dim, static_cast<int>(kv_dim));
    }
  }

  void attention(const AttentionArgs& a) override {
    const int64_t kv_dim = static_cast<int64_t>(a.n_head_kv) * a.head_dim;
    const int group = a.n_head / a.n_head_kv;
    auto visible_end = [&](int64_t t) -> int64_t { return a.visible_end ? a.visible_end[t] : a.positions[t] + 1; };
    auto visible_first = [&](int64_t t) -> int64_t {
      return a.window > 0 ? std::max<int64_t>(0, a.positions[t] + 1 - a.window) : 0;
    };
    int64_t keys = 1;
    for (int64_t t = 0; t < a.n_tokens; ++t) keys = std::max(keys, visible_end(t));
    // Blocks of consecutive queries of one sequence (the same block table) share every tile of
    // keys they read; a block's scores stay within about kAttentionBlockScores values.
    const int64_t max_block = blocks_enabled().load(std::memory_order_relaxed)
                                  ? std::clamp<int64_t>(kAttentionBlockScores / (group * keys), 2, kAttentionBlockTokens)
                                  : 1;
    std::vector<std::pair<int64_t, int64_t>> blocks;  // first token, token count
    for (int64_t t = 0; t < a.n_tokens;) {
      int64_t n = 1;
      while (t + n < a.n_tokens && n < max_block && a.block_tables[t + n] == a.block_tables[t]) ++n;
      blocks.emplace_back(t, n);
      t += n;
    }
    // One job per (block, key/value head): the group's query heads share every key read. Later
    // blocks see more keys; they come first, so that the last chunks claimed are the cheap ones.
    const int64_t jobs = static_cast<int64_t>(blocks.size()) * a.n_head_kv;
    const int64_t tokens_per_block = (a.n_tokens + static_cast<int64_t>(blocks.size()) - 1) / static_cast<int64_t>(blocks.size());
    // A job's work grows with the keys it sees: short contexts stay on the calling thread.
    const int64_t grain = std::max<int64_t>(1, kAttentionGrainMacs / (keys * a.head_dim * group * tokens_per_block));
    const float q_scale = a.scale_q_first ? a.scale : 1.f;
    pool_.parallel_for(jobs, [&](int64_t b, int64_t e) {
      thread_local std::vector<float> scratch, q16;
      thread_local std::vector<int64_t> firsts, ends;
      for (int64_t job = b; job < e; ++job) {
        const auto [t0, n] = blocks[blocks.size() - 1 - static_cast<size_t>(job / a.n_head_kv)];
        const int kvh = static_cast<int>(job % a.n_head_kv);
        // The reference rounds queries and probabilities to f16 before its f16 products.
        q16.resize(static_cast<size_t>(n * group * a.head_dim));
        firsts.resize(static_cast<size_t>(n));
        ends.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
          const float* q = a.q + ((t0 + i) * a.n_head + static_cast<int64_t>(kvh) * group) * a.head_dim;
          float* q_out = q16.data() + i * group * a.head_dim;
          for (int64_t j = 0; j < static_cast<int64_t>(group) * a.head_dim; ++j) q_out[j] = f16_to_f32(f32_to_f16(q[j] * q_scale));
          firsts[static_cast<size_t>(i)] = visible_first(t0 + i);
          ends[static_cast<size_t>(i)] = visible_end(t0 + i);
        }
        const int64_t head0 = t0 * a.n_head + static_cast<int64_t>(kvh) * group;  // the block's first output head
        cpu::BlockAttention ba;
        ba.q = q16.data();
        ba.n_tok = static_cast<int>(n);
        ba.n_q = group;
        ba.k = a.k_cache + static_cast<int64_t>(kvh) * a.head_dim;
        ba.v = a.v_cache + static_cast<int64_t>(kvh) * a.head_dim;
        ba.row_stride = kv_dim;
        ba.head_dim = a.head_dim;
        ba.table = a.block_tables[t0];
        ba.block_size = a.block_size;
        ba.first = firsts.data();
        ba.end = ends.data();
        ba.scale = a.scale_q_first ? 1.f : a.scale;
        ba.softcap = a.softcap;
        ba.out = a.out + head0 * a.head_dim;
        ba.out_stride = static_cast<int64_t>(a.n_head) * a.head_dim;
        scratch.resize(static_cast<size_t>(cpu::block_attention_scratch(ba)));
        ba.scratch = scratch.data();
        cpu::attend_block(ba, wide_attention_);
      }
    }, grain, a.n_tokens > 1 ? kAttentionChunksPerThread : 1);
  }

  void layer_norm(const float* x, const float* weight, const float* bias, int64_t n_tokens, int64_t dim, float eps,
                  float* out, RefBuild build) override {
    pool_.parallel_for(n_tokens, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        if (build == RefBuild::k2026) {
          ref2026::layer_norm_row(x + t * dim, weight, bias, dim, eps, out + t * dim);
          continue;
        }
        const float* xr = x + t * dim;
        float* o = out + t * dim;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; ++i) mean += xr[i];
        mean /= dim;
        for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        const float inv = static_cast<float>(1.0 / std::sqrt(var / dim + eps));
        for (int64_t i = 0; i < dim; ++i) {
          float v = static_cast<float>(xr[i] - mean) * inv;
          o[i] = v * (weight ? weight[i] : 1.f) + (bias ? bias[i] : 0.f);
        }
      }
    });
  }

  // The reference evaluates GELU and quick GELU through f16 lookup tables (input and output
  // rounded to f16); doing the same brings vision embeddings from ~1e-2 to ~1e-6 relative
  // agreement.
  void gelu(float* x, int64_t n, RefBuild build) override {
    if (build == RefBuild::k2026) {
      pool_.parallel_for(n, [&](int64_t b, int64_t e) { ref2026::gelu(x + b, e - b); }, kElementwiseGrain);
      return;
    }
    apply_f16_table(gelu_f16_table(), x, n);
  }
  void gelu_quick(float* x, int64_t n) override { apply_f16_table(gelu_quick_f16_table(), x, n); }

  // Per head h: S = Q_h K_h^T (K_h read in place as a strided f32 matrix), softmax, then
  // O_h = S V_h (V transposed once so that its rows are contiguous), both products through
  // the matmul kernels. Jobs are (head, block of queries) pairs taken from a shared counter,
  // each computed by one thread with single-threaded products: at least 2 jobs per thread,
  // and no thread waits for another between the two products of a head.
  void attention_full(const float* q, const float* k, const float* v, int64_t n_tokens, int n_head, int head_dim,
                      float scale, float* out, RefBuild build) override {
    const bool ref26 = build == RefBuild::k2026;
    // The 2026 reference sums scores of head dims below 16 outside its matrix kernel.
    const bool short_dot = ref26 && head_dim < 16;
    const int64_t T = n_tokens, hd = head_dim, width = static_cast<int64_t>(n_head) * head_dim;
    if (T <= 0) return;
    std::vector<float> vt(static_cast<size_t>(width * T));  // [width][T]: row h*hd+i is V_h's column i
    pool_.parallel_for(width, [&](int64_t b, int64_t e) {
      for (int64_t j0 = 0; j0 < T; j0 += 64) {  // 64 tokens at a time keeps the source rows in cache
        const int64_t j1 = std::min(T, j0 + 64);
        for (int64_t r = b; r < e; ++r)
          for (int64_t j = j0; j < j1; ++j) vt[r * T + j] = v[j * width + r];
      }
    });
    const int64_t blocks_per_head = std::max<int64_t>(1, (2 * pool_.size() + n_head - 1) / n_head);
    const int64_t q_block = (T + blocks_per_head - 1) / blocks_per_head;
    const int64_t n_jobs = static_cast<int64_t>(n_head) * ((T + q_block - 1) / q_block);
    std::atomic<int64_t> next{0};
    pool_.run([&](int, int) {
      core::ThreadPool single(1);  // runs on the calling thread, spawns nothing
      std::vector<float> qh(q_block * hd), s(q_block * T), oh(q_block * hd);
      for (int64_t job; (job = next.fetch_add(1, std::memory_order_relaxed)) < n_jobs;) {
        const int64_t per_head = (T + q_block - 1) / q_block;
        const int64_t h = job / per_head;
        const int64_t t0 = (job % per_head) * q_block, nq = std::min(T, t0 + q_block) - t0;
        for (int64_t t = 0; t < nq; ++t)
          std::copy_n(q + (t0 + t) * width + h * hd, hd, qh.data() + t * hd);
        const WeightView kh{GgmlType::kF32, k + h * hd, hd, T, static_cast<size_t>(width) * sizeof(float)};
        if (short_dot) {
          for (int64_t t = 0; t < nq; ++t)
            for (int64_t j = 0; j < T; ++j)
              s[t * T + j] = ref2026::dot_short(k + j * width + h * hd, qh.data() + t * hd, hd);
        } else {
          engine::matmul(kh, qh.data(), nq, s.data(), single);
        }
        for (int64_t t = 0; t < nq; ++t) {
          if (ref26)
            ref2026::softmax_row(s.data() + t * T, T, scale);
          else
            softmax_scaled(s.data() + t * T, T, scale);
        }
        const WeightView vth{GgmlType::kF32, vt.data() + h * hd * T, T, hd, static_cast<size_t>(T) * sizeof(float)};
        engine::matmul(vth, s.data(), nq, oh.data(), single);
        for (int64_t t = 0; t < nq; ++t)
          std::copy_n(oh.data() + t * hd, hd, out + (t0 + t) * width + h * hd);
      }
    });
  }

 private:
  void apply_f16_table(const float* table, float* x, int64_t n) {
    pool_.parallel_for(n, [&](int64_t b, int64_t e) { engine::apply_f16_table(table, x + b, e - b); },
                       kElementwiseGrain);
  }

  core::ThreadPool pool_;
  // Blocks of queries take the AVX-512 build of their kernel where the matrix products take
  // AVX-512 (so ZS_ISA=avx2 measures an AVX2 machine throughout).
  const bool wide_attention_ = kernel_isa() == "avx512-vnni";
  // calloc: large blocks come straight from the kernel as untouched zero pages, so a big KV
  // pool costs nothing until used (zero-filling it eagerly added ~100 ms to cold starts).
  void* zeroed(size_t bytes) {
    buffers_.emplace_back(std::calloc(std::max<size_t>(bytes, 1), 1), &std::free);
    if (!buffers_.back()) throw std::bad_alloc();
    return buffers_.back().get();
  }
  std::vector<std::unique_ptr<void, void (*)(void*)>> buffers_;
};

}  // namespace

bool set_cpu_attention_blocks(bool enabled) { return blocks_enabled().exchange(enabled, std::memory_order_relaxed); }

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return std::make_unique<CpuBackend>(n_threads); }

}  // namespace zs::engine
