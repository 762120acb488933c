#include "engine/batch/batch_engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/log.h"

namespace zs::engine {

using core::Result;
using core::Status;

core::Status check_draft_model(const Llm& target, const Llm& draft) {
  if (draft.model->config().is_encoder()) return Status::invalid_argument("the draft model is an embedding model");
  const Tokenizer& a = *target.tokenizer;
  const Tokenizer& b = *draft.tokenizer;
  if (a.n_vocab() != b.n_vocab() || target.model->config().n_vocab != draft.model->config().n_vocab)
    return Status::invalid_argument("the draft model's vocabulary has " + std::to_string(b.n_vocab()) +
                                    " tokens, the model's " + std::to_string(a.n_vocab()) + ": they must be the same");
  for (int32_t id = 0; id < a.n_vocab(); ++id)
    if (a.token_text(id) != b.token_text(id))
      return Status::invalid_argument("the draft model's vocabulary differs from the model's at token " +
                                      std::to_string(id) + " (\"" + std::string(b.token_text(id)) + "\" vs \"" +
                                      std::string(a.token_text(id)) + "\")");
  return Status::ok();
}

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
    case FinishReason::kNone: break;
  }
  return "";
}

std::string_view request_priority_name(RequestPriority p) {
  return p == RequestPriority::kBatch ? "batch" : "interactive";
}

std::optional<RequestPriority> parse_request_priority(std::string_view name) {
  if (name == "interactive") return RequestPriority::kInteractive;
  if (name == "batch") return RequestPriority::kBatch;
  return std::nullopt;
}

namespace {
// Steps without drafting after three failed drafts in a row: the first time, and at most.
constexpr int kFirstCooldown = 16;
constexpr int kLongestCooldown = 512;
}  // namespace

struct BatchEngine::Sequence {
  uint64_t id = 0;
  GenerationRequest request;
  std::vector<int32_t> ids;              // per position: token id, or a negative image id
  std::vector<const float*> embeddings;  // per position: an image embedding row, or null
  std::vector<RopePosition> rope;        // M-RoPE models: per prompt position
  int32_t rope_next = 0;                 // M-RoPE: rotary position of the first generated token
  // M-RoPE models: per prompt position inside an image, where that image starts and ends (its
  // rows see each other, so a step takes all of them or none); -1 elsewhere.
  std::vector<int32_t> image_start, image_end;
  int n_prompt = 0;
  int n_image = 0;
  int max_tokens = 0;
  int n_computed = 0;  // positions whose keys/values are in the cache
  std::vector<int32_t> blocks;
  std::vector<uint64_t> block_hashes;  // of the leading full blocks published so far
  int cached_tokens = 0;
  int generated = 0;
  int pauses = 0;
  int preemptions = 0;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStreamer> streamer;
  int32_t constraint_state = 0;
  std::vector<int32_t> allowed_scratch;  // allowed tokens, when the constraint's cache is full
  std::vector<TokenLogprob> pending_logprobs;
  // Speculative decoding: this step's draft, the most drafted tokens allowed now, failures in
  // a row and steps left without drafting.
  std::vector<int32_t> draft;
  int spec_k = 0;
  int spec_misses = 0;
  int spec_cooldown = 0;
  int spec_backoff = kFirstCooldown;  // the next cooldown; doubles while drafts keep failing
  double spec_rate = 0.5;             // share of draft tokens kept, smoothed
  // Draft model: its cache's blocks, the positions it holds, and ids.size() when it drafted
  // this step (-1: it did not).
  std::vector<int32_t> draft_blocks;
  int draft_computed = 0;
  int draft_base = -1;
  bool stepped = false;  // has taken part in a step
  bool woke = false;     // arrived while the engine slept

  int remaining() const { return static_cast<int>(ids.size()) - n_computed; }
  bool batch() const { return request.priority == RequestPriority::kBatch; }
};

BatchEngine::BatchEngine(const Llm& llm, Backend& backend, BatchEngineOptions options)
    : llm_(llm), backend_(backend), options_(options) {
  options_.slots = std::max(1, options_.slots);
  options_.block_size = std::max(1, options_.block_size);
  options_.step_token_budget = std::max(options_.slots, options_.step_token_budget);
  const int n_blocks = std::max(1, (options_.ctx_tokens + options_.block_size - 1) / options_.block_size);
  max_context_ = std::min(n_blocks * options_.block_size, llm.model->config().n_ctx_train);
  kv_ = std::make_unique<KvPool>(llm.model->config(), backend, n_blocks, options_.block_size);
  forward_ = std::make_unique<Forward>(*llm.model, backend, *kv_, options_.step_token_budget, max_context_);
  options_.draft_tokens = std::clamp(options_.draft_tokens, 0, 16);
  // A sequence takes at most one chunk per step, so a step wants at most `slots` logit rows
  // (each with its draft rows when speculating).
  logits_.resize(static_cast<size_t>(options_.slots) * (1 + options_.draft_tokens) * llm.model->config().n_vocab);
  if (options_.draft_model && options_.draft_tokens > 0) {
    const TextModel& dm = *options_.draft_model->model;
    draft_kv_ = std::make_unique<KvPool>(dm.config(), backend, n_blocks, options_.block_size);
    draft_forward_ = std::make_unique<Forward>(dm, backend, *draft_kv_, options_.step_token_budget, max_context_);
    draft_logits_.resize(static_cast<size_t>(options_.slots) * dm.config().n_vocab);
  }
  thread_ = std::thread([this] { loop(); });
}

