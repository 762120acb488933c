// Pulls against a loopback server with the hub's URL layout and headers (fake_hub.h): the
// whole download, resume, checksum, tokens, missing files, a full disk, concurrent pulls of
// one file, QUANT names, offline mode, the store's listing and removal.
#include "gateway/hub/model_store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "gateway/hub/fake_hub.h"
#include "test_util/temp_dir.h"

namespace zs::gateway::hub {
namespace {

namespace fs = std::filesystem;
using testing::FakeHub;
using testing::TempDir;

std::string pattern(size_t n, unsigned seed = 7) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

platform::ModelRef ref(const std::string& text) {
  auto r = platform::parse_model_ref(text);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.value();
}

// Every file under the store's blobs folder (complete, partial and lock files).
std::vector<std::string> blob_files(const ModelStore& store) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store.root() + "/blobs", ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class PullTest : public ::testing::Test {
 protected:
  PullTest() : store_(ModelStore::in_cache_dir(dir_.file("cache"))) {
    hub_opts_.endpoint = hub_.endpoint();
    hub_opts_.http.io_timeout = std::chrono::seconds(60);
  }
  TempDir dir_;
  FakeHub hub_;
  HubOptions hub_opts_;
  ModelStore store_;
};

TEST_F(PullTest, DownloadsTheFileThroughTheRedirectVerifiesItAndStoresItUnderItsSha256) {
  const std::string content = pattern(300'000);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  std::vector<PullProgress> seen;
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_, [&](const PullProgress& p) { seen.push_back(p); });
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(read_all(m->path), content);
  EXPECT_EQ(m->sha256, testing::sha256_hex(content));
  EXPECT_EQ(fs::path(m->path).filename().string(), "sha256-" + m->sha256);
  EXPECT_EQ(m->size, content.size());
  EXPECT_EQ(hub_.downloads(), 1);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().done, content.size());
  EXPECT_EQ(seen.back().total, content.size());
  // Listed under its name; no partial or progress file left behind.
  auto listed = store_.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "hf:acme/tiny-GGUF/tiny-Q8_0.gguf");
  EXPECT_EQ(listed[0].size, content.size());
  for (const auto& f : blob_files(store_)) EXPECT_EQ(f.find(".partial"), std::string::npos) << f;
  EXPECT_FALSE(store_.progress(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf")).has_value());
}

TEST_F(PullTest, PullingAStoredFileAgainDownloadsNothingAndFindNeedsNoHub) {
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", pattern(10'000));
  ASSERT_TRUE(store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_).is_ok());
  auto again = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_);
  ASSERT_TRUE(again.is_ok()) << again.status().message();
  EXPECT_EQ(hub_.downloads(), 1);
  HubOptions offline = hub_opts_;
  offline.offline = true;
  auto found = store_.ensure(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), offline);
  ASSERT_TRUE(found.is_ok()) << found.status().message();
  EXPECT_EQ(found->path, again->path);
}

TEST_F(PullTest, ResumesWithARangeRequestAfterTheConnectionIsCutHalfway) {
  const std::string content = pattern(400'000, 3);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  hub_.cut_after(content.size() / 2);
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(read_all(m->path), content);
  const auto ranges = hub_.ranges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=" + std::to_string(content.size() / 2) + "-");
  EXPECT_EQ(hub_.body_bytes_sent(), content.size());  // nothing sent twice
}

TEST_F(PullTest, AnInterruptedPullResumesInTheNextRunFromThePartialFile) {
  const std::string content = pattern(200'000, 5);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  HubOptions one_try = hub_opts_;
  one_try.max_attempts = 1;
  hub_.cut_after(50'000);
  auto first = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), one_try);
  ASSERT_FALSE(first.is_ok());
  EXPECT_EQ(first.code(), core::StatusCode::kUpstreamFailed) << first.status().message();
  EXPECT_TRUE(store_.list().empty());
  auto second = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), one_try);
  ASSERT_TRUE(second.is_ok()) << second.status().message();
  EXPECT_EQ(read_all(second->path), content);
  EXPECT_EQ(hub_.ranges().back(), "bytes=50000-");
}

