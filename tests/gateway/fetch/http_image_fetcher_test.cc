// The image fetcher end to end against a real HttpServer on 127.0.0.1: with allow_private
// (so that loopback may be reached) for the HTTP behaviour, and without it for the refusals
// that protect against server-side request forgery.
#include "gateway/fetch/http_image_fetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/http/http_server.h"

namespace zs::gateway {
namespace {

using namespace std::chrono_literals;

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, '\x01');

// Writers of requests that are never answered, answered (and so released) at the end.
class Hung {
 public:
  void keep(std::shared_ptr<ResponseWriter> w, bool streaming = false) {
    std::lock_guard<std::mutex> lock(mu_);
    writers_.emplace_back(std::move(w), streaming);
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [w, streaming] : writers_) {
      if (streaming) {
        w->end();
      } else {
        w->respond(503, "text/plain", "bye");
      }
    }
    writers_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::shared_ptr<ResponseWriter>, bool>> writers_;
};

class HttpImageFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Router router;
    auto count = [this] { requests_.fetch_add(1); };
    router.add("GET", "/cat.png", [count](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      count();
      w->respond(200, "image/png", kPng);
    });
    router.add("GET", "/typed", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(200, "IMAGE/JPEG ; charset=binary", "jpegbytes");
    });
    router.add("GET", "/page", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(200, "text/html; charset=utf-8", "<html></html>");
    });
    router.add("GET", "/empty",
               [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->respond(200, "image/png", ""); });
    router.add("GET", "/gzip", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(200, "image/png", "zzzz", {{"Content-Encoding", "gzip"}});
    });
    router.add("GET", "/teapot",
               [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->respond(500, "text/plain", "oops"); });
    router.add("GET", "/big", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(200, "image/png", std::string(2000, 'x'));
    });
    router.add("GET", "/stream", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      // Chunked: no Content-Length announces the size, only reading finds it out.
      w->start_stream(200, "image/png");
      for (int i = 0; i < 8; ++i) w->write(std::string(512, 'y'));
      w->end();
    });
    router.add("GET", "/stream-small", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->start_stream(200, "image/gif");
      w->write("GIF89a");
      w->write("rest");
      w->end();
    });
    router.add("GET", "/redirect", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(302, "text/plain", "", {{"Location", "/cat.png"}});
    });
    router.add("GET", "/a/redirect-relative", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(307, "text/plain", "", {{"Location", "../cat.png"}});
    });
    router.add("GET", "/redirect-twice", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(301, "text/plain", "", {{"Location", "/redirect"}});
    });
    router.add("GET", "/loop", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(308, "text/plain", "", {{"Location", "/loop"}});
    });
    router.add("GET", "/to-file", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->respond(302, "text/plain", "", {{"Location", "file:///etc/passwd"}});
    });
    router.add("GET", "/no-location",
               [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->respond(303, "text/plain", ""); });
    router.add("GET", "/host", [](const HttpRequest& req, std::shared_ptr<ResponseWriter> w) {
      w->respond(200, "image/png", req.header("Host"));
    });
    router.add("GET", "/hang",
               [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { hung_.keep(std::move(w)); });
    router.add("GET", "/slow-body", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->start_stream(200, "image/png");
      w->write("partial");
      hung_.keep(std::move(w), /*streaming=*/true);
    });
    router.add("GET", "/x", [count](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      count();
      w->respond(200, "image/png", kPng);
    });
    auto server = HttpServer::start(HttpServerOptions{}, std::move(router));
    ASSERT_TRUE(server.is_ok()) << server.status().message();
    server_ = std::move(server).value();
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
  }

  void TearDown() override {
    hung_.release();
    if (server_) server_->stop(0ms);
  }

  static HttpImageFetcherOptions local(std::chrono::milliseconds timeout = 5000ms) {
    HttpImageFetcherOptions o;
    o.allow_private = true;
    o.timeout = timeout;
    return o;
  }

  std::string fetch_error(HttpImageFetcher& fetcher, const std::string& url) {
    auto r = fetcher.fetch(url);
    EXPECT_FALSE(r.is_ok()) << url << " fetched " << (r.is_ok() ? r->bytes.size() : 0) << " bytes";
    return r.is_ok() ? "" : r.status().message();
  }

  std::unique_ptr<HttpServer> server_;
  std::string base_;
  Hung hung_;
  std::atomic<int> requests_{0};
};

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST_F(HttpImageFetcherTest, FetchesAnImage) {
  HttpImageFetcher fetcher(local());
  auto r = fetcher.fetch(base_ + "/cat.png");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->bytes, kPng);
  EXPECT_EQ(r->mime_type, "image/png");
}