BatchEngine::~BatchEngine() { shutdown(); }

void BatchEngine::shutdown() {
  {
    core::MutexLock lock(mutex_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  wake_.notify_all();
  awake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::deque<std::unique_ptr<Sequence>> inbox;
  std::vector<std::function<void(Result<uint64_t>)>> sleepers;
  {
    core::MutexLock lock(mutex_);
    inbox.swap(inbox_);
    sleepers.swap(sleep_callers_);
  }
  for (auto& done : sleepers) done(Status::unavailable("the engine is shutting down"));
  for (auto& s : inbox) finish(*s, FinishReason::kCancelled);
  for (auto& s : waiting_) finish(*s, FinishReason::kCancelled);
  for (auto& s : running_) finish(*s, FinishReason::kCancelled);
  for (auto& s : paused_) finish(*s, FinishReason::kCancelled);
  waiting_.clear();
  running_.clear();
  paused_.clear();
}

Result<uint64_t> BatchEngine::submit(GenerationRequest request) {
  ZS_RETURN_IF_ERROR(request.sampling.validate());
  auto s = std::make_unique<Sequence>();
  for (const auto& piece : request.prompt.pieces) {
    if (piece.embeddings) {
      if (piece.n_embeddings > 0 && !piece.storage) return Status::invalid_argument("image embeddings without storage");
      s->n_image += piece.n_embeddings;
    }
  }
  s->ids = request.prompt.flat_ids();
  const int64_t d = llm_.model->config().n_embd;
  for (const auto& piece : request.prompt.pieces) {
    if (piece.embeddings) {
      for (int i = 0; i < piece.n_embeddings; ++i) s->embeddings.push_back(piece.embeddings + i * d);
    } else {
      s->embeddings.insert(s->embeddings.end(), piece.tokens.size(), nullptr);
    }
  }
  const bool mrope = llm_.model->config().rope_mode == RopeMode::kMrope;
  if (mrope) s->rope = request.prompt.rope_positions(&s->rope_next);
  // Images whose rows see each other (Qwen2-VL, Gemma 3): where each one starts and ends, so
  // that a step takes all of its rows or none.
  bool any_whole = false;
  for (const auto& piece : request.prompt.pieces) any_whole |= piece.embeddings && piece.bidirectional;
  if (any_whole) {
    for (const auto& piece : request.prompt.pieces) {
      const int32_t a = static_cast<int32_t>(s->image_start.size());
      const bool whole = piece.embeddings && piece.bidirectional;
      s->image_start.insert(s->image_start.end(), piece.n_positions(), whole ? a : -1);
      s->image_end.insert(s->image_end.end(), piece.n_positions(), whole ? a + piece.n_positions() : -1);
    }
  }
  s->n_prompt = static_cast<int>(s->ids.size());
  if (s->n_prompt == 0) return Status::invalid_argument("the prompt is empty");
  if (s->n_prompt + 1 > max_context_)
    return Status::invalid_argument("the prompt needs " + std::to_string(s->n_prompt) + " positions (" +
                         std::to_string(s->n_image) + " for images) but the context holds " +
                         std::to_string(max_context_));
  s->max_tokens = request.max_tokens < 0 ? max_context_ - s->n_prompt
                                         : std::min(request.max_tokens, max_context_ - s->n_prompt);
  s->sampler = std::make_unique<Sampler>(request.sampling);
  for (const auto& [token, bias] : request.logit_bias)
    if (token < 0 || token >= llm_.model->config().n_vocab)
      return Status::error("logit_bias names token " + std::to_string(token) + ", outside the vocabulary of " +
                           std::to_string(llm_.model->config().n_vocab));
  s->sampler->set_logit_bias(request.logit_bias);
  for (int32_t t : s->ids)
    if (t >= 0) s->sampler->accept(t);
  s->streamer = std::make_unique<TextStreamer>(request.stop);
  s->spec_k = options_.draft_tokens;
  if (request.constraint) s->constraint_state = request.constraint->start();
  request.logprobs = std::min(request.logprobs, 20);
  if (request.arrived == std::chrono::steady_clock::time_point{}) request.arrived = std::chrono::steady_clock::now();
  s->request = std::move(request);
  uint64_t id;
  {
    core::MutexLock lock(mutex_);
    if (stop_) return Status::unavailable("the engine is shutting down");
    // It arrived while asleep, or is the request an explicit wake() was made for.
    s->woke = asleep_.load() || wake_called_;
    wake_called_ = false;
    id = s->id = next_id_++;
    inbox_.push_back(std::move(s));
  }
  wake_.notify_all();
  return id;
}

void BatchEngine::cancel(uint64_t id) {
  {
    core::MutexLock lock(mutex_);
    cancelled_.push_back(id);
  }
  wake_.notify_all();
}

BatchEngineStats BatchEngine::stats() const {
  BatchEngineStats s;
  s.running = n_running_.load();
  s.waiting = n_waiting_.load();
  s.kv_blocks_used = kv_used_.load();
  s.kv_blocks_total = kv_->n_blocks();
  s.prefix_cache_hits = prefix_hits_.load();
  s.preemptions = preemptions_.load();
  s.pauses = pauses_.load();
  s.steps = steps_.load();
  s.spec_drafted = spec_drafted_.load();
  s.spec_accepted = spec_accepted_.load();
  s.decode_tokens = decode_tokens_.load();
  s.decode_steps = decode_steps_.load();
  s.asleep = asleep_.load();
  s.sleeps = sleeps_.load();
  s.wakes = wakes_.load();
  s.paused = n_paused_.load();
  s.running_batch = std::min(s.running, n_running_batch_.load());
  s.running_interactive = s.running - s.running_batch;
  s.waiting_batch = std::min(s.waiting, n_waiting_batch_.load());
  s.waiting_interactive = s.waiting - s.waiting_batch;
  return s;
}

void BatchEngine::loop() {
  for (;;) {
    std::vector<std::function<void(Result<uint64_t>)>> sleepers;
    bool wake = false, arrivals = false;
    {
      core::MutexLock lock(mutex_);
      while (!stop_ && inbox_.empty() && cancelled_.empty() && running_.empty() && waiting_.empty() &&
             paused_.empty() && sleep_callers_.empty() && !wake_wanted_)
        wake_.wait(mutex_);
      if (stop_) return;
      sleepers.swap(sleep_callers_);
      wake = wake_wanted_;
      wake_wanted_ = false;
      arrivals = !inbox_.empty();
    }
    if (!sleepers.empty()) {
      const size_t busy = running_.size() + waiting_.size() + paused_.size() + (arrivals ? 1 : 0);
      if (busy == 0) {
        go_to_sleep(std::move(sleepers));
        continue;
      }
      for (auto& done : sleepers)
        done(Status::failed_precondition("not idle: requests are running or waiting"));
    }
    if (asleep_.load() && (wake || arrivals)) wake_up();
    admit_new();
    step();
    publish_stats();
  }
}

void BatchEngine::sleep(std::function<void(Result<uint64_t>)> done) {
  {
    core::MutexLock lock(mutex_);
    if (!stop_) {
      sleep_callers_.push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) return done(Status::unavailable("the engine is shutting down"));
  wake_.notify_all();
}

bool BatchEngine::wake() {
  if (!asleep_.load()) return false;
  core::MutexLock lock(mutex_);
  wake_wanted_ = true;
  wake_called_ = true;
  wake_.notify_all();
  while (asleep_.load() && !stop_) awake_.wait(mutex_);
  return true;
}

void BatchEngine::go_to_sleep(std::vector<std::function<void(Result<uint64_t>)>> callers) {
  uint64_t released = 0;
  if (!asleep_.load()) {
    released = kv_->discard(backend_);
    if (draft_kv_) released += draft_kv_->discard(backend_);
    backend_.park();
    asleep_ = true;
    sleeps_.fetch_add(1);
    publish_stats();
  }
  for (auto& done : callers) done(released);
}

void BatchEngine::wake_up() {
  {
    core::MutexLock lock(mutex_);
    asleep_ = false;  // the threads come back with the first operation
  }
  wakes_.fetch_add(1);
  awake_.notify_all();
}

void BatchEngine::publish_stats() {
  auto count_batch = [](const auto& seqs) {
    return static_cast<int>(std::count_if(seqs.begin(), seqs.end(), [](const auto& s) { return s->batch(); }));
  };
  n_running_ = static_cast<int>(running_.size());
  n_waiting_ = static_cast<int>(waiting_.size() + paused_.size());
  n_paused_ = static_cast<int>(paused_.size());
  n_running_batch_ = count_batch(running_);
  n_waiting_batch_ = count_batch(waiting_) + static_cast<int>(paused_.size());
  kv_used_ = kv_->n_used();
  prefix_hits_ = kv_->prefix_hits();
}

void BatchEngine::enqueue(std::unique_ptr<Sequence> s, bool front) {
  auto first_batch = std::find_if(waiting_.begin(), waiting_.end(), [](const auto& w) { return w->batch(); });
  if (s->batch()) {
    if (front) waiting_.insert(first_batch, std::move(s));
    else waiting_.push_back(std::move(s));
  } else {
    if (front) waiting_.push_front(std::move(s));
    else waiting_.insert(first_batch, std::move(s));
  }
}

void BatchEngine::admit_new() {
  std::vector<uint64_t> cancelled;
  {
    core::MutexLock lock(mutex_);
    while (!inbox_.empty()) {
      enqueue(std::move(inbox_.front()), /*front=*/false);
      inbox_.pop_front();
    }
    cancelled.swap(cancelled_);
  }
  auto is_cancelled = [&](const std::unique_ptr<Sequence>& s) {
    if (std::find(cancelled.begin(), cancelled.end(), s->id) == cancelled.end()) return false;
    release_blocks(*s);
    finish(*s, FinishReason::kCancelled);
    return true;
  };
  waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), is_cancelled), waiting_.end());
  running_.erase(std::remove_if(running_.begin(), running_.end(), is_cancelled), running_.end());
  paused_.erase(std::remove_if(paused_.begin(), paused_.end(), is_cancelled), paused_.end());
  pause_for_interactive();
  while (static_cast<int>(running_.size()) < options_.slots) {
    const bool interactive_waits = !waiting_.empty() && !waiting_.front()->batch();
    // Paused sequences already hold their blocks: they go before batch sequences that would
    // have to compute theirs, but never before interactive ones.
    if (!interactive_waits && !paused_.empty()) {
      running_.push_back(std::move(paused_.front()));
      paused_.pop_front();
      continue;
    }
    if (waiting_.empty()) break;
    // Start a sequence only when its first chunk fits in free blocks; otherwise a preempted
    // sequence would come straight back and push out another.
    const Sequence& next = *waiting_.front();
    const int first_chunk = std::min(next.remaining(), options_.step_token_budget);
    const int wanted = first_chunk / options_.block_size + 2;
    if (interactive_waits) {
      // Memory for interactive work comes out of batch work: paused blocks first, then running.
      while (!running_.empty() && kv_->n_available() < wanted) {
        if (drop_paused()) continue;
        if (std::none_of(running_.begin(), running_.end(), [](const auto& r) { return r->batch(); })) break;
        preempt_one();
      }
    }
    if (!running_.empty() && kv_->n_available() < wanted) break;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    reuse_prefix(*running_.back());
  }
}

