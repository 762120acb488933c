// A file's mapping: its page tables are filled by populate_in_background (the mapping's
// resident size, read from /proc/self/smaps, goes from nothing to the whole file), and a
// mapping destroyed while populating stops and unmaps.
#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util/temp_dir.h"

namespace zs::core {
namespace {

std::string write_file(const std::string& path, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  std::string block(1 << 16, 'x');
  for (size_t i = 0; i < bytes; i += block.size()) out.write(block.data(), static_cast<std::streamsize>(block.size()));
  return path;
}

// Resident kB of the mapping that starts at `addr`, from /proc/self/smaps.
long resident_kb(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  char start[32];
  std::snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(addr));
  bool in_it = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find('-') != std::string::npos && line.find(' ') > line.find('-') && std::isxdigit(line[0]))
      in_it = line.rfind(start, 0) == 0;
    if (in_it && line.rfind("Rss:", 0) == 0) return std::stol(line.substr(4));
  }
  return -1;
}

TEST(MappedFile, PopulatingFillsTheWholeMapping) {
  zs::testing::TempDir dir;
  const size_t bytes = size_t{8} << 20;
  auto f = MappedFile::open(write_file(dir.file("w.bin"), bytes));
  ASSERT_TRUE(f.is_ok());
  const long before = resident_kb(f.value()->data());
  ASSERT_GE(before, 0) << "mapping not found in /proc/self/smaps";
  EXPECT_LT(before, 1024);  // mapped, not yet touched
  f.value()->populate_in_background();
  f.value()->populate_in_background();  // once is enough; a second call does nothing
  EXPECT_TRUE(f.value()->wait_populated());
  EXPECT_GE(resident_kb(f.value()->data()), static_cast<long>(bytes / 1024) - 64);
}

TEST(MappedFile, DestroyedWhilePopulatingStopsAndUnmaps) {
  zs::testing::TempDir dir;
  auto f = MappedFile::open(write_file(dir.file("w.bin"), size_t{64} << 20));
  ASSERT_TRUE(f.is_ok());
  f.value()->populate_in_background();
  f.value().reset();  // joins the populating thread
  SUCCEED();
}

}  // namespace
}  // namespace zs::core
