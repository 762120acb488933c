#pragma once
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/status.h"

namespace zs::cli {

// Prints a failed status as "error: ..." on stderr; returns the process exit code.
inline int report(const core::Status& s) {
  if (s) return 0;
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

inline core::Result<std::vector<uint8_t>> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Status::error("cannot read '" + path + "'");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace zs::cli
