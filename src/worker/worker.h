#pragma once
// A worker: one model instance in its own process, serving the OpenAI-compatible API over
// HTTP (loopback TCP or a Unix socket). The HTTP server comes up first and answers /health
// with 503 while the model loads; requests then flow into the continuous-batching engine.
// An embedding model (`bert`, `nomic-bert`) serves /v1/embeddings instead: no generation
// engine is created, and requests run one after another on one thread (the encoder is not
// thread-safe), interactive ones first, never on the HTTP I/O thread; requests queued
// together of one class share forward passes. Each endpoint refuses the other kind of model
// with a 400 naming 'model'.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/mutex.h"
#include "core/serial_executor.h"
#include "core/status.h"
#include "engine/backend/backend.h"
#include "engine/batch/batch_engine.h"
#include "engine/chat/chat_template.h"
#include "engine/model/encoder.h"
#include "engine/model/llm.h"
#include "engine/structured/constraint.h"
#include "engine/structured/token_index.h"
#include "engine/structured/tools.h"
#include "engine/vision/chat_prompt.h"
#include "engine/vision/clip_model.h"
#include "engine/vision/image_embedder.h"
#include "gateway/http/http_server.h"
#include "gateway/openai/openai_request.h"
#include "platform/metrics/metrics_registry.h"

namespace zs::worker {

struct WorkerOptions {
  std::string model;
  std::string mmproj;
  std::string listen = "127.0.0.1:0";
  std::string chat_template;  // override; empty = from the model
  std::string name;           // the model name responses report; empty = the model file's stem
  int slots = 4;
  int ctx = 4096;            // KV cache positions shared by all slots
  int threads = 0;           // 0 = all cores
  int step_tokens = 256;     // rows per forward pass
  // Speculative decoding: "" (off), "prompt-lookup" or "draft-model" (draft_model: a smaller
  // GGUF with the same vocabulary, loaded in this process); up to draft_tokens per step.
  std::string speculative;
  std::string draft_model;
  int draft_tokens = 4;
  // Embedding models: tokens per encoder pass (at least the model's context), and whether
  // the model was trained Matryoshka-style so that `dimensions` may truncate its vectors.
  int embed_rows = 2048;
  bool matryoshka = false;
  int max_image_tokens = 0;  // per image; 0 = only the context limits it
  size_t max_body_bytes = size_t{32} << 20;
  std::chrono::milliseconds drain_grace{30'000};
  // Tokens a chat completion without max_tokens / max_completion_tokens may generate (the
  // context may end it sooner); completions keep OpenAI's default of 16.
  int default_max_tokens = kDefaultMaxTokens;
  static constexpr int kDefaultMaxTokens = 1024;
  // When set, every request but GET /health must carry "Authorization: Bearer <auth_token>"
  // (401 otherwise): a worker listening on a non-loopback address (the Slurm runtime) serves
  // only its gateway. /health stays open: it tells nothing and the gateway's probes use it.
  std::string auth_token;
};

class Worker {
 public:
  // Starts listening (so /health answers at once); call load() next.
  static core::Result<std::unique_ptr<Worker>> start(const WorkerOptions& options);
  ~Worker();

  // Loads the model (and projector) and starts the engine; then /health is 200.
  core::Status load();
  std::string address() const { return server_->address(); }
  const std::string& model_name() const { return model_name_; }

  // Refuses new requests (503), lets in-flight ones finish within the grace period, then
  // cancels what is left and stops the server.
  void drain_and_stop();

