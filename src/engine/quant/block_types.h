#pragma once
// Byte layouts of the ggml quantized blocks, exactly as stored in GGUF files. Kernels read
// weights in place through these structs, so their sizes are checked against the traits.
#include <cstdint>

#include "engine/quant/ggml_type.h"

namespace zs::engine {

inline constexpr int kQK = 32;    // values per block of the 32-block types
inline constexpr int kQKK = 256;  // values per K-quant super-block

struct BlockQ4_0 {
  uint16_t d;           // f16 scale
  uint8_t qs[kQK / 2];  // value j: low nibble of qs[j]; value j+16: high nibble; minus 8
};
struct BlockQ4_1 {
  uint16_t d, m;  // f16 scale and minimum
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // bit j: fifth bit of value j
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;  // f16 of d * sum(qs): lets the *_1 dot products add the min term cheaply
  int8_t qs[kQK];
};
struct BlockQ4K {
  uint16_t d, dmin;      // f16 super-block scales of the 6-bit scales and mins
  uint8_t scales[12];    // 8 scales and 8 mins of 6 bits (see unpack_scales_k4)
  uint8_t qs[kQKK / 2];  // per 64 values: 32 bytes, low nibbles first 32, high nibbles next 32
};
struct BlockQ5K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];  // bit 2i / 2i+1 of qh[l]: fifth bit of value l of sub-block 2i / 2i+1
  uint8_t qs[kQKK / 2];
};
struct BlockQ6K {
  uint8_t ql[kQKK / 2];  // low 4 bits
  uint8_t qh[kQKK / 4];  // high 2 bits
  int8_t scales[kQKK / 16];
  uint16_t d;
};
struct BlockQ8K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // sums of 16 consecutive qs, for the K-quant min terms
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4K) == 144 && sizeof(BlockQ5K) == 176 && sizeof(BlockQ6K) == 210 && sizeof(BlockQ8K) == 292);

// Unpacks the 12 scale bytes of Q4_K/Q5_K into 8 scales and 8 mins (6 bits each).
inline void unpack_scales_k4(const uint8_t* q, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
    sc[j + 4] = (q[j + 8] & 0xF) | ((q[j] >> 6) << 4);
    m[j + 4] = (q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4);
  }
}

// The type an activation row is converted to before a dot product with a weight of `type`
// (as ggml's CPU backend does); kF32 for types without a dot product.
inline GgmlType vec_dot_type(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
    case GgmlType::kQ8_0: return GgmlType::kQ8_0;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1: return GgmlType::kQ8_1;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kQ8_K: return GgmlType::kQ8_K;
    case GgmlType::kF16: return GgmlType::kF16;
    case GgmlType::kBF16: return GgmlType::kBF16;
    default: return GgmlType::kF32;
  }
}

}  // namespace zs::engine
