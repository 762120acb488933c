// Speculative decoding (prompt lookup) against plain decoding, in one process on the batch
// engine, in interleaved rounds (the order alternates), reporting medians of per-round ratios:
//   copy        a prompt holding a document that the answer quotes back (real stories260K and
//               TinyStories-656K): decode tokens/s with drafts vs without (target >= 1.8x)
//   open        open-ended generation (sampled stories, and bench-1b's random weights, where
//               drafts almost never hold): the same ratio (target >= 0.95x: it must not cost)
//   draft-model bench-1b with a draft model of a quarter of its blocks (same vocabulary, other
//               random weights, so its drafts are guesses): acceptance and the ratio, reported
// Decode tokens/s counts the tokens after the first over the time after the first (so prefill
// is not in it). Also prints the share of drafts kept and tokens per step.
// Options: --rounds N (default 7; six times as many on the two small models), --tokens N (default 160), --draft N (default 4), --threads N
// (default 2), --model F (the bench-1b file; generated once otherwise), --no-big (skip bench-1b),
// --zeroserve PATH.
#include <cstring>
#include <future>

#include "bench_util.h"
#include "engine/backend/backend.h"
#include "engine/batch/batch_engine.h"
#include "engine/model/model_preset.h"
#include "engine/model/random_model.h"

using namespace zs;
using namespace zs::bench;

namespace {

struct Outcome {
  double decode_tps = 0;
  uint64_t drafted = 0, kept = 0, tokens = 0, steps = 0;
  std::string text;
};

Outcome generate(const engine::Llm& llm, int threads, int draft, const std::string& prompt, int tokens,
                 float temperature, uint64_t seed, const engine::Llm* draft_model = nullptr) {
  auto backend = engine::make_cpu_backend(threads);
  engine::BatchEngineOptions o;
  o.slots = 1;
  o.ctx_tokens = 2048;
  o.draft_tokens = draft;
  o.draft_model = draft > 0 ? draft_model : nullptr;
  engine::BatchEngine eng(llm, *backend, o);
  engine::GenerationRequest r;
  engine::PromptPiece piece;
  piece.tokens = llm.tokenizer->encode(prompt, true, true);
  r.prompt.pieces.push_back(std::move(piece));
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.max_tokens = tokens;
  // The first event with a token ends the prefill; decode is what follows it.
  struct Track {
    Clock::time_point first, last;
    int first_tokens = -1, count = 0;
    std::string text;
    std::promise<void> done;
  };
  auto t = std::make_shared<Track>();
  r.on_event = [t](const engine::GenerationEvent& e) {
    const auto now = Clock::now();
    if (t->first_tokens < 0 && e.completion_tokens > 0) {
      t->first_tokens = e.completion_tokens;
      t->first = now;
    }
    if (e.completion_tokens > 0) t->count = e.completion_tokens;
    t->last = now;
    t->text += e.text;
    if (e.finished) t->done.set_value();
  };
  if (!eng.submit(std::move(r)).is_ok()) die("submit failed");
  t->done.get_future().wait();
  Outcome out;
  const double secs = seconds_between(t->first, t->last);
  out.decode_tps = secs > 0 ? (t->count - t->first_tokens) / secs : 0;
  out.text = t->text;
  const auto s = eng.stats();
  out.drafted = s.spec_drafted;
  out.kept = s.spec_accepted;
  out.tokens = s.decode_tokens;
  out.steps = s.decode_steps;
  return out;
}

struct Case {
  std::string name;
  const engine::Llm* llm;
  std::string prompt;
  float temperature;
  const engine::Llm* draft_model = nullptr;  // null: prompt lookup
  // Rounds per --rounds: the small models generate 160 tokens in about 10 ms, too short a
  // measurement to take few of.
  int round_factor = 1;
};

}  // namespace

