#include "engine/vision/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace zs::engine {

void attention_full_reference(const float* q, const float* k, const float* v, int64_t n_tokens, int n_head,
                              int head_dim, float scale, float* out, core::ThreadPool& pool) {
  const int64_t width = static_cast<int64_t>(n_head) * head_dim;
  pool.parallel_for(n_tokens * n_head, [&](int64_t b, int64_t e) {
    std::vector<float> scores(n_tokens), acc(head_dim);
    for (int64_t job = b; job < e; ++job) {
      const int64_t t = job / n_head;
      const int64_t h = job % n_head;
      const float* qr = q + t * width + h * head_dim;
      float max_s = -INFINITY;
      for (int64_t j = 0; j < n_tokens; ++j) {
        const float* kr = k + j * width + h * head_dim;
        float s = 0;
        for (int i = 0; i < head_dim; ++i) s += qr[i] * kr[i];
        scores[j] = s * scale;
        max_s = std::max(max_s, scores[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n_tokens; ++j) sum += (scores[j] = std::exp(scores[j] - max_s));
      const float inv = static_cast<float>(1.0 / sum);
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < n_tokens; ++j) {
        const float* vr = v + j * width + h * head_dim;
        const float p = scores[j] * inv;
        for (int i = 0; i < head_dim; ++i) acc[i] += p * vr[i];
      }
      std::copy(acc.begin(), acc.end(), out + t * width + h * head_dim);
    }
  });
}

}  // namespace zs::engine
