#include "gateway/http/multipart.h"

#include <algorithm>
#include <utility>

#include "gateway/http/http_types.h"

namespace zs::gateway {
namespace {

constexpr std::string_view kPadding = " \t";  // RFC 2046 transport padding after a boundary

std::string_view trim(std::string_view s) {
  const size_t first = s.find_first_not_of(kPadding);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kPadding);
  return s.substr(first, last - first + 1);
}

core::Status part_error(size_t index, const std::string& problem) {
  return core::Status::invalid_argument("part " + std::to_string(index) + ": " + problem);
}

// What follows a boundary found in the body.
enum class Follow { kPart, kClose, kNeither };

// Classifies the bytes at `at`, just after "--<boundary>": "--" closes the body, padding and
// a line end start another part (`*next` is then the part's first byte), anything else
// means the match was part of the content.
Follow follows(std::string_view body, size_t at, std::string_view eol, size_t* next) {
  if (body.substr(at, 2) == "--") return Follow::kClose;
  while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
  if (body.substr(at, eol.size()) != eol) return Follow::kNeither;
  *next = at + eol.size();
  return Follow::kPart;
}

// The headers of one part that matter to form data.
struct PartHeaders {
  std::string disposition;
  std::string content_type;
  bool has_disposition = false;
  bool has_content_type = false;
};

// Reads the header lines of part `index` starting at `*pos`, up to and including the blank
// line, leaving `*pos` at the first content byte.
core::Status read_headers(std::string_view body, std::string_view eol, std::string_view dash_boundary, size_t index,
                          size_t* pos, PartHeaders* out) {
  const size_t start = *pos;
  // Line ends are only looked for within the limit, so a hostile part costs at most that.
  const std::string_view limited = body.substr(0, std::min(body.size(), start + kMaxMultipartHeaderBytes));
  std::string ignored;                // the value of a header that does not matter here
  std::string* last_value = nullptr;  // where a folded continuation line goes
  while (true) {
    const size_t end = limited.find(eol, *pos);
    if (end == std::string_view::npos) {
      if (limited.size() < body.size()) {
        return part_error(index,
                          "the header section is over " + std::to_string(kMaxMultipartHeaderBytes / 1024) + " KiB");
      }
      return part_error(index, "the body ends inside the part's headers (no blank line)");
    }
    std::string_view line = body.substr(*pos, end - *pos);
    *pos = end + eol.size();
    // A body read with LF line ends may still carry CRs from a client that mixes them.
    if (eol.size() == 1 && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return core::Status::ok();
    if (line.substr(0, dash_boundary.size()) == dash_boundary) {
      return part_error(index, "the headers end without a blank line");
    }
    if (line.front() == ' ' || line.front() == '\t') {  // obsolete folding: continues a value
      if (!last_value) return part_error(index, "the first header line starts with a space");
      *last_value += ' ';
      *last_value += trim(line);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return part_error(index, "a header line has no ':' (is the blank line after the headers missing?)");
    }
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      if (out->has_disposition) return part_error(index, "it has two Content-Disposition headers");
      out->has_disposition = true;
      out->disposition = value;
      last_value = &out->disposition;
    } else if (iequals(name, "Content-Type")) {
      if (out->has_content_type) return part_error(index, "it has two Content-Type headers");
      out->has_content_type = true;
      out->content_type = value;
      last_value = &out->content_type;
    } else {
      last_value = &ignored;
    }
  }
}

}  // namespace

