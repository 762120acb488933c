#include "gateway/openai/base64.h"

#include <array>
#include <cstdint>
#include <cstdio>

namespace zs::gateway::openai {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kTable = make_table();

std::string describe(unsigned char c) {
  if (c >= 0x21 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02x", c);
  return buf;
}

}  // namespace

core::Result<std::string> base64_decode(std::string_view text) {
  size_t len = text.size();
  // Padding: up to two '=' at the very end, and only so as to complete a group of four.
  size_t pad = 0;
  while (pad < 2 && len > 0 && text[len - 1] == '=') {
    --len;
    ++pad;
  }
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (kTable[c] < 0) {
      return core::Status::invalid_argument("invalid base64: character " + describe(c) + " at offset " +
                                 std::to_string(i));
    }
  }
  if (pad > 0 && (len + pad) % 4 != 0) {
    return core::Status::invalid_argument("invalid base64: padding at offset " + std::to_string(len) +
                               " does not complete a 4-character group");
  }
  if (len % 4 == 1) {
    return core::Status::invalid_argument("invalid base64: truncated (a single character at offset " +
                               std::to_string(len - 1) + " encodes no whole byte)");
  }
  std::string out;
  out.reserve(len / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    int v = kTable[c];  // valid: checked above
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return core::Status::invalid_argument("invalid base64: non-zero padding bits in the character at offset " +
                               std::to_string(len - 1));
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace zs::gateway::openai
