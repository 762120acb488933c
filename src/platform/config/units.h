#pragma once
// Human-friendly sizes and durations as they appear in the configuration file, and the
// reverse (sizes for messages). Parsers return nullopt on malformed text; the caller knows
// the field and writes the message.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zs::platform {

// "1073741824", "512MiB", "8GiB", "1.5GB", "64 KiB". Decimal units (kB/KB, MB, GB, TB) are
// powers of 1000, binary units (KiB, MiB, GiB, TiB) powers of 1024; units are matched without
// regard to case, "B" is bytes. A bare number is bytes. Fractions round to the nearest byte.
std::optional<uint64_t> parse_size(std::string_view text);

// "250ms", "30s", "5m", "1h", "1h30m", "1.5s", or a bare number of seconds. Never negative.
std::optional<double> parse_duration(std::string_view text);

// Bytes for people: "512 B", "4 KiB", "9.5 GiB", "16 GiB" (binary units, at most one
// decimal, no trailing ".0").
std::string format_bytes(uint64_t bytes);

// The units parse_size accepts, for error messages.
inline constexpr std::string_view kSizeUnitsHelp =
    "a number of bytes or a size such as \"512MiB\", \"8GiB\", \"1.5GB\"";
inline constexpr std::string_view kDurationUnitsHelp =
    "a number of seconds or a duration such as \"250ms\", \"30s\", \"5m\", \"1h\"";

}  // namespace zs::platform
