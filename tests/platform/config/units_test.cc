#include "platform/config/units.h"

#include <gtest/gtest.h>

namespace zs::platform {
namespace {

TEST(ParseSize, AcceptsBytesAndDecimalAndBinaryUnits) {
  EXPECT_EQ(parse_size("1073741824"), 1073741824u);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("18446744073709551615"), 18446744073709551615u);  // exact, not via double
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("8GiB"), 8ull << 30);
  EXPECT_EQ(parse_size("1.5GB"), 1500000000u);
  EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
  EXPECT_EQ(parse_size("64 KiB"), 65536u);
  EXPECT_EQ(parse_size("64kB"), 64000u);
  EXPECT_EQ(parse_size("64kb"), 64000u);
  EXPECT_EQ(parse_size("2MB"), 2000000u);
  EXPECT_EQ(parse_size("1TB"), 1000000000000u);
  EXPECT_EQ(parse_size("1TiB"), 1ull << 40);
  EXPECT_EQ(parse_size("10B"), 10u);
  EXPECT_EQ(parse_size(" 3 mib "), 3ull << 20);
  EXPECT_EQ(parse_size("1.5"), 2u);  // bytes, rounded
}

TEST(ParseSize, RejectsMalformedText) {
  for (const char* bad : {"", "abc", "-1", "1.5XB", "1e9", "GiB", "8 gigs", "1.2.3GB", "8G", "99999999999TiB"}) {
    EXPECT_EQ(parse_size(bad), std::nullopt) << bad;
  }
}

TEST(ParseDuration, AcceptsSecondsAndUnits) {
  EXPECT_DOUBLE_EQ(*parse_duration("250ms"), 0.25);
  EXPECT_DOUBLE_EQ(*parse_duration("30s"), 30);
  EXPECT_DOUBLE_EQ(*parse_duration("5m"), 300);
  EXPECT_DOUBLE_EQ(*parse_duration("1h"), 3600);
  EXPECT_DOUBLE_EQ(*parse_duration("1d"), 86400);
  EXPECT_DOUBLE_EQ(*parse_duration("1h30m"), 5400);
  EXPECT_DOUBLE_EQ(*parse_duration("1m 30s"), 90);
  EXPECT_DOUBLE_EQ(*parse_duration("1.5s"), 1.5);
  EXPECT_DOUBLE_EQ(*parse_duration("2"), 2);
  EXPECT_DOUBLE_EQ(*parse_duration("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_duration("0"), 0);
}

TEST(ParseDuration, RejectsMalformedText) {
  for (const char* bad : {"", "-1", "5 minutes", "1h30", "ms", "5M", "1y", "abc", "1e3"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
  }
}

TEST(FormatBytes, UsesBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(4096), "4 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(512ull << 20), "512 MiB");
  EXPECT_EQ(format_bytes(16ull << 30), "16 GiB");
  EXPECT_EQ(format_bytes(19ull << 29), "9.5 GiB");
  EXPECT_EQ(format_bytes(3435973837ull), "3.2 GiB");
  EXPECT_EQ(format_bytes(2ull << 40), "2 TiB");
}

}  // namespace
}  // namespace zs::platform
