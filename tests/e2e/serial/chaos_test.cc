// Chaos: `zeroserve serve` with the real stories260K model under an open-loop load at twice its
// measured capacity, first calm, then with one worker killed (SIGKILL) every 15 s; then a few
// hundred hostile requests (bad numbers, bad JSON, wrong types, oversized bodies, loopback
// image URLs) while slow clients dribble headers; then serve itself is killed (SIGKILL).
// Every request is classified (complete, clean JSON error by code, error event ending a
// stream, cut stream, reset, hang, lost to a dead instance). The test fails on any cut
// stream, hang, reset, request lost to a dead instance, 5xx (or anything but a clean answer)
// for bad input, worker left running after serve died, or resident memory of serve that does
// not come back within 25% of its value before.
//
// Short form (CTest, serial: it saturates the machine): 15 s calm, 45 s with kills. The long
// form is bench/chaos.sh (the same test with ZS_CHAOS_CALM_S / ZS_CHAOS_KILL_S set), which
// also prints the latency of complete requests with kills against without.
#include <gtest/gtest.h>

#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/serve_fixture.h"
#include "gateway/http/http_client.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::Serve;
using zs::testing::wait_for;
using Clock = std::chrono::steady_clock;

double env_seconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

// What became of one request, from the client's side.
enum class Kind { kComplete, kCleanError, kStreamError, kCut, kReset, kHang, kLost };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kComplete: return "complete";
    case Kind::kCleanError: return "clean JSON error";
    case Kind::kStreamError: return "stream ended by an error event";
    case Kind::kCut: return "cut stream";
    case Kind::kReset: return "reset";
    case Kind::kHang: return "hang";
    case Kind::kLost: return "lost to a dead instance";
  }
  return "?";
}

struct Outcome {
  Kind kind = Kind::kComplete;
  int status = 0;
  double latency_s = 0;
  std::string detail;  // the error message, for the failure report
};

// An error message that says the request never reached a worker: it should have been retried.
bool never_reached(const std::string& message) {
  return message.find(": connecting") != std::string::npos ||
         message.find("sending the request") != std::string::npos ||
         message.find("the instance has exited") != std::string::npos;
}

Outcome classify_error_body(int status, const std::string& body) {
  Outcome o;
  o.status = status;
  const json err = json::parse(body, nullptr, false);
  if (!err.is_object() || !err.contains("error") || !err["error"].is_object() ||
      !err["error"].contains("message")) {
    o.kind = Kind::kCut;  // an answer that is not the JSON error it claims to be
    o.detail = body.substr(0, 200);
    return o;
  }
  o.detail = err["error"]["message"].get<std::string>();
  o.kind = never_reached(o.detail) ? Kind::kLost : Kind::kCleanError;
  return o;
}

// Sends one request and classifies what came back. Streams are read to their end.
Outcome send(const std::string& address, const std::string& target, const std::string& body, bool stream,
             std::chrono::seconds timeout) {
  const auto start = Clock::now();
  Outcome o;
  if (!stream) {
    auto r = gateway::http_request("POST", address, target, body, {}, timeout);
    o.latency_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (!r) {
      o.kind = r.status().code() == core::StatusCode::kDeadlineExceeded ? Kind::kHang : Kind::kReset;
      o.detail = r.status().message();
      return o;
    }
    if (r->status != 200) {
      Outcome e = classify_error_body(r->status, r->body);
      e.latency_s = o.latency_s;
      return e;
    }
    o.status = 200;
    const json ok = json::parse(r->body, nullptr, false);
    if (!ok.is_object() || !ok.contains("choices")) {
      o.kind = Kind::kCut;
      o.detail = r->body.substr(0, 200);
    }
    return o;
  }
  std::string received;
  auto r = gateway::http_stream("POST", address, target, body, {},
                                [&](std::string_view chunk) {
                                  received += chunk;
                                  return true;
                                },
                                timeout);
  o.latency_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (!r) {
    o.kind = r.status().code() == core::StatusCode::kDeadlineExceeded ? Kind::kHang : Kind::kReset;
    o.detail = r.status().message();
    return o;
  }
  if (r->status != 200) {
    Outcome e = classify_error_body(r->status, received);
    e.latency_s = o.latency_s;
    return e;
  }
  o.status = 200;
  // The last event decides: [DONE] is complete, an error event is a clean failure, anything
  // else is a cut a client would take for a complete answer.
  const size_t last = received.rfind("data: ");
  const std::string final_event = last == std::string::npos ? "" : received.substr(last);
  if (final_event.rfind("data: [DONE]", 0) == 0) {
    // An error event before [DONE] (a failure answered inside an opened stream) is clean too.
    const size_t err = received.find("data: {\"error\"");
    if (err != std::string::npos) {
      Outcome e = classify_error_body(502, received.substr(err + 6, received.find('\n', err) - err - 6));
      if (e.kind == Kind::kCleanError) e.kind = Kind::kStreamError;
      e.latency_s = o.latency_s;
      return e;
    }
    return o;
  }
  if (final_event.rfind("data: {\"error\"", 0) == 0) {
    Outcome e = classify_error_body(502, final_event.substr(6, final_event.find('\n') - 6));
    if (e.kind == Kind::kCleanError) e.kind = Kind::kStreamError;
    e.latency_s = o.latency_s;
    return e;
  }
  o.kind = Kind::kCut;
  o.detail = final_event.substr(0, 200);
  return o;
}

