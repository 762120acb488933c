// Presets of every family: their full-size tensor plans carry the shapes of the published
// configs, miniatures of them (one block, narrow FFNs, small vocabulary; same keys, tensor
// names and family layout) load and run, --layers cuts only the block count, and the bytes
// a decoded token reads are counted as a hand count says, for a mixture of experts too.
#include "engine/model/model_preset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/model/encoder.h"
#include "engine/model/llm.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

ModelPreset preset(const std::string& name) {
  auto p = find_model_preset(name);
  EXPECT_TRUE(p.is_ok()) << name;
  return p.value();
}

std::map<std::string, std::vector<int64_t>> shapes(const ModelPreset& p, FileType ft = FileType::kQ4_K_M) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& t : plan_random_model(p, ft)) out[t.name] = t.ne;
  return out;
}

// The same file layout at a size a test can write in milliseconds: one block, FFNs 256 wide,
// 1024 tokens. Head counts, head dims, expert counts and every key stay the preset's.
ModelPreset miniature(const ModelPreset& full) {
  ModelPreset p = with_layers(full, 1).value();
  p.n_ff = 256;
  if (p.n_ff_exp > 0) p.n_ff_exp = 128;
  if (p.n_ff_shexp > 0) p.n_ff_shexp = 256;
  p.n_vocab = 1024;
  return p;
}

TEST(ModelPreset, NewFamiliesHaveThePublishedShapes) {
  auto g = shapes(preset("gemma2-2b"));
  EXPECT_EQ(g["token_embd.weight"], (std::vector<int64_t>{2304, 256000}));
  EXPECT_EQ(g.count("output.weight"), 0u);  // tied
  EXPECT_EQ(g["blk.0.attn_q.weight"], (std::vector<int64_t>{2304, 2048}));  // 8 heads of 256
  EXPECT_EQ(g["blk.0.attn_k.weight"], (std::vector<int64_t>{2304, 1024}));
  EXPECT_EQ(g["blk.25.post_ffw_norm.weight"], (std::vector<int64_t>{2304}));

  auto phi = shapes(preset("phi-3.5-mini"));
  EXPECT_EQ(phi["blk.0.attn_qkv.weight"], (std::vector<int64_t>{3072, 3 * 3072}));
  EXPECT_EQ(phi["blk.31.ffn_up.weight"], (std::vector<int64_t>{3072, 2 * 8192}));
  EXPECT_EQ(phi["rope_factors_long.weight"], (std::vector<int64_t>{48}));
  EXPECT_EQ(phi["rope_factors_short.weight"], (std::vector<int64_t>{48}));
  EXPECT_EQ(phi["output.weight"], (std::vector<int64_t>{3072, 32064}));

  auto glm = shapes(preset("glm-4-9b"));
  EXPECT_EQ(glm["blk.39.attn_qkv.weight"], (std::vector<int64_t>{4096, 4096 + 2 * 256}));
  EXPECT_EQ(glm["blk.0.attn_qkv.bias"], (std::vector<int64_t>{4096 + 2 * 256}));
  EXPECT_EQ(glm["blk.0.ffn_up.weight"], (std::vector<int64_t>{4096, 2 * 13696}));
  EXPECT_EQ(glm["blk.0.ffn_down.weight"], (std::vector<int64_t>{13696, 4096}));

  auto qvl = shapes(preset("qwen2-vl-2b"));
  EXPECT_EQ(qvl["blk.27.attn_q.weight"], (std::vector<int64_t>{1536, 1536}));
  EXPECT_EQ(qvl["blk.0.attn_k.bias"], (std::vector<int64_t>{256}));  // 2 KV heads of 128
  EXPECT_EQ(qvl["blk.0.ffn_up.weight"], (std::vector<int64_t>{1536, 8960}));
  EXPECT_EQ(qvl.count("output.weight"), 0u);  // tied
  auto edge = shapes(preset("glm-edge-v-2b"));
  EXPECT_EQ(edge["blk.27.attn_qkv.weight"], (std::vector<int64_t>{2048, 2048 + 2 * 512}));
  EXPECT_EQ(edge["blk.0.ffn_up.weight"], (std::vector<int64_t>{2048, 2 * 6144}));

  auto q3 = shapes(preset("qwen3-1.7b"));
  EXPECT_EQ(q3["blk.0.attn_q.weight"], (std::vector<int64_t>{2048, 2048}));
  EXPECT_EQ(q3["blk.27.attn_k_norm.weight"], (std::vector<int64_t>{128}));
  EXPECT_EQ(q3.count("blk.0.attn_q.bias"), 0u);
  auto q3m = shapes(preset("qwen3-30b-a3b"));
  EXPECT_EQ(q3m["blk.47.ffn_gate_exps.weight"], (std::vector<int64_t>{2048, 768, 128}));
  EXPECT_EQ(q3m["blk.0.attn_q.weight"], (std::vector<int64_t>{2048, 4096}));  // 32 heads of 128
  EXPECT_EQ(q3m.count("blk.0.ffn_gate_inp_shexp.weight"), 0u);
  auto g3 = shapes(preset("gemma-3-4b"));
  EXPECT_EQ(g3["token_embd.weight"], (std::vector<int64_t>{2560, 262208}));
  EXPECT_EQ(g3["blk.0.attn_q.weight"], (std::vector<int64_t>{2560, 2048}));  // 8 heads of 256
  EXPECT_EQ(g3["blk.33.attn_q_norm.weight"], (std::vector<int64_t>{256}));
  EXPECT_EQ(g3["blk.33.post_ffw_norm.weight"], (std::vector<int64_t>{2560}));

  auto mix = shapes(preset("mixtral-8x7b"));
  EXPECT_EQ(mix["blk.31.ffn_gate_exps.weight"], (std::vector<int64_t>{4096, 14336, 8}));
  EXPECT_EQ(mix["blk.0.ffn_down_exps.weight"], (std::vector<int64_t>{14336, 4096, 8}));
  EXPECT_EQ(mix["blk.0.ffn_gate_inp.weight"], (std::vector<int64_t>{4096, 8}));
  EXPECT_EQ(mix.count("blk.0.ffn_gate.weight"), 0u);

  auto qm = shapes(preset("qwen1.5-moe-a2.7b"));
  EXPECT_EQ(qm["blk.23.ffn_up_exps.weight"], (std::vector<int64_t>{2048, 1408, 60}));
  EXPECT_EQ(qm["blk.0.ffn_gate_inp_shexp.weight"], (std::vector<int64_t>{2048}));
  EXPECT_EQ(qm["blk.0.ffn_down_shexp.weight"], (std::vector<int64_t>{5632, 2048}));
  EXPECT_EQ(qm["blk.0.attn_q.bias"], (std::vector<int64_t>{2048}));

  auto bge = shapes(preset("bge-small-en-v1.5"));
  EXPECT_EQ(bge["position_embd.weight"], (std::vector<int64_t>{384, 512}));
  EXPECT_EQ(bge["blk.11.ffn_up.bias"], (std::vector<int64_t>{1536}));
  auto nomic = shapes(preset("nomic-embed-text-v1.5"));
  EXPECT_EQ(nomic["blk.0.attn_qkv.weight"], (std::vector<int64_t>{768, 3 * 768}));
  EXPECT_EQ(nomic.count("position_embd.weight"), 0u);
  EXPECT_EQ(nomic["token_types.weight"], (std::vector<int64_t>{768, 2}));
}

