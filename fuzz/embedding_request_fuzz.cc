// libFuzzer target: any byte string given as a /v1/embeddings body must produce a request or a
// clean error naming the problem, never a crash or a hang; whatever parses holds only non-empty
// inputs and token ids in [0, 2^31), and its vectors survive being written back as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gateway/openai/openai_request.h"
#include "gateway/openai/openai_response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zs::gateway::openai;
  const std::string body(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_embedding_inputs = 64;  // keep allocations small under the fuzzer
  ApiError error;
  auto r = parse_embedding_request(body, limits, &error);
  if (!r) {
    if (error.message.empty()) std::abort();
    (void)error.to_json();
    return 0;
  }
  if (r->inputs.empty() || r->inputs.size() > limits.max_embedding_inputs + (r->single ? 1 : 0)) std::abort();
  std::vector<std::vector<float>> vectors;
  for (const auto& in : r->inputs) {
    if (in.is_tokens ? in.tokens.empty() : in.text.empty()) std::abort();
    std::vector<float> v;
    for (int32_t t : in.tokens) {
      if (t < 0) std::abort();
      if (v.size() < 16) v.push_back(static_cast<float>(t) * 1e-3f);
    }
    vectors.push_back(std::move(v));
  }
  (void)embeddings_response(vectors, r->encoding_format == EncodingFormat::kBase64, r->model, 0);
  return 0;
}
