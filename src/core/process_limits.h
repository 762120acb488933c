#pragma once
// Raises the soft limit on open files to the hard limit: a gateway holding thousands of
// streaming connections needs more than the usual default of 1024. Returns the new limit.
#include <cstdint>

namespace zs::core {

uint64_t raise_open_file_limit();

}  // namespace zs::core
