// libFuzzer target: any bytes given as a model name (config files, `zeroserve pull`) parse
// into a name that prints back to itself, or into a refusal with a message; the quant picker
// takes the input's lines as a repository's file names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "platform/models/model_ref.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zs::platform;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto r = parse_model_ref(input);
  if (r.is_ok()) {
    auto again = parse_model_ref(r->to_string());
    if (!again.is_ok() || again->to_string() != r->to_string()) std::abort();
  } else if (r.status().message().empty()) {
    std::abort();
  }
  std::vector<std::string> files;
  size_t begin = 0;
  while (begin < input.size()) {
    size_t end = input.find('\n', begin);
    if (end == std::string_view::npos) end = input.size();
    files.emplace_back(input.substr(begin, end - begin));
    begin = end + 1;
  }
  auto picked = pick_quant_file(files, "Q4_K_M");
  if (!picked.is_ok() && picked.status().message().empty()) std::abort();
  (void)pick_mmproj_file(files, "Q8_0");
  (void)quant_labels(files);
  return 0;
}
