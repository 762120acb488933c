#include "engine/model/session.h"

#include <algorithm>

namespace zs::engine {

using core::Status;

namespace {
constexpr int kBlockSize = 64;
}

Session::Session(const TextModel& model, Backend& backend, int n_ctx, int max_batch)
    : model_(model), backend_(backend), n_ctx_(std::max(1, n_ctx)) {
  const int n_blocks = (n_ctx_ + kBlockSize - 1) / kBlockSize;
  kv_ = std::make_unique<KvPool>(model.config(), backend, n_blocks, kBlockSize);
  for (int b = 0; b < n_blocks; ++b) block_table_.push_back(kv_->allocate());
  forward_ = std::make_unique<Forward>(model, backend, *kv_, std::max(1, max_batch), n_ctx_);
  logits_.resize(model.config().n_vocab);
}

void Session::truncate(int n) {
  n_past_ = std::clamp(n, 0, n_past_);
  if (n_past_ == 0) rope_delta_ = 0;
}

Status Session::eval(const int32_t* tokens, int64_t n) { return eval_rows(tokens, nullptr, n); }

Status Session::eval_embeddings(const float* embeddings, int64_t n, int grid_rows, int grid_cols, bool bidirectional) {
  return eval_rows(nullptr, embeddings, n, grid_rows, grid_cols, bidirectional);
}

Status Session::eval_rows(const int32_t* tokens, const float* embeddings, int64_t n, int grid_rows, int grid_cols,
                          bool bidirectional) {
  const bool grid = grid_rows > 0 && grid_cols > 0;
  if (grid && static_cast<int64_t>(grid_rows) * grid_cols != n)
    return Status::error("an image grid of " + std::to_string(grid_rows) + " x " + std::to_string(grid_cols) +
                         " does not hold " + std::to_string(n) + " rows");
  const bool mrope = model_.config().rope_mode == RopeMode::kMrope;
  const int32_t rope_first = n_past_ + rope_delta_;
  // A bidirectional image is one batch: its rows see each other.
  if (bidirectional && n > forward_->max_rows())
    forward_ = std::make_unique<Forward>(model_, backend_, *kv_, static_cast<int>(n), n_ctx_);
  const int32_t image_end = static_cast<int32_t>(n_past_ + n);
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
      if (bidirectional) rows_.set_visible_end(image_end);
      if (mrope) {
        const int32_t k = static_cast<int32_t>(done + i);
        rows_.set_rope_position(grid ? RopePosition::grid(rope_first, k, grid_cols) : RopePosition::text(rope_first + k));
      }
    }
    ZS_RETURN_IF_ERROR(forward_->run(rows_, logits_.data()));
    n_past_ += static_cast<int>(chunk);
    done += chunk;
  }
  if (grid) rope_delta_ += RopePosition::grid_span(grid_rows, grid_cols) - static_cast<int>(n);
  return Status::ok();
}

}  // namespace zs::engine
