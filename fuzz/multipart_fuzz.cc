// libFuzzer target: any bytes given as a multipart/form-data upload (POST /v1/files) must
// produce parts or a clean error naming the problem, never a crash, a read out of bounds or
// a hang. The input's first line, when it has one, is the Content-Type header, so the
// boundary parameter is fuzzed too; otherwise a fixed boundary is used.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/http/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zs::gateway;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view content_type = "multipart/form-data; boundary=XyZ";
  std::string_view body = input;
  if (const size_t nl = input.find('\n'); nl != std::string_view::npos) {
    content_type = input.substr(0, nl);
    body = input.substr(nl + 1);
  }
  auto parts = parse_multipart(content_type, body);
  if (parts.is_ok()) {
    size_t total = 0;
    for (const FormPart& p : *parts) total += p.data.size() + p.name.size();
    // Parts are cut from the body: more bytes out than in would mean a read past it.
    if (parts->size() > kMaxMultipartParts || total > body.size()) std::abort();
  } else if (parts.status().message().empty()) {
    std::abort();
  }
  return 0;
}
