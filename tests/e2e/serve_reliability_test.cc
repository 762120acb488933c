// End-to-end reliability of `zeroserve serve`: client mistakes are 4xx naming the field whatever
// the value, and a stream whose worker dies ends with an error event and counts as failed.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "gateway/http/http_client.h"
#include "test_util/subprocess.h"
#include "serve_fixture.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::Serve;
using zs::testing::chat;
using zs::testing::stories_deployment;

// The pids of the daemon's worker processes (its children).
std::vector<pid_t> worker_pids(Serve& s) {
  std::vector<pid_t> pids;
  std::istringstream out(zs::testing::run_command("pgrep -P " + std::to_string(s.process().pid())).out);
  for (pid_t pid; out >> pid;) pids.push_back(pid);
  return pids;
}

// The value of one Prometheus sample line starting with `series`, or -1 when absent.
double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

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

}  // namespace
}  // namespace zs
