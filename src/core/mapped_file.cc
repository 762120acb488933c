#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/log.h"

namespace zs::core {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

#ifndef MADV_POPULATE_READ
constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14
#endif

// Transparent huge pages are wanted (ZS_HUGE_PAGES is not "0") and not off system-wide.
bool huge_pages_wanted() {
  static const bool wanted = [] {
    if (const char* e = std::getenv("ZS_HUGE_PAGES"); e != nullptr && std::string(e) == "0") return false;
    std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string modes;
    if (!std::getline(in, modes)) return false;
    return modes.find("[never]") == std::string::npos;
  }();
  return wanted;
}

// Maps `size` bytes of `fd` read-only at a 2 MB boundary (so that 2 MB folios of the page
// cache can be mapped whole), or MAP_FAILED.
void* map_huge_aligned(int fd, size_t size) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t length = (size + page - 1) / page * page;
  void* reserved = mmap(nullptr, length + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) return MAP_FAILED;
  const auto base = reinterpret_cast<uintptr_t>(reserved);
  const uintptr_t aligned = (base + kHugePage - 1) & ~(kHugePage - 1);
  void* p = mmap(reinterpret_cast<void*>(aligned), size, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    munmap(reserved, length + kHugePage);
    return MAP_FAILED;
  }
  if (aligned > base) munmap(reserved, aligned - base);
  const uintptr_t end = aligned + length, reserved_end = base + length + kHugePage;
  if (reserved_end > end) munmap(reinterpret_cast<void*>(end), reserved_end - end);
  return p;
}

}  // namespace

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    const std::string message = "cannot open '" + path + "': " + std::strerror(e);
    return e == ENOENT ? Status::not_found(message) : Status::error(message);
  }
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::error("cannot stat '" + path + "': " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::invalid_argument("'" + path + "' is not a regular file");
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    f->huge_ = f->size_ >= kHugePage && huge_pages_wanted();
    void* p = f->huge_ ? map_huge_aligned(fd, f->size_) : MAP_FAILED;
    if (p == MAP_FAILED) {
      f->huge_ = false;
      p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    }
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::error("cannot map '" + path + "': " + std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
    // Where the kernel cannot map file pages 2 MB at a time, this only fails or does nothing.
    if (f->huge_ && madvise(p, f->size_, MADV_HUGEPAGE) != 0) f->huge_ = false;
  }
  if (f->huge_) {
    f->fd_ = fd;
  } else {
    ::close(fd);
  }
  return f;
}

Status MappedFile::prepare_page_cache(const std::string& path) {
  auto f = open(path);
  if (!f) return f.status();
  if (!f.value()->huge_) return Status::ok();
  f.value()->populate_in_background();
  f.value()->wait_populated();
  return Status::ok();
}

MappedFile::~MappedFile() {
  stop_ = true;
  if (populating_.joinable()) populating_.join();
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

void MappedFile::populate(size_t begin, size_t end) const {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* start = const_cast<uint8_t*>(data_ + begin);
  if (madvise(start, end - begin, MADV_POPULATE_READ) == 0) return;
  // Older kernels: one read per page faults it in.
  volatile uint8_t sink = 0;
  for (size_t i = begin; i < end && !stop_; i += page) sink = sink ^ data_[i];
}

void MappedFile::populate_in_background() const {
  if (data_ == nullptr || populating_.joinable()) return;
  populating_ = std::thread([this] {
    // In chunks, so that the destructor need not wait for a whole large file.
    constexpr size_t kChunk = size_t{64} << 20;
    for (size_t b = 0; b < size_ && !stop_; b += kChunk) populate(b, std::min(size_, b + kChunk));
    // Mostly small pages: the page cache held the file in 4 KB pages before this process
    // mapped it. Read it again as 2 MB folios when a probe of one 4 MB piece (from a 2 MB
    // boundary in the middle of the file) shows that works here.
    const size_t whole = size_ & ~(kHugePage - 1);
    if (huge_ && !stop_ && whole >= 2 * kHugePage && huge_mapped_bytes() < whole / 2) {
      const size_t probe = (whole / 2) & ~(kHugePage - 1);
      const size_t probe_end = std::min(whole, probe + 2 * kHugePage);
      const size_t before = huge_mapped_bytes();
      reread_as_huge_pages(probe, probe_end);
      if (huge_mapped_bytes() > before) {
        const auto began = std::chrono::steady_clock::now();
        for (size_t b = 0; b < whole && !stop_; b += kChunk) reread_as_huge_pages(b, std::min(whole, b + kChunk));
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
        log_info("mapped-file", path_ + ": page cache re-read as 2 MB pages (" + std::to_string(huge_mapped_bytes() >> 20) +
                                    " of " + std::to_string(size_ >> 20) + " MB mapped so) in " +
                                    std::to_string(static_cast<int>(ms)) + " ms");
      }
    }
    populated_ = !stop_;
  });
}

void MappedFile::reread_as_huge_pages(size_t begin, size_t end) const {
  void* start = const_cast<uint8_t*>(data_ + begin);
  // Drops this mapping's entries for the range (the file is unchanged: any thread reading the
  // weights meanwhile faults the same bytes back in), then the page cache's unmapped pages of
  // the range (those other processes map stay; a file just written is written back first, as
  // dirty pages cannot be dropped), then reads it back through the huge-page mapping, which
  // now reads ahead in 2 MB folios.
  if (madvise(start, end - begin, MADV_DONTNEED) != 0) return;
  (void)sync_file_range(fd_, static_cast<off_t>(begin), static_cast<off_t>(end - begin),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  (void)posix_fadvise(fd_, static_cast<off_t>(begin), static_cast<off_t>(end - begin), POSIX_FADV_DONTNEED);
  populate(begin, end);
}

size_t MappedFile::huge_mapped_bytes() const {
  if (data_ == nullptr) return 0;
  std::ifstream in("/proc/self/smaps");
  char start[32];
  std::snprintf(start, sizeof start, "%lx-", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(data_)));
  bool in_it = false;
  for (std::string line; std::getline(in, line);) {
    const size_t dash = line.find('-');
    if (dash != std::string::npos && dash < line.find(' ') && std::isxdigit(static_cast<unsigned char>(line[0]))) {
      in_it = line.rfind(start, 0) == 0;
    } else if (in_it && line.rfind("FilePmdMapped:", 0) == 0) {
      return static_cast<size_t>(std::strtoull(line.c_str() + 14, nullptr, 10)) * 1024;
    }
  }
  return 0;
}

bool MappedFile::wait_populated() const {
  if (populating_.joinable()) populating_.join();
  return populated_;
}

}  // namespace zs::core
