#include "engine/quant/ggml_type.h"

namespace zs::engine {

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::kF32: return GgmlTypeTraits{"F32", 1, 4, true};
    case GgmlType::kF16: return GgmlTypeTraits{"F16", 1, 2, true};
    case GgmlType::kBF16: return GgmlTypeTraits{"BF16", 1, 2, true};
    case GgmlType::kQ4_0: return GgmlTypeTraits{"Q4_0", 32, 18, true};
    case GgmlType::kQ4_1: return GgmlTypeTraits{"Q4_1", 32, 20, true};
    case GgmlType::kQ5_0: return GgmlTypeTraits{"Q5_0", 32, 22, true};
    case GgmlType::kQ5_1: return GgmlTypeTraits{"Q5_1", 32, 24, true};
    case GgmlType::kQ8_0: return GgmlTypeTraits{"Q8_0", 32, 34, true};
    case GgmlType::kQ8_1: return GgmlTypeTraits{"Q8_1", 32, 36, false};
    case GgmlType::kQ2_K: return GgmlTypeTraits{"Q2_K", 256, 84, false};
    case GgmlType::kQ3_K: return GgmlTypeTraits{"Q3_K", 256, 110, false};
    case GgmlType::kQ4_K: return GgmlTypeTraits{"Q4_K", 256, 144, true};
    case GgmlType::kQ5_K: return GgmlTypeTraits{"Q5_K", 256, 176, true};
    case GgmlType::kQ6_K: return GgmlTypeTraits{"Q6_K", 256, 210, true};
    case GgmlType::kQ8_K: return GgmlTypeTraits{"Q8_K", 256, 292, true};
    case GgmlType::kIQ2_XXS: return GgmlTypeTraits{"IQ2_XXS", 256, 66, false};
    case GgmlType::kIQ2_XS: return GgmlTypeTraits{"IQ2_XS", 256, 74, false};
    case GgmlType::kIQ3_XXS: return GgmlTypeTraits{"IQ3_XXS", 256, 98, false};
    case GgmlType::kIQ1_S: return GgmlTypeTraits{"IQ1_S", 256, 50, false};
    case GgmlType::kIQ4_NL: return GgmlTypeTraits{"IQ4_NL", 32, 18, false};
    case GgmlType::kIQ3_S: return GgmlTypeTraits{"IQ3_S", 256, 110, false};
    case GgmlType::kIQ2_S: return GgmlTypeTraits{"IQ2_S", 256, 82, false};
    case GgmlType::kIQ4_XS: return GgmlTypeTraits{"IQ4_XS", 256, 136, false};
    case GgmlType::kI8: return GgmlTypeTraits{"I8", 1, 1, false};
    case GgmlType::kI16: return GgmlTypeTraits{"I16", 1, 2, false};
    case GgmlType::kI32: return GgmlTypeTraits{"I32", 1, 4, false};
    case GgmlType::kI64: return GgmlTypeTraits{"I64", 1, 8, false};
    case GgmlType::kF64: return GgmlTypeTraits{"F64", 1, 8, false};
    case GgmlType::kIQ1_M: return GgmlTypeTraits{"IQ1_M", 256, 56, false};
  }
  return std::nullopt;
}

std::string_view ggml_type_name(GgmlType type) {
  auto t = ggml_type_traits(static_cast<uint32_t>(type));
  return t ? t->name : std::string_view("unknown");
}

size_t ggml_row_size(GgmlType type, int64_t n) {
  auto t = ggml_type_traits(static_cast<uint32_t>(type));
  if (!t) return 0;
  return static_cast<size_t>(n / t->block_size) * t->type_size;
}

}  // namespace zs::engine
