#include "gateway/http/multipart.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace zs::gateway {
namespace {

constexpr const char* kType = "multipart/form-data; boundary=XyZ";

// What curl sends for `-F purpose=batch -F file=@in.jsonl`.
std::string upload_body() {
  return "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"purpose\"\r\n"
         "\r\n"
         "batch\r\n"
         "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n"
         "Content-Type: application/octet-stream\r\n"
         "\r\n"
         "{\"a\":1}\r\n{\"b\":2}\r\n"
         "\r\n"
         "--XyZ--\r\n";
}

std::vector<FormPart> parse_ok(std::string_view type, std::string_view body) {
  auto r = parse_multipart(type, body);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? std::move(r).value() : std::vector<FormPart>{};
}

std::string parse_error(std::string_view type, std::string_view body) {
  auto r = parse_multipart(type, body);
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? std::string() : r.status().message();
}

TEST(Multipart, ParsesFieldsAndFiles) {
  auto parts = parse_ok(kType, upload_body());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "purpose");
  EXPECT_EQ(parts[0].filename, "");
  EXPECT_EQ(parts[0].content_type, "");
  EXPECT_EQ(parts[0].data, "batch");
  EXPECT_EQ(parts[1].name, "file");
  EXPECT_EQ(parts[1].filename, "in.jsonl");
  EXPECT_EQ(parts[1].content_type, "application/octet-stream");
  // The file's own final line break stays; only the delimiter's CRLF is removed.
  EXPECT_EQ(parts[1].data, "{\"a\":1}\r\n{\"b\":2}\r\n");
}

TEST(Multipart, QuotedBoundaryAndParametersInAnyCase) {
  const std::string body =
      "--a:b c\r\n"
      "content-disposition: Form-Data; NAME=\"x\"; FileName=\"q\\\"uote;d.txt\"\r\n"
      "\r\n"
      "v\r\n"
      "--a:b c--";
  auto parts = parse_ok("Multipart/Form-Data; charset=utf-8; Boundary=\"a:b c\"", body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "x");
  EXPECT_EQ(parts[0].filename, "q\"uote;d.txt");
  EXPECT_EQ(parts[0].data, "v");
}

TEST(Multipart, WindowsPathBackslashesAreKept) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"C:\\dir\\in.jsonl\"\r\n\r\nx\r\n--XyZ--\r\n";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].filename, "C:\\dir\\in.jsonl");
}

TEST(Multipart, PreambleAndEpilogueAreIgnored) {
  const std::string body =
      "This is a preamble mentioning --XyZ in passing.\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n"
      "epilogue --XyZ\r\ngarbage without headers";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "1");
}

TEST(Multipart, BoundaryTextInsideContentIsContent) {
  // "--XyZ" followed by other text is not a delimiter (a delimiter is followed by "--" or
  // a line end), so it belongs to the content.
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline\r\n--XyZfoo\r\nend\r\n--XyZ--";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, "line\r\n--XyZfoo\r\nend");
}

TEST(Multipart, TransportPaddingAfterBoundary) {
  const std::string body =
      "--XyZ \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ  \r\n"
      "Content-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--XyZ--";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].data, "2");
}

TEST(Multipart, EmptyPartsBothWays) {
  // The RFC form (blank line, empty content, CRLF before the delimiter) and the short form
  // where the blank line's CRLF doubles as the delimiter's.
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n"
      "--XyZ--";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].data, "");
  EXPECT_EQ(parts[1].data, "");
}

TEST(Multipart, BareLineFeedsWhenTheFirstBoundaryLineUsesThem) {
  const std::string body =
      "--XyZ\nContent-Disposition: form-data; name=\"a\"\nContent-Type: text/plain\n\nx\ny\n--XyZ--\n";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].content_type, "text/plain");
  EXPECT_EQ(parts[0].data, "x\ny");
}

