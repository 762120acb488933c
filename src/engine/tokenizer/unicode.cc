#include "engine/tokenizer/unicode.h"

#include <unicode/uchar.h>

#include <array>

namespace zs::engine {

size_t utf8_sequence_length(uint8_t first_byte) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[first_byte >> 4];
}

std::vector<uint32_t> utf8_to_codepoints(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto cont = [&](size_t k) { return i + k < n && (s[i + k] & 0xC0) == 0x80; };
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      out.push_back(c);
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && cont(1)) {
      out.push_back(((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu));
      i += 2;
    } else if ((c & 0xF0) == 0xE0 && cont(1) && cont(2)) {
      out.push_back(((c & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu));
      i += 3;
    } else if ((c & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
      const uint32_t cpt = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) |
                           ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
      if (cpt <= 0x10FFFF) {
        out.push_back(cpt);
        i += 4;
      } else {
        out.push_back(kReplacementChar);
        i += 1;
      }
    } else {
      // The reference skips exactly one byte per malformed sequence; do the same so that
      // word boundaries (and therefore token ids) agree on bad input too.
      out.push_back(kReplacementChar);
      i += 1;
    }
  }
  return out;
}

void append_utf8(uint32_t cpt, std::string& out) {
  if (cpt < 0x80) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    append_utf8(kReplacementChar, out);
  }
}

namespace {

uint16_t compute_flags(uint32_t cpt) {
  const auto c = static_cast<UChar32>(cpt);
  const uint32_t mask = U_GET_GC_MASK(c);
  uint16_t flags = 0;
  if (mask & U_GC_CN_MASK) flags |= kCpUndefined;
  if (mask & U_GC_N_MASK) flags |= kCpNumber;
  if (mask & U_GC_L_MASK) flags |= kCpLetter;
  if (mask & U_GC_Z_MASK) flags |= kCpSeparator;
  if (mask & U_GC_M_MASK) flags |= kCpMark;
  if (mask & U_GC_P_MASK) flags |= kCpPunctuation;
  if (mask & U_GC_S_MASK) flags |= kCpSymbol;
  if (mask & (U_GC_CC_MASK | U_GC_CF_MASK | U_GC_CO_MASK | U_GC_CS_MASK)) flags |= kCpControl;
  if (u_hasBinaryProperty(c, UCHAR_WHITE_SPACE)) flags |= kCpWhitespace;
  return flags;
}

// The Basic Multilingual Plane is looked up in a table built once (immutable afterwards):
// splitting calls this for every codepoint of every prompt.
struct BmpFlags {
  std::array<uint16_t, 0x10000> table{};
  BmpFlags() {
    for (uint32_t c = 0; c < 0x10000; ++c) table[c] = compute_flags(c);
  }
};

struct ByteMap {
  std::array<std::string, 256> byte_to_char;
  std::array<int, 0x200> char_to_byte{};  // every mapped codepoint is below U+0200
  ByteMap() {
    char_to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(next++);
      append_utf8(cpt, byte_to_char[b]);
      char_to_byte[cpt] = b;
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

uint16_t codepoint_flags(uint32_t cpt) {
  if (cpt < 0x10000) {
    static const BmpFlags bmp;
    return bmp.table[cpt];
  }
  if (cpt > 0x10FFFF) return 0;
  return compute_flags(cpt);
}

std::string_view byte_to_bpe_char(uint8_t byte) { return byte_map().byte_to_char[byte]; }

int bpe_char_to_byte(uint32_t cpt) {
  return cpt < 0x200 ? byte_map().char_to_byte[cpt] : -1;
}

}  // namespace zs::engine
