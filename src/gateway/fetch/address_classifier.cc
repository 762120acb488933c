#include "gateway/fetch/address_classifier.h"

#include <arpa/inet.h>

#include <string>

namespace zs::gateway {

namespace {

bool in_v4(const std::array<uint8_t, 4>& a, uint8_t b0, uint8_t b1, uint8_t b2, int prefix) {
  uint32_t addr = (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
  uint32_t net = (uint32_t{b0} << 24) | (uint32_t{b1} << 16) | (uint32_t{b2} << 8);
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (addr & mask) == (net & mask);
}

bool all_zero(const std::array<uint8_t, 16>& a, size_t from, size_t to) {
  for (size_t i = from; i < to; ++i) {
    if (a[i] != 0) return false;
  }
  return true;
}

std::array<uint8_t, 4> v4_at(const std::array<uint8_t, 16>& a, size_t offset) {
  return {a[offset], a[offset + 1], a[offset + 2], a[offset + 3]};
}

}  // namespace

AddressKind classify_ipv4(const std::array<uint8_t, 4>& a) {
  if (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255) return AddressKind::kBroadcast;
  if (in_v4(a, 0, 0, 0, 8)) return AddressKind::kUnspecified;
  if (in_v4(a, 127, 0, 0, 8)) return AddressKind::kLoopback;
  if (in_v4(a, 10, 0, 0, 8) || in_v4(a, 172, 16, 0, 12) || in_v4(a, 192, 168, 0, 16)) {
    return AddressKind::kPrivate;
  }
  if (in_v4(a, 169, 254, 0, 16)) return AddressKind::kLinkLocal;
  if (in_v4(a, 100, 64, 0, 10)) return AddressKind::kSharedCgnat;
  if (in_v4(a, 224, 0, 0, 4)) return AddressKind::kMulticast;
  if (in_v4(a, 240, 0, 0, 4) || in_v4(a, 192, 0, 0, 24) || in_v4(a, 192, 0, 2, 24) || in_v4(a, 198, 51, 100, 24) ||
      in_v4(a, 203, 0, 113, 24) || in_v4(a, 198, 18, 0, 15)) {
    return AddressKind::kReserved;
  }
  return AddressKind::kPublic;
}

AddressKind classify_ipv6(const std::array<uint8_t, 16>& a) {
  if (all_zero(a, 0, 16)) return AddressKind::kUnspecified;
  if (all_zero(a, 0, 15) && a[15] == 1) return AddressKind::kLoopback;
  // ::ffff:a.b.c.d (IPv4-mapped): a dual-stack socket connects to a.b.c.d itself.
  if (all_zero(a, 0, 10) && a[10] == 0xff && a[11] == 0xff) return classify_ipv4(v4_at(a, 12));
  // ::a.b.c.d (IPv4-compatible, deprecated) and ::ffff:0:a.b.c.d (IPv4-translated).
  if (all_zero(a, 0, 12)) return classify_ipv4(v4_at(a, 12));
  if (all_zero(a, 0, 8) && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0) {
    return classify_ipv4(v4_at(a, 12));
  }
  // 64:ff9b::/96 (NAT64): a translator forwards to the embedded IPv4 address.
  if (a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && all_zero(a, 4, 12)) {
    return classify_ipv4(v4_at(a, 12));
  }
  // 2002::/16 (6to4): the relay forwards to the IPv4 address in bytes 2-5.
  if (a[0] == 0x20 && a[1] == 0x02) {
    AddressKind inner = classify_ipv4(v4_at(a, 2));
    if (inner != AddressKind::kPublic) return inner;
  }
  if ((a[0] & 0xfe) == 0xfc) return AddressKind::kPrivate;                    // fc00::/7
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return AddressKind::kLinkLocal;  // fe80::/10
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return AddressKind::kPrivate;    // fec0::/10
  if (a[0] == 0xff) return AddressKind::kMulticast;                           // ff00::/8
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) {         // 2001:db8::/32
    return AddressKind::kReserved;
  }
  if (a[0] == 0x01 && a[1] == 0x00 && all_zero(a, 2, 8)) return AddressKind::kReserved;  // 100::/64
  return AddressKind::kPublic;
}

AddressKind classify_address(std::string_view text) {
  // inet_pton accepts only the strict forms (no "127.1", no octal, no zone): the fetcher
  // classifies addresses it got from the resolver, which are always printed strictly.
  std::string s(text);
  std::array<uint8_t, 4> v4{};
  if (::inet_pton(AF_INET, s.c_str(), v4.data()) == 1) return classify_ipv4(v4);
  std::array<uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, s.c_str(), v6.data()) == 1) return classify_ipv6(v6);
  return AddressKind::kInvalid;
}

std::string_view describe(AddressKind kind) {
  switch (kind) {
    case AddressKind::kPublic:
      return "a public address";
    case AddressKind::kLoopback:
      return "a loopback address";
    case AddressKind::kPrivate:
      return "a private address";
    case AddressKind::kLinkLocal:
      return "a link-local address";
    case AddressKind::kUnspecified:
      return "an unspecified address";
    case AddressKind::kSharedCgnat:
      return "a shared (carrier-grade NAT) address";
    case AddressKind::kMulticast:
      return "a multicast address";
    case AddressKind::kBroadcast:
      return "a broadcast address";
    case AddressKind::kReserved:
      return "a reserved address";
    case AddressKind::kInvalid:
      return "not an IP address";
  }
  return "an unknown kind of address";
}

}  // namespace zs::gateway
