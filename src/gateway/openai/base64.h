#pragma once
// Strict base64 (RFC 4648, standard alphabet) decoding for data: URLs. Refuses anything that
// is not base64 and says where, rather than decoding garbage into an image.
#include <string>
#include <string_view>

#include "core/status.h"

namespace zs::gateway::openai {

// Decodes `text`. Padding may be present ("...==") or left out; '=' anywhere but at the end,
// a character outside the alphabet (including whitespace), a length that leaves a single
// trailing character, or non-zero unused bits in the last character are errors, reported with
// their byte offset.
core::Result<std::string> base64_decode(std::string_view text);

std::string base64_encode(std::string_view bytes);

}  // namespace zs::gateway::openai
