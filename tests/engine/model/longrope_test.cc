// Phi-3's LongRoPE against the formula of ../shared/golden/families/README.md, on a generated
// file (no public reference line exercises it): the long factors apply when the instance's
// context, padded to a multiple of 32, exceeds original_context_length, otherwise the short
// ones, whatever the positions; pair i's angle is pos * base^(-2i/d) / factor[i]; every
// rotated value is multiplied by attn_factor. A plain scalar forward pass written here from
// those notes is the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/session.h"
#include "engine/quant/quantize.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

constexpr int kEmbd = 32, kHeads = 2, kKvHeads = 1, kHd = 16, kFf = 32, kVocab = 64, kLayers = 2;
constexpr int kOrigCtx = 64, kTrainCtx = 512;
const std::vector<float> kLong = {1.f, 1.5f, 2.f, 3.f, 4.f, 6.f, 8.f, 12.f};
const std::vector<float> kShort = {1.f, 1.f, 1.1f, 1.2f, 1.3f, 1.5f, 1.8f, 2.f};

struct Weights {
  std::vector<float> embd, out_norm, output;
  std::vector<float> attn_norm[kLayers], qkv[kLayers], wo[kLayers], ffn_norm[kLayers], up[kLayers], down[kLayers];
};

std::vector<float> randv(std::mt19937& rng, size_t n, float mean, float scale) {
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

float attn_factor() { return std::sqrt(1.f + std::log(float(kTrainCtx) / kOrigCtx) / std::log(float(kOrigCtx))); }

Weights write_model(const std::string& path) {
  std::mt19937 rng(7);
  Weights w;
  w.embd = randv(rng, kEmbd * kVocab, 0, 1);
  w.out_norm = randv(rng, kEmbd, 1, 0.1f);
  w.output = randv(rng, kEmbd * kVocab, 0, 0.3f);
  GgufWriter g;
  g.set_string("general.architecture", "phi3");
  g.set_u32("phi3.context_length", kTrainCtx);
  g.set_u32("phi3.rope.scaling.original_context_length", kOrigCtx);
  g.set_f32("phi3.rope.scaling.attn_factor", attn_factor());
  g.set_u32("phi3.embedding_length", kEmbd);
  g.set_u32("phi3.feed_forward_length", kFf);
  g.set_u32("phi3.block_count", kLayers);
  g.set_u32("phi3.attention.head_count", kHeads);
  g.set_u32("phi3.attention.head_count_kv", kKvHeads);
  g.set_f32("phi3.attention.layer_norm_rms_epsilon", 1e-5f);
  g.set_u32("phi3.rope.dimension_count", kHd);
  g.set_f32("phi3.rope.freq_base", 10000.f);
  g.set_u32("phi3.attention.sliding_window", 0);
  g.add_tensor_bytes("token_embd.weight", GgmlType::kF32, {kEmbd, kVocab}, bytes_of(w.embd));
  g.add_tensor_bytes("output_norm.weight", GgmlType::kF32, {kEmbd}, bytes_of(w.out_norm));
  g.add_tensor_bytes("output.weight", GgmlType::kF32, {kEmbd, kVocab}, bytes_of(w.output));
  g.add_tensor_bytes("rope_factors_long.weight", GgmlType::kF32, {kHd / 2}, bytes_of(kLong));
  g.add_tensor_bytes("rope_factors_short.weight", GgmlType::kF32, {kHd / 2}, bytes_of(kShort));
  const int qkv_rows = (kHeads + 2 * kKvHeads) * kHd;
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    w.attn_norm[l] = randv(rng, kEmbd, 1, 0.1f);
    w.qkv[l] = randv(rng, kEmbd * qkv_rows, 0, 0.4f);
    w.wo[l] = randv(rng, kHeads * kHd * kEmbd, 0, 0.3f);
    w.ffn_norm[l] = randv(rng, kEmbd, 1, 0.1f);
    w.up[l] = randv(rng, kEmbd * 2 * kFf, 0, 0.3f);
    w.down[l] = randv(rng, kFf * kEmbd, 0, 0.3f);
    g.add_tensor_bytes(p + "attn_norm.weight", GgmlType::kF32, {kEmbd}, bytes_of(w.attn_norm[l]));
    g.add_tensor_bytes(p + "attn_qkv.weight", GgmlType::kF32, {kEmbd, qkv_rows}, bytes_of(w.qkv[l]));
    g.add_tensor_bytes(p + "attn_output.weight", GgmlType::kF32, {kHeads * kHd, kEmbd}, bytes_of(w.wo[l]));
    g.add_tensor_bytes(p + "ffn_norm.weight", GgmlType::kF32, {kEmbd}, bytes_of(w.ffn_norm[l]));
    g.add_tensor_bytes(p + "ffn_up.weight", GgmlType::kF32, {kEmbd, 2 * kFf}, bytes_of(w.up[l]));
    g.add_tensor_bytes(p + "ffn_down.weight", GgmlType::kF32, {kFf, kEmbd}, bytes_of(w.down[l]));
  }
  EXPECT_TRUE(g.write(path).is_ok());
  return w;
}

