#pragma once
// Continuous batching for one model instance. Every step runs one forward pass over all
// active sequences together: each decoding sequence contributes its next token and prompts
// are evaluated in chunks under a per-step token budget, so running streams keep flowing
// while long prompts come in. Sequences join and leave at every step. The KV cache is one
// paged pool; prompts that share a prefix share its blocks; when the pool runs out, a
// sequence (the newest of the lowest class) is preempted and recomputed later rather than
// failing the others.
// Speculative decoding (draft_tokens > 0): a decoding sequence proposes draft tokens, either
// the tokens that followed its last n-gram earlier in its prompt or output (prompt lookup) or
// the greedy tokens of a smaller draft model with the same vocabulary run on the sequence's
// text (its own KV cache, batched over sequences, one pass per draft token); they
// take extra rows of the same step and are checked there: each row's token is sampled from the
// target's own distribution and a draft token is kept while it equals that sample, which keeps
// greedy output identical and sampled output distributed as without speculation (the accept
// rule for a draft that proposes one token with certainty). Drafts use only budget left after
// every decoding row, never while prompts are being computed, and a sequence whose drafts keep
// failing stops proposing for a while.
// Requests come in two priority classes. Interactive ones are always served first: when every
// slot is taken and an interactive request waits, a running batch sequence is paused (out of
// the running set, its KV blocks kept so it resumes without recompute); when memory runs short,
// paused batch sequences give up their blocks first and running batch sequences are preempted
// before interactive ones. Batch sequences are paused or preempted, never failed.
// The engine runs on its own thread; submit() and cancel() may be called from any thread.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/batch/kv_pool.h"
#include "engine/batch/prompt_lookup.h"
#include "engine/batch/text_streamer.h"
#include "engine/model/forward.h"
#include "engine/model/llm.h"
#include "engine/sampling/sampler.h"
#include "engine/structured/constraint.h"
#include "engine/vision/multimodal_prompt.h"

