#include "engine/model/random_tensors.h"

#include <cstring>
#include <memory>
#include <vector>

#include "engine/quant/quantize.h"

namespace zs::engine {

using core::Status;

GgufWriter::Fill RandomTensors::matrix(GgmlType type, int64_t n_in, int64_t n_out, float scale) {
  const size_t row_bytes = ggml_row_size(type, n_in);
  auto pool = std::make_shared<std::vector<uint8_t>>(row_bytes * kPoolRows);
  std::vector<float> row(n_in);
  std::normal_distribution<float> dist(0.f, scale);
  Status status = Status::ok();
  for (int r = 0; r < kPoolRows; ++r) {
    for (auto& x : row) x = dist(rng_);
    Status s = quantize_row(type, row.data(), pool->data() + r * row_bytes, n_in);
    if (!s) status = s;
  }
  const uint64_t seed = rng_();
  return [pool, row_bytes, n_out, seed, status](uint8_t* dst, size_t) -> Status {
    if (!status) return status;
    std::mt19937_64 pick(seed);
    for (int64_t r = 0; r < n_out; ++r)
      std::memcpy(dst + r * row_bytes, pool->data() + (pick() % kPoolRows) * row_bytes, row_bytes);
    return Status::ok();
  };
}

GgufWriter::Fill RandomTensors::vector(int64_t n, float mean, float scale) {
  auto v = std::make_shared<std::vector<float>>(n);
  std::normal_distribution<float> dist(mean, scale);
  for (auto& x : *v) x = dist(rng_);
  return [v](uint8_t* dst, size_t nbytes) {
    std::memcpy(dst, v->data(), nbytes);
    return Status::ok();
  };
}

}  // namespace zs::engine