TEST(ModelPreset, FullSizeEstimatesMatchThePublishedFileSizes) {
  // Mixtral 8x7B Q4_K_M is about 26 GB, Qwen1.5-MoE-A2.7B about 8.8 GB, Gemma-2-2B about 1.7 GB.
  EXPECT_NEAR(estimate_file_bytes(preset("mixtral-8x7b"), FileType::kQ4_K_M) / 1e9, 26.4, 1.5);
  EXPECT_NEAR(estimate_file_bytes(preset("qwen1.5-moe-a2.7b"), FileType::kQ4_K_M) / 1e9, 8.8, 0.8);
  EXPECT_NEAR(estimate_file_bytes(preset("gemma2-2b"), FileType::kQ4_K_M) / 1e9, 1.7, 0.2);
}

TEST(ModelPreset, EveryPresetWritesAFileThatLoadsAndRuns) {
  zs::testing::TempDir dir;
  auto backend = make_cpu_backend(1);
  for (const auto& name : model_preset_names()) {
    SCOPED_TRACE(name);
    const ModelPreset p = miniature(preset(name));
    const std::string path = dir.file(name + ".gguf");
    ASSERT_TRUE(write_random_model(p, FileType::kQ8_0, path).is_ok());
    auto llm = Llm::load(path);
    ASSERT_TRUE(llm.is_ok()) << llm.status().message();
    const ModelConfig& c = llm->model->config();
    EXPECT_EQ(c.arch_name, p.arch);
    EXPECT_EQ(c.n_layer, 1);
    EXPECT_EQ(c.n_embd, p.n_embd);
    EXPECT_EQ(c.head_dim, p.head_dim_or_default());
    EXPECT_EQ(c.n_expert, p.n_expert);
    EXPECT_EQ(c.n_expert_used, p.n_expert_used);
    const std::vector<int32_t> ids = llm->tokenizer->encode("the quick brown fox", true, true);
    ASSERT_GE(ids.size(), 2u);
    if (c.is_encoder()) {
      EXPECT_EQ(ids.front(), 101);  // [CLS]
      EXPECT_EQ(ids.back(), 102);   // [SEP]
      for (int32_t id : ids) EXPECT_NE(id, 100) << "a word tokenized to [UNK]";
      Encoder enc(*llm->model, *backend);
      auto e = enc.embed({ids});
      ASSERT_TRUE(e.is_ok()) << e.status().message();
      ASSERT_EQ(e.value()[0].size(), static_cast<size_t>(p.n_embd));
      for (float v : e.value()[0]) ASSERT_TRUE(std::isfinite(v));
    } else {
      Session s(*llm->model, *backend, 64);
      ASSERT_TRUE(s.eval(ids).is_ok());
      for (int i = 0; i < s.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(s.logits()[i]));
    }
  }
}