namespace zs::engine {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

enum class RequestPriority { kInteractive, kBatch };
std::string_view request_priority_name(RequestPriority p);  // "interactive" | "batch"
std::optional<RequestPriority> parse_request_priority(std::string_view name);

// One generated token's log-probability under the model: log-softmax of the raw logits, before
// penalties, temperature, top-k/top-p and any constraint mask (so it does not depend on the
// sampling settings, as with OpenAI), with the `top` most likely tokens, best first.
struct TokenLogprob {
  int32_t token = -1;
  std::string piece;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0;
  struct Alternative {
    int32_t token;
    std::string piece;
    float logprob;
  };
  std::vector<Alternative> top;
};

struct GenerationEvent {
  std::string text;  // newly released text (may be empty)
  // With GenerationRequest::logprobs >= 0: the tokens sampled since the previous event (their
  // text may still be held back by the streamer).
  std::vector<TokenLogprob> logprobs;
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
  std::string error;  // when reason == kError
  int prompt_tokens = 0;
  int cached_tokens = 0;  // prompt positions reused from the prefix cache
  int image_tokens = 0;
  int completion_tokens = 0;
  // How often this sequence was paused for interactive work (KV kept) and preempted for
  // memory (recomputed) so far.
  int pauses = 0;
  int preemptions = 0;
};

struct GenerationRequest {
  MultimodalPrompt prompt;
  SamplingParams sampling;
  int max_tokens = -1;  // -1: until the context is full
  std::vector<std::string> stop;
  RequestPriority priority = RequestPriority::kInteractive;
  // Structured output: only tokens the constraint allows are sampled, and the sequence stops
  // as soon as its output is complete (finish reason stop). A constraint that the vocabulary
  // cannot continue ends the request with kError. Shared between requests; may be null.
  std::shared_ptr<structured::Constraint> constraint;
  // When the request reached the process (default: when it was submitted); the first-step
  // observer measures from it.
  std::chrono::steady_clock::time_point arrived{};
  // -1: no log-probabilities; n >= 0: each generated token's, with the n most likely (<= 20).
  int logprobs = -1;
  // OpenAI's logit_bias (token id, bias), applied by the sampler before penalties.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Called on the engine thread after each step that produced something for this request,
  // and once with finished = true. Must not block.
  std::function<void(const GenerationEvent&)> on_event;
};

struct BatchEngineOptions {
  int slots = 4;                // sequences decoding at once
  int ctx_tokens = 4096;        // KV pool size in positions, shared by all sequences
  int block_size = 16;
  int step_token_budget = 256;  // rows per forward pass
  int draft_tokens = 0;         // speculative decoding: draft tokens per sequence and step (0: off)
  PromptLookup lookup = {};     // how drafts are found without a draft model
  // A draft model (check_draft_model first; it must outlive the engine), or null for prompt
  // lookup. Its cache holds as many positions as the target's; image sequences are not drafted.
  const Llm* draft_model = nullptr;
};

// Whether `draft` can draft for `target`: a decoder with the same vocabulary, token by token.
// The error names the first difference.
core::Status check_draft_model(const Llm& target, const Llm& draft);

struct BatchEngineStats {
  int running = 0;
  int waiting = 0;  // not running: queued, preempted or paused
  int paused = 0;   // batch sequences set aside with their KV blocks (part of `waiting`)
  int running_interactive = 0;
  int running_batch = 0;
  int waiting_interactive = 0;
  int waiting_batch = 0;  // paused ones included
  int kv_blocks_used = 0;
  int kv_blocks_total = 0;
  uint64_t prefix_cache_hits = 0;  // blocks reused
  uint64_t preemptions = 0;  // includes paused sequences whose blocks were taken back
  uint64_t pauses = 0;
  uint64_t steps = 0;
  // Speculative decoding: draft tokens proposed and kept; tokens generated by decoding
  // sequences and their sequence-steps (tokens per step = decode_tokens / decode_steps).
  uint64_t spec_drafted = 0;
  uint64_t spec_accepted = 0;
  uint64_t decode_tokens = 0;
  uint64_t decode_steps = 0;
  bool asleep = false;
  uint64_t sleeps = 0;
  uint64_t wakes = 0;
};

class BatchEngine {
 public:
  BatchEngine(const Llm& llm, Backend& backend, BatchEngineOptions options);
  ~BatchEngine();
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // Checks that the request can ever run (fits the context), queues it and returns its id.
  core::Result<uint64_t> submit(GenerationRequest request) EXCLUDES(mutex_);
  // Stops a request at the next step; its on_event gets finished with kCancelled.
  void cancel(uint64_t id) EXCLUDES(mutex_);
  // Ends the engine thread after cancelling whatever is left.
  void shutdown() EXCLUDES(mutex_);

  // -- Sleeping: an idle instance between running and stopped ------------------------------
  // Gives back what costs while idle once nothing runs or waits: the KV cache's memory (its
  // contents and the prefix cache go) and the compute threads; the weights, tokenizer and
  // everything else stay. `done` runs on the engine thread (it must not block) with the bytes
  // of cache released, kFailedPrecondition when requests are running or waiting (nothing
  // changes), or kUnavailable when the engine is shutting down. A sleeping engine wakes by
  // itself for the next request: wake() only makes that explicit.
  void sleep(std::function<void(core::Result<uint64_t>)> done) EXCLUDES(mutex_);
  bool asleep() const { return asleep_.load(); }
  // Returns once a sleeping engine is awake (its threads back); true when it was asleep. The
  // next submit counts as the request that woke it.
  bool wake() EXCLUDES(mutex_);
  // Called on the engine thread when a sequence first takes part in a step: seconds since its
  // request arrived, and whether it arrived while the engine slept (it woke the engine).
  void set_first_step_observer(std::function<void(double seconds, bool woke)> observer) {
    first_step_observer_ = std::move(observer);
  }

  BatchEngineStats stats() const;
  // Rows of the steps run so far, as (batch size, count): for a batch-size histogram.
  int max_context() const { return max_context_; }
  // Called on the engine thread after every step with the number of rows it ran and how long
  // its forward pass took.
  void set_step_observer(std::function<void(int rows, double seconds)> observer) { step_observer_ = std::move(observer); }

