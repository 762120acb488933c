#pragma once
// A read-only memory mapping of a whole file. The OS page cache is the warm tier for
// model weights: a second process mapping the same file starts without reading it.
// Files of 2 MB or more are mapped at a 2 MB boundary with MADV_HUGEPAGE, so that where the
// kernel keeps the file's page cache in 2 MB folios (Linux 6.x, ext4/xfs with large folios,
// transparent huge pages not "never") each process maps it with one page-table entry per 2 MB:
// a fresh process's first pass over 640 MB of weights then costs ~10 ms instead of ~250 ms
// of 4 KB faults (measured on this project's VMs, where page-table updates are expensive).
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
  // Leaves the page cache holding `path` as populate_in_background would (re-read as 2 MB
  // folios where it held small pages and the kernel can do better), then unmaps it: for
  // `serve` before it starts the workers that map the file, since pages other processes map
  // cannot be re-read (several workers starting at once would all keep the small pages).
  // Blocks while it reads; a file below 2 MB, or without huge pages, returns at once.
  static Status prepare_page_cache(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Fills the mapping's page tables on a thread of its own (MADV_POPULATE_READ, or a read of
  // every page where the kernel lacks it), so that the first pass over the weights does not
  // fault page by page: a fresh process pays this once, in parallel with the rest of loading.
  // Reads the file from disk where the page cache does not hold it. Where the page cache holds
  // the file in small pages (it was written or read without MADV_HUGEPAGE) and a probe of
  // one 4 MB piece shows the kernel can do better, the file's unmapped cached pages are
  // dropped and read again as 2 MB folios, once (later processes find them so); ZS_HUGE_PAGES=0
  // turns huge pages off. Idempotent.
  // Const: the mapping's contents do not change, only how soon they can be read.
  void populate_in_background() const;
  // Waits for the population started above (for tests and benchmarks); true when it ran to
  // the end.
  bool wait_populated() const;
  // Bytes of this mapping mapped with 2 MB page-table entries (FilePmdMapped in
  // /proc/self/smaps); 0 where unknown.
  size_t huge_mapped_bytes() const;

 private:
  MappedFile() = default;
  void populate(size_t begin, size_t end) const;
  void reread_as_huge_pages(size_t begin, size_t end) const;
  const uint8_t* data_ = nullptr;
  size_t mapped_size_ = 0;  // size_ rounded up to the page size
  int fd_ = -1;             // kept for posix_fadvise while populating
  bool huge_ = false;       // mapped 2 MB-aligned with MADV_HUGEPAGE
  size_t size_ = 0;
  std::string path_;
  mutable std::thread populating_;
  mutable std::atomic<bool> stop_{false};
  mutable std::atomic<bool> populated_{false};
};

}  // namespace zs::core
