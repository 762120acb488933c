// AVX2 kernels: filled in after the AVX-512 ones; until then every type uses the scalar path.
#include "engine/kernels/gemm_kernel.h"

namespace zs::engine::kernels {

const GemmKernel* avx2_kernel(GgmlType) { return nullptr; }

}  // namespace zs::engine::kernels
