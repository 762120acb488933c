#pragma once
#include <cstdio>

#include "core/status.h"

namespace zs::cli {

// Prints a failed status as "error: ..." on stderr; returns the process exit code.
inline int report(const core::Status& s) {
  if (s) return 0;
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

}  // namespace zs::cli
