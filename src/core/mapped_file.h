#pragma once
// A read-only memory mapping of a whole file. The OS page cache is the warm tier for
// model weights: a second process mapping the same file starts without reading it.
// Thread-safety: the accessors are const and safe from any thread; populate_in_background()
// once, from one thread. The destructor stops a population in progress (between chunks) and
// waits for it.
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"

namespace zs::core {

class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Fills the mapping's page tables on a thread of its own (MADV_POPULATE_READ, or a read of
  // every page where the kernel lacks it), so that the first pass over the weights does not
  // fault page by page: a fresh process pays this once, in parallel with the rest of loading.
  // Reads the file from disk where the page cache does not hold it. Idempotent.
  // Const: the mapping's contents do not change, only how soon they can be read.
  void populate_in_background() const;
  // Waits for the population started above (for tests and benchmarks); true when it ran to
  // the end.
  bool wait_populated() const;

 private:
  MappedFile() = default;
  void populate(size_t begin, size_t end) const;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  mutable std::thread populating_;
  mutable std::atomic<bool> stop_{false};
  mutable std::atomic<bool> populated_{false};
};

}  // namespace zs::core
