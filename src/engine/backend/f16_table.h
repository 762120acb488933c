#pragma once
// Element-wise functions looked up in a table of every f16 input, as the reference evaluates
// GELU and quick GELU: entry h holds f(v) of the f16 value v with bits h, rounded to f16 and
// widened back, so a lookup reproduces it bit for bit. Shared by the CPU backend and the 2026
// reference arithmetic (ref2026). Tables are immutable once built; everything here is
// thread-safe and never fails.
#include <cstdint>
#include <vector>

namespace zs::engine {

// Whether the CPU has AVX2 and FMA (every x86-64 CPU with both also has F16C, which clang 14
// cannot query by name). Computed once.
bool has_avx2_fma();

// The table of f over all 65,536 f16 values.
std::vector<float> f16_function_table(float (*f)(float));

// x[i] = table[f16(x[i])] for i < n. With clamp_beyond_10 (the 2026 reference's GELU), values
// <= -10 become 0 and values >= 10 stay as they are. Uses AVX2/F16C where the CPU has them
// (F16C rounds to nearest even like f32_to_f16, so both paths read the same entries).
void apply_f16_table(const float* table, float* x, int64_t n, bool clamp_beyond_10 = false);

}  // namespace zs::engine
