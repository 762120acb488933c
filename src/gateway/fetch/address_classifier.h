#pragma once
// Sorts IP addresses into the kinds an image fetch must not reach (server-side request
// forgery): the gateway's own loopback, the private network behind it, link-local (where
// cloud metadata services answer at 169.254.169.254), and addresses no public host has.
// Addresses that embed an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
// ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address inside,
// since that is where a connection to them ends up.
#include <array>
#include <cstdint>
#include <string_view>

namespace zs::gateway {

enum class AddressKind {
  kPublic,
  kLoopback,     // 127.0.0.0/8, ::1
  kPrivate,      // 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 (old site-local)
  kLinkLocal,    // 169.254/16, fe80::/10
  kUnspecified,  // 0.0.0.0/8 ("this network"; 0.0.0.0 reaches the local host on Linux), ::
  kSharedCgnat,  // 100.64/10 (carrier-grade NAT, RFC 6598)
  kMulticast,    // 224/4, ff00::/8
  kBroadcast,    // 255.255.255.255
  // Not routable on the Internet: 192.0.0/24, documentation (192.0.2/24, 198.51.100/24,
  // 203.0.113/24, 2001:db8::/32), benchmarking 198.18/15, 240/4, discard-only 100::/64.
  kReserved,
  kInvalid,  // not an IP address literal
};

// Network-order bytes.
AddressKind classify_ipv4(const std::array<uint8_t, 4>& a);
AddressKind classify_ipv6(const std::array<uint8_t, 16>& a);
// An IPv4 dotted quad or an IPv6 literal (without brackets or zone); kInvalid otherwise.
AddressKind classify_address(std::string_view text);

// "a loopback address", "a private address", ... for messages ("10.0.0.1 is a private
// address"); "a public address" for kPublic.
std::string_view describe(AddressKind kind);

}  // namespace zs::gateway
