#pragma once
// What the model commands (`pull`, `models`, `rm`) and `serve` share: the default cache
// directory and the download progress display. Used on the main thread of one command.
#include <chrono>
#include <cstdio>
#include <string>

#include "gateway/hub/model_store.h"

namespace zs::cli {

// $XDG_CACHE_HOME/zeroserve, else ~/.cache/zeroserve (as the config's gateway.cache_dir).
std::string default_cache_dir();

// Shows a pull's progress on stderr: on a terminal one line redrawn in place (bytes, rate,
// ETA), otherwise a plain line at each tenth of the file. Not thread-safe; one per pull.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(std::string name, std::FILE* out = stderr);
  void operator()(const gateway::hub::PullProgress& p);
  // Ends the redrawn line.
  void finish();

 private:
  std::string name_;
  std::FILE* out_;
  bool tty_;
  bool drawn_ = false;
  int last_tenth_ = -1;
  bool said_waiting_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace zs::cli