TEST_F(HttpImageFetcherTest, MimeTypeDropsParametersAndCase) {
  HttpImageFetcher fetcher(local());
  auto r = fetcher.fetch(base_ + "/typed");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->mime_type, "image/jpeg");
  EXPECT_EQ(r->bytes, "jpegbytes");
}

TEST_F(HttpImageFetcherTest, ReadsAChunkedBody) {
  HttpImageFetcher fetcher(local());
  auto r = fetcher.fetch(base_ + "/stream-small");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->bytes, "GIF89arest");
  EXPECT_EQ(r->mime_type, "image/gif");
}

TEST_F(HttpImageFetcherTest, RefusesAnotherContentType) {
  HttpImageFetcher fetcher(local());
  std::string e = fetch_error(fetcher, base_ + "/page");
  EXPECT_HAS(e, "fetching " + base_ + "/page: ");
  EXPECT_HAS(e, "text/html");
  EXPECT_HAS(e, "not an image");
}

TEST_F(HttpImageFetcherTest, RefusesStatusesOtherThan200) {
  HttpImageFetcher fetcher(local());
  std::string e = fetch_error(fetcher, base_ + "/missing.png");
  EXPECT_HAS(e, "404");
  EXPECT_HAS(e, "/missing.png");
  EXPECT_HAS(fetch_error(fetcher, base_ + "/teapot"), "500");
}

TEST_F(HttpImageFetcherTest, RefusesEmptyAndCompressedBodies) {
  HttpImageFetcher fetcher(local());
  EXPECT_HAS(fetch_error(fetcher, base_ + "/empty"), "empty");
  EXPECT_HAS(fetch_error(fetcher, base_ + "/gzip"), "Content-Encoding: gzip");
}

TEST_F(HttpImageFetcherTest, RefusesTooLargeByContentLength) {
  auto options = local();
  options.max_bytes = 1000;
  HttpImageFetcher fetcher(options);
  std::string e = fetch_error(fetcher, base_ + "/big");
  EXPECT_HAS(e, "2000 bytes (Content-Length)");
  EXPECT_HAS(e, "limit of 1000 bytes");
  // At the limit exactly is fine.
  options.max_bytes = 2000;
  HttpImageFetcher exact(options);
  auto r = exact.fetch(base_ + "/big");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->bytes.size(), 2000u);
}

TEST_F(HttpImageFetcherTest, AbortsABodyGrowingPastTheLimit) {
  auto options = local();
  options.max_bytes = 1024;
  HttpImageFetcher fetcher(options);
  std::string e = fetch_error(fetcher, base_ + "/stream");
  EXPECT_HAS(e, "exceeds the limit of 1 KiB");
  options.max_bytes = 4096;
  HttpImageFetcher enough(options);
  auto r = enough.fetch(base_ + "/stream");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->bytes, std::string(4096, 'y'));
}

TEST_F(HttpImageFetcherTest, FollowsRedirects) {
  HttpImageFetcher fetcher(local());
  for (const char* path : {"/redirect", "/redirect-twice", "/a/redirect-relative"}) {
    auto r = fetcher.fetch(base_ + path);
    ASSERT_TRUE(r.is_ok()) << path << ": " << r.status().message();
    EXPECT_EQ(r->bytes, kPng) << path;
  }
}

TEST_F(HttpImageFetcherTest, FollowsARedirectToAnotherServer) {
  Router router;
  std::string target = base_ + "/cat.png";
  router.add("GET", "/elsewhere", [target](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->respond(302, "text/plain", "", {{"Location", target}});
  });
  auto other = HttpServer::start(HttpServerOptions{}, std::move(router));
  ASSERT_TRUE(other.is_ok()) << other.status().message();
  HttpImageFetcher fetcher(local());
  auto r = fetcher.fetch("http://127.0.0.1:" + std::to_string((*other)->port()) + "/elsewhere");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->bytes, kPng);
  (*other)->stop(0ms);
}

TEST_F(HttpImageFetcherTest, LimitsRedirects) {
  HttpImageFetcher fetcher(local());
  std::string e = fetch_error(fetcher, base_ + "/loop");
  EXPECT_HAS(e, "more than 3 redirects");
  EXPECT_HAS(e, "redirected from " + base_ + "/loop");

  auto options = local();
  options.max_redirects = 1;
  HttpImageFetcher one(options);
  EXPECT_TRUE(one.fetch(base_ + "/redirect").is_ok());
  EXPECT_HAS(fetch_error(one, base_ + "/redirect-twice"), "more than 1 redirects");
  options.max_redirects = 0;
  HttpImageFetcher none(options);
  EXPECT_HAS(fetch_error(none, base_ + "/redirect"), "more than 0 redirects");
}