TEST_F(PullTest, AChecksumMismatchRejectsTheFileAndLeavesNothingHalfWritten) {
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", pattern(100'000), std::string(64, 'a'));
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.code(), core::StatusCode::kUpstreamFailed);
  EXPECT_NE(m.status().message().find("checksum mismatch"), std::string::npos) << m.status().message();
  EXPECT_TRUE(store_.list().empty());
  for (const auto& f : blob_files(store_)) EXPECT_NE(f.find(".lock"), std::string::npos) << "left behind: " << f;
  EXPECT_FALSE(store_.find(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf")).is_ok());
}

TEST_F(PullTest, AGatedRepositoryIsUnauthenticatedWithoutHfTokenAndPullsWithIt) {
  hub_.add("acme/gated-GGUF", "m-Q4_K_M.gguf", pattern(5'000));
  hub_.require_token("acme/gated-GGUF", "hf_secret");
  auto refused = store_.pull(ref("hf:acme/gated-GGUF/m-Q4_K_M.gguf"), hub_opts_);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.code(), core::StatusCode::kUnauthenticated);
  EXPECT_NE(refused.status().message().find("HF_TOKEN"), std::string::npos) << refused.status().message();
  HubOptions with_token = hub_opts_;
  with_token.token = "hf_secret";
  auto m = store_.pull(ref("hf:acme/gated-GGUF/m-Q4_K_M.gguf"), with_token);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto listing = store_.pull(ref("hf:acme/gated-GGUF:Q4_K_M"), with_token);  // the tree API too
  ASSERT_TRUE(listing.is_ok()) << listing.status().message();
}

TEST_F(PullTest, AMissingFileOrRepositoryIsNotFound) {
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", pattern(1'000));
  auto file = store_.pull(ref("hf:acme/tiny-GGUF/other.gguf"), hub_opts_);
  EXPECT_EQ(file.code(), core::StatusCode::kNotFound) << file.status().message();
  auto repo = store_.pull(ref("hf:acme/nothing-GGUF:Q4_K_M"), hub_opts_);
  EXPECT_EQ(repo.code(), core::StatusCode::kNotFound) << repo.status().message();
  auto quant = store_.pull(ref("hf:acme/tiny-GGUF:Q4_K_M"), hub_opts_);
  EXPECT_EQ(quant.code(), core::StatusCode::kNotFound);
  EXPECT_NE(quant.status().message().find("Q8_0"), std::string::npos) << "names what the repository has: " << quant.status().message();
}

TEST_F(PullTest, AQuantNamePicksThatFileFromTheRepositoryListing) {
  const std::string q4 = pattern(3'000, 1);
  hub_.add("acme/m-GGUF", "m-Q8_0.gguf", pattern(3'000, 2));
  hub_.add("acme/m-GGUF", "m-Q4_K_M.gguf", q4);
  hub_.add("acme/m-GGUF", "mmproj-m-f16.gguf", pattern(3'000, 4));
  auto m = store_.pull(ref("hf:acme/m-GGUF:q4_k_m"), hub_opts_);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(m->name, "hf:acme/m-GGUF/m-Q4_K_M.gguf");
  EXPECT_EQ(read_all(m->path), q4);
  auto found = store_.find(ref("hf:acme/m-GGUF:Q4_K_M"));  // offline, from the store
  ASSERT_TRUE(found.is_ok()) << found.status().message();
  EXPECT_EQ(found->path, m->path);
}

TEST_F(PullTest, ADiskFullStopsWithResourceExhaustedAndTheDownloadResumesOnceThereIsRoom) {
  const std::string content = pattern(256 * 1024, 9);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  // A file size limit stands in for a full disk: writes past it fail with EFBIG.
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  auto full = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(full.is_ok());
  EXPECT_EQ(full.code(), core::StatusCode::kResourceExhausted) << full.status().message();
  EXPECT_TRUE(store_.list().empty());
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  EXPECT_EQ(read_all(m->path), content);
  EXPECT_EQ(hub_.ranges().back(), "bytes=65536-");
}

TEST_F(PullTest, ConcurrentPullsOfOneFileDownloadItOnce) {
  const std::string content = pattern(500'000, 11);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  constexpr int kPulls = 4;
  // The first download is held halfway until every pull has asked the hub about the file,
  // so that all of them overlap it.
  hub_.hold_after(content.size() / 2, kPulls);
  std::vector<std::thread> threads;
  std::vector<core::Result<StoredModel>> results(kPulls, core::Status::internal("not run"));
  for (int i = 0; i < kPulls; ++i)
    threads.emplace_back([&, i] { results[i] = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), hub_opts_); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(read_all(r->path), content);
  }
  EXPECT_EQ(hub_.downloads(), 1);
  EXPECT_EQ(hub_.body_bytes_sent(), content.size());
}

TEST_F(PullTest, ProgressOfADownloadIsVisibleFromTheStoreWhileItRuns) {
  const std::string content = pattern(300'000, 13);
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", content);
  hub_.hold_after(100'000);
  std::thread puller([&] { EXPECT_TRUE(store_.pull(ref("hf:acme/tiny-GGUF:Q8_0"), hub_opts_).is_ok()); });
  hub_.wait_until_holding();
  std::optional<PullProgress> p;
  // The bytes reach the partial file as the puller reads them.
  while (!(p = store_.progress(ref("hf:acme/tiny-GGUF:Q8_0"))) || p->done < 100'000) std::this_thread::yield();
  EXPECT_EQ(p->file, "tiny-Q8_0.gguf");
  EXPECT_EQ(p->total, content.size());
  hub_.release();
  puller.join();
  EXPECT_FALSE(store_.progress(ref("hf:acme/tiny-GGUF:Q8_0")).has_value());
}

TEST_F(PullTest, OfflineModeNeverContactsTheHubAndSaysHowToPull) {
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", pattern(1'000));
  HubOptions offline = hub_opts_;
  offline.offline = true;
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), offline);
  ASSERT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("offline"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find("zeroserve pull"), std::string::npos) << m.status().message();
  EXPECT_TRUE(hub_.paths().empty());
}

TEST_F(PullTest, AHubThatCannotBeReachedIsUnavailable) {
  HubOptions nowhere = hub_opts_;
  nowhere.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), nowhere);
  EXPECT_EQ(m.code(), core::StatusCode::kUnavailable) << m.status().message();
  EXPECT_FALSE(check_reachable(nowhere.endpoint + "/", nowhere.http, std::chrono::seconds(5)).is_ok());
  EXPECT_TRUE(check_reachable(hub_.endpoint() + "/", hub_opts_.http, std::chrono::seconds(30)).is_ok());
}

TEST_F(PullTest, RemoveDeletesTheNameAndItsBlobButKeepsABlobAnotherNameStillUses) {
  const std::string content = pattern(2'000);
  hub_.add("acme/a-GGUF", "a-Q8_0.gguf", content);
  hub_.add("acme/b-GGUF", "b-Q8_0.gguf", content);  // the same bytes under another name
  auto a = store_.pull(ref("hf:acme/a-GGUF/a-Q8_0.gguf"), hub_opts_);
  auto b = store_.pull(ref("hf:acme/b-GGUF/b-Q8_0.gguf"), hub_opts_);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->path, b->path);
  EXPECT_EQ(hub_.downloads(), 1);  // content-addressed: stored once
  ASSERT_TRUE(store_.remove(ref("hf:acme/a-GGUF:Q8_0")).is_ok());
  EXPECT_TRUE(fs::exists(b->path));
  ASSERT_TRUE(store_.remove(ref("hf:acme/b-GGUF/b-Q8_0.gguf")).is_ok());
  EXPECT_FALSE(fs::exists(b->path));
  EXPECT_TRUE(store_.list().empty());
  EXPECT_EQ(store_.remove(ref("hf:acme/b-GGUF/b-Q8_0.gguf")).code(), core::StatusCode::kNotFound);
}

TEST_F(PullTest, HttpProxyFromTheOptionsCarriesThePlainHttpRequests) {
  hub_.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", pattern(4'000));
  HubOptions proxied = hub_opts_;
  proxied.endpoint = "http://hub.invalid";   // only the proxy can reach it...
  proxied.http.http_proxy = hub_.endpoint();  // ...and the fake hub answers absolute-form requests
  auto m = store_.pull(ref("hf:acme/tiny-GGUF/tiny-Q8_0.gguf"), proxied);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto paths = hub_.paths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths[0], "HEAD http://hub.invalid/acme/tiny-GGUF/resolve/main/tiny-Q8_0.gguf");
}

}  // namespace
}  // namespace zs::gateway::hub