TEST(ModelPreset, PhiPresetCarriesLongRopeAsTheConverterWritesIt) {
  zs::testing::TempDir dir;
  const ModelPreset p = miniature(preset("phi-3.5-mini"));
  ASSERT_TRUE(write_random_model(p, FileType::kQ8_0, dir.file("phi.gguf")).is_ok());
  auto m = TextModel::load(dir.file("phi.gguf"));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m.value()->config().rope_n_ctx_orig, 4096);
  EXPECT_EQ(m.value()->config().n_ctx_train, 131072);
  EXPECT_NEAR(m.value()->config().rope_attn_factor, std::sqrt(1.0 + std::log(32.0) / std::log(4096.0)), 1e-6);
  ASSERT_NE(m.value()->weights().rope_factors_long, nullptr);
  EXPECT_FLOAT_EQ(m.value()->weights().rope_factors_long[47], 64.83999633789062f);
  EXPECT_FLOAT_EQ(m.value()->weights().rope_factors_short[0], 1.0f);
}

TEST(ModelPreset, LayersCutOnlyTheBlockCountAndAreValidated) {
  const ModelPreset full = preset("mixtral-8x7b");
  auto two = with_layers(full, 2);
  ASSERT_TRUE(two.is_ok());
  EXPECT_EQ(two->n_layer, 2);
  EXPECT_EQ(two->full_layers, 32);
  EXPECT_EQ(two->n_embd, full.n_embd);
  EXPECT_EQ(two->n_expert, full.n_expert);
  auto s = shapes(two.value());
  EXPECT_EQ(s.count("blk.1.ffn_up_exps.weight"), 1u);
  EXPECT_EQ(s.count("blk.2.ffn_up_exps.weight"), 0u);
  for (int bad : {0, -1, 33}) {
    auto r = with_layers(full, bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_NE(r.status().message().find("mixtral-8x7b"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("1 to 32"), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(with_layers(full, 32).is_ok());
}

// Bytes a decoded token reads in a qwen2moe file, counted by hand from the shapes and the
// Q8_0 block size (34 bytes per 32 values): attention, router (F32), shared-expert gate
// vector (F32), shared expert, n_expert_used experts, the output matrix, one embedding row.
TEST(ModelPreset, MoeBytesReadPerTokenMatchAHandCount) {
  zs::testing::TempDir dir;
  ModelPreset p = with_layers(preset("qwen1.5-moe-a2.7b"), 2).value();
  p.n_ff = 256;
  p.n_ff_exp = 128;
  p.n_ff_shexp = 256;
  p.n_vocab = 1024;
  ASSERT_TRUE(write_random_model(p, FileType::kQ8_0, dir.file("moe.gguf")).is_ok());
  auto m = TextModel::load(dir.file("moe.gguf"));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const int64_t d = 2048, E = 60, k = 4, fe = 128, fs = 256, V = 1024, L = 2;
  auto q8 = [](int64_t n_in, int64_t n_out) { return n_in / 32 * 34 * n_out; };
  const int64_t attn = q8(d, d) * 4;  // 16 heads of 128, as many KV heads
  const int64_t router = d * E * 4, shexp_gate = d * 4;
  const int64_t shared = q8(d, fs) * 2 + q8(fs, d);
  const int64_t expert = q8(d, fe) * 2 + q8(fe, d);
  const int64_t per_layer = attn + router + shexp_gate + shared + k * expert;
  const int64_t expected = L * per_layer + q8(d, V) + q8(d, 1);
  EXPECT_EQ(static_cast<int64_t>(m.value()->weight_bytes_per_token()), expected);
  EXPECT_EQ(static_cast<int64_t>(m.value()->weight_bytes_total()),
            L * (per_layer + (E - k) * expert) + 2 * q8(d, V));
  // Parameters: embeddings and output in full; active counts k experts, total all E.
  const int64_t layer_params = 4 * d * d + d * E + d + 3 * d * fs;
  EXPECT_EQ(m.value()->params_active(), 2 * d * V + L * (layer_params + k * 3 * d * fe));
  EXPECT_EQ(m.value()->params_total(), 2 * d * V + L * (layer_params + E * 3 * d * fe));
  EXPECT_DOUBLE_EQ(m.value()->matrix_flops_per_token(), 2.0 * L * (layer_params + k * 3 * d * fe));
}

}  // namespace
}  // namespace zs::engine
