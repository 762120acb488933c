#include "core/process_limits.h"

#include <sys/resource.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace zs::core {

uint64_t raise_open_file_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return r.rlim_cur;
}

void release_large_buffers_to_os(uint64_t mmap_threshold) {
#ifdef __GLIBC__
  // Setting either threshold turns off glibc's dynamic adjustment of both.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * mmap_threshold));
#else
  (void)mmap_threshold;
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace zs::core
