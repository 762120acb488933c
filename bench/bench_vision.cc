// Vision encoder throughput on random-weight projectors in the shapes of real ones, against
// text prefill measured in the same run (both are batches of matrix products, so an encoder
// that reaches prefill's GFLOP/s is compute-bound), and the full attention of the encoders'
// shapes against the scalar loop it replaced. Qwen2-VL and Qwen2.5-VL run at native resolution:
// their encoders are measured on a --qwen-size square image (Qwen2.5-VL: 4x4 windows of 4x4
// tokens at 448), and a 1024x768 photo is encoded at `detail: low` (<= 256 tokens) against
// `high` (Qwen2-VL 1,036 tokens, Qwen2.5-VL 999), alternately, for the ratio of their times.
//
//   bench_vision [--preset NAME|all] [--type f16|f32] [--blocks N] [--qwen-size PX]
//                [--text-preset smollm2-135m] [--threads N] [--repeats N] [--prompt-tokens N]
//
// --blocks N cuts every encoder to its first N blocks (default 4; 0 = all): GFLOP/s and the
// low/high ratio do not depend on the depth, and the real depths take minutes per image here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "engine/backend/backend.h"
#include "engine/kernels/matmul.h"
#include "engine/model/llm.h"
#include "engine/model/random_mmproj.h"
#include "engine/model/random_model.h"
#include "engine/model/session.h"
#include "engine/quant/quantize.h"
#include "engine/vision/attention_reference.h"
#include "engine/vision/clip_encoder.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"
#include "engine/vision/qwen2vl_encoder.h"

namespace {

using namespace zs;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Options {
  std::vector<std::string> presets = {"clip-vit-l-336", "siglip-512-smolvlm", "smolvlm-256m", "gemma-3-4b",
                                      "llava-1.6-mistral-7b", "glm-edge-v-2b", "qwen2-vl-2b", "qwen2.5-vl-3b"};
  std::string type = "f16";
  int blocks = 4;
  int qwen_size = 448;
  std::string text_preset = "smollm2-135m";
  int threads = 0;
  int repeats = 3;
  int prompt_tokens = 128;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const std::string a = argv[i];
    const char* v = nullptr;
    if (a == "--preset" && (v = next())) {
      if (std::string(v) != "all") o.presets = {v};
    } else if (a == "--type" && (v = next())) {
      o.type = v;
    } else if (a == "--blocks" && (v = next())) {
      o.blocks = std::max(0, std::atoi(v));
    } else if (a == "--qwen-size" && (v = next())) {
      o.qwen_size = std::max(28, std::atoi(v) / 28 * 28);
    } else if (a == "--text-preset" && (v = next())) {
      o.text_preset = v;
    } else if (a == "--threads" && (v = next())) {
      o.threads = std::atoi(v);
    } else if (a == "--repeats" && (v = next())) {
      o.repeats = std::max(1, std::atoi(v));
    } else if (a == "--prompt-tokens" && (v = next())) {
      o.prompt_tokens = std::max(1, std::atoi(v));
    } else {
      std::fprintf(stderr, "usage: bench_vision [--preset NAME|all] [--type f16|f32] [--blocks N] [--qwen-size PX] "
                           "[--text-preset NAME] [--threads N] [--repeats N] [--prompt-tokens N]\n");
      return false;
    }
  }
  return true;
}

std::string temp_path(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/zs-bench-vision-" + std::to_string(::getpid()) + "-" + name;
}

// Text prefill of n_prompt random tokens; GFLOP/s counts the blocks' matrix products, as
// `zeroserve bench` does.
class Prefill {
 public:
  Prefill(const engine::Llm& llm, engine::Backend& backend, int n_prompt)
      : session_(*llm.model, backend, n_prompt + 1, n_prompt), prompt_(n_prompt) {
    std::mt19937 rng(7);
    for (auto& t : prompt_) t = static_cast<int32_t>(rng() % session_.n_vocab());
    for (const auto& L : llm.model->layers())
      for (const engine::WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
        flops_ += 2.0 * static_cast<double>(w->n_in) * static_cast<double>(w->n_out) * n_prompt;
  }
  double run() {
    session_.truncate(0);
    auto t = Clock::now();
    if (!session_.eval(prompt_)) std::abort();
    return seconds_since(t);
  }
  double flops() const { return flops_; }

 private:
  engine::Session session_;
  std::vector<int32_t> prompt_;
  double flops_ = 0;
};

// GELU as it was: the tanh formula per element through f16 rounding, split over the pool.
void gelu_before(float* x, int64_t n, core::ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    constexpr float kSqrt2OverPi = 0.79788456080286535588f;
    for (int64_t i = b; i < e; ++i) {
      const float v = engine::f16_to_f32(engine::f32_to_f16(x[i]));
      x[i] = engine::f16_to_f32(
          engine::f32_to_f16(0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + 0.044715f * v * v)))));
    }
  });
}

std::vector<float> random_pixels(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> p(n);
  for (auto& x : p) x = dist(rng);
  return p;
}