void BatchEngine::pause_for_interactive() {
  const int interactive =
      static_cast<int>(std::count_if(waiting_.begin(), waiting_.end(), [](const auto& w) { return !w->batch(); }));
  int free_slots = options_.slots - static_cast<int>(running_.size());
  while (interactive > free_slots) {
    // The newest batch sequence: the older ones are closer to done.
    auto victim = running_.end();
    for (auto it = running_.begin(); it != running_.end(); ++it)
      if ((*it)->batch() && (victim == running_.end() || (*it)->id > (*victim)->id)) victim = it;
    if (victim == running_.end()) break;
    auto s = std::move(*victim);
    running_.erase(victim);
    ++s->pauses;
    pauses_.fetch_add(1);
    log_decision("pause", *s, std::to_string(interactive) + " interactive requests waiting, " +
                                  std::to_string(free_slots) + " free slots");
    auto at = std::find_if(paused_.begin(), paused_.end(), [&](const auto& p) { return p->id > s->id; });
    paused_.insert(at, std::move(s));
    ++free_slots;
  }
}

bool BatchEngine::drop_paused() {
  if (paused_.empty()) return false;
  // The newest has the least computed, so recomputing it later costs least.
  auto s = std::move(paused_.back());
  paused_.pop_back();
  release_blocks(*s);
  ++s->preemptions;
  preemptions_.fetch_add(1);
  log_decision("preempt", *s, "KV cache full: a paused sequence gives its blocks back");
  enqueue(std::move(s), /*front=*/true);
  return true;
}