float f16r(float x) { return f16_to_f32(f32_to_f16(x)); }

// y = W x for W of `rows` rows of `cols`.
std::vector<float> mv(const std::vector<float>& W, const std::vector<float>& x, int rows, int cols, int first_row = 0) {
  std::vector<float> y(rows);
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int c = 0; c < cols; ++c) s += W[(first_row + r) * cols + c] * x[c];
    y[r] = static_cast<float>(s);
  }
  return y;
}

std::vector<float> rms(const std::vector<float>& x, const std::vector<float>& w) {
  double ss = 0;
  for (float v : x) ss += v * v;
  const float s = 1.f / std::sqrt(static_cast<float>(ss / x.size()) + 1e-5f);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

// NEOX rotation of one head with the given factors and the attn_factor scaling.
void rotate(float* v, int pos, const std::vector<float>& factors) {
  for (int i = 0; i < kHd / 2; ++i) {
    const double theta = pos * std::pow(10000.0, -2.0 * i / kHd) / factors[i];
    const double c = std::cos(theta) * attn_factor(), s = std::sin(theta) * attn_factor();
    const double x0 = v[i], x1 = v[i + kHd / 2];
    v[i] = static_cast<float>(x0 * c - x1 * s);
    v[i + kHd / 2] = static_cast<float>(x0 * s + x1 * c);
  }
}

// Last-position logits of the whole prompt, with f16 keys, values, queries and probabilities
// as the reference's f16 KV cache has them.
std::vector<float> reference_logits(const Weights& w, const std::vector<int32_t>& tokens,
                                    const std::vector<float>& factors) {
  const int n = static_cast<int>(tokens.size());
  std::vector<std::vector<float>> x(n);
  for (int t = 0; t < n; ++t) x[t].assign(w.embd.begin() + tokens[t] * kEmbd, w.embd.begin() + (tokens[t] + 1) * kEmbd);
  for (int l = 0; l < kLayers; ++l) {
    std::vector<std::vector<float>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      auto h = rms(x[t], w.attn_norm[l]);
      q[t] = mv(w.qkv[l], h, kHeads * kHd, kEmbd, 0);
      k[t] = mv(w.qkv[l], h, kKvHeads * kHd, kEmbd, kHeads * kHd);
      v[t] = mv(w.qkv[l], h, kKvHeads * kHd, kEmbd, (kHeads + kKvHeads) * kHd);
      for (int hh = 0; hh < kHeads; ++hh) rotate(q[t].data() + hh * kHd, t, factors);
      rotate(k[t].data(), t, factors);
      for (float& e : k[t]) e = f16r(e);
      for (float& e : v[t]) e = f16r(e);
      for (float& e : q[t]) e = f16r(e);
    }
    for (int t = 0; t < n; ++t) {
      std::vector<float> att(kHeads * kHd, 0.f);
      for (int hh = 0; hh < kHeads; ++hh) {
        std::vector<double> s(t + 1);
        double mx = -1e30, sum = 0;
        for (int j = 0; j <= t; ++j) {
          double d = 0;
          for (int i = 0; i < kHd; ++i) d += q[t][hh * kHd + i] * k[j][i];
          s[j] = d / std::sqrt(double(kHd));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j <= t; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j <= t; ++j) {
          const float p = f16r(static_cast<float>(s[j] / sum));
          for (int i = 0; i < kHd; ++i) att[hh * kHd + i] += p * v[j][i];
        }
      }
      auto o = mv(w.wo[l], att, kEmbd, kHeads * kHd);
      for (int i = 0; i < kEmbd; ++i) x[t][i] += o[i];
      auto h = rms(x[t], w.ffn_norm[l]);
      auto gate = mv(w.up[l], h, kFf, kEmbd, 0), up = mv(w.up[l], h, kFf, kEmbd, kFf);
      for (int i = 0; i < kFf; ++i) gate[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
      auto d = mv(w.down[l], gate, kEmbd, kFf);
      for (int i = 0; i < kEmbd; ++i) x[t][i] += d[i];
    }
  }
  return mv(w.output, rms(x[n - 1], w.out_norm), kVocab, kEmbd);
}

std::vector<float> engine_logits(const TextModel& m, const std::vector<int32_t>& tokens, int n_ctx) {
  auto backend = make_cpu_backend(1);
  Session s(m, *backend, n_ctx);
  EXPECT_TRUE(s.eval(tokens).is_ok());
  return std::vector<float>(s.logits(), s.logits() + s.n_vocab());
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

TEST(LongRope, TheInstanceContextChoosesTheFactorsAndAttnFactorScalesQueriesAndKeys) {
  zs::testing::TempDir dir;
  const std::string path = dir.file("longrope.gguf");
  const Weights w = write_model(path);
  auto model = TextModel::load(path);
  ASSERT_TRUE(model.is_ok()) << model.status().message();
  const std::vector<int32_t> tokens = {1, 17, 42, 5, 63, 28, 9, 33, 51, 2, 40, 12};
  const auto want_long = reference_logits(w, tokens, kLong);
  const auto want_short = reference_logits(w, tokens, kShort);
  ASSERT_GT(max_diff(want_long, want_short), 0.05f) << "the two factor sets must be told apart";

  // 128 > 64: long factors, although every position is below 64. 64 (and 40, padded to 64): short.
  EXPECT_LT(max_diff(engine_logits(**model, tokens, 128), want_long), 2e-3f);
  EXPECT_LT(max_diff(engine_logits(**model, tokens, 64), want_short), 2e-3f);
  EXPECT_LT(max_diff(engine_logits(**model, tokens, 40), want_short), 2e-3f);
  EXPECT_LT(max_diff(engine_logits(**model, tokens, 65), want_long), 2e-3f);
}

TEST(LongRope, AFileWithOnlyOneFactorSetIsRefusedByName) {
  zs::testing::TempDir dir;
  GgufWriter g;
  g.set_string("general.architecture", "phi3");
  g.set_u32("phi3.embedding_length", 32);
  g.set_u32("phi3.feed_forward_length", 32);
  g.set_u32("phi3.block_count", 1);
  g.set_u32("phi3.attention.head_count", 2);
  g.set_u32("phi3.rope.scaling.original_context_length", 64);
  std::vector<float> zeros(32 * 64, 0.f), ones(8, 1.f);
  g.add_tensor_bytes("token_embd.weight", GgmlType::kF32, {32, 64}, bytes_of(zeros));
  g.add_tensor_bytes("output_norm.weight", GgmlType::kF32, {32}, bytes_of(std::vector<float>(32, 1.f)));
  g.add_tensor_bytes("rope_factors_long.weight", GgmlType::kF32, {8}, bytes_of(ones));
  ASSERT_TRUE(g.write(dir.file("bad.gguf")).is_ok());
  auto model = TextModel::load(dir.file("bad.gguf"));
  ASSERT_FALSE(model.is_ok());
  EXPECT_NE(model.status().message().find("rope_factors_short"), std::string::npos) << model.status().message();
}

}  // namespace
}  // namespace zs::engine