// Counts by kind (and by status for clean errors), latencies of complete requests, and the
// first few failures in full.
struct Tally {
  std::mutex mutex;
  std::map<Kind, int> kinds;
  std::map<int, int> error_statuses;
  std::vector<double> complete_latency_s;
  std::vector<std::string> failures;
  int sent = 0;

  void add(const Outcome& o, const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    ++sent;
    ++kinds[o.kind];
    if (o.kind == Kind::kComplete) complete_latency_s.push_back(o.latency_s);
    if (o.kind == Kind::kCleanError || o.kind == Kind::kStreamError) ++error_statuses[o.status];
    const bool bad = o.kind == Kind::kCut || o.kind == Kind::kReset || o.kind == Kind::kHang || o.kind == Kind::kLost;
    if (bad && failures.size() < 10)
      failures.push_back(std::string(kind_name(o.kind)) + " (" + std::to_string(o.status) + "): " + o.detail +
                         " <- " + what.substr(0, 200));
  }
  int count(Kind k) {
    std::lock_guard<std::mutex> lock(mutex);
    return kinds.count(k) ? kinds[k] : 0;
  }
  double percentile(double q) {
    std::lock_guard<std::mutex> lock(mutex);
    if (complete_latency_s.empty()) return 0;
    std::vector<double> v = complete_latency_s;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
  }
  void print(const char* phase) {
    std::printf("%s: %d requests sent\n", phase, sent);
    for (const auto& [k, n] : kinds) std::printf("  %-32s %d\n", kind_name(k), n);
    for (const auto& [status, n] : error_statuses) std::printf("    status %d: %d\n", status, n);
    for (const auto& f : failures) std::printf("  FAILURE %s\n", f.c_str());
  }
};

// The worker processes of serve (its children).
std::vector<pid_t> workers_of(pid_t serve) {
  std::vector<pid_t> out;
  DIR* dir = opendir(("/proc/" + std::to_string(serve) + "/task").c_str());
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in("/proc/" + std::to_string(serve) + "/task/" + e->d_name + "/children");
    for (pid_t pid; in >> pid;) out.push_back(pid);
  }
  closedir(dir);
  return out;
}

// A zeroserve worker still running as `pid` (not gone, not a zombie waiting to be reaped, not
// another program that got the pid since).
bool worker_running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z') return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  return cmdline.find(std::string("worker") + '\0') != std::string::npos;
}

double resident_bytes(const std::string& address) {
  auto m = gateway::http_request("GET", address, "/metrics");
  if (!m) return -1;
  const std::string series = "process_resident_memory_bytes ";
  const size_t at = m->body.find("\n" + series);
  return at == std::string::npos ? -1 : std::stod(m->body.substr(at + 1 + series.size()));
}

const char* kPrompts[] = {"Once upon a time", "Lily wanted to play with her friend Tom, but", "The cat sat",
                          "One day, a little bird", "Tim had a red ball"};

// One ordinary request of the soak: chat or completions, streamed or not, up to 200 tokens.
std::pair<std::string, std::string> soak_request(std::mt19937& rng, bool* stream) {
  *stream = rng() % 2 == 0;
  json b{{"model", "stories"}, {"max_tokens", 8 + static_cast<int>(rng() % 192)}, {"temperature", 0.8},
         {"seed", static_cast<int>(rng() % 1000000)}, {"stream", *stream}};
  const char* prompt = kPrompts[rng() % 5];
  if (rng() % 2 == 0) {
    b["prompt"] = prompt;
    return {"/v1/completions", b.dump()};
  }
  b["messages"] = json::array({{{"role", "user"}, {"content", prompt}}});
  return {"/v1/chat/completions", b.dump()};
}

