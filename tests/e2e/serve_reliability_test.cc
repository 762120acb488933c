// End-to-end reliability of `zeroserve serve`: client mistakes are 4xx naming the field whatever
// the value, and a stream whose worker dies ends with an error event and counts as failed.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>
#include <sys/types.h>

#include <atomic>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>
#include <sstream>
#include <string>

#include "gateway/http/http_client.h"
#include "test_util/subprocess.h"
#include "test_util/temp_dir.h"
#include "serve_fixture.h"

namespace zs {
namespace {

using zs::testing::metric_in;

using nlohmann::json;
using zs::testing::Serve;
using zs::testing::chat;
using zs::testing::stories_deployment;
using zs::testing::wait_for;

TEST(ServeReliability, OutOfRangeSamplingNumbersAre400NamingTheField) {
  Serve s("deployments:\n" + stories_deployment("story"));
  const std::string head = R"({"model":"story","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"top_p", "4.9e-324"},          {"top_p", "1e-46"},         {"top_p", "0"},
      {"top_p", "-1"},                {"top_p", "1e308"},         {"top_p", "1e999"},
      {"repeat_penalty", "4.9e-324"}, {"repeat_penalty", "1e-46"}, {"repeat_penalty", "-1e999"},
      {"temperature", "1e308"},       {"temperature", "-1e-300"}, {"min_p", "1e999"},
      {"top_k", "99999999999999999999999"}, {"seed", "99999999999999999999999"},
      {"max_tokens", "1e308"},        {"presence_penalty", "\"NaN\""}, {"frequency_penalty", "-1e308"},
  };
  for (const auto& [field, value] : cases) {
    std::string body = head + "\"" + field + "\":" + value + "}";
    if (field == "max_tokens") body = R"({"model":"story","messages":[{"role":"user","content":"Hi"}],"max_tokens":)" + value + "}";
    auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", body);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->status, 400) << field << "=" << value << ": " << r->body;
    const json err = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(err.contains("error")) << r->body;
    EXPECT_EQ(err["error"]["param"], field) << r->body;
    EXPECT_EQ(err["error"]["type"], "invalid_request_error") << r->body;
  }
  auto m = gateway::http_request("GET", s.address(), "/metrics");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->body.find(R"(status="503")"), std::string::npos) << m->body;
  EXPECT_EQ(m->body.find(R"(status="502")"), std::string::npos) << m->body;
}