core::Result<std::string> header_parameter(std::string_view header_value, std::string_view name) {
  // The first item (the media type or disposition type) has no parameters.
  size_t pos = header_value.find(';');
  while (pos != std::string_view::npos && pos < header_value.size()) {
    ++pos;  // past ';'
    const size_t key_end = header_value.find_first_of("=;", pos);
    const std::string_view key =
        trim(header_value.substr(pos, key_end == std::string_view::npos ? std::string_view::npos : key_end - pos));
    if (key_end == std::string_view::npos) break;
    pos = key_end;
    if (header_value[pos] == ';') continue;  // a parameter without a value
    ++pos;                                   // past '='
    while (pos < header_value.size() && (header_value[pos] == ' ' || header_value[pos] == '\t')) ++pos;
    std::string value;
    if (pos < header_value.size() && header_value[pos] == '"') {
      ++pos;
      bool closed = false;
      while (pos < header_value.size()) {
        const char c = header_value[pos++];
        if (c == '"') {
          closed = true;
          break;
        }
        // Only \" and \\ are escapes: browsers send Windows paths with bare backslashes.
        if (c == '\\' && pos < header_value.size() && (header_value[pos] == '"' || header_value[pos] == '\\')) {
          value += header_value[pos++];
        } else {
          value += c;
        }
      }
      if (!closed) {
        return core::Status::invalid_argument("the quoted value of parameter '" + std::string(key) + "' has no closing quote");
      }
      pos = header_value.find(';', pos);
    } else {
      const size_t end = header_value.find(';', pos);
      value = trim(header_value.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
      pos = end;
    }
    if (iequals(key, name)) return value;
  }
  return std::string();
}

core::Result<std::vector<FormPart>> parse_multipart(std::string_view content_type_header, std::string_view body) {
  const std::string_view media_type = trim(content_type_header.substr(0, content_type_header.find(';')));
  if (!iequals(media_type, "multipart/form-data")) {
    return core::Status::invalid_argument("the Content-Type is \"" + std::string(media_type.substr(0, 100)) +
                               "\", not multipart/form-data");
  }
  auto boundary = header_parameter(content_type_header, "boundary");
  if (!boundary) return boundary.status().with_context("the Content-Type");
  if (boundary->empty()) return core::Status::invalid_argument("the Content-Type has no boundary parameter");
  if (boundary->size() > kMaxMultipartBoundary) {
    return core::Status::invalid_argument("the multipart boundary is " + std::to_string(boundary->size()) +
                               " characters long; the limit is " + std::to_string(kMaxMultipartBoundary));
  }
  const std::string dash_boundary = "--" + *boundary;

  // The first boundary line: at the start of the body or of a line of the preamble. Its line
  // end decides the line ends of the whole body.
  const std::string lf_boundary = "\n" + dash_boundary;
  const auto next_boundary_line = [&](size_t from) {
    const size_t f = body.find(lf_boundary, from);
    return f == std::string_view::npos ? f : f + 1;
  };
  std::string_view eol;
  size_t pos = 0;
  size_t at = body.substr(0, dash_boundary.size()) == dash_boundary ? 0 : next_boundary_line(0);
  for (; at != std::string_view::npos; at = next_boundary_line(at)) {
    const size_t after = at + dash_boundary.size();
    if (body.substr(after, 2) == "--") return std::vector<FormPart>{};  // no parts at all
    if (follows(body, after, "\r\n", &pos) == Follow::kPart) {
      eol = "\r\n";
      break;
    }
    if (follows(body, after, "\n", &pos) == Follow::kPart) {
      eol = "\n";
      break;
    }
    // Otherwise the boundary text is part of the preamble.
  }
  if (eol.empty()) {
    return core::Status::invalid_argument("no boundary line \"" + dash_boundary + "\" (is the body empty or the boundary wrong?)");
  }

  const std::string delimiter = std::string(eol) + dash_boundary;
  std::vector<FormPart> parts;
  while (true) {
    const size_t index = parts.size() + 1;
    if (index > kMaxMultipartParts) {
      return core::Status::invalid_argument("the body has more than " + std::to_string(kMaxMultipartParts) + " parts");
    }
    PartHeaders headers;
    ZS_RETURN_IF_ERROR(read_headers(body, eol, dash_boundary, index, &pos, &headers));
    const size_t content_start = pos;

    // The content ends at the next line that is a boundary line. The blank line's own line
    // end may double as the delimiter's, which some clients rely on for an empty part.
    size_t search = content_start - eol.size();
    Follow follow = Follow::kNeither;
    size_t found = std::string_view::npos;
    size_t next = 0;
    while (follow == Follow::kNeither) {
      found = body.find(delimiter, search);
      if (found == std::string_view::npos) {
        return part_error(index, "the body ends without the closing boundary \"" + dash_boundary +
                                     "--\" (was the upload cut short?)");
      }
      follow = follows(body, found + delimiter.size(), eol, &next);
      search = found + 1;
    }

    if (!headers.has_disposition) return part_error(index, "it has no Content-Disposition header");
    const std::string_view disposition_type =
        trim(std::string_view(headers.disposition).substr(0, headers.disposition.find(';')));
    if (!iequals(disposition_type, "form-data")) {
      return part_error(
          index, "its Content-Disposition is \"" + std::string(disposition_type.substr(0, 100)) + "\", not form-data");
    }
    auto name = header_parameter(headers.disposition, "name");
    if (!name) return part_error(index, "Content-Disposition: " + name.status().message());
    if (name->empty()) return part_error(index, "its Content-Disposition has no name");
    auto filename = header_parameter(headers.disposition, "filename");
    if (!filename) return part_error(index, "Content-Disposition: " + filename.status().message());

    FormPart part;
    part.name = std::move(name).value();
    part.filename = std::move(filename).value();
    part.content_type = std::move(headers.content_type);
    // An empty part whose blank line doubles as the delimiter's line end ends before it starts.
    if (found > content_start) part.data = body.substr(content_start, found - content_start);
    parts.push_back(std::move(part));

    if (follow == Follow::kClose) return parts;  // the epilogue is ignored
    pos = next;
  }
}

}  // namespace zs::gateway
