#pragma once
// The web console's files (src/gateway/console/*), embedded in the binary at build time by
// cmake/embed_files.cmake, so the console works without internet or files beside the binary.
// Read-only data: safe from any thread.
#include <string_view>

namespace zs::gateway {

struct ConsoleAsset {
  std::string_view name;  // the file's name, e.g. "console.js"
  std::string_view content_type;
  std::string_view body;
};

// The embedded file called `name`, or null.
const ConsoleAsset* find_console_asset(std::string_view name);

}  // namespace zs::gateway
