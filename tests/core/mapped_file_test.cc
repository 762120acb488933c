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

// Whether this machine maps file pages 2 MB at a time: transparent huge pages not "never",
// and a kernel with large page-cache folios for regular files (6.x; this project's machines
// run 6.18 on ext4).
bool kernel_maps_file_huge_pages() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  if (!std::getline(in, modes) || modes.find("[never]") != std::string::npos) return false;
  std::ifstream v("/proc/sys/kernel/osrelease");
  int major = 0;
  v >> major;
  return major >= 6;
}

// A file of 2 MB or more is mapped at a 2 MB boundary; populating it leaves most of it mapped
// with 2 MB entries, also when the page cache first held it in small pages (just written):
// the populating thread re-reads it. A second mapping then finds the 2 MB folios at once.
TEST(MappedFile, LargeFilesAreMappedWithTwoMegabytePages) {
  if (!kernel_maps_file_huge_pages()) GTEST_SKIP() << "no transparent huge pages for files on this kernel";
  zs::testing::TempDir dir;
  const size_t bytes = size_t{32} << 20;
  const std::string path = write_file(dir.file("w.bin"), bytes);
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.value()->data()) % (size_t{2} << 20), 0u);
  f.value()->populate_in_background();
  ASSERT_TRUE(f.value()->wait_populated());
  EXPECT_GE(f.value()->huge_mapped_bytes(), bytes - (size_t{4} << 20));
  EXPECT_EQ(f.value()->data()[bytes - 1], 'x');  // the contents are the file's, re-read or not

  auto g = MappedFile::open(path);
  ASSERT_TRUE(g.is_ok());
  g.value()->populate_in_background();
  ASSERT_TRUE(g.value()->wait_populated());
  EXPECT_GE(g.value()->huge_mapped_bytes(), bytes - (size_t{4} << 20));
}

// serve prepares a model's page cache before its workers map it: afterwards a plain mapping
// touched page by page (no populating thread to re-read anything) maps 2 MB at a time. Without
// the preparation, the same touch of a file just written maps small pages.
TEST(MappedFile, APreparedFileIsMappedWithTwoMegabytePagesByItsNextReader) {
  if (!kernel_maps_file_huge_pages()) GTEST_SKIP() << "no transparent huge pages for files on this kernel";
  zs::testing::TempDir dir;
  const size_t bytes = size_t{32} << 20;
  auto touch_all = [&](const std::string& path) {
    auto f = MappedFile::open(path);
    EXPECT_TRUE(f.is_ok());
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < bytes; i += 4096) sink = sink ^ f.value()->data()[i];
    return f.value()->huge_mapped_bytes();
  };
  const std::string unprepared = write_file(dir.file("u.bin"), bytes);
  EXPECT_LT(touch_all(unprepared), bytes / 2) << "a file just written is cached in small pages";
  const std::string prepared = write_file(dir.file("p.bin"), bytes);
  ASSERT_TRUE(MappedFile::prepare_page_cache(prepared).is_ok());
  EXPECT_GE(touch_all(prepared), bytes - (size_t{4} << 20));
  EXPECT_TRUE(MappedFile::prepare_page_cache(dir.file("missing.bin")).is_not_found());
}

TEST(MappedFile, SmallFilesKeepSmallPages) {
  zs::testing::TempDir dir;
  auto f = MappedFile::open(write_file(dir.file("w.bin"), size_t{1} << 20));
  ASSERT_TRUE(f.is_ok());
  f.value()->populate_in_background();
  ASSERT_TRUE(f.value()->wait_populated());
  EXPECT_EQ(f.value()->huge_mapped_bytes(), 0u);
  EXPECT_GE(resident_kb(f.value()->data()), 1024 - 64);
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
