// SmolVLM (SigLIP + Idefics3 connector) end to end on tiny random models: the generated
// mmproj loads with the expected shapes, a non-square image splits into tiles, the prompt
// carries the Idefics3 markers around one embedding run per view, the cache spares a second
// encode, and a projector of the wrong width is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/gguf/gguf_file.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/image/test_images.h"
#include "engine/model/llm.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "engine/vision/chat_prompt.h"
#include "engine/vision/clip_encoder.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/vision_loader.h"
#include "test_util/temp_dir.h"

namespace zs::engine {
namespace {

// SmolVLM's image tokens, as its tokenizer adds them.
std::vector<std::string> smolvlm_special_tokens() {
  std::vector<std::string> t = {"<fake_token_around_image>", "<global-img>"};
  for (int r = 1; r <= 6; ++r)
    for (int c = 1; c <= 6; ++c) t.push_back("<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">");
  t.push_back("<image>");
  return t;
}

// The `tiny` random text model (n_embd 64) with the last vocabulary entries replaced by
// SmolVLM's image tokens (user-defined, so always recognised in text), without the space
// prefix. The vocabulary size and every tensor stay as write_random_model made them.
core::Status write_tiny_smolvlm_text(const std::string& path, const std::string& scratch) {
  auto preset = find_model_preset("tiny");
  if (!preset) return preset.status();
  ZS_RETURN_IF_ERROR(write_random_model(preset.value(), FileType::kF16, scratch));
  auto in = GgufFile::open(scratch);
  if (!in) return in.status();
  const auto special = smolvlm_special_tokens();
  GgufWriter w;
  for (const auto& [key, read] : in.value()->metadata()) {
    GgufValue value = read.materialized();
    const size_t first = value.items.size() - special.size();
    if (key == "tokenizer.ggml.tokens")
      for (size_t i = 0; i < special.size(); ++i) value.items[first + i].str = special[i];
    if (key == "tokenizer.ggml.token_type")
      for (size_t i = 0; i < special.size(); ++i) value.items[first + i].i64 = 4;  // user-defined
    w.set(key, value);
  }
  // SmolVLM's own tokenizer (byte-level BPE) puts no space in front of text that follows a
  // marker token; neither should this SentencePiece stand-in.
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  for (const GgufTensorInfo& t : in.value()->tensors())
    w.add_tensor_bytes(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                       std::vector<uint8_t>(t.data, t.data + t.nbytes));
  return w.write(path);
}

// A 120 x 70 gradient: with tiles of 64 and the longest edge at 192 it becomes 192 x 112,
// then a 192 x 128 grid of 2 rows x 3 columns of tiles.
test::Bytes wide_image() {
  const int w = 120, h = 70;
  test::Bytes rgb(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(y * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 2);
      p[1] = static_cast<uint8_t>(y * 3);
      p[2] = static_cast<uint8_t>((x * y) % 251);
    }
  return test::bmp_stb(w, h, 3, rgb);
}

class SmolVlm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new zs::testing::TempDir();
    auto preset = find_mmproj_preset("tiny-siglip");
    ASSERT_TRUE(preset) << preset.status().message();
    ASSERT_TRUE(write_random_mmproj(preset.value(), GgmlType::kF32, dir_->file("mmproj.gguf")));
    auto s = write_tiny_smolvlm_text(dir_->file("text.gguf"), dir_->file("text-plain.gguf"));
    ASSERT_TRUE(s) << s.message();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    auto llm = Llm::load(dir_->file("text.gguf"));
    ASSERT_TRUE(llm) << llm.status().message();
    llm_ = std::move(llm.value());
    auto clip = load_vision_for(*llm_.model, dir_->file("mmproj.gguf"));
    ASSERT_TRUE(clip) << clip.status().message();
    clip_ = std::move(clip.value());
    backend_ = make_cpu_backend(2);
    ImageEmbedderOptions options;
    options.split.longest_edge = 192;
    embedder_ = std::make_unique<ImageEmbedder>(*clip_, *backend_, options);
  }

  int32_t token(const std::string& text) const {
    auto id = llm_.tokenizer->find_token(text);
    EXPECT_TRUE(id.has_value()) << text;
    return id.value_or(-1);
  }

  static zs::testing::TempDir* dir_;
  Llm llm_;
  std::unique_ptr<ClipModel> clip_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ImageEmbedder> embedder_;
};

zs::testing::TempDir* SmolVlm::dir_ = nullptr;

TEST_F(SmolVlm, GeneratedProjectorHasTheIdefics3Shapes) {
  const ClipConfig& c = clip_->config();
  EXPECT_EQ(c.projector, ProjectorType::kIdefics3);
  EXPECT_EQ(c.image_size, 64);
  EXPECT_EQ(c.patch_size, 16);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_layer_run, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_ff, 64);
  EXPECT_EQ(c.scale_factor, 2);
  EXPECT_EQ(c.projection_dim, 64);
  EXPECT_FALSE(c.has_class_token);
  EXPECT_EQ(c.tokens_per_image(), 4);  // 4 x 4 patches, shuffled by 2
  EXPECT_NE(clip_->patch_bias, nullptr);
  EXPECT_NE(clip_->post_ln_w, nullptr);
  EXPECT_EQ(clip_->pre_ln_w, nullptr);
  EXPECT_EQ(clip_->mm0.n_in, 32 * 4);
  EXPECT_EQ(clip_->mm0.n_out, 64);
}

