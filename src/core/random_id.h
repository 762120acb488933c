#pragma once
// Random identifiers (response ids, file and batch ids, internal tokens): hex digits from
// std::random_device, so they are unpredictable and unique; not fast, and no generator state
// is shared between threads.
#include <string>

namespace zs::core {

std::string random_hex(int digits);

}  // namespace zs::core
