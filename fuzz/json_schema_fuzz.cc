// libFuzzer target: untrusted JSON Schemas (response_format, tool parameters) through the
// compiler, then the automaton over the first bytes of the input as candidate output. Any
// schema must either be refused with a keyword or give an automaton that never crashes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/structured/constraint.h"
#include "engine/structured/json_schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace st = zs::engine::structured;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t split = text.find('\0');
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(text.substr(0, split));
  } catch (const std::exception&) {
    return 0;
  }
  st::SchemaError err;
  auto g = st::compile_json_schema(schema, &err);
  if (!g) {
    if (err.keyword.empty()) __builtin_trap();  // every refusal names its keyword
    return 0;
  }
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  auto index = std::make_shared<st::TokenIndex>(pieces, std::vector<int32_t>{});
  st::Constraint c(std::move(g.value()), index, 4096, 1 << 20);
  if (split != std::string::npos) (void)c.matches(text.substr(split + 1));
  int32_t s = c.start();
  for (int i = 0; i < 64 && s >= 0; ++i) {
    const auto& allowed = c.allowed(s);
    if (allowed.empty()) break;
    s = c.next_token(s, allowed[static_cast<size_t>(i * 7919) % allowed.size()]);
  }
  return 0;
}