TEST(Multipart, BinaryDataWithNulsAndCrs) {
  std::string data("\0\r\n\r--Xy\r\n-\xff", 12);
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"b.bin\"\r\n\r\n" + data + "\r\n--XyZ--\r\n";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].data, data);
}

TEST(Multipart, FoldedHeaderContinuesItsValue) {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\nX-Other: 1\r\n\t2\r\n\r\nv\r\n--XyZ--";
  auto parts = parse_ok(kType, body);
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].name, "a");
}

TEST(Multipart, OnlyTheCloseDelimiterGivesNoParts) { EXPECT_TRUE(parse_ok(kType, "--XyZ--\r\n").empty()); }

TEST(Multipart, ContentTypeErrors) {
  EXPECT_EQ(parse_error("application/json", upload_body()),
            "the Content-Type is \"application/json\", not multipart/form-data");
  EXPECT_EQ(parse_error("multipart/form-data", upload_body()), "the Content-Type has no boundary parameter");
  EXPECT_EQ(parse_error("multipart/form-data; boundary=", upload_body()), "the Content-Type has no boundary parameter");
  EXPECT_EQ(parse_error("multipart/form-data; boundary=\"abc", upload_body()),
            "the Content-Type: the quoted value of parameter 'boundary' has no closing quote");
  EXPECT_EQ(parse_error("multipart/form-data; boundary=" + std::string(71, 'b'), upload_body()),
            "the multipart boundary is 71 characters long; the limit is 70");
  // 70 is allowed.
  const std::string b70(70, 'b');
  auto parts = parse_ok("multipart/form-data; boundary=" + b70,
                        "--" + b70 + "\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--" + b70 + "--");
  EXPECT_EQ(parts.size(), 1u);
}

TEST(Multipart, WrongOrMissingBoundaryInBody) {
  EXPECT_EQ(parse_error("multipart/form-data; boundary=Other", upload_body()),
            "no boundary line \"--Other\" (is the body empty or the boundary wrong?)");
  EXPECT_EQ(parse_error(kType, ""), "no boundary line \"--XyZ\" (is the body empty or the boundary wrong?)");
  // A boundary that is not at the start of a line does not count.
  EXPECT_EQ(parse_error(kType, "x--XyZ\r\n"), "no boundary line \"--XyZ\" (is the body empty or the boundary wrong?)");
}

TEST(Multipart, TruncatedBodiesAreErrors) {
  const std::string full = upload_body();
  // Cut inside the file's content, right after its last byte, and inside the close delimiter.
  for (size_t cut :
       {full.find("{\"b\""), full.rfind("--XyZ--") - 2, full.rfind("--XyZ--") + 3, full.rfind("--XyZ--") + 5}) {
    auto r = parse_multipart(kType, full.substr(0, cut));
    ASSERT_FALSE(r.is_ok()) << "cut at " << cut;
    EXPECT_EQ(r.status().message(),
              "part 2: the body ends without the closing boundary \"--XyZ--\" (was the upload cut short?)");
  }
  // Cut inside the second part's headers.
  auto r = parse_multipart(kType, full.substr(0, full.find("filename")));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().message(), "part 2: the body ends inside the part's headers (no blank line)");
  // Every prefix is an error, none crashes.
  for (size_t cut = 0; cut + 7 < full.size(); ++cut) {
    EXPECT_FALSE(parse_multipart(kType, full.substr(0, cut)).is_ok()) << "cut at " << cut;
  }
}

TEST(Multipart, HeadersWithoutBlankLine) {
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n--XyZ--\r\n"),
            "part 1: the headers end without a blank line");
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\ndata\r\n--XyZ--\r\n"),
            "part 1: a header line has no ':' (is the blank line after the headers missing?)");
}