TEST_F(HttpImageFetcherTest, RefusesUnusableRedirects) {
  HttpImageFetcher fetcher(local());
  std::string e = fetch_error(fetcher, base_ + "/to-file");
  EXPECT_HAS(e, "unsupported scheme 'file'");
  EXPECT_HAS(fetch_error(fetcher, base_ + "/no-location"), "without a Location");
}

TEST_F(HttpImageFetcherTest, TimesOutWhenTheServerNeverAnswers) {
  HttpImageFetcher fetcher(local(300ms));
  std::string e = fetch_error(fetcher, base_ + "/hang");
  EXPECT_HAS(e, "timed out after 300 ms");
}

TEST_F(HttpImageFetcherTest, TimesOutWhenTheBodyStalls) {
  HttpImageFetcher fetcher(local(300ms));
  std::string e = fetch_error(fetcher, base_ + "/slow-body");
  EXPECT_HAS(e, "timed out after 300 ms");
}

TEST_F(HttpImageFetcherTest, ReportsARefusedConnection) {
  // A port nothing listens on: bind one, note it, close it.
  int port = 0;
  {
    auto s = HttpServer::start(HttpServerOptions{}, Router{});
    ASSERT_TRUE(s.is_ok());
    port = (*s)->port();
    (*s)->stop(0ms);
  }
  HttpImageFetcher fetcher(local(2000ms));
  std::string e = fetch_error(fetcher, "http://127.0.0.1:" + std::to_string(port) + "/x");
  EXPECT_HAS(e, "cannot connect to 127.0.0.1:" + std::to_string(port));
}

