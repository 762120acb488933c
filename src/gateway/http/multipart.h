#pragma once
// multipart/form-data (RFC 7578 over RFC 2046), as clients send file uploads to
// POST /v1/files. The body is untrusted: every malformed or oversized input gives an error
// naming the problem, never a crash or a read past the body.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::gateway {

struct FormPart {
  std::string name;          // Content-Disposition's name
  std::string filename;      // Content-Disposition's filename; empty for a plain field
  std::string content_type;  // the part's Content-Type; empty when it has none (text/plain)
  std::string data;
};

// RFC 2046 limits boundaries to 70 characters.
inline constexpr size_t kMaxMultipartBoundary = 70;
// Bounds on the work a hostile body can cause.
inline constexpr size_t kMaxMultipartParts = 100;
inline constexpr size_t kMaxMultipartHeaderBytes = 8 * 1024;  // per part

// Splits `body` into its parts. The boundary comes from the `boundary` parameter of
// `content_type_header` (quoted or not), which must be multipart/form-data. Lines end in
// CRLF; a body whose first boundary line ends in a bare LF is read with LF line ends
// throughout. The preamble before the first boundary and the epilogue after the closing one
// are ignored; the closing boundary is required, so a truncated upload is an error rather
// than a silently short file. Each part needs a Content-Disposition "form-data" with a name.
core::Result<std::vector<FormPart>> parse_multipart(std::string_view content_type_header, std::string_view body);

// The value of parameter `name` (case-insensitive) in a header value like
// `form-data; name="file"; filename="a.jsonl"`, unquoted; empty when absent. An error for
// an unterminated quoted string.
core::Result<std::string> header_parameter(std::string_view header_value, std::string_view name);

}  // namespace zs::gateway