// Open-loop load: the i-th request is sent at i/rate s, for `seconds`, by a pool of client
// threads far larger than what serve holds at once (its slots and queues), so that arrivals do
// not wait for answers; every `kill_every_s` (0: never) one worker of serve is killed.
void soak(const std::string& address, pid_t serve, double rate, double seconds, double kill_every_s, Tally& tally,
          std::set<pid_t>& seen_workers, int* kills) {
  constexpr int kClients = 256;
  const auto start = Clock::now();
  const auto at = [&](double s) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const int total = static_cast<int>(rate * seconds);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(c) * 7919u + static_cast<unsigned>(kill_every_s));
      for (int i; (i = next++) < total;) {
        std::this_thread::sleep_until(at(i / rate));
        bool stream = false;
        auto [target, body] = soak_request(rng, &stream);
        tally.add(send(address, target, body, stream, std::chrono::seconds(120)), body);
      }
    });
  // The killer (and the record of every worker seen, for the orphan check).
  std::mt19937 rng(20261202);
  double next_kill = kill_every_s / 3;
  for (auto now = Clock::now(); now < at(seconds); now = Clock::now()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::vector<pid_t> ws = workers_of(serve);
    seen_workers.insert(ws.begin(), ws.end());
    if (kill_every_s > 0 && Clock::now() >= at(next_kill)) {
      if (!ws.empty() && kill(ws[rng() % ws.size()], SIGKILL) == 0) ++*kills;
      next_kill += kill_every_s;
    }
  }
  for (auto& c : clients) c.join();
}

// Requests a client might get wrong, or an attacker might send on purpose.
std::vector<std::pair<std::string, std::string>> hostile_requests() {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string chat_head = R"({"model":"stories","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,)";
  const std::string completion_head = R"({"model":"stories","prompt":"Hi","max_tokens":2,)";
  const std::vector<std::string> fields = {"temperature", "top_p", "top_k", "min_p", "seed", "presence_penalty",
                                           "frequency_penalty", "repeat_penalty", "n", "logprobs", "top_logprobs",
                                           "max_tokens"};
  const std::vector<std::string> values = {"4.9e-324", "1e-46", "-1e-300", "1e308", "1e999", "-1e999",
                                           "99999999999999999999999", "-99999999999999999999999", "\"NaN\"",
                                           "\"Infinity\"", "\"x\"", "true", "[]", "{}", "-1", "2147483648"};
  for (const auto& f : fields)
    for (const auto& v : values) {
      out.push_back({"/v1/chat/completions", chat_head + "\"" + f + "\":" + v + "}"});
      if (f != "n" && f != "top_logprobs") out.push_back({"/v1/completions", completion_head + "\"" + f + "\":" + v + "}"});
    }
  // Not JSON, or not the JSON asked for.
  for (const std::string b :
       {"", "{", "[]", "\"text\"", "null", "{\"model\":", "{\"model\":\"stories\",\"messages\":[}", "NaN",
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":NaN}",
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":Infinity}",
        "{\"model\":\"stories\"}", "{\"model\":\"stories\",\"messages\":[]}", "{\"model\":\"stories\",\"messages\":7}",
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"wizard\",\"content\":\"Hi\"}]}",
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
        "{\"model\":\"stories\",\"messages\":[{\"role\":\"user\"}]}", "{\"model\":7,\"prompt\":\"Hi\"}",
        "{\"model\":\"nobody\",\"prompt\":\"Hi\"}", "{\"model\":\"stories\",\"prompt\":[1,2,\"x\",{}]}",
        "{\"model\":\"stories\",\"prompt\":\"\\ud800\"}", "{\"model\":\"stories\",\"prompt\":\"Hi\",\"stop\":7}",
        "{\"model\":\"stories\",\"prompt\":\"Hi\",\"response_format\":{\"type\":\"json_schema\"}}",
        "{\"model\":\"stories\",\"prompt\":\"Hi\",\"logit_bias\":{\"x\":1e999}}"}) {
    out.push_back({"/v1/chat/completions", b});
    out.push_back({"/v1/completions", b});
  }
  out.push_back({"/v1/completions", std::string("{\"model\":\"stories\",\"prompt\":\"\xff\xfe\xc0\"}")});
  out.push_back({"/v1/chat/completions", chat_head + "\"user\":" + std::string(10000, '[') + std::string(10000, ']') + "}"});
  // Images by URL: only loopback names, which the gateway refuses to fetch by default.
  for (const std::string url : {"http://127.0.0.1:1/cat.png", "http://localhost:1/cat.png", "https://[::1]:1/x.png"})
    out.push_back({"/v1/chat/completions",
                   json{{"model", "stories"},
                        {"messages", json::array({{{"role", "user"},
                                                   {"content", json::array({{{"type", "image_url"},
                                                                             {"image_url", {{"url", url}}}}})}}})}}
                       .dump()});
  return out;
}

