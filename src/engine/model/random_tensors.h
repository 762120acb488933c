#pragma once
// Random tensor contents for the models zeroserve generates itself (benchmarks and tests):
// normal values drawn from one seeded generator, so a preset and a seed always give the same
// file. A matrix repeats rows drawn from a small pool of quantized random rows, which keeps
// generating a multi-gigabyte model fast while its bytes stay incompressible to the kernels.
#include <cstdint>
#include <random>

#include "engine/gguf/gguf_writer.h"
#include "engine/quant/ggml_type.h"

namespace zs::engine {

class RandomTensors {
 public:
  static constexpr int kPoolRows = 64;  // distinct random rows per matrix

  explicit RandomTensors(uint64_t seed) : rng_(seed) {}

  // n_out rows of n_in values with std `scale`, stored as `type` (any type quantize_row takes).
  GgufWriter::Fill matrix(GgmlType type, int64_t n_in, int64_t n_out, float scale);
  // n float values with the given mean and std.
  GgufWriter::Fill vector(int64_t n, float mean, float scale);

 private:
  std::mt19937_64 rng_;
};

}  // namespace zs::engine
