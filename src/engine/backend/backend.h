#pragma once
// The seam between model code and the hardware. Model code (engine/model/) describes a
// forward pass as a sequence of these operations on activation buffers and never touches
// the arithmetic itself, so a CUDA backend can be added by implementing this interface
// (with device buffers from alloc()) without changing any architecture code.
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/status.h"
#include "engine/kernels/matmul.h"
#include "engine/model/model_config.h"

namespace zs::engine {

struct RopeParams {
  int n_head = 0;
  int head_dim = 0;
  int rope_dims = 0;
  float base = 10000.f;
  float freq_scale = 1.f;
  RopeMode mode = RopeMode::kNormal;
  const float* freq_factors = nullptr;  // rope_dims/2 divisors of the frequencies, or null
  float attn_factor = 1.f;              // rotated values are multiplied by this (LongRoPE)
  const int* sections = nullptr;        // kMrope: 4 section sizes (ModelConfig::rope_sections)
};

// Which build of the reference implementation the vision helpers reproduce (see Backend).
enum class RefBuild { k2025, k2026 };

// Causal attention of n_tokens queries over a paged f16 key/value cache. Cache row r holds
// one position's keys (kv_dim = n_head_kv * head_dim values); a sequence's position p lives
// in row block_table[p / block_size] * block_size + p % block_size. Query t belongs to the
// sequence whose table is block_tables[t], sits at positions[t] and sees positions 0..positions[t].
struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens][n_head * head_dim]
  int64_t n_tokens = 0;
  const int32_t* positions = nullptr;
  const int32_t* const* block_tables = nullptr;
  int block_size = 0;
  const uint16_t* k_cache = nullptr;
  const uint16_t* v_cache = nullptr;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 1.f;
  // Keys visible to a query at position p: p - window < q <= p; 0 = all earlier positions.
  int window = 0;
  // Per query, or null: it sees positions below visible_end[t] instead of up to positions[t]
  // (the rows of one image seeing each other); the window still hides keys before
  // positions[t] - window + 1.
  const int32_t* visible_end = nullptr;
  // Soft-capping: scores = softcap * tanh(scores / softcap) before the softmax; 0 = none.
  float softcap = 0.f;
  // The query is multiplied by `scale` before its f16 rounding instead of the scores after
  // (the reference scales Q first for gemma2/3).
  bool scale_q_first = false;
  float* out = nullptr;  // [n_tokens][n_head * head_dim]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual int threads() const = 0;

  // Activation memory the backend's ops can address (host memory for the CPU).
  virtual float* alloc(int64_t n_floats) = 0;
  virtual uint16_t* alloc_f16(int64_t n_values) = 0;

  // Sleeping: what an idle instance gives back. discard() drops the contents of `bytes` from
  // the start of a buffer from alloc()/alloc_f16() and returns its memory to the system where
  // it can (the buffer stays valid; its contents are unspecified afterwards). park() releases
  // the compute threads until the next operation needs them. Neither may run during an op.
  virtual void discard(void* buffer, int64_t bytes) {}
  virtual void park() {}

  // y[t] = W x[t] for each of n_tokens rows.
  virtual void matmul(const WeightView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // ys[i] = ws[i] x for several matrices sharing the input (Q/K/V, gate/up); a backend may
  // run them together.
  virtual void matmul_group(const WeightView* ws, float* const* ys, int n, const float* x, int64_t n_tokens) {
    for (int i = 0; i < n; ++i) matmul(ws[i], x, n_tokens, ys[i]);
  }
  // ys[i] = ws[i] xs[i] for matrices of one row length, each with its own input.
  virtual void matmul_multi(const WeightView* ws, float* const* ys, const float* const* xs, int n, int64_t n_tokens) {
    for (int i = 0; i < n; ++i) matmul(ws[i], xs[i], n_tokens, ys[i]);
  }
  // out[t] = row ids[t] of the table, dequantized; refuses ids outside the table.
  virtual core::Status get_rows(const WeightView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // out = x / sqrt(mean(x^2) + eps) * weight, per row of dim values.
  virtual void rms_norm(const float* x, const float* weight, int64_t n_tokens, int64_t dim, float eps, float* out) = 0;
  virtual void add_bias(float* y, const float* bias, int64_t n_tokens, int64_t dim) = 0;
  virtual void add(float* y, const float* x, int64_t n) = 0;             // y += x
  virtual void silu_mul(float* gate, const float* up, int64_t n) = 0;    // gate = silu(gate) * up
  virtual void mul(float* y, const float* x, int64_t n) = 0;             // y *= x
  virtual void scale(float* y, float s, int64_t n) = 0;                  // y *= s
  virtual void softcap(float* y, float cap, int64_t n) = 0;              // y = cap * tanh(y / cap)
  // Rotates each head of each row in place; rows are n_head * head_dim wide. positions holds
  // one value per row, or for RopeMode::kMrope four (time, height, width, extra).
  virtual void rope(float* x, int64_t n_tokens, const int32_t* positions, const RopeParams& p) = 0;
  // Writes token t's k and v (kv_dim wide) into cache row rows[t], as f16.
  virtual void store_kv(const float* k, const float* v, int64_t n_tokens, const int32_t* rows, int64_t kv_dim,
                        uint16_t* k_cache, uint16_t* v_cache) = 0;
  virtual void attention(const AttentionArgs& args) = 0;

  // Vision encoders (bidirectional transformers). RefBuild::k2026 reproduces the 2026
  // reference build bit for bit where its rounding differs (ref2026.h; the Gemma 3 and
  // SmolVLM projectors are held to it); k2025 is the arithmetic every other model matches.
  // out = (x - mean) / sqrt(var + eps) * weight + bias, per row of dim values.
  virtual void layer_norm(const float* x, const float* weight, const float* bias, int64_t n_tokens, int64_t dim,
                          float eps, float* out, RefBuild build = RefBuild::k2025) = 0;
  virtual void gelu(float* x, int64_t n, RefBuild build = RefBuild::k2025) = 0;  // tanh approximation
  virtual void gelu_quick(float* x, int64_t n) = 0;                              // x * sigmoid(1.702 x)
  // 2-D rotary positions of vision patches (Qwen2-VL): in each head of head_dim values, pair
  // (j, j + head_dim/2) turns by ys[t] * base^(-2j/(head_dim/2)) for j < head_dim/4 and by
  // xs[t] * base^(-2(j - head_dim/4)/(head_dim/2)) for the rest.
  virtual void rope_2d(float* x, int64_t n_tokens, const int32_t* ys, const int32_t* xs, int n_head, int head_dim,
                       float base) = 0;
  // Full (non-causal) attention over n_tokens rows of q, k, v, each n_head * head_dim wide.
  virtual void attention_full(const float* q, const float* k, const float* v, int64_t n_tokens, int n_head,
                              int head_dim, float scale, float* out, RefBuild build = RefBuild::k2025) = 0;
};

// The CPU backend with n_threads compute threads (0 = all cores this process may use).
std::unique_ptr<Backend> make_cpu_backend(int n_threads);
// Whether the CPU backend's attention takes consecutive queries of a sequence in blocks
// (cpu::attend_block, the default) or one by one (cpu::attend_group); both give the same bits.
// For benchmarks that compare the two in one run. Returns the previous setting; thread-safe.
bool set_cpu_attention_blocks(bool enabled);

}  // namespace zs::engine
