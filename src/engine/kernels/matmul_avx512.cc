// AVX-512 kernels (placeholder while being written).
#include "engine/kernels/gemm_kernel.h"

namespace zs::engine::kernels {

const GemmKernel* avx512_kernel(GgmlType) { return nullptr; }

}  // namespace zs::engine::kernels