 private:
  struct Sequence;
  void loop();
  // The engine thread's half of sleep() and wake(); REQUIRES the engine thread, outside mutex_.
  void go_to_sleep(std::vector<std::function<void(core::Result<uint64_t>)>> callers);
  void wake_up();
  void admit_new();
  void pause_for_interactive();
  bool step();
  bool ensure_block(Sequence& s, int position);
  // How many of the next `count` prompt positions of s a step may take so that no M-RoPE
  // image is split: fewer (stop before the image), or with may_extend more (the whole image).
  int keep_images_whole(const Sequence& s, int count, bool may_extend) const;
  void reuse_prefix(Sequence& s);
  // Into waiting_ behind the sequences of its class, or at the front of them (preempted).
  void enqueue(std::unique_ptr<Sequence> s, bool front);
  // Batch before interactive, newest first; returns the id of the sequence preempted.
  uint64_t preempt_one();
  // Takes back the blocks of the newest paused sequence; false when none is paused.
  bool drop_paused();
  void publish_stats();
  void finish(Sequence& s, FinishReason reason, const std::string& error = {});
  void release_blocks(Sequence& s);
  // One structured log line per pause or preemption, with what the scheduler saw.
  void log_decision(const char* action, const Sequence& s, const std::string& reason) const;
  void publish_full_blocks(Sequence& s);
  TokenLogprob token_logprob(const float* logits, int32_t n_vocab, int32_t token, int top) const;
  // Samples s's next token from `logits` and appends it (text into e.text); returns the token,
  // or -1 with `reason` set when the sequence ends instead (reason may also be set after a
  // token: a stop string, a complete constraint, the length limit).
  int32_t take_token(Sequence& s, const float* logits, GenerationEvent& e, FinishReason& reason, std::string& error);
  // Fills the draft of every decoding sequence that speculates this step (at most `room` tokens
  // each), by prompt lookup or with the draft model.
  void propose_drafts(int room);
  // The draft model's greedy tokens after each sequence's text, into s.draft.
  void draft_with_model(const std::vector<std::pair<Sequence*, int>>& wanted);

  const Llm& llm_;
  Backend& backend_;
  BatchEngineOptions options_;
  int max_context_;
  std::unique_ptr<KvPool> kv_;
  std::unique_ptr<Forward> forward_;
  std::vector<float> logits_;
  BatchRows rows_;

  // The hand-over between callers and the engine thread. The engine thread holds mutex_ only
  // to move these into its own state, never during a step.
  mutable core::Mutex mutex_;
  core::CondVar wake_;
  std::deque<std::unique_ptr<Sequence>> inbox_ GUARDED_BY(mutex_);
  std::vector<uint64_t> cancelled_ GUARDED_BY(mutex_);
  bool stop_ GUARDED_BY(mutex_) = false;
  uint64_t next_id_ GUARDED_BY(mutex_) = 1;
  std::vector<std::function<void(core::Result<uint64_t>)>> sleep_callers_ GUARDED_BY(mutex_);
  bool wake_wanted_ GUARDED_BY(mutex_) = false;
  bool wake_called_ GUARDED_BY(mutex_) = false;  // the next submit is the request wake() was for
  core::CondVar awake_;  // signalled (under mutex_) when a wake() completes
  std::atomic<bool> asleep_{false};
  std::atomic<uint64_t> sleeps_{0}, wakes_{0};
  std::function<void(double, bool)> first_step_observer_;

  // Engine-thread state: touched by the engine thread only (no lock). The counters below are
  // atomics that stats() reads from other threads.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::deque<std::unique_ptr<Sequence>> paused_;  // by id, oldest first
  std::atomic<uint64_t> preemptions_{0};
  std::atomic<uint64_t> pauses_{0};
  std::atomic<uint64_t> steps_{0};
  std::atomic<int> n_running_{0}, n_waiting_{0}, kv_used_{0};
  std::atomic<int> n_paused_{0}, n_running_batch_{0}, n_waiting_batch_{0};
  std::atomic<uint64_t> prefix_hits_{0};
  std::atomic<uint64_t> spec_drafted_{0}, spec_accepted_{0}, decode_tokens_{0}, decode_steps_{0};
  // The draft model's cache, pass and scratch (null without a draft model).
  std::unique_ptr<KvPool> draft_kv_;
  std::unique_ptr<Forward> draft_forward_;
  std::vector<float> draft_logits_;
  BatchRows draft_rows_;
  std::function<void(int, double)> step_observer_;
  std::thread thread_;
};

std::string_view finish_reason_name(FinishReason r);

}  // namespace zs::engine
