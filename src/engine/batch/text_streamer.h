#pragma once
// Turns generated token pieces into text that is safe to send as it streams: never half a
// UTF-8 character, and never text that might turn out to start a stop sequence. When a stop
// sequence appears, the text before it is released and the rest is dropped.
#include <string>
#include <vector>

namespace zs::engine {

class TextStreamer {
 public:
  explicit TextStreamer(std::vector<std::string> stop = {});

  // Adds a piece; returns the text that can be released now.
  std::string push(const std::string& piece);
  // True once a stop sequence was seen (push then returns nothing more).
  bool stopped() const { return stopped_; }
  // The held-back remainder at the end of generation.
  std::string finish();

 private:
  std::vector<std::string> stop_;
  size_t max_stop_ = 0;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace zs::engine
