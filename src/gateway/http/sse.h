#pragma once
// Server-sent events framing (text/event-stream), as the OpenAI streaming API uses it.
#include <string>
#include <string_view>
#include <vector>

namespace zs::gateway {

// "data: <payload>\n\n". A payload with newlines becomes several data: lines, which the
// client joins back with "\n".
std::string sse_event(std::string_view payload);

// ": <text>\n\n" — a comment clients ignore; used as a keep-alive while nothing is produced.
std::string sse_comment(std::string_view text);

// Splits a received event stream back into event payloads (the joined data: lines of each
// event); comments and other fields are skipped. Fed with arbitrary pieces of the stream.
class SseParser {
 public:
  void feed(std::string_view bytes);
  // Events completed since the last call.
  std::vector<std::string> take_events();

 private:
  void parse_line(std::string_view line);

  std::string pending_;  // bytes of an incomplete line
  std::string data_;     // data of the event being assembled
  bool has_data_ = false;
  std::vector<std::string> events_;
};

}  // namespace zs::gateway
