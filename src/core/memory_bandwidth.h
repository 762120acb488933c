#pragma once
// Measures this machine's memory read bandwidth, the roofline for decoding (every weight
// byte is read once per generated token).
#include "core/thread_pool.h"

namespace zs::core {

// Best of `repeats` parallel streaming reads of a buffer of `bytes`, in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30, int repeats = 5);

}  // namespace zs::core