 private:
  explicit Worker(const WorkerOptions& options);
  gateway::Router routes();
  core::Status load_encoder();  // the rest of load() for an embedding model
  void handle_chat(const gateway::HttpRequest& req, std::shared_ptr<gateway::ResponseWriter> w);
  void handle_completion(const gateway::HttpRequest& req, std::shared_ptr<gateway::ResponseWriter> w);
  void handle_embeddings(const gateway::HttpRequest& req, std::shared_ptr<gateway::ResponseWriter> w);
  // Answers 400 and returns true when the loaded model does not serve `endpoint`.
  bool refuse_wrong_kind(const std::string& endpoint, const std::shared_ptr<gateway::ResponseWriter>& w,
                         const std::string& counted_as);
  struct EmbedJob;
  // Runs the next queued embedding requests (interactive first) on prep_'s thread.
  void run_embeddings() EXCLUDES(embed_mutex_);
  void finish_embeddings(std::vector<std::shared_ptr<EmbedJob>>& jobs);
  // Common tail: prepared prompt into the engine, events out to the client.
  struct Call;
  struct Group;
  void generate(std::shared_ptr<Call> call, core::Result<engine::PreparedPrompt> prepared);
  // Answers 503 and returns true while the model loads or the worker drains.
  bool refuse_if_unavailable(const std::shared_ptr<gateway::ResponseWriter>& w, const std::string& counted_as);
  // Answers a refused request under the HTTP status of its code, and counts it.
  void refuse(gateway::ResponseWriter& w, const std::string& counted_as, const core::Status& status,
              const std::string& param = "", const std::string& code = "");
  void refuse(gateway::ResponseWriter& w, const std::string& counted_as, const gateway::openai::ApiError& error);
  // What a choice does with the engine's events: stream or collect them, and answer the
  // request once every choice of its group has finished.
  std::function<void(const engine::GenerationEvent&)> make_event_handler(std::shared_ptr<Call> call);
  // Copies the request's logit_bias into the call; answers 400 and returns false for a token
  // id outside the vocabulary.
  bool take_logit_bias(Call& call, const gateway::openai::SamplingOptions& sampling);
  // The constraint for a response_format (null for text), compiled once per distinct schema
  // and kept in a small cache; or the 400 that refuses it.
  core::Result<std::shared_ptr<engine::structured::Constraint>> constraint_for(
      const gateway::openai::OutputFormat& format, gateway::openai::ApiError* error);
  // The constraint of a forced tool call (tool_choice required, or `only` for a named one).
  core::Result<std::shared_ptr<engine::structured::Constraint>> tool_constraint(
      engine::structured::ToolFormat format, const std::vector<engine::structured::ToolSpec>& tools,
      const std::string& only, bool parallel, gateway::openai::ApiError* error);
  // Builds the constraint, refuses it (400 naming `param`) when the vocabulary cannot start
  // its output, and caches it under `key`.
  core::Result<std::shared_ptr<engine::structured::Constraint>> remember_constraint(
      const std::string& key, engine::structured::Grammar grammar, const std::string& param,
      gateway::openai::ApiError* error);
  void count_response(const std::string& endpoint, int status);
  // POST kSleepPath (worker_protocol.h): the engine gives back its cache and threads when idle.
  void handle_sleep(std::shared_ptr<gateway::ResponseWriter> w);

  WorkerOptions options_;
  std::string model_name_;
  std::unique_ptr<gateway::HttpServer> server_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};

  platform::MetricsRegistry metrics_;
  std::unique_ptr<engine::Backend> backend_;
  std::unique_ptr<engine::Backend> vision_backend_;  // its own threads: encodes run beside decoding
  engine::Llm llm_;
  std::unique_ptr<engine::Llm> draft_;  // speculative decoding's draft model, if any
  std::unique_ptr<engine::ClipModel> clip_;
  std::unique_ptr<engine::ImageEmbedder> embedder_;
  engine::ChatTemplateKind template_kind_ = engine::ChatTemplateKind::kChatML;
  std::unique_ptr<engine::BatchEngine> engine_;  // chat models only
  std::unique_ptr<engine::Encoder> encoder_;     // embedding models only; used on prep_'s thread
  std::atomic<bool> embedding_model_{false};
  core::Mutex embed_mutex_;
  std::deque<std::shared_ptr<EmbedJob>> embed_queue_[2] GUARDED_BY(embed_mutex_);  // by engine::RequestPriority
  std::unique_ptr<core::SerialExecutor> prep_;  // tokenization and image encoding, off the I/O threads
  // Chat models: the vocabulary trie for structured output, built by token_index() on the
  // first request that needs one (about 10 ms of a 150k vocabulary, kept off cold starts).
  std::shared_ptr<const engine::structured::TokenIndex> token_index();
  std::once_flag token_index_once_;
  std::shared_ptr<const engine::structured::TokenIndex> token_index_;  // written once, under token_index_once_
  core::Mutex constraint_mutex_;
  std::unordered_map<std::string, std::shared_ptr<engine::structured::Constraint>> constraints_
      GUARDED_BY(constraint_mutex_);
  std::deque<std::string> constraint_order_ GUARDED_BY(constraint_mutex_);  // oldest first, for eviction
};

}  // namespace zs::worker
