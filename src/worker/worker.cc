#include "worker/worker.h"

#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "core/log.h"
#include "core/random_id.h"
#include "engine/structured/json_schema.h"
#include "engine/structured/gbnf.h"
#include "engine/structured/tools.h"
#include "engine/vision/chat_prompt.h"
#include "engine/vision/vision_loader.h"
#include "gateway/http/sse.h"
#include "gateway/openai/openai_error.h"
#include "gateway/openai/openai_response.h"
#include "platform/metrics/process_memory.h"
#include "worker/worker_protocol.h"

namespace zs::worker {

using core::Result;
using core::Status;
using gateway::HttpHeaders;
using gateway::HttpRequest;
using gateway::ResponseWriter;
namespace openai = gateway::openai;
using openai::respond_error;
using Clock = std::chrono::steady_clock;

namespace {

// The priority named by the request's header, or kInvalidArgument.
Result<engine::RequestPriority> read_priority(const HttpRequest& req) {
  const std::string h = req.header(kPriorityHeader);
  if (h.empty()) return engine::RequestPriority::kInteractive;
  auto parsed = engine::parse_request_priority(h);
  if (!parsed) return Status::invalid_argument("header X-Priority must be 'interactive' or 'batch', got '" + h + "'");
  return *parsed;
}

std::string wake_ms_text(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", ms);
  return buf;
}

engine::SamplingParams to_sampling(const openai::SamplingOptions& o) {
  engine::SamplingParams p = o.to_params();
  if (!o.seed) p.seed = std::random_device{}();
  return p;
}

}  // namespace

// One request in flight: how to answer it, and what was sent so far.
struct Worker::Call {
  bool chat = true;
  bool stream = false;
  bool include_usage = false;
  std::string endpoint;
  std::string id;
  int64_t created = 0;
  std::shared_ptr<ResponseWriter> w;
  Clock::time_point arrival = Clock::now();
  double wake_ms = -1;  // >= 0: this request woke the sleeping engine, in that many ms
  Clock::time_point last_text;
  bool any_text = false;
  std::string text;  // accumulated, when not streaming
  engine::SamplingParams sampling;
  int max_tokens = -1;
  std::vector<std::string> stop;
  engine::RequestPriority priority = engine::RequestPriority::kInteractive;
  std::shared_ptr<engine::structured::Constraint> constraint;
  int logprobs = -1;
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::vector<openai::LogprobEntry> logprob_entries;  // accumulated, when not streaming
  int64_t text_offset = 0;  // completions: bytes of text sent so far
  // Tool calling (tool_choice other than none): the output is parsed for calls at the end;
  // while streaming, text that may be a call is held back.
  bool tools = false;
  engine::structured::ToolFormat tool_format = engine::structured::ToolFormat::kHermes;
  std::vector<engine::structured::ToolSpec> tool_specs;
  std::optional<engine::structured::ToolCallStream> tool_stream;  // streaming with tools
  // n > 1: this call is choice `index` of a group that shares the response.
  int n = 1;
  int index = 0;
  std::shared_ptr<Group> group;
};

// The choices of one request (n of them; one Call each), answered together.
struct Worker::Group {
  int n = 1;
  int finished = 0;
  bool answered = false;               // the response is complete or failed: later events are ignored
  std::vector<std::string> bodies;     // non-streaming: each choice's response
  openai::Usage usage;                 // the prompt once, the completions summed
  std::function<void()> submit_rest;   // submits choices 1..n-1 once choice 0's prompt is computed
  core::Mutex mutex;  // the client-gone callback runs on the I/O thread
  std::vector<uint64_t> seqs GUARDED_BY(mutex);
};

// One /v1/embeddings request, from its arrival until it is answered.
struct Worker::EmbedJob {
  std::shared_ptr<ResponseWriter> w;
  openai::EmbeddingRequest request;
  std::vector<std::vector<int32_t>> tokens;  // per input, filled on prep_'s thread
  int64_t prompt_tokens = 0;
  bool answered = false;
};

namespace {

// Requests queued together share forward passes up to this many inputs.
constexpr size_t kMaxCoalescedInputs = 2048;

// Distinct compiled response formats kept for reuse.
constexpr size_t kMaxCachedConstraints = 64;

std::vector<openai::LogprobEntry> to_entries(const std::vector<engine::TokenLogprob>& lps) {
  std::vector<openai::LogprobEntry> out;
  out.reserve(lps.size());
  for (const auto& lp : lps) {
    openai::LogprobEntry e{lp.piece, lp.logprob, {}};
    for (const auto& alt : lp.top) e.top.emplace_back(alt.piece, alt.logprob);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

Worker::Worker(const WorkerOptions& options) : options_(options) {
  model_name_ = options.name.empty() ? std::filesystem::path(options.model).stem().string() : options.name;
}

Worker::~Worker() {
  if (server_) server_->stop(std::chrono::milliseconds(0));
  if (engine_) engine_->shutdown();
}

Result<std::unique_ptr<Worker>> Worker::start(const WorkerOptions& options) {
  std::unique_ptr<Worker> w(new Worker(options));
  gateway::HttpServerOptions http;
  http.address = options.listen;
  http.max_body_bytes = options.max_body_bytes;
  http.io_threads = 1;
  auto server = gateway::HttpServer::start(http, w->routes());
  if (!server) return server.status();
  w->server_ = std::move(server.value());
  return w;
}

Status Worker::load() {
  auto llm = engine::Llm::load(options_.model);
  if (!llm) return llm.status();
  llm_ = std::move(llm.value());
  // The weights' page tables fill while the rest loads, instead of fault by fault during the
  // first request (ZS_POPULATE=0 turns this off, for comparison).
  if (const char* p = std::getenv("ZS_POPULATE"); !p || std::string(p) != "0") llm_.model->file().populate_in_background();
  backend_ = engine::make_cpu_backend(options_.threads);
  if (llm_.model->config().is_encoder()) return load_encoder();
  if (options_.matryoshka)
    core::log_warn("worker", "--matryoshka applies to embedding models only; '" + model_name_ + "' is a chat model");
  if (!options_.mmproj.empty()) {
    auto clip = engine::load_vision_for(*llm_.model, options_.mmproj);
    if (!clip) return clip.status();
    clip_ = std::move(clip.value());
    vision_backend_ = engine::make_cpu_backend(options_.threads);
    embedder_ = std::make_unique<engine::ImageEmbedder>(*clip_, *vision_backend_);
  }
  auto source = llm_.model->file().get_string("tokenizer.chat_template");
  auto choice = engine::choose_chat_template(options_.chat_template, source.value_or(""));
  if (!choice) return choice.status();
  template_kind_ = choice->kind;
  // The family's tool-call markers are output text, even where the vocabulary has them as
  // control tokens (Mistral's [TOOL_CALLS], Phi's <|tool_call|>).
  {
    std::vector<int32_t> markers;
    for (const std::string& m : engine::structured::tool_call_markers(engine::structured::tool_format_for(template_kind_)))
      if (auto id = llm_.tokenizer->find_token(m)) markers.push_back(*id);
    llm_.tokenizer->render_as_text(markers);
  }

  engine::BatchEngineOptions eo;
  eo.slots = options_.slots;
  eo.ctx_tokens = options_.ctx;
  eo.step_token_budget = options_.step_tokens;
  if (options_.speculative == "prompt-lookup") eo.draft_tokens = options_.draft_tokens;
  if (options_.speculative == "draft-model") {
    if (options_.draft_model.empty()) return Status::invalid_argument("--speculative draft-model needs --draft-model");
    auto draft = engine::Llm::load(options_.draft_model);
    if (!draft) return draft.status().with_context("--draft-model " + options_.draft_model);
    draft_ = std::make_unique<engine::Llm>(std::move(draft.value()));
    ZS_RETURN_IF_ERROR(engine::check_draft_model(llm_, *draft_).with_context("--draft-model " + options_.draft_model));
    eo.draft_tokens = options_.draft_tokens;
    eo.draft_model = draft_.get();
  } else if (!options_.draft_model.empty()) {
    return Status::invalid_argument("--draft-model is used only with --speculative draft-model");
  }
  engine_ = std::make_unique<engine::BatchEngine>(llm_, *backend_, eo);
  auto& batch_hist = metrics_.histogram("zs_worker_batch_size", "Rows per forward pass (tokens of all sequences).",
                                        platform::MetricsRegistry::exponential_buckets(1, 2, 10));
  // The first pass of the process is the warm-up of a cold start (its weights fault in): the
  // fleet reads it from stdout for its start breakdown (worker_protocol.h).
  engine_->set_step_observer([&batch_hist, first = true](int rows, double seconds) mutable {
    batch_hist.observe(rows);
    if (!first) return;
    first = false;
    std::printf("%s%s=%.1f %s=%d\n", worker::kWarmedPrefix, worker::kFirstPassMsKey, seconds * 1000, worker::kRowsKey, rows);
    std::fflush(stdout);
  });
  // Arrival to first step, for requests that woke the engine and for the others: the wake's
  // own cost is the difference (bench_gateway reads both).
  auto first_step = [this](const char* start) -> platform::Histogram& {
    return metrics_.histogram("zs_worker_first_step_seconds",
                              "Time from a request's arrival to the first step that computes it, by whether it woke "
                              "the sleeping engine (wake) or not (warm).",
                              platform::MetricsRegistry::exponential_buckets(0.0001, 2, 18), {{"start", start}});
  };
  engine_->set_first_step_observer(
      [&wake = first_step("wake"), &warm = first_step("warm")](double seconds, bool woke) {
        (woke ? wake : warm).observe(seconds);
      });
  platform::track_process_memory(metrics_);
  metrics_.on_collect([this] {
    auto s = engine_->stats();
    metrics_.gauge("zs_worker_running_sequences", "Sequences in the running batch.").set(s.running);
    metrics_.gauge("zs_worker_waiting_sequences", "Sequences waiting for a slot or for memory.").set(s.waiting);
    metrics_.gauge("zs_worker_kv_blocks_used", "KV cache blocks in use.").set(s.kv_blocks_used);
    metrics_.gauge("zs_worker_kv_blocks_total", "KV cache blocks in the pool.").set(s.kv_blocks_total);
    metrics_.gauge("zs_worker_prefix_cache_hits", "KV blocks reused from the prefix cache (cumulative).")
        .set(static_cast<double>(s.prefix_cache_hits));
    metrics_.gauge("zs_worker_preemptions", "Sequences preempted for memory (cumulative).")
        .set(static_cast<double>(s.preemptions));
    metrics_.gauge("zs_worker_batch_pauses", "Batch sequences paused for interactive ones (cumulative).")
        .set(static_cast<double>(s.pauses));
    metrics_.gauge("zs_worker_paused_sequences", "Batch sequences paused with their KV cache kept.").set(s.paused);
    metrics_.gauge("zs_worker_spec_draft_tokens", "Speculative decoding: draft tokens proposed (cumulative).")
        .set(static_cast<double>(s.spec_drafted));
    metrics_.gauge("zs_worker_spec_accepted_tokens", "Speculative decoding: draft tokens kept (cumulative).")
        .set(static_cast<double>(s.spec_accepted));
    metrics_.gauge("zs_worker_spec_acceptance_ratio", "Speculative decoding: draft tokens kept / proposed.")
        .set(s.spec_drafted ? static_cast<double>(s.spec_accepted) / static_cast<double>(s.spec_drafted) : 0.0);
    metrics_.gauge("zs_worker_decode_tokens_per_step",
                   "Tokens a decoding sequence gains per step (above 1 only with speculative decoding).")
        .set(s.decode_steps ? static_cast<double>(s.decode_tokens) / static_cast<double>(s.decode_steps) : 0.0);
    auto by_priority = [this](engine::RequestPriority priority, int running, int waiting) {
      const platform::Labels labels{{"priority", std::string(engine::request_priority_name(priority))}};
      metrics_.gauge("zs_worker_running_sequences_by_priority", "Sequences in the running batch, by priority.", labels)
          .set(running);
      metrics_.gauge("zs_worker_waiting_sequences_by_priority", "Sequences not running (paused included), by priority.",
                     labels)
          .set(waiting);
    };
    by_priority(engine::RequestPriority::kInteractive, s.running_interactive, s.waiting_interactive);
    by_priority(engine::RequestPriority::kBatch, s.running_batch, s.waiting_batch);
    if (embedder_) {
      auto c = embedder_->cache_stats();
      metrics_.gauge("zs_worker_image_cache_hits", "Images served from the embedding cache (cumulative).")
          .set(static_cast<double>(c.hits));
    }
  });
  prep_ = std::make_unique<core::SerialExecutor>();
  ready_ = true;
  return Status::ok();
}

Result<std::shared_ptr<engine::structured::Constraint>> Worker::constraint_for(const openai::OutputFormat& format,
                                                                              openai::ApiError* error) {
  namespace st = engine::structured;
  using Type = openai::OutputFormat::Type;
  if (format.type == Type::kText) return std::shared_ptr<st::Constraint>();
  const std::string key = format.type == Type::kJsonObject ? std::string("json_object")
                          : format.type == Type::kGrammar  ? "gbnf:" + format.grammar
                                                           : "json_schema:" + format.schema;
  {
    core::MutexLock lock(constraint_mutex_);
    if (auto it = constraints_.find(key); it != constraints_.end()) return it->second;
  }
  auto refuse = [&](const std::string& param, const std::string& message, const std::string& code) {
    *error = openai::ApiError{core::StatusCode::kInvalidArgument, message, param, code};
    return Status::invalid_argument(message);
  };
  core::Result<st::Grammar> grammar = Status::error("");
  const std::string param = "response_format.json_schema.schema";
  if (format.type == Type::kJsonObject) {
    grammar = st::any_json_object_grammar();
  } else if (format.type == Type::kGrammar) {
    grammar = st::compile_gbnf(format.grammar);
    if (!grammar) return refuse("grammar", "'grammar': " + grammar.status().message(), "invalid_value");
    return remember_constraint(key, std::move(grammar.value()), "grammar", error);
  } else {
    nlohmann::ordered_json schema;
    try {
      schema = nlohmann::ordered_json::parse(format.schema);
    } catch (const std::exception& e) {
      return refuse(param, std::string("'") + param + "' is not valid JSON: " + e.what(), "invalid_value");
    }
    st::SchemaError serr;
    grammar = st::compile_json_schema(schema, &serr);
    if (!grammar)
      return refuse(param, "'" + param + "': " + grammar.status().message() + " (keyword '" + serr.keyword + "')",
                    serr.unsupported ? "unsupported_parameter" : "invalid_value");
  }
  if (!grammar) return refuse("response_format", grammar.status().message(), "invalid_value");
  return remember_constraint(key, std::move(grammar.value()), "response_format", error);
}

Result<std::shared_ptr<engine::structured::Constraint>> Worker::tool_constraint(
    engine::structured::ToolFormat format, const std::vector<engine::structured::ToolSpec>& tools,
    const std::string& only, bool parallel, openai::ApiError* error) {
  namespace st = engine::structured;
  std::vector<st::ToolSpec> allowed;
  for (const auto& t : tools)
    if (only.empty() || t.name == only) allowed.push_back(t);
  const int max_calls = parallel && only.empty() ? 4 : 1;
  std::string key = "tools:" + std::to_string(static_cast<int>(format)) + ":" + std::to_string(max_calls);
  for (const auto& t : allowed) key += "\n" + t.name + "\n" + t.parameters;
  {
    core::MutexLock lock(constraint_mutex_);
    if (auto it = constraints_.find(key); it != constraints_.end()) return it->second;
  }
  st::SchemaError serr;
  std::string failed;
  auto grammar = st::tool_call_grammar(format, allowed, max_calls, &serr, &failed);
  if (!grammar) {
    size_t index = 0;
    while (index < tools.size() && tools[index].name != failed) ++index;
    const std::string param = "tools[" + std::to_string(index) + "].function.parameters";
    *error = openai::ApiError{core::StatusCode::kInvalidArgument,
                              "'" + param + "': " + grammar.status().message() + " (keyword '" + serr.keyword + "')",
                              param, serr.unsupported ? "unsupported_parameter" : "invalid_value"};
    return Status::invalid_argument(error->message);
  }
  return remember_constraint(key, std::move(grammar.value()), "tool_choice", error);
}

std::shared_ptr<const engine::structured::TokenIndex> Worker::token_index() {
  std::call_once(token_index_once_,
                 [this] { token_index_ = std::make_shared<engine::structured::TokenIndex>(*llm_.tokenizer); });
  return token_index_;
}

Result<std::shared_ptr<engine::structured::Constraint>> Worker::remember_constraint(const std::string& key,
                                                                                   engine::structured::Grammar grammar,
                                                                                   const std::string& param,
                                                                                   openai::ApiError* error) {
  auto constraint = std::make_shared<engine::structured::Constraint>(std::move(grammar), token_index());
  if (constraint->allowed(constraint->start()).empty()) {
    *error = openai::ApiError{core::StatusCode::kInvalidArgument,
                              "model '" + model_name_ + "' cannot produce the output '" + param +
                                  "' asks for: no token of its vocabulary can start it",
                              param, "invalid_value"};
    return Status::invalid_argument(error->message);
  }
  core::MutexLock lock(constraint_mutex_);
  if (constraints_.emplace(key, constraint).second) {
    constraint_order_.push_back(key);
    if (constraint_order_.size() > kMaxCachedConstraints) {
      constraints_.erase(constraint_order_.front());
      constraint_order_.pop_front();
    }
  }
  return constraint;
}

Status Worker::load_encoder() {
  if (!options_.mmproj.empty())
    return Status::error("'" + options_.model + "' is an embedding model; --mmproj does not apply to it");
  const int rows = std::max(options_.embed_rows, llm_.model->config().n_ctx_train);
  encoder_ = std::make_unique<engine::Encoder>(*llm_.model, *backend_, rows);
  embedding_model_ = true;
  metrics_.on_collect([this] {
    core::MutexLock lock(embed_mutex_);
    metrics_.gauge("zs_worker_waiting_sequences", "Sequences waiting for a slot or for memory.")
        .set(static_cast<double>(embed_queue_[0].size() + embed_queue_[1].size()));
  });
  prep_ = std::make_unique<core::SerialExecutor>();
  core::log_info("worker", "'" + model_name_ + "' is an embedding model: " + std::to_string(encoder_->dim()) +
                               " dimensions, inputs up to " + std::to_string(encoder_->max_input_tokens()) + " tokens" +
                               (options_.matryoshka ? ", Matryoshka" : ""));
  ready_ = true;
  return Status::ok();
}

gateway::Router Worker::routes() {
  gateway::Router r;
  // With an auth token, every route but /health is behind it (compared in constant time).
  auto add = [this, &r](const std::string& method, const std::string& path, gateway::Handler h) {
    if (options_.auth_token.empty()) return r.add(method, path, std::move(h));
    r.add(method, path, [this, h = std::move(h)](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
      const std::string got = req.header("Authorization");
      const std::string want = "Bearer " + options_.auth_token;
      unsigned char diff = got.size() == want.size() ? 0 : 1;
      for (size_t i = 0; i < want.size(); ++i)
        diff |= static_cast<unsigned char>(want[i] ^ (i < got.size() ? got[i] : 0));
      if (diff != 0)
        return respond_error(*w, Status::unauthenticated("this worker serves only its gateway: send 'Authorization: "
                                                         "Bearer <the instance token>'"));
      h(req, std::move(w));
    });
  };
  r.add("GET", "/health", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    if (draining_) return w->respond_json(503, R"({"status":"draining"})");
    if (!ready_) return w->respond_json(503, R"({"status":"loading"})");
    w->respond_json(200, R"({"status":"ok"})");
  });
  add("GET", "/v1/models", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    openai::ModelInfo info;
    info.id = model_name_;
    info.created = openai::unix_time_now();
    if (ready_) {  // the kind is known once the model is loaded
      info.type = openai::model_kind_name(embedding_model_ ? openai::ModelKind::kEmbedding : openai::ModelKind::kChat);
      if (encoder_) info.dimensions = encoder_->dim();
    }
    w->respond_json(200, openai::models_list({info}));
  });
  add("GET", "/metrics", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->respond(200, "text/plain; version=0.0.4", metrics_.render());
  });
  add("POST", kSleepPath, [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { handle_sleep(std::move(w)); });
  add("POST", "/v1/chat/completions",
        [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) { handle_chat(req, std::move(w)); });
  add("POST", "/v1/completions",
        [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) { handle_completion(req, std::move(w)); });
  add("POST", "/v1/embeddings",
        [this](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) { handle_embeddings(req, std::move(w)); });
  return r;
}

void Worker::handle_sleep(std::shared_ptr<ResponseWriter> w) {
  if (!engine_)
    return respond_error(*w, Status::unavailable(ready_ ? "an embedding worker cannot sleep" : "the model is still loading"));
  if (in_flight_.load() > 0)
    return respond_error(*w, Status::failed_precondition("not idle: " + std::to_string(in_flight_.load()) +
                                                         " requests in flight"));
  engine_->sleep([this, w](Result<uint64_t> released) {
    if (!released) return respond_error(*w, released.status());
    // A vision model's encoder threads go too, on the thread that runs the encoder (an image
    // arriving meanwhile is encoded after the park; its threads then restart).
    if (vision_backend_) prep_->post([this] { vision_backend_->park(); });
    malloc_trim(0);  // what the freed heap holds goes back too
    metrics_.counter("zs_worker_sleeps_total", "Times this worker went to sleep.").add();
    core::log_info("worker", "asleep: " + std::to_string(released.value() >> 20) + " MiB of KV cache released");
    w->respond_json(200, "{\"released_bytes\":" + std::to_string(released.value()) + "}");
  });
}

void Worker::count_response(const std::string& endpoint, int status) {
  metrics_.counter("zs_worker_requests_total", "Requests by endpoint and HTTP status.",
                   {{"endpoint", endpoint}, {"status", std::to_string(status)}})
      .add();
}

void Worker::refuse(ResponseWriter& w, const std::string& counted_as, const Status& status, const std::string& param,
                    const std::string& code) {
  respond_error(w, status, param, code);
  count_response(counted_as, openai::http_error_for(status.code()).status);
}

void Worker::refuse(ResponseWriter& w, const std::string& counted_as, const openai::ApiError& error) {
  respond_error(w, error);
  count_response(counted_as, error.http_status());
}

bool Worker::refuse_if_unavailable(const std::shared_ptr<ResponseWriter>& w, const std::string& counted_as) {
  if (draining_) {
    refuse(*w, counted_as, Status::unavailable("the worker is draining and takes no new requests"));
    return true;
  }
  if (!ready_) {
    refuse(*w, counted_as, Status::unavailable("the model is still loading"));
    return true;
  }
  return false;
}

bool Worker::refuse_wrong_kind(const std::string& path, const std::shared_ptr<ResponseWriter>& w,
                               const std::string& counted_as) {
  const auto kind = embedding_model_ ? openai::ModelKind::kEmbedding : openai::ModelKind::kChat;
  auto err = openai::wrong_model_kind_error(kind, path, model_name_);
  if (!err) return false;
  refuse(*w, counted_as, *err);
  return true;
}

void Worker::handle_chat(const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
  const std::string endpoint = "chat";
  if (refuse_if_unavailable(w, endpoint)) return;
  if (refuse_wrong_kind("/v1/chat/completions", w, endpoint)) return;
  const auto priority = read_priority(req);
  if (!priority) return refuse(*w, endpoint, priority.status(), kPriorityHeader, "invalid_value");
  openai::ApiError err;
  auto parsed = openai::parse_chat_completion_request(req.body, {}, &err);
  if (!parsed) return refuse(*w, endpoint, err);
  if (auto remote = openai::remote_image_error(parsed.value())) {
    return refuse(*w, endpoint, *remote);
  }
  auto call = std::make_shared<Call>();
  call->chat = true;
  call->endpoint = endpoint;
  call->stream = parsed->stream;
  call->include_usage = parsed->include_usage;
  call->id = openai::make_response_id("chatcmpl");
  call->created = openai::unix_time_now();
  call->w = std::move(w);
  call->sampling = to_sampling(parsed->sampling);
  call->max_tokens = parsed->sampling.max_tokens.value_or(options_.default_max_tokens);
  call->n = parsed->sampling.n;
  call->stop = parsed->sampling.stop;
  call->priority = priority.value();
  call->logprobs = parsed->logprobs.top;
  if (!take_logit_bias(*call, parsed->sampling)) return;
  namespace st = engine::structured;
  using Mode = openai::ToolChoice::Mode;
  const Mode tool_mode = parsed->tool_choice.mode;
  call->tool_format = st::tool_format_for(template_kind_);
  call->tools = tool_mode != Mode::kNone;
  if (call->tools) {
    for (const auto& t : parsed->tools) call->tool_specs.push_back({t.name, t.description, t.parameters});
    if (call->stream) call->tool_stream.emplace(call->tool_format);
  }
  {
    auto constraint = tool_mode == Mode::kRequired || tool_mode == Mode::kFunction
                          ? tool_constraint(call->tool_format, call->tool_specs, parsed->tool_choice.function,
                                            parsed->parallel_tool_calls, &err)
                          : constraint_for(parsed->response_format, &err);
    if (!constraint) return refuse(*call->w, endpoint, err);
    call->constraint = std::move(constraint.value());
  }
  in_flight_.fetch_add(1);
  auto request = std::make_shared<openai::ChatRequest>(std::move(parsed.value()));
  prep_->post([this, call, request] {
    namespace st = engine::structured;
    std::vector<st::ToolChatMessage> tool_messages;
    bool tool_history = false;
    std::vector<engine::ImageBytes> images;
    engine::PromptLimits limits;
    limits.max_positions = engine_->max_context();
    for (const auto& m : request->messages) {
      st::ToolChatMessage tm;
      for (const auto& c : m.tool_calls) tm.calls.push_back({c.id, c.name, c.arguments});
      tm.tool_call_id = m.tool_call_id;
      tool_history |= !m.tool_calls.empty() || m.role == openai::Role::kTool;
      engine::ChatMessage& em = tm.message;
      em.role = openai::role_name(m.role);
      for (const auto& part : m.content) {
        if (part.type == openai::ContentPart::Type::kText) {
          em.parts.push_back({engine::ChatPart::Kind::kText, part.text});
        } else {
          em.parts.push_back({engine::ChatPart::Kind::kImage, "", static_cast<int>(images.size())});
          images.emplace_back(part.image.data.begin(), part.image.data.end());
          limits.budgets.push_back(engine::image_budget_for_detail(part.image.detail, options_.max_image_tokens));
        }
      }
      tool_messages.push_back(std::move(tm));
    }
    std::vector<engine::ChatMessage> messages;
    if (call->tools || tool_history) {
      messages = st::render_tool_conversation(call->tool_format, tool_messages, call->tool_specs);
    } else {
      for (auto& tm : tool_messages) messages.push_back(std::move(tm.message));
    }
    generate(call, engine::prepare_chat_prompt(llm_, embedder_.get(), template_kind_, messages, images, limits));
  });
}

bool Worker::take_logit_bias(Call& call, const openai::SamplingOptions& sampling) {
  const int vocab = llm_.model->config().n_vocab;
  for (const auto& [token, bias] : sampling.logit_bias) {
    if (token >= vocab) {
      refuse(*call.w, call.endpoint,
             Status::invalid_argument("'logit_bias' names token " + std::to_string(token) +
                                      ", outside the vocabulary of " + std::to_string(vocab) + " of model '" +
                                      model_name_ + "'"),
             "logit_bias", "invalid_value");
      return false;
    }
    call.logit_bias.emplace_back(token, static_cast<float>(bias));
  }
  return true;
}

void Worker::handle_completion(const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
  const std::string endpoint = "completions";
  if (refuse_if_unavailable(w, endpoint)) return;
  if (refuse_wrong_kind("/v1/completions", w, endpoint)) return;
  const auto priority = read_priority(req);
  if (!priority) return refuse(*w, endpoint, priority.status(), kPriorityHeader, "invalid_value");
  openai::ApiError err;
  auto parsed = openai::parse_completion_request(req.body, {}, &err);
  if (!parsed) return refuse(*w, endpoint, err);
  auto call = std::make_shared<Call>();
  call->chat = false;
  call->endpoint = endpoint;
  call->stream = parsed->stream;
  call->include_usage = parsed->include_usage;
  call->id = openai::make_response_id("cmpl");
  call->created = openai::unix_time_now();
  call->w = std::move(w);
  call->sampling = to_sampling(parsed->sampling);
  call->max_tokens = parsed->sampling.max_tokens.value_or(16);  // the OpenAI default for completions
  call->n = parsed->sampling.n;
  call->stop = parsed->sampling.stop;
  call->priority = priority.value();
  call->logprobs = parsed->logprobs.top;
  if (!take_logit_bias(*call, parsed->sampling)) return;
  {
    auto constraint = constraint_for(parsed->output, &err);
    if (!constraint) return refuse(*call->w, endpoint, err);
    call->constraint = std::move(constraint.value());
  }
  in_flight_.fetch_add(1);
  auto prompt = std::make_shared<std::string>(std::move(parsed->prompt));
  prep_->post([this, call, prompt] { generate(call, engine::prepare_text_prompt(llm_, embedder_.get(), *prompt, {})); });
}

void Worker::handle_embeddings(const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
  const std::string endpoint = "embeddings";
  if (refuse_if_unavailable(w, endpoint)) return;
  if (refuse_wrong_kind("/v1/embeddings", w, endpoint)) return;
  const auto priority = read_priority(req);
  if (!priority) return refuse(*w, endpoint, priority.status(), kPriorityHeader, "invalid_value");
  openai::ApiError err;
  auto parsed = openai::parse_embedding_request(req.body, {}, &err);
  if (!parsed) return refuse(*w, endpoint, err);
  if (parsed->dimensions) {
    const int dim = encoder_->dim();
    if (!options_.matryoshka) {
      return refuse(*w, endpoint,
                    Status::invalid_argument(
                        "model '" + model_name_ + "' is not declared Matryoshka-trained, so 'dimensions' cannot shorten its " +
                        std::to_string(dim) + "-dimensional vectors; omit 'dimensions' (or, if the model was trained " +
                        "for it, set 'matryoshka: true' on its deployment)"),
                    "dimensions", "unsupported_parameter");
    }
    if (*parsed->dimensions > dim) {
      return refuse(*w, endpoint,
                    Status::invalid_argument("'dimensions' must be in [1, " + std::to_string(dim) + "] for model '" +
                                             model_name_ + "', got " + std::to_string(*parsed->dimensions)),
                    "dimensions", "invalid_value");
    }
  }
  auto job = std::make_shared<EmbedJob>();
  job->w = std::move(w);
  job->request = std::move(parsed.value());
  in_flight_.fetch_add(1);
  {
    core::MutexLock lock(embed_mutex_);
    embed_queue_[static_cast<int>(priority.value())].push_back(job);
  }
  prep_->post([this] { run_embeddings(); });
}

void Worker::run_embeddings() {
  std::vector<std::shared_ptr<EmbedJob>> jobs;
  {
    core::MutexLock lock(embed_mutex_);
    auto& q = embed_queue_[0].empty() ? embed_queue_[1] : embed_queue_[0];
    size_t inputs = 0;
    while (!q.empty() && (jobs.empty() || inputs + q.front()->request.inputs.size() <= kMaxCoalescedInputs)) {
      inputs += q.front()->request.inputs.size();
      jobs.push_back(std::move(q.front()));
      q.pop_front();
    }
  }
  if (jobs.empty()) return;  // an earlier run took them along
  try {
    finish_embeddings(jobs);
  } catch (const std::exception& e) {
    for (auto& job : jobs) {
      if (job->answered) continue;
      refuse(*job->w, "embeddings", Status::internal(std::string("embedding failed: ") + e.what()));
      in_flight_.fetch_sub(1);
    }
  }
}

void Worker::finish_embeddings(std::vector<std::shared_ptr<EmbedJob>>& jobs) {
  const std::string endpoint = "embeddings";
  auto answer = [&](EmbedJob& job, int status, const std::string& body) {
    job.answered = true;
    count_response(endpoint, status);  // counted first: a client that reads /metrics next sees it
    job.w->respond_json(status, body);
    in_flight_.fetch_sub(1);
  };
  const int vocab = llm_.model->config().n_vocab;
  const int max_tokens = encoder_->max_input_tokens();
  std::vector<std::vector<int32_t>> all;
  std::vector<EmbedJob*> running;
  for (auto& jp : jobs) {
    EmbedJob& job = *jp;
    if (job.w->client_gone()) {
      job.answered = true;
      count_response(endpoint, 499);
      in_flight_.fetch_sub(1);
      continue;
    }
    std::optional<openai::ApiError> refused;
    const auto& inputs = job.request.inputs;
    for (size_t i = 0; i < inputs.size() && !refused; ++i) {
      const std::string param = job.request.single ? "input" : "input[" + std::to_string(i) + "]";
      std::vector<int32_t> tokens =
          inputs[i].is_tokens ? inputs[i].tokens
                              : llm_.tokenizer->encode(inputs[i].text, /*add_bos=*/true, /*parse_special=*/true);
      auto refuse = [&](const std::string& message, const std::string& code) {
        refused = openai::ApiError{core::StatusCode::kInvalidArgument, message, param, code};
      };
      if (tokens.empty()) {
        refuse("'" + param + "' has no tokens", "invalid_value");
      } else if (static_cast<int>(tokens.size()) > max_tokens) {
        refuse("'" + param + "' has " + std::to_string(tokens.size()) + " tokens, more than the " +
                   std::to_string(max_tokens) + " of model '" + model_name_ + "'",
               "context_length_exceeded");
      } else if (auto bad = std::find_if(tokens.begin(), tokens.end(), [&](int32_t t) { return t >= vocab; });
                 bad != tokens.end()) {
        refuse("'" + param + "' holds token id " + std::to_string(*bad) + ", outside the vocabulary of " +
                   std::to_string(vocab) + " of model '" + model_name_ + "'",
               "invalid_value");
      }
      job.prompt_tokens += static_cast<int64_t>(tokens.size());
      job.tokens.push_back(std::move(tokens));
    }
    if (refused) {
      answer(job, refused->http_status(), refused->to_json());
      continue;
    }
    running.push_back(&job);
  }
  if (running.empty()) return;
  // Every input of these requests in one call: the encoder packs them into as few passes as fit.
  for (EmbedJob* job : running)
    for (auto& t : job->tokens) all.push_back(std::move(t));
  const int64_t passes_before = encoder_->passes();
  auto vectors = encoder_->embed(all);
  metrics_.counter("zs_worker_embedding_passes_total", "Forward passes of the embedding model.")
      .add(static_cast<double>(encoder_->passes() - passes_before));
  if (!vectors) {
    const Status failed = vectors.status().with_code(core::StatusCode::kInternal).with_context("embedding failed");
    for (EmbedJob* job : running)
      answer(*job, openai::http_error_for(failed.code()).status, openai::openai_error_json(failed));
    return;
  }
  size_t next = 0;
  for (EmbedJob* job : running) {
    const size_t n = job->request.inputs.size();
    std::vector<std::vector<float>> out(std::make_move_iterator(vectors->begin() + next),
                                        std::make_move_iterator(vectors->begin() + next + n));
    next += n;
    for (auto& v : out) {
      // Matryoshka: the first `dimensions` values, renormalised (checked against the model above).
      if (job->request.dimensions) v.resize(static_cast<size_t>(*job->request.dimensions));
      engine::l2_normalize(v.data(), static_cast<int64_t>(v.size()));
    }
    metrics_.counter("zs_worker_prompt_tokens_total", "Prompt positions processed (text and image).")
        .add(static_cast<double>(job->prompt_tokens));
    metrics_.counter("zs_worker_embedding_inputs_total", "Inputs embedded.").add(static_cast<double>(n));
    answer(*job, 200,
           openai::embeddings_response(out, job->request.encoding_format == openai::EncodingFormat::kBase64,
                                       model_name_, job->prompt_tokens));
  }
}

void Worker::generate(std::shared_ptr<Call> call, Result<engine::PreparedPrompt> prepared) {
  auto fail = [&](const std::string& message, const std::string& param, const std::string& code) {
    refuse(*call->w, call->endpoint, Status::invalid_argument(message), param, code);
    in_flight_.fetch_sub(1);
  };
  const std::string param = call->chat ? "messages" : "prompt";
  // A prompt that cannot be prepared (an undecodable image, too many images) is the request's fault.
  if (!prepared) return fail(prepared.status().message(), param, "invalid_value");
  const int positions = prepared->prompt.n_positions();
  if (positions + 1 > engine_->max_context())
    return fail("the prompt needs " + std::to_string(positions) + " positions (" +
                    std::to_string(prepared->prompt.n_image_positions) + " for images) but the context holds " +
                    std::to_string(engine_->max_context()),
                param, "context_length_exceeded");
  auto group = std::make_shared<Group>();
  group->n = std::max(1, call->n);
  group->bodies.resize(static_cast<size_t>(group->n));
  call->group = group;
  engine::GenerationRequest gr;
  gr.prompt = std::move(prepared->prompt);
  gr.sampling = call->sampling;
  gr.max_tokens = call->max_tokens;
  gr.stop = call->stop;
  gr.priority = call->priority;
  gr.constraint = call->constraint;
  gr.logprobs = call->logprobs;
  gr.logit_bias = call->logit_bias;
  gr.arrived = call->arrival;
  // The other choices start once the first has computed the prompt, so that they reuse its
  // KV blocks through the prefix cache instead of computing the same prefill again.
  if (group->n > 1) {
    auto base = std::make_shared<engine::GenerationRequest>(gr);
    group->submit_rest = [this, call, group, base] {
      for (int i = 1; i < group->n; ++i) {
        auto sibling = std::make_shared<Call>(*call);
        sibling->index = i;
        engine::GenerationRequest r = *base;
        r.sampling.seed = base->sampling.seed + static_cast<uint64_t>(i);  // distinct, and reproducible with `seed`
        r.on_event = make_event_handler(sibling);
        auto id = engine_->submit(std::move(r));
        if (!id) continue;  // the engine is stopping: the first choice's cancellation answers
        core::MutexLock lock(group->mutex);
        group->seqs.push_back(id.value());
      }
    };
  }
  gr.on_event = make_event_handler(call);
  // A sleeping engine wakes before the answer starts, so that the wake time goes out with the
  // headers (the engine would wake for the submit anyway).
  if (engine_->asleep() && engine_->wake())
    call->wake_ms = std::chrono::duration<double, std::milli>(Clock::now() - call->arrival).count();
  // Headers go out before the first token so that clients see the stream open at once.
  if (call->stream) {
    HttpHeaders headers{{"Cache-Control", "no-cache"}};
    if (call->wake_ms >= 0) headers.push_back({kWakeMsHeader, wake_ms_text(call->wake_ms)});
    call->w->start_stream(200, "text/event-stream", std::move(headers));
    if (call->chat)
      for (int i = 0; i < group->n; ++i)
        call->w->write(gateway::sse_event(openai::chat_completion_chunk(
            call->id, call->created, model_name_, "assistant", "", std::nullopt, call->include_usage, nullptr, i)));
  }
  auto id = engine_->submit(std::move(gr));
  if (!id) {  // kUnavailable when the engine is shutting down
    const int status = openai::http_error_for(id.code()).status;
    count_response(call->endpoint, status);
    in_flight_.fetch_sub(1);
    const std::string body = openai::openai_error_json(id.status());
    if (!call->stream) return call->w->respond_json(status, body);
    call->w->write(gateway::sse_event(body));
    call->w->write(gateway::sse_event("[DONE]"));
    call->w->end();
    return;
  }
  {
    core::MutexLock lock(group->mutex);
    group->seqs.push_back(id.value());
  }
  engine::BatchEngine* engine = engine_.get();
  call->w->on_client_gone([engine, group] {
    core::MutexLock lock(group->mutex);
    for (uint64_t seq : group->seqs) engine->cancel(seq);
  });
}

std::function<void(const engine::GenerationEvent&)> Worker::make_event_handler(std::shared_ptr<Call> call) {
  return [this, call](const engine::GenerationEvent& e) {
    Group& group = *call->group;
    if (group.submit_rest) {  // choice 0's first event: its prompt is in the cache now
      auto submit = std::move(group.submit_rest);
      group.submit_rest = nullptr;
      submit();
    }
    if (group.answered) return;  // another choice failed and answered for all
    const auto now = Clock::now();
    auto& w = *call->w;
    const int index = call->index;
    std::vector<openai::LogprobEntry> entries;
    if (call->logprobs >= 0) entries = to_entries(e.logprobs);
    const std::vector<openai::LogprobEntry>* lp = call->logprobs >= 0 ? &entries : nullptr;
    if (call->stream && e.text.empty() && !entries.empty() && !e.finished) {
      // Tokens whose text is held back still report their log-probabilities now.
      w.write(gateway::sse_event(
          call->chat ? openai::chat_completion_chunk(call->id, call->created, model_name_, std::nullopt, "",
                                                     std::nullopt, call->include_usage, lp, index)
                     : openai::completion_chunk(call->id, call->created, model_name_, "", std::nullopt,
                                                call->include_usage, lp, call->text_offset, index)));
      entries.clear();
    }
    if (!call->stream) call->logprob_entries.insert(call->logprob_entries.end(), entries.begin(), entries.end());
    if (!e.text.empty()) {
      const double since = std::chrono::duration<double>(now - (call->any_text ? call->last_text : call->arrival)).count();
      if (call->any_text) {
        metrics_.histogram("zs_worker_inter_token_latency_seconds", "Time between streamed pieces of text.",
                           platform::MetricsRegistry::exponential_buckets(0.001, 2, 14))
            .observe(since);
      } else {
        metrics_.histogram("zs_worker_time_to_first_token_seconds", "Time from request arrival to the first text.",
                           platform::MetricsRegistry::exponential_buckets(0.005, 2, 14))
            .observe(since);
      }
      call->any_text = true;
      call->last_text = now;
      if (call->tools || !call->stream) call->text += e.text;  // with tools: parsed at the end
      if (call->stream) {
        std::string out = e.text;
        if (call->tool_stream) out = call->tool_stream->push(e.text);
        if (!out.empty() || !entries.empty()) {
          w.write(gateway::sse_event(
              call->chat ? openai::chat_completion_chunk(call->id, call->created, model_name_, std::nullopt, out,
                                                         std::nullopt, call->include_usage, lp, index)
                         : openai::completion_chunk(call->id, call->created, model_name_, out, std::nullopt,
                                                    call->include_usage, lp, call->text_offset, index)));
        }
        entries.clear();
        call->text_offset += static_cast<int64_t>(out.size());
      }
    }
    if (!e.finished) return;
    metrics_.counter("zs_worker_prompt_tokens_total", "Prompt positions processed (text and image).")
        .add(e.prompt_tokens);
    metrics_.counter("zs_worker_generation_tokens_total", "Tokens generated.").add(e.completion_tokens);
    // A failed or cancelled choice answers for the whole request, and stops the other choices.
    auto stop_siblings = [this, &group] {
      core::MutexLock lock(group.mutex);
      for (uint64_t seq : group.seqs) engine_->cancel(seq);
    };
    if (e.reason == engine::FinishReason::kCancelled) {
      group.answered = true;
      in_flight_.fetch_sub(1);
      stop_siblings();
      count_response(call->endpoint, 499);  // the client went away (or the worker stopped)
      if (call->stream) w.end();
      else respond_error(w, Status::unavailable("the request was cancelled because the worker is stopping"));
      return;
    }
    if (e.reason == engine::FinishReason::kError) {
      group.answered = true;
      in_flight_.fetch_sub(1);
      stop_siblings();
      const Status failed = Status::internal(e.error);
      const int status = openai::http_error_for(failed.code()).status;
      count_response(call->endpoint, status);
      const std::string body = openai::openai_error_json(failed);
      if (call->stream) {
        w.write(gateway::sse_event(body));
        w.write(gateway::sse_event("[DONE]"));
        w.end();
      } else {
        w.respond_json(status, body);
      }
      return;
    }
    openai::Usage usage{e.prompt_tokens, e.completion_tokens, e.cached_tokens, e.image_tokens};
    if (index == 0) {
      group.usage.prompt_tokens = e.prompt_tokens;
      group.usage.cached_tokens = e.cached_tokens;
      group.usage.image_tokens = e.image_tokens;
    }
    group.usage.completion_tokens += e.completion_tokens;
    std::string reason(engine::finish_reason_name(e.reason));
    std::vector<openai::ToolCallOut> calls;
    if (call->tools) {
      auto parsed = engine::structured::parse_tool_output(call->tool_format, call->text, call->tool_specs);
      for (auto& c : parsed.calls)
        calls.push_back({engine::structured::new_tool_call_id(call->tool_format), c.name, c.arguments});
      const std::string held = call->tool_stream ? call->tool_stream->take_held() : std::string();
      if (!calls.empty()) {
        reason = "tool_calls";
        if (!call->stream) call->text = parsed.content;
      } else if (call->stream && !held.empty()) {  // no call after all: the held text is content
        w.write(gateway::sse_event(openai::chat_completion_chunk(call->id, call->created, model_name_, std::nullopt,
                                                                 held, std::nullopt, call->include_usage,
                                                                 nullptr, index)));
      }
      if (call->stream && !calls.empty())
        w.write(gateway::sse_event(openai::chat_tool_calls_chunk(call->id, call->created, model_name_, calls,
                                                                 call->include_usage, index)));
    }
    const std::vector<openai::LogprobEntry>* all = call->logprobs >= 0 ? &call->logprob_entries : nullptr;
    if (!call->stream) {
      group.bodies[static_cast<size_t>(index)] =
          call->chat ? openai::chat_completion_response(call->id, call->created, model_name_, call->text, reason, usage,
                                                        all, &calls)
                     : openai::completion_response(call->id, call->created, model_name_, call->text, reason, usage, all);
    } else {
      // The last chunk carries any log-probabilities not sent yet (tokens of held-back text).
      const std::vector<openai::LogprobEntry>* rest = entries.empty() ? nullptr : lp;
      w.write(gateway::sse_event(
          call->chat ? openai::chat_completion_chunk(call->id, call->created, model_name_, std::nullopt, std::nullopt,
                                                     reason, call->include_usage, rest, index)
                     : openai::completion_chunk(call->id, call->created, model_name_, "", reason,
                                                call->include_usage, rest, call->text_offset, index)));
    }
    if (++group.finished < group.n) return;
    group.answered = true;
    in_flight_.fetch_sub(1);
    count_response(call->endpoint, 200);
    if (!call->stream) {
      HttpHeaders headers;
      if (call->wake_ms >= 0) headers.push_back({kWakeMsHeader, wake_ms_text(call->wake_ms)});
      w.respond_json(200, group.n == 1 ? group.bodies[0] : openai::merge_choice_responses(group.bodies),
                     std::move(headers));
      return;
    }
    if (call->include_usage)
      w.write(gateway::sse_event(call->chat ? openai::usage_chunk(call->id, call->created, model_name_, group.usage)
                                            : openai::completion_usage_chunk(call->id, call->created, model_name_,
                                                                             group.usage)));
    w.write(gateway::sse_event("[DONE]"));
    w.end();
  };
}

void Worker::drain_and_stop() {
  draining_ = true;
  const auto deadline = Clock::now() + options_.drain_grace;
  while (in_flight_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (in_flight_.load() > 0)
    core::log_warn("worker", "grace period over: cancelling " + std::to_string(in_flight_.load()) + " requests");
  if (engine_) engine_->shutdown();
  prep_.reset();
  if (server_) server_->stop(std::chrono::milliseconds(2000));
}

}  // namespace zs::worker
