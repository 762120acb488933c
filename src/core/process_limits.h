#pragma once
// Process-wide settings for a long-running server. Thread-safe; none fails (a setting the
// platform lacks is skipped).
#include <cstdint>

namespace zs::core {

// Raises the soft limit on open files to the hard limit: a gateway holding thousands of
// streaming connections needs more than the usual default of 1024. Returns the new limit.
uint64_t raise_open_file_limit();

// Makes the allocator give large buffers back to the OS when they are freed (glibc: buffers
// of `mmap_threshold` bytes or more are mapped on their own, and the threshold no longer rises
// after such a buffer is freed, which by default lets buffers up to 32 MiB stay in the heap).
// Call once at start, before threads allocate.
void release_large_buffers_to_os(uint64_t mmap_threshold = 256u << 10);

// Returns the free memory the allocator still holds to the OS (glibc: malloc_trim(0), every
// arena, free pages inside heaps too). Costs a walk of the heaps: call after large requests
// or when idle, not per request.
void release_free_memory();

}  // namespace zs::core
