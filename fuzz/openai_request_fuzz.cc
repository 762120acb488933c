// libFuzzer target: any byte string given as a /v1/chat/completions or /v1/completions body
// must produce a request or a clean error naming the problem, never a crash or a hang; and
// whatever parses must survive being turned back into response JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/openai/base64.h"
#include "gateway/openai/openai_request.h"
#include "gateway/openai/openai_response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zs::gateway::openai;
  std::string body(reinterpret_cast<const char*>(data), size);
  Limits limits;
  limits.max_image_bytes = 1 << 16;  // keep allocations small under the fuzzer

  ApiError error;
  auto chat = parse_chat_completion_request(body, limits, &error);
  if (chat) {
    std::string text;
    for (const auto& m : chat.value().messages) text += m.text();
    (void)remote_image_error(chat.value());
    (void)chat_completion_response("chatcmpl-fuzz", 0, chat.value().model, text, "stop", Usage{});
  } else {
    (void)error.to_json();
  }
  auto completion = parse_completion_request(body, limits, &error);
  if (completion) {
    (void)completion_chunk("cmpl-fuzz", 0, completion.value().model, completion.value().prompt, "stop");
  }
  (void)base64_decode(body);
  (void)utf8_complete_prefix(body);
  return 0;
}
