#include "engine/model/model_preset.h"

namespace zs::engine {
namespace {

// Phi-3.5-mini's LongRoPE factors (config.json rope_scaling.long_factor / short_factor, one
// per rotated pair of a 96-dimension head).
const std::vector<float> kPhi35LongFactor = {
    1.0800000429153442f, 1.1100000143051147f, 1.1399999856948853f, 1.340000033378601f,  1.5899999141693115f,
    1.600000023841858f,  1.6200000047683716f, 2.620000123977661f,  3.2300000190734863f, 3.2300000190734863f,
    4.789999961853027f,  7.400000095367432f,  7.700000286102295f,  9.09000015258789f,   12.199999809265137f,
    17.670000076293945f, 24.46000099182129f,  28.57000160217285f,  30.420001983642578f, 30.840002059936523f,
    32.590003967285156f, 32.93000411987305f,  42.320003509521484f, 44.96000289916992f,  50.340003967285156f,
    50.45000457763672f,  57.55000305175781f,  57.93000411987305f,  58.21000289916992f,  60.1400032043457f,
    62.61000442504883f,  62.62000274658203f,  62.71000289916992f,  63.1400032043457f,   63.1400032043457f,
    63.77000427246094f,  63.93000411987305f,  63.96000289916992f,  63.970001220703125f, 64.02999877929688f,
    64.06999969482422f,  64.08000183105469f,  64.12000274658203f,  64.41000366210938f,  64.4800033569336f,
    64.51000213623047f,  64.52999877929688f,  64.83999633789062f};
const std::vector<float> kPhi35ShortFactor = {
    1.0f,                1.0199999809265137f, 1.0299999713897705f, 1.0299999713897705f, 1.0499999523162842f,
    1.0499999523162842f, 1.0499999523162842f, 1.0499999523162842f, 1.0499999523162842f, 1.0699999332427979f,
    1.0999999046325684f, 1.1099998950958252f, 1.1599998474121094f, 1.1599998474121094f, 1.1699998378753662f,
    1.2899998426437378f, 1.339999794960022f,  1.679999828338623f,  1.7899998426437378f, 1.8199998140335083f,
    1.8499997854232788f, 1.8799997568130493f, 1.9099997282028198f, 1.9399996995925903f, 1.9899996519088745f,
    2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f, 2.0199997425079346f,
    2.0199997425079346f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f,
    2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f, 2.0299997329711914f,
    2.0799996852874756f, 2.0899996757507324f, 2.189999580383301f,  2.2199995517730713f, 2.5899994373321533f,
    2.729999542236328f,  2.749999523162842f,  2.8399994373321533f};

std::vector<ModelPreset> make_presets() {
  std::vector<ModelPreset> v = {
      {"tiny", "llama", 64, 2, 4, 2, 192, 4096, 2048, 10000.f, 1e-5f, false},
      {"bench-1b", "llama", 2048, 16, 32, 8, 8192, 32000, 4096, 10000.f, 1e-5f, true},
      {"smollm2-360m", "llama", 960, 32, 15, 5, 2560, 49152, 8192, 100000.f, 1e-5f, true},
      {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 100000.f, 1e-5f, true},
      {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.f, 1e-6f, true},
      {"llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.f, 1e-5f, true},
  };
  {  // google/gemma-2-2b: head_dim 256 (8 heads of 256 = 2048 != 2304), query_pre_attn_scalar 256
    ModelPreset p{"gemma2-2b", "gemma2", 2304, 26, 8, 4, 9216, 256000, 8192, 10000.f, 1e-6f, true};
    p.head_dim = 256;
    p.sliding_window = 4096;
    p.attn_softcap = 50.f;
    p.final_softcap = 30.f;
    p.vocab = VocabStyle::kGemma;
    v.push_back(p);
  }
  {  // microsoft/Phi-3.5-mini-instruct: LongRoPE from 4096 to 131072 positions
    ModelPreset p{"phi-3.5-mini", "phi3", 3072, 32, 32, 32, 8192, 32064, 131072, 10000.f, 1e-5f, false};
    p.sliding_window = 262144;
    p.rope_orig_ctx = 4096;
    p.rope_factors_long = kPhi35LongFactor;
    p.rope_factors_short = kPhi35ShortFactor;
    p.vocab = VocabStyle::kPhi3;
    v.push_back(p);
  }
  {  // Qwen/Qwen3-1.7B: head_dim 128 (16 heads of 128 = 2048 = hidden), Q/K norms, tied
    ModelPreset p{"qwen3-1.7b", "qwen3", 2048, 28, 16, 8, 6144, 151936, 40960, 1000000.f, 1e-6f, true};
    p.head_dim = 128;
    v.push_back(p);
  }
  {  // Qwen/Qwen3-30B-A3B: 128 experts of 768, 8 per token, 32 heads of 128 over hidden 2048
    ModelPreset p{"qwen3-30b-a3b", "qwen3moe", 2048, 48, 32, 4, 6144, 151936, 40960, 1000000.f, 1e-6f, false};
    p.head_dim = 128;
    p.n_expert = 128;
    p.n_expert_used = 8;
    p.n_ff_exp = 768;
    v.push_back(p);
  }
  {  // google/gemma-3-4b-it (text): head_dim 256, sliding window 1024 on 5 of 6 blocks, local rope base
     // 10000, global rope base 1e6 with linear scaling 8
    ModelPreset p{"gemma-3-4b", "gemma3", 2560, 34, 8, 4, 10240, 262208, 131072, 1000000.f, 1e-6f, true};
    p.head_dim = 256;
    p.sliding_window = 1024;
    p.rope_base_swa = 10000.f;
    p.rope_scale_linear = 8.f;
    p.vocab = VocabStyle::kGemma;
    v.push_back(p);
  }
  {  // Qwen/Qwen2-VL-2B-Instruct (text): mrope_section [16, 24, 24]; vision in the mmproj preset of the same name
    ModelPreset p{"qwen2-vl-2b", "qwen2vl", 1536, 28, 12, 2, 8960, 151936, 32768, 1000000.f, 1e-6f, true};
    p.rope_sections = {16, 24, 24, 0};
    v.push_back(p);
  }
  {  // Qwen/Qwen2.5-VL-3B-Instruct (text): 36 blocks of 2048, 16 heads, 2 KV heads, FFN 11008, tied output,
     // max_position_embeddings 128000, mrope_section [16, 24, 24]; vision in the mmproj preset of the same name
    ModelPreset p{"qwen2.5-vl-3b", "qwen2vl", 2048, 36, 16, 2, 11008, 151936, 128000, 1000000.f, 1e-6f, true};
    p.rope_sections = {16, 24, 24, 0};
    v.push_back(p);
  }
  {  // THUDM/glm-edge-v-2b (text, GLM layout as the converter writes it; figures from its config, not
     // checked offline): 28 blocks of 2048, 16 heads of 128, 4 KV heads, rope on half of each head
    ModelPreset p{"glm-edge-v-2b", "chatglm", 2048, 28, 16, 4, 6144, 59264, 8192, 10000.f, 1e-5f, false};
    p.head_dim = 128;
    p.rope_dims = 64;
    v.push_back(p);
  }
  {  // THUDM/glm-4-9b: multi_query_group_num 2, kv_channels 128, rope on half of each head
    ModelPreset p{"glm-4-9b", "chatglm", 4096, 40, 32, 2, 13696, 151552, 8192, 10000.f, 1.5625e-7f, false};
    p.rope_dims = 64;
    v.push_back(p);
  }
  {  // mistralai/Mistral-7B-Instruct-v0.3: vocabulary 32768 with control tokens for tool calling
    ModelPreset p{"mistral-7b-v0.3", "llama", 4096, 32, 32, 8, 14336, 32768, 32768, 1000000.f, 1e-5f, false};
    p.vocab = VocabStyle::kMistralV3;
    v.push_back(p);
  }
  {  // mistralai/Mixtral-8x7B-v0.1: 8 experts of width 14336, 2 per token
    ModelPreset p{"mixtral-8x7b", "llama", 4096, 32, 32, 8, 14336, 32000, 32768, 1000000.f, 1e-5f, false};
    p.n_expert = 8;
    p.n_expert_used = 2;
    v.push_back(p);
  }
  {  // Qwen/Qwen1.5-MoE-A2.7B: 60 experts of width 1408, 4 per token, shared expert of 5632
    ModelPreset p{"qwen1.5-moe-a2.7b", "qwen2moe", 2048, 24, 16, 16, 5632, 151936, 8192, 1000000.f, 1e-6f, false};
    p.n_expert = 60;
    p.n_expert_used = 4;
    p.n_ff_exp = 1408;
    p.n_ff_shexp = 5632;
    v.push_back(p);
  }
  {  // BAAI/bge-small-en-v1.5: BERT, CLS pooling
    ModelPreset p{"bge-small-en-v1.5", "bert", 384, 12, 12, 12, 1536, 30522, 512, 10000.f, 1e-12f, false};
    p.pooling = 2;
    p.norm_eps = 1e-12f;
    p.vocab = VocabStyle::kWordPiece;
    v.push_back(p);
  }
  {  // nomic-ai/nomic-embed-text-v1.5: nomic-bert, rotary base 1000, SwiGLU, mean pooling
    ModelPreset p{"nomic-embed-text-v1.5", "nomic-bert", 768, 12, 12, 12, 3072, 30528, 2048, 1000.f, 1e-12f, false};
    p.pooling = 1;
    p.norm_eps = 1e-12f;
    p.vocab = VocabStyle::kWordPiece;
    v.push_back(p);
  }
  for (auto& p : v) p.full_layers = p.n_layer;
  return v;
}

const std::vector<ModelPreset>& presets() {
  static const std::vector<ModelPreset> kPresets = make_presets();
  return kPresets;
}

}  // namespace

core::Result<ModelPreset> find_model_preset(const std::string& name) {
  for (const auto& p : presets())
    if (p.name == name) return p;
  std::string known;
  for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
  return core::Status::error("unknown model preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : presets()) names.push_back(p.name);
  return names;
}

core::Result<ModelPreset> with_layers(const ModelPreset& preset, int n_layer) {
  if (n_layer < 1 || n_layer > preset.n_layer)
    return core::Status::error("--layers " + std::to_string(n_layer) + " is out of range for preset '" + preset.name +
                               "' (1 to " + std::to_string(preset.n_layer) + " blocks)");
  ModelPreset p = preset;
  p.n_layer = n_layer;
  return p;
}

}  // namespace zs::engine
