#include "engine/model/session.h"

#include <algorithm>

namespace zs::engine {

using core::Status;

namespace {
constexpr int kBlockSize = 64;
}

Session::Session(const TextModel& model, Backend& backend, int n_ctx, int max_batch)
    : model_(model), n_ctx_(std::max(1, n_ctx)) {
  const int n_blocks = (n_ctx_ + kBlockSize - 1) / kBlockSize;
  kv_ = std::make_unique<KvPool>(model.config(), backend, n_blocks, kBlockSize);
  for (int b = 0; b < n_blocks; ++b) block_table_.push_back(kv_->allocate());
  forward_ = std::make_unique<Forward>(model, backend, *kv_, std::max(1, max_batch), n_ctx_);
  logits_.resize(model.config().n_vocab);
}

void Session::truncate(int n) { n_past_ = std::clamp(n, 0, n_past_); }

Status Session::eval(const int32_t* tokens, int64_t n) { return eval_rows(tokens, nullptr, n); }

Status Session::eval_embeddings(const float* embeddings, int64_t n) { return eval_rows(nullptr, embeddings, n); }

Status Session::eval_rows(const int32_t* tokens, const float* embeddings, int64_t n) {
  if (n_past_ + n > n_ctx_)
    return Status::error("the sequence needs " + std::to_string(n_past_ + n) + " positions but the context holds " +
                         std::to_string(n_ctx_));
  const int64_t d = model_.config().n_embd;
  for (int64_t done = 0; done < n;) {
    const int64_t chunk = std::min<int64_t>(forward_->max_rows(), n - done);
    rows_.clear();
    for (int64_t i = 0; i < chunk; ++i) {
      const bool last = done + i == n - 1;
      const int32_t pos = static_cast<int32_t>(n_past_ + i);
      if (tokens) rows_.add_token(tokens[done + i], pos, block_table_.data(), last);
      else rows_.add_embedding(embeddings + (done + i) * d, pos, block_table_.data(), last);
    }
    ZS_RETURN_IF_ERROR(forward_->run(rows_, logits_.data()));
    n_past_ += static_cast<int>(chunk);
    done += chunk;
  }
  return Status::ok();
}

}  // namespace zs::engine