void BatchEngine::log_decision(const char* action, const Sequence& s, const std::string& reason) const {
  core::log_info("batch", std::string("decision action=") + action + " sequence=" + std::to_string(s.id) +
                              " priority=" + std::string(request_priority_name(s.request.priority)) +
                              " computed=" + std::to_string(s.n_computed) + " running=" + std::to_string(running_.size()) +
                              " paused=" + std::to_string(paused_.size()) + " waiting=" + std::to_string(waiting_.size()) +
                              " kv_free_blocks=" + std::to_string(kv_->n_available()) + " reason=\"" + reason + "\"");
}

void BatchEngine::reuse_prefix(Sequence& s) {
  const int bs = options_.block_size;
  if (s.n_computed != 0 || !s.blocks.empty()) return;
  // Always leave the last prompt position to compute: its logits start the generation.
  const int reusable = (s.n_prompt - 1) / bs;
  uint64_t h = 0;
  for (int b = 0; b < reusable; ++b) {
    h = KvPool::chain_hash(h, s.ids.data() + b * bs, bs);
    const int block = kv_->find_cached(h);
    if (block < 0) break;
    s.blocks.push_back(block);
    s.block_hashes.push_back(h);
    s.n_computed += bs;
  }
  s.cached_tokens = std::max(s.cached_tokens, s.n_computed);
}

