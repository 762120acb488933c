// The address classifier over a table of addresses, one row per range boundary that
// matters for server-side request forgery.
#include "gateway/fetch/address_classifier.h"

#include <gtest/gtest.h>

namespace zs::gateway {
namespace {

struct Row {
  const char* address;
  AddressKind kind;
};

class AddressClassifierTable : public ::testing::TestWithParam<Row> {};

TEST_P(AddressClassifierTable, Classifies) {
  const Row& row = GetParam();
  EXPECT_EQ(classify_address(row.address), row.kind)
      << row.address << " should be " << describe(row.kind) << ", got " << describe(classify_address(row.address));
}

using K = AddressKind;

INSTANTIATE_TEST_SUITE_P(
    Ipv4, AddressClassifierTable,
    ::testing::Values(
        // Loopback: all of 127/8, not just 127.0.0.1.
        Row{"127.0.0.1", K::kLoopback}, Row{"127.255.255.254", K::kLoopback}, Row{"127.1.2.3", K::kLoopback},
        Row{"126.255.255.255", K::kPublic}, Row{"128.0.0.0", K::kPublic},
        // Private (RFC 1918), with the addresses just outside each range.
        Row{"10.0.0.0", K::kPrivate}, Row{"10.255.255.255", K::kPrivate}, Row{"9.255.255.255", K::kPublic},
        Row{"11.0.0.0", K::kPublic}, Row{"172.16.0.0", K::kPrivate}, Row{"172.31.255.255", K::kPrivate},
        Row{"172.15.255.255", K::kPublic}, Row{"172.32.0.0", K::kPublic}, Row{"192.168.0.1", K::kPrivate},
        Row{"192.168.255.255", K::kPrivate}, Row{"192.167.255.255", K::kPublic}, Row{"192.169.0.0", K::kPublic},
        // Link-local, including the cloud metadata service.
        Row{"169.254.169.254", K::kLinkLocal}, Row{"169.254.0.0", K::kLinkLocal}, Row{"169.254.255.255", K::kLinkLocal},
        Row{"169.253.255.255", K::kPublic}, Row{"169.255.0.0", K::kPublic},
        // Unspecified / "this network" (0.0.0.0 reaches the local host on Linux).
        Row{"0.0.0.0", K::kUnspecified}, Row{"0.1.2.3", K::kUnspecified}, Row{"1.0.0.0", K::kPublic},
        // Carrier-grade NAT 100.64/10.
        Row{"100.64.0.0", K::kSharedCgnat}, Row{"100.127.255.255", K::kSharedCgnat}, Row{"100.63.255.255", K::kPublic},
        Row{"100.128.0.0", K::kPublic},
        // Multicast, broadcast, reserved.
        Row{"224.0.0.1", K::kMulticast}, Row{"239.255.255.255", K::kMulticast}, Row{"223.255.255.255", K::kPublic},
        Row{"255.255.255.255", K::kBroadcast}, Row{"240.0.0.1", K::kReserved}, Row{"255.255.255.254", K::kReserved},
        Row{"192.0.0.8", K::kReserved}, Row{"192.0.2.1", K::kReserved}, Row{"198.51.100.7", K::kReserved},
        Row{"203.0.113.9", K::kReserved}, Row{"198.18.0.1", K::kReserved}, Row{"198.19.255.255", K::kReserved},
        Row{"198.20.0.0", K::kPublic},
        // Ordinary public hosts.
        Row{"8.8.8.8", K::kPublic}, Row{"1.1.1.1", K::kPublic}, Row{"93.184.216.34", K::kPublic},
        Row{"172.217.0.0", K::kPublic}));

INSTANTIATE_TEST_SUITE_P(
    Ipv6, AddressClassifierTable,
    ::testing::Values(Row{"::1", K::kLoopback}, Row{"::", K::kUnspecified}, Row{"0:0:0:0:0:0:0:1", K::kLoopback},
                      // Unique local fc00::/7 (both halves) and old site-local.
                      Row{"fc00::1", K::kPrivate}, Row{"fd12:3456:789a::1", K::kPrivate},
                      Row{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", K::kPrivate}, Row{"fbff::1", K::kPublic},
                      Row{"fec0::1", K::kPrivate},
                      // Link-local fe80::/10, including the metadata service's IPv6 address.
                      Row{"fe80::1", K::kLinkLocal}, Row{"febf:ffff::1", K::kLinkLocal},
                      Row{"fd00:ec2::254", K::kPrivate}, Row{"ff02::1", K::kMulticast}, Row{"ff05::1:3", K::kMulticast},
                      // IPv4-mapped: judged by the IPv4 address inside.
                      Row{"::ffff:127.0.0.1", K::kLoopback}, Row{"::ffff:7f00:1", K::kLoopback},
                      Row{"::ffff:10.1.2.3", K::kPrivate}, Row{"::ffff:169.254.169.254", K::kLinkLocal},
                      Row{"::ffff:0.0.0.0", K::kUnspecified}, Row{"::ffff:100.64.1.1", K::kSharedCgnat},
                      Row{"::ffff:224.0.0.1", K::kMulticast}, Row{"::ffff:255.255.255.255", K::kBroadcast},
                      Row{"::ffff:192.168.1.1", K::kPrivate}, Row{"::ffff:8.8.8.8", K::kPublic},
                      // IPv4-compatible, IPv4-translated, NAT64 and 6to4 embeddings.
                      Row{"::127.0.0.1", K::kLoopback}, Row{"::10.0.0.1", K::kPrivate},
                      Row{"::ffff:0:127.0.0.1", K::kLoopback}, Row{"64:ff9b::127.0.0.1", K::kLoopback},
                      Row{"64:ff9b::a9fe:a9fe", K::kLinkLocal}, Row{"64:ff9b::8.8.8.8", K::kPublic},
                      Row{"2002:7f00:1::", K::kLoopback}, Row{"2002:a00:1::1", K::kPrivate},
                      Row{"2002:808:808::1", K::kPublic},
                      // Documentation and discard-only.
                      Row{"2001:db8::1", K::kReserved}, Row{"100::1", K::kReserved},
                      // Public.
                      Row{"2606:4700:4700::1111", K::kPublic}, Row{"2001:4860:4860::8888", K::kPublic},
                      Row{"2a00:1450:4001::1", K::kPublic}));

INSTANTIATE_TEST_SUITE_P(NotAddresses, AddressClassifierTable,
                         ::testing::Values(Row{"", K::kInvalid}, Row{"localhost", K::kInvalid},
                                           Row{"127.1", K::kInvalid}, Row{"2130706433", K::kInvalid},
                                           Row{"0x7f.0.0.1", K::kInvalid}, Row{"127.0.0.1.", K::kInvalid},
                                           Row{"[::1]", K::kInvalid}, Row{"fe80::1%eth0", K::kInvalid},
                                           Row{"256.0.0.1", K::kInvalid}, Row{" 127.0.0.1", K::kInvalid}));

TEST(AddressClassifierTest, BytesAgreeWithText) {
  EXPECT_EQ(classify_ipv4({127, 0, 0, 1}), AddressKind::kLoopback);
  EXPECT_EQ(classify_ipv4({169, 254, 169, 254}), AddressKind::kLinkLocal);
  std::array<uint8_t, 16> mapped{};
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped[12] = 192;
  mapped[13] = 168;
  mapped[14] = 0;
  mapped[15] = 1;
  EXPECT_EQ(classify_ipv6(mapped), AddressKind::kPrivate);
}

TEST(AddressClassifierTest, DescriptionsReadInASentence) {
  EXPECT_EQ(describe(AddressKind::kLoopback), "a loopback address");
  EXPECT_EQ(describe(AddressKind::kPrivate), "a private address");
  EXPECT_EQ(describe(AddressKind::kLinkLocal), "a link-local address");
  EXPECT_EQ(describe(AddressKind::kUnspecified), "an unspecified address");
  EXPECT_EQ(describe(AddressKind::kMulticast), "a multicast address");
}

}  // namespace
}  // namespace zs::gateway
