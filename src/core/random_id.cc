#include "core/random_id.h"

#include <cstdint>
#include <random>

namespace zs::core {

std::string random_hex(int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(static_cast<size_t>(digits > 0 ? digits : 0));
  while (static_cast<int>(out.size()) < digits) {
    const uint32_t v = rd();
    for (int i = 0; i < 8 && static_cast<int>(out.size()) < digits; ++i) out += kHex[(v >> (4 * i)) & 15];
  }
  return out;
}

}  // namespace zs::core
