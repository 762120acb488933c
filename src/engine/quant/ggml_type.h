#pragma once
// Tensor element types as numbered in the GGUF format, with their block layout.
// A quantized row of n values is n / block_size blocks of type_size bytes each.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zs::engine {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
};

struct GgmlTypeTraits {
  std::string_view name;
  int64_t block_size;  // values per block
  size_t type_size;    // bytes per block
  bool computable;     // zeroserve has kernels for it
};

// Traits of a known type, or nullopt for a number this build does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type);
std::string_view ggml_type_name(GgmlType type);
// Bytes of a row of n values; n must be a multiple of the block size.
size_t ggml_row_size(GgmlType type, int64_t n);

}  // namespace zs::engine