TEST_F(SmolVlm, NonSquareImageBecomesTilesPlusGlobalView) {
  const test::Bytes img = wide_image();
  auto e = embedder_->embed(img.data(), img.size());
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_EQ(e->rows, 2);
  EXPECT_EQ(e->cols, 3);
  EXPECT_EQ(e->n_views, 7);
  EXPECT_EQ(e->tokens_per_view, 4);
  EXPECT_EQ(e->dim, 64);
  EXPECT_EQ(e->n_tokens(), 28);
  EXPECT_FALSE(e->cache_hit);
  for (int i = 0; i < e->n_tokens() * e->dim; ++i) ASSERT_TRUE(std::isfinite(e->view(0)[i]));
  // Different tiles of a gradient give different embeddings.
  EXPECT_FALSE(std::equal(e->view(0), e->view(0) + 4 * 64, e->view(5)));
}

TEST_F(SmolVlm, PromptLayoutWrapsEachViewInMarkers) {
  const test::Bytes img = wide_image();
  auto prepared = prepare_text_prompt(llm_, embedder_.get(), "What is this?", {img});
  ASSERT_TRUE(prepared) << prepared.status().message();
  const MultimodalPrompt& p = prepared->prompt;
  EXPECT_EQ(p.n_image_positions, 28);

  // Flatten to one sequence of tokens with -1 standing for each embedding run.
  std::vector<int32_t> seq;
  int runs = 0, positions = 0;
  auto embedding = embedder_->embed(img.data(), img.size());  // a cache hit: the same views
  ASSERT_TRUE(embedding);
  for (const PromptPiece& piece : p.pieces) {
    positions += piece.n_positions();
    if (piece.embeddings) {
      EXPECT_EQ(piece.n_embeddings, 4);
      EXPECT_EQ(piece.embeddings, embedding->view(runs)) << "run " << runs << " is not view " << runs;
      seq.push_back(-1);
      ++runs;
    } else {
      seq.insert(seq.end(), piece.tokens.begin(), piece.tokens.end());
    }
  }
  EXPECT_EQ(runs, 7);
  EXPECT_EQ(positions, p.n_positions());

  const int32_t fake = token("<fake_token_around_image>"), global = token("<global-img>");
  const int32_t newline = token("<0x0A>");
  std::vector<int32_t> want = {llm_.tokenizer->bos()};
  for (int r = 1; r <= 2; ++r) {
    for (int c = 1; c <= 3; ++c) {
      want.push_back(fake);
      want.push_back(token("<row_" + std::to_string(r) + "_col_" + std::to_string(c) + ">"));
      want.push_back(-1);
    }
    want.push_back(newline);
  }
  want.push_back(newline);
  for (int32_t t : {fake, global, -1, fake}) want.push_back(t);
  ASSERT_GE(seq.size(), want.size());
  EXPECT_EQ(std::vector<int32_t>(seq.begin(), seq.begin() + static_cast<std::ptrdiff_t>(want.size())), want);
  // Then the text, and nothing else of the image.
  const std::vector<int32_t> rest(seq.begin() + static_cast<std::ptrdiff_t>(want.size()), seq.end());
  EXPECT_EQ(llm_.tokenizer->decode(rest), "What is this?");
  EXPECT_EQ(positions, static_cast<int>(want.size()) - 7 + 28 + static_cast<int>(rest.size()));

  // The text model takes the whole prompt.
  Session session(*llm_.model, *backend_, 256);
  ASSERT_TRUE(eval_prompt(session, p));
  EXPECT_EQ(session.n_past(), p.n_positions());
  for (int i = 0; i < session.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(session.logits()[i]));
}

TEST_F(SmolVlm, SameBytesTwiceEncodeOnce) {
  const test::Bytes img = wide_image();
  auto first = embedder_->embed(img.data(), img.size());
  ASSERT_TRUE(first);
  auto second = embedder_->embed(img.data(), img.size());
  ASSERT_TRUE(second);
  EXPECT_FALSE(first->cache_hit);
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(first->data, second->data);  // the very same stored embeddings
  EXPECT_EQ(second->rows, 2);
  EXPECT_EQ(second->cols, 3);
  EXPECT_EQ(second->n_views, 7);
  const auto stats = embedder_->cache_stats();
  EXPECT_EQ(stats.insertions, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.hits, 1u);

  // One changed byte is another image.
  test::Bytes other = img;
  other[other.size() - 1] ^= 0x55;
  auto third = embedder_->embed(other.data(), other.size());
  ASSERT_TRUE(third);
  EXPECT_FALSE(third->cache_hit);
  EXPECT_EQ(embedder_->cache_stats().insertions, 2u);
}