void BatchEngine::publish_full_blocks(Sequence& s) {
  const int bs = options_.block_size;
  while (static_cast<int>(s.block_hashes.size() + 1) * bs <= s.n_computed) {
    const size_t b = s.block_hashes.size();
    const uint64_t prev = b == 0 ? 0 : s.block_hashes.back();
    const uint64_t h = KvPool::chain_hash(prev, s.ids.data() + b * bs, bs);
    kv_->publish(s.blocks[b], h);
    s.block_hashes.push_back(h);
  }
}

bool BatchEngine::ensure_block(Sequence& s, int position) {
  const size_t needed = static_cast<size_t>(position / options_.block_size) + 1;
  while (s.blocks.size() < needed) {
    const int b = kv_->allocate();
    if (b < 0) {
      // Paused sequences are not in this step, so taking their blocks moves no block table.
      if (drop_paused()) continue;
      return false;
    }
    s.blocks.push_back(b);
  }
  return true;
}

void BatchEngine::release_blocks(Sequence& s) {
  for (int32_t b : s.draft_blocks) draft_kv_->release(b);
  s.draft_blocks.clear();
  s.draft_computed = 0;
  for (int32_t b : s.blocks) kv_->release(b);
  s.blocks.clear();
  s.block_hashes.clear();
  s.n_computed = 0;
}

uint64_t BatchEngine::preempt_one() {
  // Batch work yields to interactive work; within a class the newest yields, so the oldest
  // always progresses and the pool cannot livelock.
  auto victim = std::max_element(running_.begin(), running_.end(), [](const auto& a, const auto& b) {
    return std::pair(a->batch(), a->id) < std::pair(b->batch(), b->id);
  });
  auto s = std::move(*victim);
  running_.erase(victim);
  release_blocks(*s);  // published blocks stay cached, so the recompute may reuse them
  ++s->preemptions;
  preemptions_.fetch_add(1);
  log_decision("preempt", *s, "KV cache full: the newest sequence of the lowest class recomputes later");
  const uint64_t id = s->id;
  enqueue(std::move(s), /*front=*/true);
  return id;
}

void BatchEngine::finish(Sequence& s, FinishReason reason, const std::string& error) {
  GenerationEvent e;
  e.text = reason == FinishReason::kError || reason == FinishReason::kCancelled ? "" : s.streamer->finish();
  e.finished = true;
  e.reason = reason;
  e.error = error;
  e.prompt_tokens = s.n_prompt;
  e.cached_tokens = s.cached_tokens;
  e.image_tokens = s.n_image;
  e.completion_tokens = s.generated;
  e.pauses = s.pauses;
  e.preemptions = s.preemptions;
  e.logprobs = std::move(s.pending_logprobs);
  s.pending_logprobs.clear();
  if (s.request.on_event) s.request.on_event(e);
}

int BatchEngine::keep_images_whole(const Sequence& s, int count, bool may_extend) const {
  if (s.image_end.empty() || count <= 0) return count;
  const int start = s.n_computed, last = start + count - 1;
  if (last >= s.n_prompt || s.image_end[last] < 0 || s.image_end[last] == last + 1) return count;
  // The chunk would end inside an image: stop before it, or take all of it when it starts here.
  if (s.image_start[last] > start) return s.image_start[last] - start;
  return may_extend ? s.image_end[last] - start : 0;
}

namespace {

// True when the constrained output is complete: nothing but end of generation may follow.
bool complete(structured::Constraint& c, int32_t state, std::vector<int32_t>* scratch) {
  if (!c.accepting(state)) return false;
  const auto& eog = c.index().eog();
  for (int32_t t : c.allowed(state, scratch))
    if (std::find(eog.begin(), eog.end(), t) == eog.end()) return false;
  return true;
}

}  // namespace