// Qwen2-VL and Qwen2.5-VL: throughput on a square image, then a 1024x768 photo at detail low vs
// high (each family's own resize rule).
int bench_qwen2vl(const Options& o, const std::string& name, const engine::ClipModel& clip, engine::Backend& backend,
                  Prefill& prefill) {
  engine::Qwen2VlEncoder encoder(clip, backend);
  std::mt19937 rng(11);
  const int side = o.qwen_size;
  auto pixels = random_pixels(3 * static_cast<size_t>(side) * side, rng);
  if (!encoder.encode(pixels.data(), side, side)) return 1;
  double s_image = 1e30, s_prefill = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    s_prefill = std::min(s_prefill, prefill.run());
    auto t = Clock::now();
    if (!encoder.encode(pixels.data(), side, side)) return 1;
    s_image = std::min(s_image, seconds_since(t));
  }
  const double flops = encoder.flops(side, side);
  const double gflops = flops / s_image / 1e9, prefill_gflops = prefill.flops() / s_prefill / 1e9;
  const int tokens = (side / 28) * (side / 28);
  std::printf("\n%s (%s, %dx%d image = %d tokens of %d patches, %d blocks run)\n", name.c_str(), o.type.c_str(),
              side, side, tokens, 4 * tokens, clip.config().n_layer_run);
  std::printf("  encoder        %.3f images/s (%.0f ms), %.1f GFLOP/s of %.1f GFLOP per image\n", 1 / s_image,
              s_image * 1e3, gflops, flops / 1e9);
  std::printf("  text prefill   %.1f GFLOP/s\n", prefill_gflops);
  std::printf("  RESULT vision-vs-prefill %s %.2f (encoder GFLOP/s / text prefill GFLOP/s; target >= 1.0)\n",
              name.c_str(), gflops / prefill_gflops);

  // A 1024x768 photo: its sizes at detail high (the reference's resize) and low (<= 256 tokens).
  const engine::ClipConfig& c = clip.config();
  const engine::ImageSize high = engine::native_image_size(c, 1024, 768, 0),
                          low = engine::native_image_size(c, 1024, 768, 256);
  auto high_px = random_pixels(3 * static_cast<size_t>(high.width) * high.height, rng);
  auto low_px = random_pixels(3 * static_cast<size_t>(low.width) * low.height, rng);
  std::vector<double> ratios;
  double t_high = 1e30, t_low = 1e30;
  for (int r = 0; r < std::max(2, o.repeats); ++r) {
    auto t = Clock::now();
    if (!encoder.encode(low_px.data(), low.width, low.height)) return 1;
    const double l = seconds_since(t);
    t = Clock::now();
    if (!encoder.encode(high_px.data(), high.width, high.height)) return 1;
    const double h = seconds_since(t);
    t_low = std::min(t_low, l);
    t_high = std::min(t_high, h);
    ratios.push_back(l / h);
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("  1024x768 photo high %dx%d = %d tokens: %.0f ms; low %dx%d = %d tokens: %.0f ms\n", high.width,
              high.height, (high.width / 28) * (high.height / 28), t_high * 1e3, low.width, low.height,
              (low.width / 28) * (low.height / 28), t_low * 1e3);
  std::printf("  RESULT %s-detail-low-vs-high %.3f (median of %zu paired rounds; target <= 0.25)\n",
              c.projector == engine::ProjectorType::kQwen25VlMerger ? "qwen25vl" : "qwen2vl", ratios[ratios.size() / 2],
              ratios.size());
  return 0;
}

