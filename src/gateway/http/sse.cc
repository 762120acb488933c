#include "gateway/http/sse.h"

namespace zs::gateway {

namespace {
// Writes each line of `text` with `prefix`; "\r\n", "\r" and "\n" all end a line in SSE.
std::string prefixed_lines(std::string_view prefix, std::string_view text) {
  std::string out;
  out.reserve(text.size() + prefix.size() + 2);
  size_t start = 0;
  while (true) {
    size_t end = text.find_first_of("\r\n", start);
    out += prefix;
    out += text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1);
  }
  out += '\n';
  return out;
}
}  // namespace

std::string sse_event(std::string_view payload) { return prefixed_lines("data: ", payload); }

std::string sse_comment(std::string_view text) { return prefixed_lines(": ", text); }

void SseParser::feed(std::string_view bytes) {
  pending_.append(bytes);
  size_t start = 0;
  while (true) {
    size_t end = pending_.find_first_of("\r\n", start);
    if (end == std::string::npos) break;
    // A '\r' at the very end may be the first half of "\r\n": wait for the next byte.
    if (pending_[end] == '\r' && end + 1 == pending_.size()) break;
    parse_line(std::string_view(pending_).substr(start, end - start));
    start = end + (pending_[end] == '\r' && pending_[end + 1] == '\n' ? 2 : 1);
  }
  pending_.erase(0, start);
}

void SseParser::parse_line(std::string_view line) {
  if (line.empty()) {  // blank line: dispatch
    if (has_data_) events_.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line[0] == ':') return;
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field != "data") return;
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
}

std::vector<std::string> SseParser::take_events() {
  std::vector<std::string> out;
  out.swap(events_);
  return out;
}

}  // namespace zs::gateway
