// The operations the model families added, each checked against a plain scalar reference
// written here from the format notes in ../shared/golden/families/README.md: soft-capping,
// sliding-window attention over a paged cache, rope's attn_factor, expert routing (ties,
// renormalisation), the mixture-of-experts FFN against running every expert densely, pooling.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/encoder.h"
#include "engine/model/moe.h"
#include "engine/quant/quantize.h"

namespace zs::engine {
namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

float f16_round(float x) { return f16_to_f32(f32_to_f16(x)); }

TEST(Softcap, EqualsCapTimesTanhOfValueOverCap) {
  auto backend = make_cpu_backend(2);
  std::vector<float> v = random_vector(1000, 1, 20.f);
  std::vector<float> want(v.size());
  for (size_t i = 0; i < v.size(); ++i) want[i] = 5.f * std::tanh(v[i] / 5.f);
  backend->softcap(v.data(), 5.f, static_cast<int64_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_NEAR(v[i], want[i], 1e-5f) << i;
    EXPECT_LE(std::abs(v[i]), 5.f);
  }
}

// Scalar causal attention of one query over positions [first, pos] of a contiguous history
// (the f16 rounding of keys, values, queries and probabilities as the reference does).
std::vector<float> reference_attention(const std::vector<float>& q, const std::vector<std::vector<float>>& keys,
                                       const std::vector<std::vector<float>>& values, int pos, int window,
                                       float scale, float softcap) {
  const int first = window > 0 ? std::max(0, pos - window + 1) : 0;
  std::vector<double> s(pos + 1);
  double max_s = -INFINITY;
  for (int j = first; j <= pos; ++j) {
    double dot = 0;
    for (size_t i = 0; i < q.size(); ++i)
      dot += static_cast<double>(f16_round(softcap > 0 ? q[i] * scale : q[i])) * f16_round(keys[j][i]);
    double v = softcap > 0 ? dot : dot * scale;
    if (softcap > 0) v = softcap * std::tanh(v / softcap);
    s[j] = v;
    max_s = std::max(max_s, v);
  }
  double sum = 0;
  for (int j = first; j <= pos; ++j) sum += (s[j] = std::exp(s[j] - max_s));
  std::vector<float> out(q.size(), 0.f);
  for (int j = first; j <= pos; ++j) {
    const float p = f16_round(static_cast<float>(s[j] / sum));
    for (size_t i = 0; i < q.size(); ++i) out[i] += p * f16_round(values[j][i]);
  }
  return out;
}

struct AttentionCase {
  int window;
  float softcap;
};

class WindowedAttention : public ::testing::TestWithParam<AttentionCase> {};

// One head, 20 positions spread over scattered cache blocks of 4; every position queries.
TEST_P(WindowedAttention, MatchesTheScalarReferenceOverAPagedCache) {
  const auto [window, softcap] = GetParam();
  auto backend = make_cpu_backend(2);
  const int hd = 16, n = 20, block = 4;
  const std::vector<int32_t> table = {7, 2, 5, 0, 3};  // blocks out of order
  std::vector<uint16_t> kc(8 * block * hd), vc(8 * block * hd);
  std::vector<std::vector<float>> keys, values;
  std::vector<float> q_all;
  std::vector<int32_t> positions, rows;
  for (int p = 0; p < n; ++p) {
    keys.push_back(random_vector(hd, 100 + p));
    values.push_back(random_vector(hd, 200 + p));
    auto q = random_vector(hd, 300 + p, 2.f);
    q_all.insert(q_all.end(), q.begin(), q.end());
    positions.push_back(p);
    rows.push_back(table[p / block] * block + p % block);
  }
  std::vector<float> k_flat, v_flat;
  for (int p = 0; p < n; ++p) {
    k_flat.insert(k_flat.end(), keys[p].begin(), keys[p].end());
    v_flat.insert(v_flat.end(), values[p].begin(), values[p].end());
  }
  backend->store_kv(k_flat.data(), v_flat.data(), n, rows.data(), hd, kc.data(), vc.data());
  std::vector<const int32_t*> tables(n, table.data());
  std::vector<float> out(n * hd);
  AttentionArgs a;
  a.q = q_all.data();
  a.n_tokens = n;
  a.positions = positions.data();
  a.block_tables = tables.data();
  a.block_size = block;
  a.k_cache = kc.data();
  a.v_cache = vc.data();
  a.n_head = 1;
  a.n_head_kv = 1;
  a.head_dim = hd;
  a.scale = 0.25f;
  a.window = window;
  a.softcap = softcap;
  a.scale_q_first = softcap > 0;  // as gemma2 runs it
  a.out = out.data();
  backend->attention(a);
  for (int p = 0; p < n; ++p) {
    std::vector<float> q(q_all.begin() + p * hd, q_all.begin() + (p + 1) * hd);
    auto want = reference_attention(q, keys, values, p, window, 0.25f, softcap);
    for (int i = 0; i < hd; ++i) EXPECT_NEAR(out[p * hd + i], want[i], 2e-3f) << "position " << p << " dim " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(WindowsAndCaps, WindowedAttention,
                         ::testing::Values(AttentionCase{0, 0.f}, AttentionCase{4, 0.f}, AttentionCase{1, 0.f},
                                           AttentionCase{4, 5.f}, AttentionCase{0, 2.f}, AttentionCase{64, 0.f}));

TEST(WindowedAttention, AWindowChangesTheResultOnlyBeyondIt) {
  // Positions within the window see the same keys with and without it; later ones do not.
  auto backend = make_cpu_backend(1);
  const int hd = 8, n = 8;
  std::vector<int32_t> table = {0, 1};
  std::vector<uint16_t> kc(16 * hd), vc(16 * hd);
  auto k = random_vector(n * hd, 5), v = random_vector(n * hd, 6), q = random_vector(n * hd, 7, 3.f);
  std::vector<int32_t> pos(n), rows(n);
  std::iota(pos.begin(), pos.end(), 0);
  std::iota(rows.begin(), rows.end(), 0);
  backend->store_kv(k.data(), v.data(), n, rows.data(), hd, kc.data(), vc.data());
  std::vector<const int32_t*> tables(n, table.data());
  auto run = [&](int window) {
    std::vector<float> out(n * hd);
    AttentionArgs a;
    a.q = q.data();
    a.n_tokens = n;
    a.positions = pos.data();
    a.block_tables = tables.data();
    a.block_size = 8;
    a.k_cache = kc.data();
    a.v_cache = vc.data();
    a.n_head = a.n_head_kv = 1;
    a.head_dim = hd;
    a.scale = 0.3f;
    a.window = window;
    a.out = out.data();
    backend->attention(a);
    return out;
  };
  auto full = run(0), windowed = run(3);
  for (int p = 0; p < n; ++p) {
    float diff = 0;
    for (int i = 0; i < hd; ++i) diff = std::max(diff, std::abs(full[p * hd + i] - windowed[p * hd + i]));
    if (p < 3) EXPECT_EQ(diff, 0.f) << p;
    else EXPECT_GT(diff, 1e-4f) << p;
  }
}

TEST(Rope, AttnFactorScalesTheRotatedValuesOnly) {
  auto backend = make_cpu_backend(1);
  auto x = random_vector(2 * 8, 9);
  auto y = x;
  const int32_t pos = 5;
  RopeParams plain{2, 8, 4, 10000.f, 1.f, RopeMode::kNeox, nullptr, 1.f};
  RopeParams scaled = plain;
  scaled.attn_factor = 1.5f;
  backend->rope(x.data(), 1, &pos, plain);
  backend->rope(y.data(), 1, &pos, scaled);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 8; ++i) {
      // NEOX on 4 of 8 dims rotates pairs (0,2) and (1,3); dims 4..7 pass through.
      const float want = i < 4 ? x[h * 8 + i] * 1.5f : x[h * 8 + i];
      EXPECT_NEAR(y[h * 8 + i], want, 1e-5f) << h << "/" << i;
    }
}

// ---- experts ---------------------------------------------------------------------------

TEST(ExpertRouting, PicksTheLargestProbabilitiesWithTiesToTheLowerIndex) {
  const float logits[5] = {1.f, 3.f, 3.f, 0.f, 3.f};
  ExpertChoice c[2];
  route_token(logits, 5, 2, false, c);
  EXPECT_EQ(c[0].expert, 1);
  EXPECT_EQ(c[1].expert, 2);
  const double denom = std::exp(-2.0) + 3 + std::exp(-3.0);
  EXPECT_NEAR(c[0].weight, 1.0 / denom, 1e-6);
  EXPECT_NEAR(c[1].weight, 1.0 / denom, 1e-6);
}

TEST(ExpertRouting, RenormalisesTheChosenWeightsOnlyWhenAsked) {
  const float logits[4] = {0.5f, -1.f, 2.f, 1.f};
  ExpertChoice raw[2], norm[2];
  route_token(logits, 4, 2, false, raw);
  route_token(logits, 4, 2, true, norm);
  EXPECT_EQ(raw[0].expert, 2);
  EXPECT_EQ(raw[1].expert, 3);
  EXPECT_LT(raw[0].weight + raw[1].weight, 0.95f);
  EXPECT_NEAR(norm[0].weight + norm[1].weight, 1.f, 1e-6f);
  EXPECT_NEAR(norm[0].weight / norm[1].weight, raw[0].weight / raw[1].weight, 1e-5f);
}

// A layer of 4 F32 experts (dim 8, FFN 16) and a shared expert, as views on owned buffers.
struct ExpertLayer {
  ModelConfig c;
  std::vector<float> router, gate, up, down, sh_gate_inp, sh_gate, sh_up, sh_down;
  LayerWeights L;

  explicit ExpertLayer(bool shared, bool normalize) {
    c.n_embd = 8;
    c.n_expert = 4;
    c.n_expert_used = 2;
    c.n_ff_exp = 16;
    c.n_ff_shexp = shared ? 12 : 0;
    c.expert_weights_norm = normalize;
    router = random_vector(4 * 8, 1);
    gate = random_vector(4 * 16 * 8, 2, 0.3f);
    up = random_vector(4 * 16 * 8, 3, 0.3f);
    down = random_vector(4 * 8 * 16, 4, 0.3f);
    auto view = [](const std::vector<float>& v, int64_t n_in, int64_t n_out) {
      return WeightView{GgmlType::kF32, v.data(), n_in, n_out, static_cast<size_t>(n_in) * sizeof(float)};
    };
    L.ffn_gate_inp = view(router, 8, 4);
    L.gate_exps = {view(gate, 8, 16), 16 * 8 * sizeof(float), 4};
    L.up_exps = {view(up, 8, 16), 16 * 8 * sizeof(float), 4};
    L.down_exps = {view(down, 16, 8), 8 * 16 * sizeof(float), 4};
    if (shared) {
      sh_gate_inp = random_vector(8, 5);
      sh_gate = random_vector(12 * 8, 6, 0.3f);
      sh_up = random_vector(12 * 8, 7, 0.3f);
      sh_down = random_vector(8 * 12, 8, 0.3f);
      L.ffn_gate_inp_shexp = sh_gate_inp.data();
      L.gate_shexp = view(sh_gate, 8, 12);
      L.up_shexp = view(sh_up, 8, 12);
      L.down_shexp = view(sh_down, 12, 8);
    }
  }

  // Every expert computed densely for one token, then weighted by the routing.
  std::vector<float> reference(const float* h) const {
    auto ffn = [&](const float* g, const float* u, const float* d, int ff) {
      std::vector<float> act(ff), out(8, 0.f);
      for (int r = 0; r < ff; ++r) {
        double a = 0, b = 0;
        for (int j = 0; j < 8; ++j) {
          a += g[r * 8 + j] * h[j];
          b += u[r * 8 + j] * h[j];
        }
        act[r] = static_cast<float>(a / (1 + std::exp(-a)) * b);
      }
      for (int r = 0; r < 8; ++r)
        for (int j = 0; j < ff; ++j) out[r] += d[r * ff + j] * act[j];
      return out;
    };
    std::vector<float> logits(4);
    for (int e = 0; e < 4; ++e)
      for (int j = 0; j < 8; ++j) logits[e] += router[e * 8 + j] * h[j];
    ExpertChoice ch[2];
    route_token(logits.data(), 4, 2, c.expert_weights_norm, ch);
    std::vector<float> out(8, 0.f);
    for (const auto& x : ch) {
      auto y = ffn(&gate[x.expert * 128], &up[x.expert * 128], &down[x.expert * 128], 16);
      for (int j = 0; j < 8; ++j) out[j] += x.weight * y[j];
    }
    if (!sh_gate_inp.empty()) {
      double z = 0;
      for (int j = 0; j < 8; ++j) z += sh_gate_inp[j] * h[j];
      auto y = ffn(sh_gate.data(), sh_up.data(), sh_down.data(), 12);
      for (int j = 0; j < 8; ++j) out[j] += static_cast<float>(1 / (1 + std::exp(-z))) * y[j];
    }
    return out;
  }
};

class MoeFfnCases : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(MoeFfnCases, ABatchOfTokensMatchesEveryExpertComputedDensely) {
  const auto [shared, normalize] = GetParam();
  ExpertLayer layer(shared, normalize);
  auto backend = make_cpu_backend(2);
  MoeFfn moe(layer.c, *backend, 16);
  const int n = 16;
  auto h = random_vector(n * 8, 42);
  std::vector<float> out(n * 8);
  moe.run(layer.L, h.data(), n, out.data());
  EXPECT_LE(moe.experts_run_last(), 4);
  for (int t = 0; t < n; ++t) {
    auto want = layer.reference(h.data() + t * 8);
    for (int j = 0; j < 8; ++j) EXPECT_NEAR(out[t * 8 + j], want[j], 1e-4f) << "token " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(SharedAndNormalised, MoeFfnCases,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

TEST(MoeFfn, ASingleTokenRunsOnlyItsChosenExperts) {
  ExpertLayer layer(false, true);
  auto backend = make_cpu_backend(1);
  MoeFfn moe(layer.c, *backend, 4);
  auto h = random_vector(8, 3);
  std::vector<float> out(8);
  moe.run(layer.L, h.data(), 1, out.data());
  EXPECT_EQ(moe.experts_run_last(), 2);
}

// ---- pooling -----------------------------------------------------------------------------

TEST(Pooling, ClsTakesTheFirstRowMeanAveragesAllLastTakesTheLast) {
  const int d = 3;
  const std::vector<float> hidden = {1, 2, 3, 4, 5, 6, 7, 8, 10};
  std::vector<float> out(d);
  pool_rows(hidden.data(), 3, d, Pooling::kCls, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3}));
  pool_rows(hidden.data(), 3, d, Pooling::kMean, out.data());
  EXPECT_EQ(out, (std::vector<float>{4, 5, 19.f / 3}));
  pool_rows(hidden.data(), 3, d, Pooling::kLast, out.data());
  EXPECT_EQ(out, (std::vector<float>{7, 8, 10}));
}

TEST(Pooling, L2NormaliseGivesUnitLengthAndLeavesZeroAlone) {
  std::vector<float> v = {3, 4};
  l2_normalize(v.data(), 2);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> z = {0, 0};
  l2_normalize(z.data(), 2);
  EXPECT_EQ(z, (std::vector<float>{0, 0}));
}

}  // namespace
}  // namespace zs::engine
