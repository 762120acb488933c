#pragma once
// Just enough JSON writing for the ledger's admin output: the platform layer has no JSON
// library (DESIGN.md, layers), so strings and numbers are rendered here by hand.
#include <cstdint>
#include <string>
#include <string_view>

namespace zs::platform {

// Appends `s` as a quoted JSON string: quote, backslash and control characters escaped,
// valid UTF-8 copied as is, and each byte of invalid UTF-8 replaced by U+FFFD so that the
// output is always valid JSON (names come from config files and may hold anything).
void append_json_string(std::string& out, std::string_view s);
// Appends the shortest text that reads back as the same double; NaN and infinities, which
// JSON cannot represent, become null.
void append_json_number(std::string& out, double v);
void append_json_number(std::string& out, int64_t v);

}  // namespace zs::platform