int main(int argc, char** argv) {
  constexpr int kSmallRounds = 6;
  int rounds = 7, tokens = 160, draft = 4, threads = 2;
  bool big = true;
  std::string model_flag, zs_flag;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* what) -> std::string {
      if (i + 1 >= argc) die(std::string(what) + " needs a value");
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::stoi(next("--rounds"));
    else if (!std::strcmp(argv[i], "--tokens")) tokens = std::stoi(next("--tokens"));
    else if (!std::strcmp(argv[i], "--draft")) draft = std::stoi(next("--draft"));
    else if (!std::strcmp(argv[i], "--threads")) threads = std::stoi(next("--threads"));
    else if (!std::strcmp(argv[i], "--model")) model_flag = next("--model");
    else if (!std::strcmp(argv[i], "--zeroserve")) zs_flag = next("--zeroserve");
    else if (!std::strcmp(argv[i], "--no-big")) big = false;
    else if (!std::strcmp(argv[i], "--quick")) rounds = 3;
    else die(std::string("unknown option ") + argv[i]);
  }
  const std::string shared = ZS_SHARED_DIR;
  auto load = [](const std::string& path) {
    auto l = engine::Llm::load(path);
    if (!l) die(path + ": " + l.status().message());
    return std::move(l.value());
  };
  const engine::Llm stories = load(shared + "/golden/models/stories260K.gguf");
  const engine::Llm tiny = load(shared + "/golden/models/TinyStories-656K-Q8_0.gguf");
  std::optional<engine::Llm> bench1b, bench1b_draft;
  if (big) {
    const std::string target = ensure_model(model_flag, find_zeroserve(zs_flag));
    bench1b = load(target);
    // The draft: the same shapes and vocabulary with a quarter of the blocks (about a quarter of
    // the weights read per token), other random weights.
    const std::string draft_path = target + ".draft-quarter.gguf";
    if (!fs::exists(draft_path)) {
      auto preset = engine::find_model_preset("bench-1b");
      auto quarter = engine::with_layers(preset.value(), std::max(1, bench1b->model->config().n_layer / 4));
      if (!quarter || !engine::write_random_model(quarter.value(), engine::FileType::kQ4_K_M, draft_path, 7).is_ok())
        die("cannot write the draft model " + draft_path);
    }
    bench1b_draft = load(draft_path);
    if (auto st = engine::check_draft_model(*bench1b, *bench1b_draft); !st) die(st.message());
  }

  // The document to quote: the model's own story (these small models are not instruction-tuned,
  // and repeat best what they would write), then its opening again, for the model to go on.
  auto copy_prompt = [&](const engine::Llm& llm) {
    const std::string story = "Once upon a time" + generate(llm, threads, 0, "Once upon a time", 200, 0, 1).text;
    return story + "\n\nOnce upon a time";
  };
  std::vector<Case> cases = {
      {"copy stories260K", &stories, copy_prompt(stories), 0, nullptr, kSmallRounds},
      {"copy TinyStories-656K", &tiny, copy_prompt(tiny), 0, nullptr, kSmallRounds},
      {"open stories260K (sampled)", &stories, "Once upon a time", 0.8f, nullptr, kSmallRounds},
      {"open TinyStories-656K (sampled)", &tiny, "Lily and Tom", 0.8f, nullptr, kSmallRounds},
  };
  if (bench1b) {
    cases.push_back({"open bench-1b (random weights)", &*bench1b, "The history of the city", 0});
    cases.push_back({"draft-model bench-1b, 1/4 draft", &*bench1b, "The history of the city", 0, &*bench1b_draft});
  }

  std::printf("bench_speculative: %d rounds (%d on stories260K and TinyStories-656K), %d tokens, %d draft tokens, "
              "%d threads, load %.2f\n", rounds, rounds * kSmallRounds, tokens, draft, threads, load_average());
  for (const Case& c : cases) {
    std::vector<double> ratios, with_tps, without_tps;
    uint64_t drafted = 0, kept = 0, dtok = 0, dsteps = 0;
    for (int r = 0; r < rounds * c.round_factor; ++r) {
      Outcome w, wo;
      const uint64_t seed = 100 + static_cast<uint64_t>(r);
      if (r % 2 == 0) {
        w = generate(*c.llm, threads, draft, c.prompt, tokens, c.temperature, seed, c.draft_model);
        wo = generate(*c.llm, threads, 0, c.prompt, tokens, c.temperature, seed);
      } else {
        wo = generate(*c.llm, threads, 0, c.prompt, tokens, c.temperature, seed);
        w = generate(*c.llm, threads, draft, c.prompt, tokens, c.temperature, seed, c.draft_model);
      }
      ratios.push_back(w.decode_tps / wo.decode_tps);
      with_tps.push_back(w.decode_tps);
      without_tps.push_back(wo.decode_tps);
      drafted += w.drafted;
      kept += w.kept;
      dtok += w.tokens;
      dsteps += w.steps;
    }
    const bool copy = c.name.rfind("copy", 0) == 0;
    std::printf("%-34s decode %8.1f tok/s with drafts, %8.1f without; kept %5.1f%% of %llu drafts, %.2f tokens/step\n",
                c.name.c_str(), median(with_tps), median(without_tps), drafted ? 100.0 * kept / drafted : 0.0,
                static_cast<unsigned long long>(drafted), dsteps ? static_cast<double>(dtok) / dsteps : 0.0);
    const char* target = c.draft_model ? "report" : copy ? ">= 1.8x" : ">= 0.95x";
    std::printf("RESULT speculative %-34s ratio %.2fx (rounds %.2f-%.2f; target %s)\n", c.name.c_str(), median(ratios),
                quantile(ratios, 0), quantile(ratios, 1), target);
  }
  std::printf("load at the end %.2f\n", load_average());
  return 0;
}
