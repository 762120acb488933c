#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace zs::core {

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
    void* p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::error("cannot map '" + path + "': " + std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::~MappedFile() {
  stop_ = true;
  if (populating_.joinable()) populating_.join();
  if (data_ != nullptr) munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::populate(size_t begin, size_t end) const {
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14
#endif
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
    populated_ = !stop_;
  });
}

bool MappedFile::wait_populated() const {
  if (populating_.joinable()) populating_.join();
  return populated_;
}

}  // namespace zs::core