TokenLogprob BatchEngine::token_logprob(const float* logits, int32_t n_vocab, int32_t token, int top) const {
  float max = -std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n_vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
  const double lse = static_cast<double>(max) + std::log(sum);
  const Tokenizer& tok = *llm_.tokenizer;
  TokenLogprob lp;
  lp.token = token;
  lp.piece = tok.token_to_piece(token);
  lp.logprob = static_cast<float>(logits[token] - lse);
  if (top > 0) {
    // The best `top` tokens (higher logit first, lower id on ties), one pass with a small heap.
    auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::vector<int32_t> heap;
    for (int32_t i = 0; i < n_vocab; ++i) {
      if (static_cast<int>(heap.size()) < top) {
        heap.push_back(i);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(i, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = i;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
    std::sort_heap(heap.begin(), heap.end(), better);
    for (int32_t id : heap) lp.top.push_back({id, tok.token_to_piece(id), static_cast<float>(logits[id] - lse)});
  }
  return lp;
}

int32_t BatchEngine::take_token(Sequence& s, const float* logits, GenerationEvent& e, FinishReason& reason,
                                std::string& error) {
  const int n_vocab = llm_.model->config().n_vocab;
  const Tokenizer& tok = *llm_.tokenizer;
  structured::Constraint* constraint = s.request.constraint.get();
  int32_t next = -1;
  if (constraint) {
    const std::vector<int32_t>& allowed = constraint->allowed(s.constraint_state, &s.allowed_scratch);
    if (allowed.empty()) {
      // Complete with no end-of-generation token in the vocabulary, or stuck: the model's
      // vocabulary has no token that continues the constrained output.
      if (constraint->accepting(s.constraint_state)) {
        reason = FinishReason::kStop;
      } else {
        reason = FinishReason::kError;
        error = "no token of the model's vocabulary can continue the constrained output";
      }
      return -1;
    }
    next = s.sampler->sample_among(logits, n_vocab, allowed);
  } else {
    next = s.sampler->sample(logits, n_vocab);
  }
  s.sampler->accept(next);
  if (tok.is_end_of_generation(next)) {
    reason = FinishReason::kStop;
    return -1;
  }
  if (s.request.logprobs >= 0) s.pending_logprobs.push_back(token_logprob(logits, n_vocab, next, s.request.logprobs));
  ++s.generated;
  s.ids.push_back(next);
  s.embeddings.push_back(nullptr);
  e.text += s.streamer->push(tok.token_to_piece(next));
  if (constraint) s.constraint_state = constraint->next_token(s.constraint_state, next);
  if (s.streamer->stopped()) reason = FinishReason::kStop;
  else if (constraint && complete(*constraint, s.constraint_state, &s.allowed_scratch)) reason = FinishReason::kStop;
  else if (s.generated >= s.max_tokens || static_cast<int>(s.ids.size()) >= max_context_) reason = FinishReason::kLength;
  return next;
}

void BatchEngine::propose_drafts(int room) {
  std::vector<std::pair<Sequence*, int>> for_model;
  for (auto& sp : running_) {
    Sequence& s = *sp;
    s.draft.clear();
    s.draft_base = -1;
    if (s.remaining() != 1) continue;
    if (s.spec_cooldown > 0) {
      --s.spec_cooldown;
      continue;
    }
    // Never past the length limit or the context: those tokens could not be kept.
    const int r = std::min({room, s.spec_k, s.max_tokens - s.generated - 1,
                            max_context_ - static_cast<int>(s.ids.size()) - 1});
    if (r <= 0) continue;
    if (!draft_forward_) {
      s.draft = prompt_lookup_draft(s.ids, r, options_.lookup);
    } else if (s.n_image == 0) {  // the draft model reads text only
      for_model.emplace_back(&s, r);
    }
  }
  if (!for_model.empty()) draft_with_model(for_model);
}

namespace {

int32_t argmax(const float* v, int32_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

}  // namespace

void BatchEngine::draft_with_model(const std::vector<std::pair<Sequence*, int>>& wanted) {
  const int32_t n_vocab = options_.draft_model->model->config().n_vocab;
  const int bs = options_.block_size;
  auto ensure_draft_block = [&](Sequence& s, int position) {
    while (s.draft_blocks.size() < static_cast<size_t>(position / bs) + 1) {
      const int b = draft_kv_->allocate();
      if (b < 0) return false;
      s.draft_blocks.push_back(b);
    }
    return true;
  };
  // Pass 0: each sequence's text that the draft cache lacks (the whole prompt the first time),
  // whose last row gives the first draft token. Blocks for every position the passes will
  // write are taken first, so that no row's block table moves.
  struct Job {
    Sequence* s;
    int room;
  };
  std::vector<Job> jobs;
  draft_rows_.clear();
  int rows = 0;
  for (const auto& [sp, room] : wanted) {
    Sequence& s = *sp;
    const int len = static_cast<int>(s.ids.size());
    const int catch_up = len - s.draft_computed;
    if (rows + catch_up > draft_forward_->max_rows()) continue;  // next step
    if (!ensure_draft_block(s, len - 1 + room - 1)) continue;     // the draft cache is full: no draft now
    for (int p = s.draft_computed; p < len; ++p) draft_rows_.add_token(s.ids[p], p, s.draft_blocks.data(), p == len - 1);
    rows += catch_up;
    s.draft_base = len;
    jobs.push_back({&s, room});
  }
  for (int pass = 0; !jobs.empty(); ++pass) {
    if (!draft_forward_->run(draft_rows_, draft_logits_.data())) {
      for (const Job& j : jobs) j.s->draft.clear();
      return;
    }
    std::vector<Job> next;
    draft_rows_.clear();
    for (size_t k = 0; k < jobs.size(); ++k) {
      Sequence& s = *jobs[k].s;
      const int32_t t = argmax(draft_logits_.data() + k * static_cast<size_t>(n_vocab), n_vocab);
      s.draft.push_back(t);
      s.draft_computed = s.draft_base + pass;  // the text, and the draft tokens fed so far
      if (static_cast<int>(s.draft.size()) >= jobs[k].room || llm_.tokenizer->is_end_of_generation(t)) continue;
      const int pos = s.draft_base + pass;
      draft_rows_.add_token(t, pos, s.draft_blocks.data(), true);
      next.push_back(jobs[k]);
    }
    jobs.swap(next);
  }
}

bool BatchEngine::step() {
  struct Chunk {
    Sequence* seq;
    int count;       // rows of the sequence's own positions
    int drafts = 0;  // draft rows after them (s.draft)
  };
  std::vector<Chunk> plan;
  rows_.clear();
  int budget = options_.step_token_budget;
  auto add_rows = [&](Sequence& s, int count) {
    for (int i = 0; i < count; ++i) {
      const int pos = s.n_computed + i;
      const bool last = pos + 1 == static_cast<int>(s.ids.size());
      if (s.embeddings[pos]) rows_.add_embedding(s.embeddings[pos], pos, s.blocks.data(), last);
      else rows_.add_token(s.ids[pos], pos, s.blocks.data(), last);
      if (!s.rope.empty())
        rows_.set_rope_position(pos < s.n_prompt ? s.rope[pos] : RopePosition::text(s.rope_next + pos - s.n_prompt));
      // Every row carries its visibility limit (the rows of one step share one vector): the
      // end of its image when it is inside a whole image, else itself.
      rows_.set_visible_end(pos < s.n_prompt && !s.image_end.empty() && s.image_end[pos] >= 0 ? s.image_end[pos]
                                                                                              : pos + 1);
    }
    plan.push_back({&s, count});
    budget -= count;
  };
  // Decoding sequences first (one row each), so running streams never wait for prompts. Drafts
  // take what the budget leaves after every decoding row, and only while no prompt is computed.
  auto count_decoding = [this] {
    return static_cast<int>(std::count_if(running_.begin(), running_.end(), [](const auto& s) { return s->remaining() == 1; }));
  };
  const int decoding = count_decoding();
  const bool prompts = std::any_of(running_.begin(), running_.end(), [](const auto& s) { return s->remaining() > 1; });
  const bool speculate = options_.draft_tokens > 0 && !prompts;
  if (speculate) propose_drafts((budget - decoding) / std::max(1, decoding));
  int decode_rows_left = decoding;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence& s = *running_[i];
    if (s.remaining() != 1) {
      ++i;
      continue;
    }
    if (!ensure_block(s, s.n_computed)) {
      if (preempt_one() == s.id) continue;  // this one yielded: it left running_
      plan.clear();                         // tables may have moved: rebuild the step
      rows_.clear();
      budget = options_.step_token_budget;
      decode_rows_left = count_decoding();
      i = 0;
      continue;
    }
    --decode_rows_left;
    // Blocks for the draft rows now, before any row of s points at the block table; the budget
    // keeps a row for every decoding sequence still to come.
    const size_t room = static_cast<size_t>(std::max(0, budget - 1 - std::max(0, decode_rows_left)));
    if (s.draft.size() > room) s.draft.resize(room);
    size_t ok = 0;
    while (ok < s.draft.size() && ensure_block(s, s.n_computed + 1 + static_cast<int>(ok))) ++ok;
    s.draft.resize(ok);
    add_rows(s, 1);
    for (size_t j = 0; j < s.draft.size(); ++j) {
      const int pos = s.n_computed + 1 + static_cast<int>(j);
      rows_.add_token(s.draft[j], pos, s.blocks.data(), /*logits=*/true);
      if (!s.rope.empty()) rows_.set_rope_position(RopePosition::text(s.rope_next + pos - s.n_prompt));
      rows_.set_visible_end(pos + 1);
    }
    plan.back().drafts = static_cast<int>(s.draft.size());
    budget -= plan.back().drafts;
    ++i;
  }
  // Then prompt chunks, oldest first, as far as the budget and free blocks allow.
  for (auto& sp : running_) {
    Sequence& s = *sp;
    if (budget <= 0) break;
    if (s.remaining() <= 1) continue;
    int take = keep_images_whole(s, std::min(s.remaining(), budget), true);
    int ok = 0;
    while (ok < take && ensure_block(s, s.n_computed + ok)) ++ok;
    ok = keep_images_whole(s, ok, false);
    if (ok > 0) add_rows(s, ok);
  }
  if (rows_.size() == 0) {
    if (running_.empty()) return false;
    // Nothing fits: the pool is full of prompts in progress (paused blocks were already taken
    // back). Preempt one to let the others finish; a lone sequence that still cannot fit has
    // outgrown the pool.
    if (running_.size() == 1) {
      auto s = std::move(running_.front());
      running_.clear();
      release_blocks(*s);
      finish(*s, FinishReason::kError, "the KV cache is too small for this sequence");
    } else {
      preempt_one();
    }
    return true;
  }

  if (first_step_observer_) {
    const auto now = std::chrono::steady_clock::now();
    for (const Chunk& c : plan)
      if (!c.seq->stepped) {
        c.seq->stepped = true;
        first_step_observer_(std::chrono::duration<double>(now - c.seq->request.arrived).count(), c.seq->woke);
      }
  }
  if (rows_.size() > forward_->max_rows())  // a whole image larger than the step budget
    forward_ = std::make_unique<Forward>(*llm_.model, backend_, *kv_, static_cast<int>(rows_.size()), max_context_);
  const auto pass_began = std::chrono::steady_clock::now();
  Status status = forward_->run(rows_, logits_.data());
  steps_.fetch_add(1);
  if (step_observer_)
    step_observer_(static_cast<int>(rows_.size()),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_began).count());
  if (!status) {
    for (auto& s : running_) {
      release_blocks(*s);
      finish(*s, FinishReason::kError, status.message());
    }
    running_.clear();
    return true;
  }

  const int n_vocab = llm_.model->config().n_vocab;
  int logit_row = 0;
  std::vector<uint64_t> done;
  for (const Chunk& c : plan) {
    Sequence& s = *c.seq;
    s.n_computed += c.count;
    if (s.remaining() != 0) {
      publish_full_blocks(s);
      continue;
    }
    const float* logits = logits_.data() + static_cast<size_t>(logit_row) * n_vocab;
    logit_row += 1 + c.drafts;
    GenerationEvent e;
    e.pauses = s.pauses;
    e.preemptions = s.preemptions;
    FinishReason reason = FinishReason::kNone;
    std::string error;
    // One token per logits row while the draft holds: a draft token equal to the token sampled
    // before it was computed at the right place, so its row predicts the next one.
    int kept = 0, emitted = 0;
    for (int r = 0; r <= c.drafts && reason == FinishReason::kNone; ++r) {
      const int32_t next = take_token(s, logits + static_cast<size_t>(r) * n_vocab, e, reason, error);
      if (next >= 0) ++emitted;
      if (next < 0 || r == c.drafts || next != s.draft[static_cast<size_t>(r)]) break;
      ++s.n_computed;  // the draft row of `next` holds its keys and values
      ++kept;
    }
    publish_full_blocks(s);
    if (c.count == 1) {  // a decoding step (a prompt's last chunk yields its first token)
      decode_tokens_.fetch_add(static_cast<uint64_t>(emitted));
      decode_steps_.fetch_add(1);
    }
    // The draft cache holds the kept draft tokens; what it holds after them was not kept.
    if (s.draft_base >= 0) s.draft_computed = std::min(s.draft_computed, s.draft_base + kept);
    if (c.drafts > 0) {
      spec_drafted_.fetch_add(static_cast<uint64_t>(c.drafts));
      spec_accepted_.fetch_add(static_cast<uint64_t>(kept));
      // The share of draft tokens kept, smoothed: below a half, one draft row at a time (a row
      // costs more than the token it is likely to bring); below a quarter, none for a while.
      s.spec_rate = 0.7 * s.spec_rate + 0.3 * static_cast<double>(kept) / c.drafts;
      s.spec_k = kept == c.drafts ? std::min(options_.draft_tokens, s.spec_k + 1) : kept + 1;
      if (s.spec_rate < 0.5) s.spec_k = 1;
      if (s.spec_rate < 0.25) {
        s.spec_cooldown = s.spec_backoff;
        s.spec_backoff = std::min(2 * s.spec_backoff, kLongestCooldown);
        s.spec_rate = 0.5;  // a fresh start after the cooldown
        s.spec_misses = 0;
      } else if (kept > 0) {
        s.spec_misses = 0;
        s.spec_backoff = kFirstCooldown;
      } else if (++s.spec_misses >= 3) {  // drafts keep failing: stop proposing for a while, longer each time
        s.spec_cooldown = s.spec_backoff;
        s.spec_backoff = std::min(2 * s.spec_backoff, kLongestCooldown);
        s.spec_misses = 0;
      }
    }
    if (reason != FinishReason::kNone) {
      if (!e.text.empty() && s.request.on_event) {
        e.completion_tokens = s.generated;
        e.logprobs = std::move(s.pending_logprobs);
        s.pending_logprobs.clear();
        s.request.on_event(e);
      }
      release_blocks(s);
      finish(s, reason, error);
      done.push_back(s.id);
    } else if ((!e.text.empty() || !s.pending_logprobs.empty()) && s.request.on_event) {
      e.prompt_tokens = s.n_prompt;
      e.completion_tokens = s.generated;
      e.logprobs = std::move(s.pending_logprobs);
      s.pending_logprobs.clear();
      s.request.on_event(e);
    }
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(),
                                [&](const auto& s) { return std::find(done.begin(), done.end(), s->id) != done.end(); }),
                 running_.end());
  return true;
}

}  // namespace zs::engine