// A client that sends its headers one byte at a time, slowly, until the server hangs up.
void slow_client(const std::string& address, std::atomic<bool>& stop) {
  const size_t colon = address.rfind(':');
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Slow: ";
    for (size_t i = 0; !stop; ++i) {
      const char c = i < head.size() ? head[i] : 'a';
      if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;  // the server hung up on it
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  close(fd);
}

TEST(Chaos, NoRequestIsCutLostOrHungWhenWorkersDieOrClientsMisbehaveAndMemoryComesBack) {
  const double calm_s = env_seconds("ZS_CHAOS_CALM_S", 15);
  const double kill_s = env_seconds("ZS_CHAOS_KILL_S", 45);
  Serve s("deployments:\n  - name: stories\n    model: " + zs::testing::golden_model("stories260K.gguf") +
          "\n    max_instances: 2\n    slots: 4\n    ctx: 512\n    threads: 1\n    max_queue: 64\n"
          "    request_timeout: 90s\n");
  ASSERT_FALSE(s.address().empty());
  const pid_t serve = s.process().pid();

  // Capacity: requests per second that 8 clients, one request after another, get answered.
  std::set<pid_t> seen_workers;
  Tally warm;
  {
    std::atomic<int> done{0};
    std::vector<std::thread> clients;
    const auto start = Clock::now();
    const auto until = start + std::chrono::seconds(8);
    for (int c = 0; c < 8; ++c)
      clients.emplace_back([&, c] {
        std::mt19937 rng(c);
        while (Clock::now() < until) {
          bool stream = false;
          auto [target, body] = soak_request(rng, &stream);
          Outcome o = send(s.address(), target, body, stream, std::chrono::seconds(120));
          if (o.kind == Kind::kComplete) ++done;
          warm.add(o, body);
        }
      });
    for (auto& t : clients) t.join();
    for (pid_t w : workers_of(serve)) seen_workers.insert(w);
    ASSERT_GT(done.load(), 0);
  }
  const double capacity = warm.count(Kind::kComplete) / 8.0;
  const double rate = 2 * capacity;
  std::printf("capacity %.1f requests/s (8 closed-loop clients); soak at %.1f requests/s\n", capacity, rate);
  EXPECT_EQ(warm.count(Kind::kComplete), warm.sent) << "the warm-up alone failed requests";
  const double rss_before = resident_bytes(s.address());
  ASSERT_GT(rss_before, 0);

  Tally calm, killed;
  int kills = 0;
  soak(s.address(), serve, rate, calm_s, 0, calm, seen_workers, &kills);
  soak(s.address(), serve, rate, kill_s, 15, killed, seen_workers, &kills);

  // Hostile requests, four at a time, while slow clients hold connections open.
  Tally hostile;
  std::atomic<bool> stop_slow{false};
  std::vector<std::thread> slow;
  for (int i = 0; i < 20; ++i) slow.emplace_back([&] { slow_client(s.address(), stop_slow); });
  const auto requests = hostile_requests();
  std::map<int, int> hostile_5xx;
  std::mutex hostile_mutex;
  {
    std::atomic<size_t> next{0};
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
      senders.emplace_back([&] {
        for (size_t i; (i = next++) < requests.size();) {
          Outcome o = send(s.address(), requests[i].first, requests[i].second, false, std::chrono::seconds(60));
          hostile.add(o, requests[i].second);
          std::lock_guard<std::mutex> lock(hostile_mutex);
          if (o.status >= 500 && ++hostile_5xx[o.status] <= 3)
            ADD_FAILURE() << o.status << " for bad input " << requests[i].second.substr(0, 200) << ": " << o.detail;
        }
      });
    for (auto& t : senders) t.join();
  }
  // Bodies over the limit (64 MiB): refused, never forwarded.
  Tally oversized;
  for (int i = 0; i < 3; ++i) {
    json b{{"model", "stories"}, {"prompt", "Hi"}, {"max_tokens", 2}, {"user", std::string(65u << 20, 'u')}};
    Outcome o = send(s.address(), "/v1/completions", b.dump(), false, std::chrono::seconds(60));
    oversized.add(o, "a 65 MiB body");
    EXPECT_EQ(o.status, 413) << o.detail;
  }
  // Ordinary requests are still served beside the slow clients.
  Tally beside_slow;
  for (int i = 0; i < 10; ++i) {
    std::mt19937 rng(i);
    bool stream = false;
    auto [target, body] = soak_request(rng, &stream);
    beside_slow.add(send(s.address(), target, body, stream, std::chrono::seconds(120)), body);
  }
  stop_slow = true;
  for (auto& t : slow) t.join();

  // Memory comes back: resident memory of serve within 25% of its value before the soak.
  double rss_after = resident_bytes(s.address());
  const bool rss_back =
      wait_for([&] { return (rss_after = resident_bytes(s.address())) <= 1.25 * rss_before; }, std::chrono::seconds(60));

  std::printf("\n== chaos: %.0f s calm, %.0f s with a worker killed every 15 s (%d kills) ==\n", calm_s, kill_s, kills);
  calm.print("calm soak");
  killed.print("soak with kills");
  hostile.print("hostile requests");
  oversized.print("oversized bodies");
  beside_slow.print("requests beside 20 slow clients");
  const double p50_calm = calm.percentile(0.5), p99_calm = calm.percentile(0.99);
  const double p50_kill = killed.percentile(0.5), p99_kill = killed.percentile(0.99);
  std::printf("complete requests: p50 %.3f s / p99 %.3f s calm, p50 %.3f s / p99 %.3f s with kills "
              "(ratio p50 %.2f, p99 %.2f)\n",
              p50_calm, p99_calm, p50_kill, p99_kill, p50_calm > 0 ? p50_kill / p50_calm : 0,
              p99_calm > 0 ? p99_kill / p99_calm : 0);
  std::printf("serve resident memory: %.1f MB before, %.1f MB after\n", rss_before / 1e6, rss_after / 1e6);
  // The headline numbers, over every phase (bench/README.md: RESULT lines).
  int sent = 0;
  std::map<Kind, int> all;
  for (Tally* t : {&calm, &killed, &hostile, &oversized, &beside_slow}) {
    sent += t->sent;
    for (const auto& [k, n] : t->kinds) all[k] += n;
  }
  std::printf("RESULT chaos requests sent=%d complete=%d clean_error=%d stream_error_event=%d cut=%d reset=%d "
              "hang=%d lost=%d kills=%d\n",
              sent, all[Kind::kComplete], all[Kind::kCleanError], all[Kind::kStreamError], all[Kind::kCut],
              all[Kind::kReset], all[Kind::kHang], all[Kind::kLost], kills);
  std::printf("RESULT chaos latency_with_kills_over_calm p50=%.2f p99=%.2f\n", p50_calm > 0 ? p50_kill / p50_calm : 0,
              p99_calm > 0 ? p99_kill / p99_calm : 0);
  std::printf("RESULT chaos serve_rss_mb before=%.1f after=%.1f\n", rss_before / 1e6, rss_after / 1e6);

  for (Tally* t : {&calm, &killed, &hostile, &oversized, &beside_slow}) {
    EXPECT_EQ(t->count(Kind::kCut), 0);
    EXPECT_EQ(t->count(Kind::kHang), 0);
    EXPECT_EQ(t->count(Kind::kLost), 0);
    EXPECT_EQ(t->count(Kind::kReset), 0);
  }
  EXPECT_EQ(hostile.count(Kind::kComplete) + hostile.count(Kind::kCleanError), hostile.sent);
  EXPECT_TRUE(hostile_5xx.empty());
  EXPECT_EQ(beside_slow.count(Kind::kComplete), beside_slow.sent);
  EXPECT_GT(calm.count(Kind::kComplete), 0);
  EXPECT_GT(killed.count(Kind::kComplete), 0);
  EXPECT_GE(kills, static_cast<int>(kill_s / 15));
  EXPECT_TRUE(rss_back) << "serve's resident memory " << rss_before / 1e6 << " MB before, " << rss_after / 1e6
                        << " MB after";

  // serve killed outright: its workers die with it (parent-death signal), none is orphaned.
  for (pid_t w : workers_of(serve)) seen_workers.insert(w);
  ASSERT_FALSE(seen_workers.empty());
  s.process().signal(SIGKILL);
  ASSERT_TRUE(s.process().wait_exit(std::chrono::seconds(30)));
  EXPECT_TRUE(wait_for([&] {
    return std::none_of(seen_workers.begin(), seen_workers.end(), [](pid_t p) { return worker_running(p); });
  }, std::chrono::seconds(30))) << "a worker outlived serve";
}

}  // namespace
}  // namespace zs
