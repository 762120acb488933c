#include "platform/config/units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace zs::platform {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Reads an unsigned decimal number ("12", "1.5", ".5") from the front of `s`; no sign, no
// exponent, so that "1e9" or "-3" never sneak through as sizes.
std::optional<double> take_number(std::string_view& s) {
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, digits = true;
  }
  if (!digits) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + i, v);
  if (ec != std::errc() || ptr != s.data() + i) return std::nullopt;
  s.remove_prefix(i);
  return v;
}

}  // namespace

std::optional<uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  // Whole byte counts are read exactly: a double would round sizes above 2^53.
  uint64_t whole = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), whole);
  if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) return whole;

  auto number = take_number(s);
  if (!number) return std::nullopt;
  const std::string_view unit = trim(s);
  struct Unit {
    std::string_view name;
    double factor;
  };
  static constexpr std::array<Unit, 10> kUnits = {{
      {"b", 1},
      {"kb", 1e3},
      {"mb", 1e6},
      {"gb", 1e9},
      {"tb", 1e12},
      {"kib", 1024.0},
      {"mib", 1024.0 * 1024},
      {"gib", 1024.0 * 1024 * 1024},
      {"tib", 1024.0 * 1024 * 1024 * 1024},
      {"", 1},
  }};
  for (const Unit& u : kUnits) {
    if (!iequals(unit, u.name)) continue;
    const double bytes = std::round(*number * u.factor);
    if (!(bytes < 18446744073709551615.0)) return std::nullopt;
    return static_cast<uint64_t>(bytes);
  }
  return std::nullopt;
}

std::optional<double> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  double total = 0;
  bool first = true;
  while (!s.empty()) {
    auto number = take_number(s);
    if (!number) return std::nullopt;
    size_t n = 0;
    while (n < s.size() && std::isalpha(static_cast<unsigned char>(s[n]))) ++n;
    const std::string_view unit = s.substr(0, n);
    s.remove_prefix(n);
    if (unit.empty()) {
      // A bare number means seconds, but only alone: "1h30" is more likely a typo than 1h30s.
      if (!first || !trim(s).empty()) return std::nullopt;
      return *number;
    }
    if (unit == "ms") {
      total += *number / 1000;
    } else if (unit == "s") {
      total += *number;
    } else if (unit == "m") {
      total += *number * 60;
    } else if (unit == "h") {
      total += *number * 3600;
    } else if (unit == "d") {
      total += *number * 86400;
    } else {
      return std::nullopt;
    }
    first = false;
    s = trim(s);
  }
  return total;
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 5> kNames = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < kNames.size()) {
    v /= 1024;
    ++unit;
  }
  char buf[48];
  if (unit == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
    return buf;
  }
  // One decimal is enough to tell sizes apart in a message.
  const double tenths = std::round(v * 10) / 10;
  if (tenths == std::floor(tenths)) {
    std::snprintf(buf, sizeof(buf), "%.0f %s", tenths, kNames[unit]);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", tenths, kNames[unit]);
  }
  return buf;
}

}  // namespace zs::platform