TEST(ServeReliability, AStreamWhoseWorkerIsKilledEndsWithAnErrorEventAndCountsAsFailed) {
  Serve s("deployments:\n" + stories_deployment("story", "    max_instances: 1\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  const std::vector<pid_t> pids = s.worker_pids();
  ASSERT_EQ(pids.size(), 1u);
  json body = chat("story", 512, true);
  body["temperature"] = 0.8;
  body["seed"] = 791014571;
  std::string received;
  bool killed = false;
  auto r = gateway::http_stream("POST", s.address(), "/v1/chat/completions", body.dump(), {},
                                [&](std::string_view chunk) {
                                  received += chunk;
                                  if (!killed) {  // the role chunk comes before any token is sampled
                                    killed = true;
                                    kill(pids[0], SIGKILL);
                                  }
                                  return true;
                                },
                                std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);  // the stream had opened before the worker died
  if (received.find("data: [DONE]") != std::string::npos && received.find("\"error\"") == std::string::npos)
    GTEST_SKIP() << "the worker finished all 512 tokens before the kill landed";
  // The last event is an error naming the cause; no [DONE] after it.
  const size_t last = received.rfind("data: ");
  ASSERT_NE(last, std::string::npos) << received;
  const std::string final_event = received.substr(last);
  EXPECT_NE(final_event.find("\"error\""), std::string::npos) << final_event;
  EXPECT_NE(final_event.find("failed in the middle of the stream"), std::string::npos) << final_event;
  EXPECT_EQ(received.find("data: [DONE]"), std::string::npos) << received;

  // The gateway counts the stream once it has closed it, which the client may see first.
  std::string metrics;
  wait_for([&] {
    auto m = gateway::http_request("GET", s.address(), "/metrics");
    metrics = m.is_ok() ? m->body : "";
    return metric_in(metrics, R"(zs_gateway_requests_total{deployment="story",status="502"})") >= 0;
  }, std::chrono::seconds(10));
  EXPECT_EQ(metric_in(metrics, R"(zs_gateway_requests_total{deployment="story",status="502"})"), 1) << metrics;
  EXPECT_EQ(metric_in(metrics, R"(zs_gateway_requests_total{deployment="story",status="200"})"), 1) << metrics;
}

TEST(ServeReliability, ABodyTheGatewayAcceptsIsNeverRefusedByTheWorker) {
  // Workers on their own default to 32 MiB; serve passes them its 64 MiB.
  Serve s("deployments:\n" + stories_deployment("story"));
  json body = chat("story", 2);
  body["user"] = std::string(40u << 20, 'u');  // accepted and ignored, so only the size matters
  auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", body.dump(), {}, std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 300);
  body["user"] = std::string(65u << 20, 'u');
  auto big = gateway::http_request("POST", s.address(), "/v1/chat/completions", body.dump(), {}, std::chrono::seconds(60));
  ASSERT_TRUE(big.is_ok()) << big.status().message();
  EXPECT_EQ(big->status, 413) << big->body.substr(0, 300);
}

TEST(ServeReliability, TheBodyLimitIsConfiguredOnceForGatewayAndWorkers) {
  Serve s("gateway:\n  max_body_bytes: 30MiB\n  max_image_bytes: 1MiB\ndeployments:\n" + stories_deployment("story"));
  json body = chat("story", 2);
  body["user"] = std::string(29u << 20, 'u');
  auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", body.dump(), {}, std::chrono::seconds(60));
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->status, 200) << r->body.substr(0, 300);
  body["user"] = std::string(31u << 20, 'u');
  auto big = gateway::http_request("POST", s.address(), "/v1/chat/completions", body.dump(), {}, std::chrono::seconds(60));
  ASSERT_TRUE(big.is_ok()) << big.status().message();
  EXPECT_EQ(big->status, 413) << big->body.substr(0, 300);
  // The worker was started with the same limit.
  EXPECT_NE(zs::testing::run_command("ps -o args= --ppid " + std::to_string(s.process().pid())).out.find(
                "--max-body-bytes " + std::to_string(30u << 20)),
            std::string::npos);
}

TEST(ServeReliability, ServeAndEachWorkerReportTheirResidentMemory) {
  Serve s("deployments:\n" + stories_deployment("story"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  auto m = gateway::http_request("GET", s.address(), "/metrics");
  ASSERT_TRUE(m.is_ok());
  EXPECT_GT(metric_in(m->body, "process_resident_memory_bytes"), 0) << m->body;
  // The worker's own /metrics, on the unix socket the fleet logged.
  const std::string sock = zs::testing::run_command("ps -o args= --ppid " + std::to_string(s.process().pid())).out;
  const size_t at = sock.find("--listen ");
  ASSERT_NE(at, std::string::npos) << sock;
  const std::string address = sock.substr(at + 9, sock.find(' ', at + 9) - at - 9);
  auto w = gateway::http_request("GET", address, "/metrics");
  ASSERT_TRUE(w.is_ok()) << address << ": " << w.status().message();
  EXPECT_GT(metric_in(w->body, "process_resident_memory_bytes"), 0) << w->body;
}

TEST(ServeReliability, AfterSigtermNewRequestsGet503WithRetryAfterAndAcceptedOnesAreAnswered) {
  // A model slow enough (random smollm2-135m weights) that a long request is still running.
  zs::testing::TempDir models;
  const std::string model = models.file("m.gguf");
  ASSERT_EQ(zs::testing::run_command(std::string(ZS_BINARY) + " gen-model --preset smollm2-135m --type q8_0 --out " + model).exit_code, 0);
  Serve s("deployments:\n  - name: story\n    model: " + model +
          "\n    min_instances: 1\n    max_instances: 1\n    slots: 1\n    ctx: 1024\n    threads: 1\n");
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  // One request runs (the only slot), one waits for the slot behind it.
  std::promise<void> first_token;
  std::atomic<bool> seen{false};
  std::string running_body;
  auto running = std::async(std::launch::async, [&] {
    return gateway::http_stream("POST", s.address(), "/v1/chat/completions", chat("story", 1000, true).dump(), {},
                                [&](std::string_view chunk) {
                                  running_body += chunk;
                                  if (!seen.exchange(true)) first_token.set_value();
                                  return true;
                                },
                                std::chrono::seconds(120));
  });
  first_token.get_future().wait();
  auto queued = std::async(std::launch::async, [&] {
    return gateway::http_request("POST", s.address(), "/v1/chat/completions", chat("story", 4).dump(), {},
                                 std::chrono::seconds(120));
  });
  ASSERT_TRUE(wait_for([&] {
    auto r = gateway::http_request("GET", s.address(), "/admin/deployments");
    return r.is_ok() && r->body.find("\"queued\":1") != std::string::npos;
  }, std::chrono::seconds(20)));
  s.process().signal(SIGTERM);
  // While the running request drains, the listener stays open and answers new requests 503.
  ASSERT_TRUE(wait_for([&] {
    auto h = gateway::http_request("GET", s.address(), "/health");
    return h.is_ok() && h->status == 503;
  }, std::chrono::seconds(20)));
  auto late = gateway::http_request("POST", s.address(), "/v1/chat/completions", chat("story", 2).dump());
  ASSERT_TRUE(late.is_ok()) << late.status().message();
  EXPECT_EQ(late->status, 503) << late->body;
  EXPECT_FALSE(late->header("Retry-After").empty());
  EXPECT_EQ(json::parse(late->body)["error"]["type"], "service_unavailable");

  auto r = running.get();
  ASSERT_TRUE(r.is_ok()) << r.status().message();  // accepted: answered in full, not reset
  EXPECT_NE(running_body.find("data: [DONE]"), std::string::npos);
  auto q = queued.get();
  ASSERT_TRUE(q.is_ok()) << q.status().message();
  if (q->status != 200) {  // it never got the slot: a clean refusal, never a reset
    EXPECT_EQ(q->status, 503) << q->body;
    EXPECT_FALSE(q->header("Retry-After").empty());
  }
  EXPECT_EQ(s.process().wait_exit(std::chrono::seconds(60)), 0);
}

// The unix socket address the daemon's (only) worker listens on.
std::string worker_address(Serve& s) {
  const std::string args = zs::testing::run_command("ps -o args= --ppid " + std::to_string(s.process().pid())).out;
  const size_t at = args.find("--listen ");
  if (at == std::string::npos) return "";
  return args.substr(at + 9, args.find(' ', at + 9) - at - 9);
}

TEST(ServeReliability, ARequestWhoseInstanceCannotBeReachedWaitsForAnotherInsteadOfFailing) {
  Serve s("deployments:\n" + stories_deployment("story", "    min_instances: 1\n    max_instances: 1\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  // The instance is alive but its socket is gone: connecting is refused, as with a worker that just died.
  const std::string address = worker_address(s);
  ASSERT_EQ(address.rfind("unix:", 0), 0u) << address;
  ASSERT_EQ(::unlink(address.substr(5).c_str()), 0);
  auto r = s.post(chat("story", 2));
  EXPECT_EQ(r.status, 200) << r.body;
  // A worker killed just before a request is sent (its socket refuses connections, the fleet may
  // not have seen the exit yet): the request waits for its replacement.
  ASSERT_TRUE(wait_for([&] { return s.worker_pids().size() == 1 && !worker_address(s).empty(); },
                       std::chrono::seconds(30)));
  const std::vector<pid_t> pids = s.worker_pids();
  const std::string second = worker_address(s);
  ASSERT_EQ(kill(pids[0], SIGKILL), 0);
  ASSERT_TRUE(wait_for([&] { return !gateway::HttpClient::connect(second, std::chrono::seconds(1)).is_ok(); },
                       std::chrono::seconds(10)));
  auto after_kill = s.post(chat("story", 2));
  EXPECT_EQ(after_kill.status, 200) << after_kill.body;
  auto m = gateway::http_request("GET", s.address(), "/metrics");
  ASSERT_TRUE(m.is_ok());
  EXPECT_EQ(m->body.find(R"(status="502")"), std::string::npos) << m->body;
}

TEST(ServeReliability, AWorkerThatHangsIsReplacedWhileOtherDeploymentsKeepServing) {
  Serve s("deployments:\n" + stories_deployment("a", "    min_instances: 1\n") +
          stories_deployment("b", "    min_instances: 1\n"));
  ASSERT_TRUE(wait_for([&] { return s.state_of("a") == "ready" && s.state_of("b") == "ready"; }, std::chrono::seconds(30)));
  const pid_t hung = s.worker_of("b");
  ASSERT_GT(hung, 0);
  // Stopped, its socket still accepts connections but nothing answers: its health probe hangs
  // until the probe's timeout.
  ASSERT_EQ(kill(hung, SIGSTOP), 0);
  auto crashes = [&] {
    auto r = gateway::http_request("GET", s.address(), "/admin/deployments");
    if (!r.is_ok()) return -1;
    const json all = json::parse(r->body);
    for (const auto& d : all["deployments"])
      if (d["name"] == "b") return d["crashes"].get<int>();
    return -1;
  };
  int served = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (crashes() < 1 && std::chrono::steady_clock::now() < deadline) {
    auto r = s.post(chat("a", 2));
    ASSERT_EQ(r.status, 200) << r.body;
    ++served;
  }
  kill(hung, SIGCONT);
  EXPECT_EQ(crashes(), 1) << "the hanging worker fails its health check and is replaced";
  EXPECT_GT(served, 0);
  // Its replacement serves.
  auto r = s.post(chat("b", 2));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(s.worker_of("b"), hung);
}

}  // namespace
}  // namespace zs

namespace zs {
namespace {

double resident_bytes(Serve& s) {
  auto m = gateway::http_request("GET", s.address(), "/metrics");
  return m.is_ok() ? metric_in(m->body, "process_resident_memory_bytes") : -1;
}

TEST(ServeReliability, ResidentMemoryComesBackWithinAQuarterAfterSixBodiesOf50Mb) {
  Serve s("deployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  const double before = resident_bytes(s);
  ASSERT_GT(before, 0);
  json body = chat("story", 2);
  body["user"] = std::string(50u << 20, 'u');  // accepted and ignored: only the size matters
  const std::string text = body.dump();
  for (int i = 0; i < 6; ++i) {
    auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", text, {}, std::chrono::seconds(60));
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    EXPECT_EQ(r->status, 200) << r->body.substr(0, 300);
  }
  double after = resident_bytes(s);
  EXPECT_TRUE(wait_for([&] { return (after = resident_bytes(s)) <= before * 1.25; }, std::chrono::seconds(20)))
      << "resident memory " << before / 1e6 << " MB before, " << after / 1e6 << " MB after";
  std::printf("serve resident memory: %.1f MB before six 50 MB bodies, %.1f MB after\n", before / 1e6, after / 1e6);
}

}  // namespace
}  // namespace zs
