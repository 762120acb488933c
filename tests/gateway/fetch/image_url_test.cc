// Parsing of the image URLs the fetcher accepts, and of redirect locations.
#include "gateway/fetch/image_url.h"

#include <gtest/gtest.h>

namespace zs::gateway {
namespace {

ImageUrl parse_ok(const std::string& url) {
  auto r = parse_image_url(url);
  EXPECT_TRUE(r.is_ok()) << url << ": " << r.status().message();
  return r.is_ok() ? r.value() : ImageUrl{};
}

std::string parse_error(const std::string& url) {
  auto r = parse_image_url(url);
  EXPECT_FALSE(r.is_ok()) << url << " parsed as " << (r.is_ok() ? r->to_string() : "");
  return r.is_ok() ? "" : r.status().message();
}

TEST(ImageUrlTest, ParsesHttpAndHttps) {
  ImageUrl u = parse_ok("http://example.com/a/b.png?x=1&y=2");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/a/b.png?x=1&y=2");
  EXPECT_EQ(u.authority(), "example.com");
  EXPECT_EQ(u.to_string(), "http://example.com/a/b.png?x=1&y=2");

  ImageUrl s = parse_ok("HTTPS://Images.Example.COM:8443/cat.jpg#frag");
  EXPECT_EQ(s.scheme, "https");
  EXPECT_TRUE(s.is_https());
  EXPECT_EQ(s.host, "images.example.com");
  EXPECT_EQ(s.port, 8443);
  EXPECT_EQ(s.target, "/cat.jpg");
  EXPECT_EQ(s.authority(), "images.example.com:8443");

  EXPECT_EQ(parse_ok("https://example.com").port, 443);
  EXPECT_EQ(parse_ok("https://example.com").target, "/");
  EXPECT_EQ(parse_ok("http://example.com?q=1").target, "/?q=1");
  EXPECT_EQ(parse_ok("http://example.com:/x").port, 80);
  EXPECT_EQ(parse_ok("http://example.com:443/x").authority(), "example.com:443");
  EXPECT_EQ(parse_ok("https://example.com:443/x").authority(), "example.com");
}

TEST(ImageUrlTest, ParsesAddressLiterals) {
  ImageUrl v4 = parse_ok("http://127.0.0.1:8080/x");
  EXPECT_EQ(v4.host, "127.0.0.1");
  EXPECT_EQ(v4.port, 8080);
  EXPECT_FALSE(v4.host_is_ipv6);

  ImageUrl v6 = parse_ok("http://[::1]:9000/img.png");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_TRUE(v6.host_is_ipv6);
  EXPECT_EQ(v6.port, 9000);
  EXPECT_EQ(v6.authority(), "[::1]:9000");
  EXPECT_EQ(v6.to_string(), "http://[::1]:9000/img.png");

  EXPECT_EQ(parse_ok("https://[2001:DB8::1]/").host, "2001:db8::1");
  EXPECT_EQ(parse_ok("http://[::ffff:127.0.0.1]/").host, "::ffff:127.0.0.1");
}

TEST(ImageUrlTest, EncodesWhatARequestLineCannotCarry) {
  EXPECT_EQ(parse_ok("http://h/a b.png").target, "/a%20b.png");
  EXPECT_EQ(parse_ok("http://h/caf\xc3\xa9.png").target, "/caf%C3%A9.png");
  EXPECT_EQ(parse_ok("http://h/already%20encoded").target, "/already%20encoded");
  EXPECT_EQ(parse_ok("http://h/x?a=<b>").target, "/x?a=%3Cb%3E");
}

TEST(ImageUrlTest, RefusesOtherSchemes) {
  for (const char* url : {"ftp://example.com/a.png", "file:///etc/passwd", "gopher://h/", "data:image/png;base64,AAAA",
                          "javascript:alert(1)", "ws://h/x"}) {
    std::string e = parse_error(url);
    EXPECT_NE(e.find("unsupported scheme"), std::string::npos) << url << ": " << e;
    EXPECT_NE(e.find("only http and https"), std::string::npos) << e;
  }
  EXPECT_NE(parse_error("file:///etc/passwd").find("'file'"), std::string::npos);
}

TEST(ImageUrlTest, RefusesUserInfo) {
  for (const char* url : {"http://user@example.com/x", "http://user:pass@example.com/x",
                          "http://example.com@127.0.0.1/x", "https://@example.com/"}) {
    std::string e = parse_error(url);
    EXPECT_NE(e.find("user info"), std::string::npos) << url << ": " << e;
  }
}

TEST(ImageUrlTest, RefusesMalformedUrls) {
  struct Case {
    const char* url;
    const char* why;
  };
  for (const Case& c : {
           Case{"", "empty"},
           Case{"example.com/a.png", "no scheme"},
           Case{"://example.com", "no scheme"},
           Case{"http:example.com", "'//'"},
           Case{"http:/example.com", "'//'"},
           Case{"http://", "no host"},
           Case{"http:///a.png", "no host"},
           Case{"http://:80/a.png", "no host"},
           Case{"http://exa mple.com/", "not allowed in a host name"},
           Case{"http://example.com\\@evil/", "user info"},
           Case{"http://example.com\\evil/", "not allowed in a host name"},
           Case{"http://ex%41mple.com/", "not allowed in a host name"},
           Case{"http://example.com:80:90/", "not allowed in a host name"},
           Case{"http://example.com:http/", "not a number"},
           Case{"http://example.com:-1/", "not a number"},
           Case{"http://example.com:0/", "out of range"},
           Case{"http://example.com:65536/", "out of range"},
           Case{"http://example.com:123456/", "not a number"},
           Case{"http://[::1/", "closing ']'"},
           Case{"http://[not-v6]/", "not an IPv6 address"},
           Case{"http://[127.0.0.1]/", "not an IPv6 address"},
           Case{"http://[fe80::1%25eth0]/", "zone"},
           Case{"http://[::1]x/", "after ']'"},
           Case{"http://h/a\r\nHost: evil", "control character"},
           Case{"http://h/a\tb", "control character"},
       }) {
    std::string e = parse_error(c.url);
    EXPECT_NE(e.find(c.why), std::string::npos) << "'" << c.url << "': " << e;
    if (c.url[0] != '\0') {
      EXPECT_EQ(e.rfind("invalid image URL", 0), 0u) << e;
    }
  }
  std::string huge = "http://h/" + std::string(kMaxImageUrlBytes, 'a');
  std::string e = parse_error(huge);
  EXPECT_NE(e.find("over the limit"), std::string::npos) << e;
  EXPECT_LT(e.size(), 400u) << "long URLs are shortened in messages";
}

TEST(ImageUrlTest, ResolvesRedirectLocations) {
  ImageUrl base = parse_ok("https://a.example:8443/dir/sub/img.png?q=1");
  auto check = [&](const std::string& location, const std::string& expected) {
    auto r = resolve_redirect(base, location);
    ASSERT_TRUE(r.is_ok()) << location << ": " << r.status().message();
    EXPECT_EQ(r->to_string(), expected) << location;
  };
  check("http://b.example/x.png", "http://b.example/x.png");
  check("//c.example/y.png", "https://c.example/y.png");
  check("/root.png", "https://a.example:8443/root.png");
  check("other.png", "https://a.example:8443/dir/sub/other.png");
  check("../up.png?z=2", "https://a.example:8443/dir/up.png?z=2");
  check("./same.png", "https://a.example:8443/dir/sub/same.png");
  check("../../../../top.png", "https://a.example:8443/top.png");
  check("?p=3", "https://a.example:8443/dir/sub/img.png?p=3");
  check("  /spaced.png  ", "https://a.example:8443/spaced.png");
  check("/x.png#frag", "https://a.example:8443/x.png");
  check("/a:b.png", "https://a.example:8443/a:b.png");

  auto refused = [&](const std::string& location, const std::string& why) {
    auto r = resolve_redirect(base, location);
    ASSERT_FALSE(r.is_ok()) << location << " resolved to " << r->to_string();
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
  };
  refused("file:///etc/passwd", "unsupported scheme");
  refused("ftp://h/x", "unsupported scheme");
  refused("http://user@h/x", "user info");
  refused("", "empty Location");
  refused("/a\nb", "control character");
}

}  // namespace
}  // namespace zs::gateway
