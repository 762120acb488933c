#include "gateway/http/sse.h"

#include <gtest/gtest.h>

#include "gateway/http/http_address.h"
#include "gateway/http/http_types.h"

namespace zs::gateway {
namespace {

TEST(SseTest, EventAndCommentFraming) {
  EXPECT_EQ(sse_event(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_event("[DONE]"), "data: [DONE]\n\n");
  EXPECT_EQ(sse_event("two\nlines"), "data: two\ndata: lines\n\n");
  EXPECT_EQ(sse_comment("keep-alive"), ": keep-alive\n\n");
}

TEST(SseTest, ParserReassemblesEventsFromAnySplit) {
  std::string stream = ": hello\n\n" + sse_event("one") + sse_event("two\nlines") +
                       "event: x\r\ndata: crlf\r\n\r\n" + sse_event("[DONE]");
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    SseParser p;
    std::vector<std::string> events;
    for (size_t i = 0; i < stream.size(); i += piece) {
      p.feed(std::string_view(stream).substr(i, piece));
      for (auto& e : p.take_events()) events.push_back(e);
    }
    ASSERT_EQ(events.size(), 4u) << "piece " << piece;
    EXPECT_EQ(events[0], "one");
    EXPECT_EQ(events[1], "two\nlines");
    EXPECT_EQ(events[2], "crlf");
    EXPECT_EQ(events[3], "[DONE]");
  }
}

TEST(HttpAddressTest, Parses) {
  auto a = parse_http_address("127.0.0.1:8080");
  ASSERT_TRUE(a.is_ok());
  EXPECT_FALSE(a->is_unix);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->to_string(), "127.0.0.1:8080");
  auto v6 = parse_http_address("[::1]:0");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:0");
  auto u = parse_http_address("unix:/tmp/x.sock");
  ASSERT_TRUE(u.is_ok());
  EXPECT_TRUE(u->is_unix);
  EXPECT_EQ(u->path, "/tmp/x.sock");
  for (const char* bad : {"", "8080", ":80", "host:", "host:abc", "host:70000", "::1:80", "unix:",
                          "[::1:80"}) {
    EXPECT_FALSE(parse_http_address(bad).is_ok()) << bad;
  }
  EXPECT_FALSE(parse_http_address("unix:/" + std::string(200, 'a')).is_ok());
}

TEST(HttpTypesTest, HeaderLookupIsCaseInsensitive) {
  HttpRequest r;
  r.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}};
  r.target = "/v1/models?x=1";
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("x-a"), "1");
  EXPECT_EQ(r.header("missing"), "");
  EXPECT_EQ(r.path(), "/v1/models");
  EXPECT_EQ(r.query(), "x=1");
}

}  // namespace
}  // namespace zs::gateway