TEST(Multipart, PartHeaderProblems) {
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"),
            "part 1: it has no Content-Disposition header");
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--"),
            "part 1: its Content-Disposition is \"attachment\", not form-data");
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n--XyZ--"),
            "part 1: its Content-Disposition has no name");
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--XyZ--"),
            "part 1: Content-Disposition: the quoted value of parameter 'name' has no closing quote");
  EXPECT_EQ(parse_error(kType,
                        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n"
                        "Content-Disposition: form-data; name=\"b\"\r\n\r\nx\r\n--XyZ--"),
            "part 1: it has two Content-Disposition headers");
  EXPECT_EQ(parse_error(kType, "--XyZ\r\n folded\r\n\r\nx\r\n--XyZ--"),
            "part 1: the first header line starts with a space");
}

TEST(Multipart, HeaderSectionOver8KiB) {
  const std::string big(9000, 'a');
  EXPECT_EQ(parse_error(
                kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Big: " + big + "\r\n\r\nx\r\n--XyZ--"),
            "part 1: the header section is over 8 KiB");
  // Many short lines add up too.
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "X-H: 123456\r\n";
  EXPECT_EQ(parse_error(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n" + many + "\r\nx\r\n--XyZ--"),
            "part 1: the header section is over 8 KiB");
  // Just under the limit is fine.
  const std::string fits(8000, 'a');
  EXPECT_EQ(
      parse_ok(kType, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Big: " + fits + "\r\n\r\nx\r\n--XyZ--")
          .size(),
      1u);
}

TEST(Multipart, AtMost100Parts) {
  auto body_with = [](int n) {
    std::string body;
    for (int i = 0; i < n; ++i) body += "--XyZ\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nv\r\n";
    return body + "--XyZ--\r\n";
  };
  EXPECT_EQ(parse_ok(kType, body_with(100)).size(), 100u);
  EXPECT_EQ(parse_error(kType, body_with(101)), "the body has more than 100 parts");
}

TEST(Multipart, HeaderParameter) {
  auto v = header_parameter("form-data; name=\"file\"; filename=\"a.jsonl\"", "filename");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, "a.jsonl");
  v = header_parameter("form-data; filename=\"a.jsonl\"", "name");  // "filename" is not "name"
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, "");
  v = header_parameter("form-data; flag; name = token ;x=1", "name");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, "token");
  v = header_parameter("form-data; a=\"x;name=evil\"; name=good", "name");
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(*v, "good");
}

// Random mutations of valid uploads (byte flips, truncation, splicing of delimiters and
// header pieces) never crash the parser, and whatever it returns stays within the limits.
// The libFuzzer target fuzz/multipart_fuzz.cc explores further under sanitizers.
TEST(MultipartFuzzTest, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(20240611);
  const std::vector<std::string> seeds = {
      upload_body(),
      "--XyZ\nContent-Disposition: form-data; name=\"a\"\n\nx\n--XyZ--\n",
      "pre\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"f\"\r\n\r\n\r\n--XyZ--",
  };
  const std::vector<std::string> fragments = {"--XyZ",
                                              "--XyZ--",
                                              "\r\n",
                                              "\n",
                                              "\r\n\r\n",
                                              "\"",
                                              "\\",
                                              ";",
                                              "name=",
                                              "filename=\"",
                                              "Content-Disposition: form-data",
                                              ":",
                                              " ",
                                              std::string(1, '\0')};
  int parsed = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t pos = rng() % s.size();
      switch (rng() % 4) {
        case 0:
          s[pos] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          s.resize(pos);
          break;
        case 2:
          s.erase(pos, 1 + rng() % 8);
          break;
        case 3:
          s.insert(pos, fragments[rng() % fragments.size()]);
          break;
      }
    }
    auto r = parse_multipart(kType, s);
    if (r.is_ok()) {
      ++parsed;
      EXPECT_LE(r->size(), kMaxMultipartParts);
      size_t total = 0;
      for (const FormPart& p : *r) {
        EXPECT_FALSE(p.name.empty());
        total += p.data.size();
      }
      EXPECT_LE(total, s.size());
    } else {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  EXPECT_GT(parsed, 0);  // not every mutation is fatal, so the part loop ran too
}

}  // namespace
}  // namespace zs::gateway