TEST_F(SmolVlm, ProjectorOfAnotherWidthIsRefused) {
  auto preset = find_mmproj_preset("tiny-siglip");
  ASSERT_TRUE(preset);
  MmprojPreset p = preset.value();
  p.projection_dim = 48;
  ASSERT_TRUE(write_random_mmproj(p, GgmlType::kF16, dir_->file("mmproj-48.gguf")));
  auto clip = load_vision_for(*llm_.model, dir_->file("mmproj-48.gguf"));
  ASSERT_FALSE(clip);
  const std::string& m = clip.status().message();
  EXPECT_NE(m.find("width 48"), std::string::npos) << m;
  EXPECT_NE(m.find("width is 64"), std::string::npos) << m;
}

TEST(PixelShuffle, HandComputedFourByFour) {
  // A 4 x 4 grid of 1-wide patches numbered row by row, shuffled by 2.
  std::vector<float> in(16), out(16);
  for (int i = 0; i < 16; ++i) in[i] = static_cast<float>(i);
  pixel_shuffle(in.data(), 4, 1, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}));
}

TEST(PixelShuffle, HandComputedTwoWideFeatures) {
  // 2 x 2 patches of 2 features (patch p holds 10p, 10p + 1), shuffled by 2: one token.
  std::vector<float> in = {0, 1, 10, 11, 20, 21, 30, 31}, out(8);
  pixel_shuffle(in.data(), 2, 2, 2, out.data());
  EXPECT_EQ(out, in);  // (dy, dx) = (0,0) (0,1) (1,0) (1,1) is row-major order already
  // 6 x 6 patches of 1 feature, shuffled by 3: token (1, 0) starts at patch (3, 0).
  std::vector<float> in6(36), out6(36);
  for (int i = 0; i < 36; ++i) in6[i] = static_cast<float>(i);
  pixel_shuffle(in6.data(), 6, 1, 3, out6.data());
  EXPECT_EQ(std::vector<float>(out6.begin() + 18, out6.begin() + 27),
            (std::vector<float>{18, 19, 20, 24, 25, 26, 30, 31, 32}));
}

TEST(MmprojPresets, RealShapes) {
  auto clip = find_mmproj_preset("clip-vit-l-336");
  ASSERT_TRUE(clip);
  EXPECT_EQ(clip->projector_type, "mlp");
  EXPECT_EQ(clip->image_size / clip->patch_size, 24);
  EXPECT_TRUE(clip->class_token);
  auto siglip = find_mmproj_preset("siglip-512-smolvlm");
  ASSERT_TRUE(siglip);
  EXPECT_EQ(siglip->n_embd * siglip->scale_factor * siglip->scale_factor, 768 * 16);
  EXPECT_EQ(siglip->projection_dim, 576);
  EXPECT_FALSE(find_mmproj_preset("nope"));
  auto bad = write_random_mmproj(siglip.value(), GgmlType::kQ4_0, "/nonexistent/x.gguf");
  EXPECT_FALSE(bad);
}

TEST(MmprojPresets, SiglipFileLoadsWithPublishedShapes) {
  zs::testing::TempDir dir;
  auto preset = find_mmproj_preset("siglip-512-smolvlm");
  ASSERT_TRUE(preset);
  ASSERT_TRUE(write_random_mmproj(preset.value(), GgmlType::kF16, dir.file("siglip.gguf")));
  auto m = ClipModel::load(dir.file("siglip.gguf"));
  ASSERT_TRUE(m) << m.status().message();
  const ClipConfig& c = m.value()->config();
  EXPECT_EQ(c.projector, ProjectorType::kIdefics3);
  EXPECT_EQ(c.n_patches(), 1024);
  EXPECT_EQ(c.tokens_per_image(), 64);
  EXPECT_EQ(c.n_layer_run, 12);
  EXPECT_EQ(m.value()->mm0.n_in, 768 * 16);
  EXPECT_EQ(m.value()->mm0.n_out, 576);
  EXPECT_EQ(m.value()->layers[0].fc1.n_out, 3072);
  const GgufTensorInfo* fc = m.value()->file().find_tensor("mm.model.fc.weight");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->ne[0], 12288);
  EXPECT_EQ(fc->ne[1], 576);
  EXPECT_EQ(m.value()->file().get_int("clip.vision.projector.scale_factor"), 4);
}

}  // namespace
}  // namespace zs::engine
