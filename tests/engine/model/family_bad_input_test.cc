// Files of the new families that contradict themselves are refused with an error naming the
// key or tensor at fault, never loaded half-way.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "engine/gguf/gguf_writer.h"
#include "engine/model/encoder.h"
#include "engine/model/session.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

std::vector<uint8_t> f32_bytes(size_t n, float value = 0.01f) {
  std::vector<float> v(n, value);
  std::vector<uint8_t> b(n * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// A minimal decoder of `arch` (dim 32, 1 block, 2 heads) with its keys set by `keys`.
std::string load_error(const std::string& arch, const std::function<void(GgufWriter&)>& keys,
                       const std::function<void(GgufWriter&)>& tensors = [](GgufWriter&) {}) {
  zs::testing::TempDir dir;
  GgufWriter g;
  g.set_string("general.architecture", arch);
  g.set_u32(arch + ".embedding_length", 32);
  g.set_u32(arch + ".feed_forward_length", 64);
  g.set_u32(arch + ".block_count", 1);
  g.set_u32(arch + ".attention.head_count", 2);
  keys(g);
  g.add_tensor_bytes("token_embd.weight", GgmlType::kF32, {32, 16}, f32_bytes(32 * 16));
  g.add_tensor_bytes("output_norm.weight", GgmlType::kF32, {32}, f32_bytes(32, 1.f));
  tensors(g);
  EXPECT_TRUE(g.write(dir.file("m.gguf")).is_ok());
  auto m = TextModel::load(dir.file("m.gguf"));
  return m.is_ok() ? "" : m.status().message();
}

TEST(FamilyBadInput, MoreExpertsUsedThanThereAreIsRefused) {
  auto e = load_error("llama", [](GgufWriter& g) {
    g.set_u32("llama.expert_count", 4);
    g.set_u32("llama.expert_used_count", 5);
  });
  EXPECT_NE(e.find("expert_used_count"), std::string::npos) << e;
}

TEST(FamilyBadInput, AQwen2MoeFileWithoutExpertCountIsRefused) {
  auto e = load_error("qwen2moe", [](GgufWriter&) {});
  EXPECT_NE(e.find("qwen2moe.expert_count"), std::string::npos) << e;
}

TEST(FamilyBadInput, ValueHeadsWiderThanKeyHeadsAreRefused) {
  auto e = load_error("gemma2", [](GgufWriter& g) {
    g.set_u32("gemma2.attention.key_length", 16);
    g.set_u32("gemma2.attention.value_length", 32);
  });
  EXPECT_NE(e.find("value_length"), std::string::npos) << e;
}

TEST(FamilyBadInput, MissingOrMisshapenExpertTensorsAreNamed) {
  auto keys = [](GgufWriter& g) {
    g.set_u32("llama.expert_count", 4);
    g.set_u32("llama.expert_used_count", 2);
  };
  auto attention = [](GgufWriter& g) {
    g.add_tensor_bytes("blk.0.attn_norm.weight", GgmlType::kF32, {32}, f32_bytes(32, 1.f));
    g.add_tensor_bytes("blk.0.ffn_norm.weight", GgmlType::kF32, {32}, f32_bytes(32, 1.f));
    for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output"})
      g.add_tensor_bytes(std::string("blk.0.") + t + ".weight", GgmlType::kF32, {32, 32}, f32_bytes(32 * 32));
  };
  auto e = load_error("llama", keys, attention);
  EXPECT_NE(e.find("blk.0.ffn_gate_inp.weight"), std::string::npos) << e;
  e = load_error("llama", keys, [&](GgufWriter& g) {
    attention(g);
    g.add_tensor_bytes("blk.0.ffn_gate_inp.weight", GgmlType::kF32, {32, 4}, f32_bytes(32 * 4));
    // Three experts stored where the metadata says four.
    g.add_tensor_bytes("blk.0.ffn_gate_exps.weight", GgmlType::kF32, {32, 64, 3}, f32_bytes(32 * 64 * 3));
  });
  EXPECT_NE(e.find("blk.0.ffn_gate_exps.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("expected [32, 64, 4]"), std::string::npos) << e;
}

TEST(FamilyBadInput, AnUnknownArchitectureListsTheSupportedOnes) {
  auto e = load_error("mamba", [](GgufWriter&) {});
  EXPECT_NE(e.find("'mamba'"), std::string::npos) << e;
  for (const char* arch : {"llama", "gemma2", "phi3", "chatglm", "qwen2moe", "bert", "nomic-bert"})
    EXPECT_NE(e.find(arch), std::string::npos) << arch;
}

TEST(FamilyBadInput, AnEmbeddingModelHasNoNextTokenLogitsAndADecoderNoEmbeddings) {
  auto bert = TextModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-bert-f32.gguf");
  ASSERT_TRUE(bert.is_ok()) << bert.status().message();
  auto backend = make_cpu_backend(1);
  Session s(**bert, *backend, 16);
  auto st = s.eval({101, 1996, 102});
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("embedding model"), std::string::npos) << st.message();

  auto llama = TextModel::load(zs::testing::golden_model("tiny-llama-f16.gguf"));
  ASSERT_TRUE(llama.is_ok());
  Encoder enc(**llama, *backend);
  auto r = enc.embed({{1, 2}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("not an embedding model"), std::string::npos);
}

TEST(FamilyBadInput, EmbeddingInputsOutsideTheContextOrVocabularyAreNamedByIndex) {
  auto bert = TextModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-bert-f32.gguf");
  ASSERT_TRUE(bert.is_ok());
  auto backend = make_cpu_backend(1);
  Encoder enc(**bert, *backend);
  auto too_long = enc.embed({{101, 102}, std::vector<int32_t>(513, 1000)});
  ASSERT_FALSE(too_long.is_ok());
  EXPECT_NE(too_long.status().message().find("input 1 has 513 tokens"), std::string::npos)
      << too_long.status().message();
  auto empty = enc.embed({{}});
  ASSERT_FALSE(empty.is_ok());
  EXPECT_NE(empty.status().message().find("input 0 has no tokens"), std::string::npos);
  auto bad_id = enc.embed({{101, 40000}});
  ASSERT_FALSE(bad_id.is_ok());
  EXPECT_NE(bad_id.status().message().find("40000"), std::string::npos);
}

TEST(Encoder, ManyInputsInOnePassEqualEachInputAlone) {
  auto bert = TextModel::load(zs::testing::shared_dir() + "/golden/families/models/tiny-bert-f32.gguf");
  ASSERT_TRUE(bert.is_ok());
  auto backend = make_cpu_backend(2);
  Encoder enc(**bert, *backend);
  const std::vector<std::vector<int32_t>> inputs = {
      {101, 1996, 4248, 2829, 102}, {101, 7592, 102}, {101, 1037, 2307, 2154, 2000, 3102, 1012, 102}};
  auto together = enc.embed(inputs);
  ASSERT_TRUE(together.is_ok());
  EXPECT_EQ(enc.passes(), 1);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto alone = enc.embed({inputs[i]});
    ASSERT_TRUE(alone.is_ok());
    for (int j = 0; j < enc.dim(); ++j) EXPECT_NEAR((*together)[i][j], (*alone)[0][j], 1e-5f) << i << "/" << j;
  }
  // More tokens than one pass holds: split into passes at input boundaries, same results.
  Encoder small(**bert, *backend, 10);
  auto split = small.embed(inputs);
  ASSERT_TRUE(split.is_ok());
  EXPECT_EQ(small.passes(), 2);
  for (size_t i = 0; i < inputs.size(); ++i)
    for (int j = 0; j < enc.dim(); ++j) EXPECT_NEAR((*split)[i][j], (*together)[i][j], 1e-5f);
}

}  // namespace
}  // namespace zs::engine