TEST_F(HttpImageFetcherTest, HttpsToAPlainHttpServerFailsTheHandshake) {
  // The TLS path runs (connect, SNI-less handshake to an IP, certificate checks) and fails
  // cleanly: the peer does not speak TLS.
  HttpImageFetcher fetcher(local(2000ms));
  std::string e = fetch_error(fetcher, "https://127.0.0.1:" + std::to_string(server_->port()) + "/cat.png");
  EXPECT_HAS(e, "TLS handshake with 127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(HttpImageFetcherTest, ConcurrentFetchesShareOneFetcher) {
  HttpImageFetcher fetcher(local());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        if (fetcher.fetch(base_ + "/cat.png").is_ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
}

TEST_F(HttpImageFetcherTest, RefusesMalformedUrlsBeforeAnyIo) {
  HttpImageFetcher fetcher(local());
  EXPECT_HAS(fetch_error(fetcher, "ftp://127.0.0.1/x.png"), "unsupported scheme 'ftp'");
  EXPECT_HAS(fetch_error(fetcher, "http://user@127.0.0.1/x.png"), "user info");
  EXPECT_HAS(fetch_error(fetcher, "not a url"), "invalid image URL");
}

// --- Server-side request forgery: allow_private = false --------------------------------

TEST_F(HttpImageFetcherTest, RefusesLoopbackNamingTheAddressAndTheReason) {
  HttpImageFetcher fetcher(HttpImageFetcherOptions{});
  std::string url = base_ + "/x";
  EXPECT_EQ(
      fetch_error(fetcher, url),
      "refusing to fetch " + url + ": 127.0.0.1 is a loopback address (set gateway.allow_private_image_urls to allow)");
  EXPECT_EQ(requests_.load(), 0) << "refused before connecting";
}

TEST_F(HttpImageFetcherTest, RefusesHttpsToLoopbackBeforeConnecting) {
  HttpImageFetcher fetcher(HttpImageFetcherOptions{});
  std::string url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/x";
  EXPECT_EQ(
      fetch_error(fetcher, url),
      "refusing to fetch " + url + ": 127.0.0.1 is a loopback address (set gateway.allow_private_image_urls to allow)");
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(HttpImageFetcherTest, RefusesNonPublicAddressLiterals) {
  // None of these is contacted: a connection attempt to most of them would hang until the
  // timeout instead of failing with the refusal.
  HttpImageFetcherOptions options;
  options.timeout = 300ms;
  HttpImageFetcher fetcher(options);
  struct Case {
    const char* url;
    const char* why;
  };
  for (const Case& c : {
           Case{"http://127.0.0.2/x", "127.0.0.2 is a loopback address"},
           Case{"http://[::1]/x", "::1 is a loopback address"},
           Case{"http://10.0.0.1/x", "10.0.0.1 is a private address"},
           Case{"http://172.16.5.4/x", "172.16.5.4 is a private address"},
           Case{"http://192.168.1.1/x", "192.168.1.1 is a private address"},
           Case{"http://[fd00::1]/x", "fd00::1 is a private address"},
           Case{"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
           Case{"http://[fe80::1]/x", "fe80::1 is a link-local address"},
           Case{"http://0.0.0.0/x", "0.0.0.0 is an unspecified address"},
           Case{"http://[::]/x", ":: is an unspecified address"},
           Case{"http://100.64.0.1/x", "100.64.0.1 is a shared (carrier-grade NAT) address"},
           Case{"http://224.0.0.1/x", "224.0.0.1 is a multicast address"},
           Case{"http://255.255.255.255/x", "255.255.255.255 is a broadcast address"},
           Case{"http://[::ffff:127.0.0.1]/x", "::ffff:127.0.0.1 is a loopback address"},
           Case{"http://[::ffff:169.254.169.254]/x", "is a link-local address"},
           Case{"https://10.1.2.3/x", "10.1.2.3 is a private address"},
       }) {
    std::string e = fetch_error(fetcher, c.url);
    EXPECT_EQ(e.rfind(std::string("refusing to fetch ") + c.url + ": ", 0), 0u) << e;
    EXPECT_HAS(e, c.why);
    EXPECT_HAS(e, "gateway.allow_private_image_urls");
  }
}

TEST_F(HttpImageFetcherTest, RefusesHostNamesResolvingToLoopback) {
  HttpImageFetcher fetcher(HttpImageFetcherOptions{});
  std::string e = fetch_error(fetcher, "http://localhost:" + std::to_string(server_->port()) + "/x");
  EXPECT_HAS(e, "localhost resolves to ");
  EXPECT_HAS(e, "a loopback address");
  // Spellings of 127.0.0.1 that the system resolver (inet_aton) accepts: the check is on
  // what the name resolves to, so they are caught like any name.
  for (const char* host : {"127.1", "2130706433", "0x7f000001", "0177.0.0.1"}) {
    std::string url = std::string("http://") + host + ":" + std::to_string(server_->port()) + "/x";
    std::string why = fetch_error(fetcher, url);
    EXPECT_HAS(why, std::string(host) + " resolves to 127.0.0.1, a loopback address");
  }
  EXPECT_EQ(requests_.load(), 0);
}

TEST_F(HttpImageFetcherTest, ChecksEveryResolvedAddress) {
  // One public and one private answer: the private one alone refuses the host, whichever
  // the connection would have tried first.
  HttpImageFetcherOptions options;
  options.timeout = 300ms;
  options.resolver = [](const std::string&) -> core::Result<std::vector<std::string>> {
    return std::vector<std::string>{"93.184.216.34", "10.0.0.7"};
  };
  HttpImageFetcher fetcher(options);
  std::string e = fetch_error(fetcher, "http://images.test/cat.png");
  EXPECT_EQ(e,
            "refusing to fetch http://images.test/cat.png: images.test resolves to 10.0.0.7, a private "
            "address (set gateway.allow_private_image_urls to allow)");
}

TEST_F(HttpImageFetcherTest, ResolvesOnceAndConnectsToTheCheckedAddress) {
  // A rebinding DNS server answers differently on the second lookup; the fetcher never makes
  // one, so the second answer (unroutable here) is never used.
  std::atomic<int> lookups{0};
  auto options = local();
  options.resolver = [&lookups](const std::string& host) -> core::Result<std::vector<std::string>> {
    if (host != "images.test") return core::Status::error("NXDOMAIN");
    return std::vector<std::string>{lookups.fetch_add(1) == 0 ? "127.0.0.1" : "192.0.2.1"};
  };
  HttpImageFetcher fetcher(options);
  std::string port = std::to_string(server_->port());
  auto r = fetcher.fetch("http://images.test:" + port + "/host");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(lookups.load(), 1);
  EXPECT_EQ(r->bytes, "images.test:" + port) << "the Host header names the URL's host, not the address";

  EXPECT_HAS(fetch_error(fetcher, "http://unknown.test/x"), "cannot resolve 'unknown.test': NXDOMAIN");
}

TEST_F(HttpImageFetcherTest, ResolverAnswersMustBeAddresses) {
  auto options = local();
  options.resolver = [](const std::string&) -> core::Result<std::vector<std::string>> {
    return std::vector<std::string>{"not-an-ip"};
  };
  HttpImageFetcher fetcher(options);
  EXPECT_HAS(fetch_error(fetcher, "http://images.test/x"), "'not-an-ip' is not an IP address");
}

}  // namespace
}  // namespace zs::gateway