int run(const Options& o) {
  auto backend = engine::make_cpu_backend(o.threads);
  core::ThreadPool pool(backend->threads());
  std::printf("threads %d, kernels %s\n", backend->threads(), std::string(engine::kernel_isa()).c_str());

  auto text_preset = engine::find_model_preset(o.text_preset);
  if (!text_preset) return std::fprintf(stderr, "%s\n", text_preset.status().message().c_str()), 1;
  const std::string text_path = temp_path("text.gguf");
  if (auto s = engine::write_random_model(text_preset.value(), engine::FileType::kF16, text_path); !s)
    return std::fprintf(stderr, "%s\n", s.message().c_str()), 1;
  auto llm = engine::Llm::load(text_path);
  std::remove(text_path.c_str());  // the mapping keeps the data
  if (!llm) return std::fprintf(stderr, "%s\n", llm.status().message().c_str()), 1;
  Prefill prefill(llm.value(), *backend, o.prompt_tokens);
  prefill.run();  // touches the pages
  std::printf("text model       %s f16, prefill of %d tokens, measured alternately with each encoder\n",
              o.text_preset.c_str(), o.prompt_tokens);

  for (const std::string& name : o.presets) {
    auto preset = engine::find_mmproj_preset(name);
    if (!preset) return std::fprintf(stderr, "%s\n", preset.status().message().c_str()), 1;
    engine::MmprojPreset cut = preset.value();
    // LLaVA runs all blocks but the last: keep one more so as many run as asked.
    if (o.blocks > 0) cut.n_layer = std::min(cut.n_layer, o.blocks + (cut.projector_type == "mlp" ? 1 : 0));
    // Qwen2.5-VL cut short keeps one full-attention block: its last (the rest windowed).
    if (cut.projector_type == "qwen2.5vl_merger") cut.n_wa_pattern = std::min(cut.n_wa_pattern, cut.n_layer);
    const std::string path = temp_path(name + ".gguf");
    const auto type = o.type == "f32" ? engine::GgmlType::kF32 : engine::GgmlType::kF16;
    if (auto s = engine::write_random_mmproj(cut, type, path); !s)
      return std::fprintf(stderr, "%s\n", s.message().c_str()), 1;
    auto clip = engine::ClipModel::load(path);
    std::remove(path.c_str());  // the mapping keeps the data
    if (!clip) return std::fprintf(stderr, "%s\n", clip.status().message().c_str()), 1;
    const engine::ClipConfig& c = clip.value()->config();
    if (c.native_resolution()) {
      if (int rc = bench_qwen2vl(o, name, *clip.value(), *backend, prefill); rc != 0) return rc;
      continue;
    }
    engine::ClipEncoder encoder(*clip.value(), *backend);

    std::vector<float> pixels(3 * static_cast<size_t>(c.image_size) * c.image_size);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (auto& p : pixels) p = dist(rng);
    // Prefill and encoder alternate, so that both see the same machine (other load, clocks).
    auto warm = encoder.encode(pixels.data());
    if (!warm) return std::fprintf(stderr, "%s: %s\n", name.c_str(), warm.status().message().c_str()), 1;
    double s_image = 1e30, s_prefill = 1e30;
    for (int r = 0; r < o.repeats; ++r) {
      s_prefill = std::min(s_prefill, prefill.run());
      auto t = Clock::now();
      if (!encoder.encode(pixels.data())) return 1;
      s_image = std::min(s_image, seconds_since(t));
    }
    const double gflops = encoder.flops_per_image() / s_image / 1e9;
    const double prefill_gflops = prefill.flops() / s_prefill / 1e9;
    std::printf("\n%s (%s, %d tokens, %d blocks run)\n", name.c_str(), o.type.c_str(),
                c.n_patches() + (c.has_class_token ? 1 : 0), c.n_layer_run);
    std::printf("  encoder        %.3f images/s (%.0f ms), %.1f GFLOP/s of %.1f GFLOP per image\n", 1 / s_image,
                s_image * 1e3, gflops, encoder.flops_per_image() / 1e9);
    std::printf("  text prefill   %.1f GFLOP/s\n", prefill_gflops);
    std::printf("  RESULT vision-vs-prefill %s %.2f (encoder GFLOP/s / text prefill GFLOP/s; target >= 1.0)\n",
                name.c_str(), gflops / prefill_gflops);

    // Attention of one block, in this encoder's shape, on random activations.
    const int64_t t_n = c.n_patches() + (c.has_class_token ? 1 : 0);
    const int hd = c.n_embd / c.n_head;
    const size_t n = static_cast<size_t>(t_n) * c.n_embd;
    std::vector<float> q(n), k(n), v(n), out(n);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (auto* buf : {&q, &k, &v})
      for (auto& x : *buf) x = nd(rng);
    const float scale = 1.f / std::sqrt(static_cast<float>(hd));
    double before = 1e30, after = 1e30;
    for (int r = 0; r < o.repeats; ++r) {
      auto t = Clock::now();
      engine::attention_full_reference(q.data(), k.data(), v.data(), t_n, c.n_head, hd, scale, out.data(), pool);
      before = std::min(before, seconds_since(t));
      t = Clock::now();
      backend->attention_full(q.data(), k.data(), v.data(), t_n, c.n_head, hd, scale, out.data());
      after = std::min(after, seconds_since(t));
    }
    const double attn_flops = 4.0 * t_n * t_n * c.n_embd;
    std::printf("  attention      before %.1f ms (%.1f GFLOP/s), after %.1f ms (%.1f GFLOP/s): %.1fx faster\n",
                before * 1e3, attn_flops / before / 1e9, after * 1e3, attn_flops / after / 1e9, before / after);

    // GELU over one block's MLP activations.
    std::vector<float> ff(static_cast<size_t>(t_n) * c.n_ff);
    for (auto& x : ff) x = nd(rng);
    std::vector<float> work = ff;
    double g_before = 1e30, g_after = 1e30;
    for (int r = 0; r < o.repeats; ++r) {
      std::copy(ff.begin(), ff.end(), work.begin());
      auto t = Clock::now();
      gelu_before(work.data(), static_cast<int64_t>(work.size()), pool);
      g_before = std::min(g_before, seconds_since(t));
      std::copy(ff.begin(), ff.end(), work.begin());
      t = Clock::now();
      backend->gelu(work.data(), static_cast<int64_t>(work.size()));
      g_after = std::min(g_after, seconds_since(t));
    }
    std::printf("  gelu           before %.2f ms, after %.2f ms: %.1fx faster (%zu values)\n",
                g_before * 1e3, g_after * 1e3, g_before / g_after, work.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) return 2;
  return run(o);
}
