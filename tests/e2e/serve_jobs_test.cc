// Platform II end to end: request classes, batch jobs across restarts, quotas and scaling
// decisions, against a real `zeroserve serve` with real worker processes.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "serve_fixture.h"
#include "test_util/subprocess.h"

namespace zs {
namespace {

using nlohmann::json;
using zs::testing::chat;
using zs::testing::Serve;
using zs::testing::stories_deployment;
using zs::testing::wait_for;
using namespace std::chrono_literals;

gateway::HttpResponse call(const std::string& method, const std::string& address, const std::string& target,
                           const std::string& body = "", gateway::HttpHeaders headers = {}) {
  auto r = gateway::http_request(method, address, target, body, headers, std::chrono::seconds(60));
  EXPECT_TRUE(r.is_ok()) << method << " " << target << ": " << r.status().message();
  return r.is_ok() ? r.value() : gateway::HttpResponse{};
}

// The value of a Prometheus sample whose line starts with `series`, or -1.
double metric(const std::string& address, const std::string& series) {
  auto r = gateway::http_request("GET", address, "/metrics");
  return r.is_ok() ? zs::testing::metric_in(r->body, series) : -1;
}

std::string multipart_upload(const std::string& content, std::string* content_type) {
  const std::string boundary = "zs-test-boundary-7MA4YWxkTrZu0gW";
  *content_type = "multipart/form-data; boundary=" + boundary;
  return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"jobs.jsonl\"\r\n"
         "Content-Type: application/jsonl\r\n\r\n" +
         content + "\r\n--" + boundary + "--\r\n";
}

std::string batch_input(const std::string& model, int n, int max_tokens, int first = 0) {
  std::string out;
  for (int i = first; i < first + n; ++i) {
    json body = chat(model, max_tokens);
    body["messages"][0]["content"] = "Once upon a time " + std::to_string(i);
    out += json{{"custom_id", "item-" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"},
                {"body", body}}
               .dump() +
           "\n";
  }
  return out;
}

// Uploads a raw JSONL body and creates a chat batch over it; the batch id, or "" (with a
// test failure) when either step is refused.
std::string submit_batch(const std::string& address, const std::string& jsonl) {
  auto up = call("POST", address, "/v1/files?purpose=batch", jsonl, {{"Content-Type", "application/jsonl"}});
  EXPECT_EQ(up.status, 200) << up.body;
  if (up.status != 200) return "";
  auto created = call("POST", address, "/v1/batches",
                      json{{"input_file_id", json::parse(up.body)["id"]}, {"endpoint", "/v1/chat/completions"}}.dump());
  EXPECT_EQ(created.status, 200) << created.body;
  return created.status == 200 ? json::parse(created.body)["id"].get<std::string>() : "";
}

json get_batch(const std::string& address, const std::string& id) {
  auto r = gateway::http_request("GET", address, "/v1/batches/" + id);
  return r.is_ok() && r->status == 200 ? json::parse(r->body) : json();
}

int64_t done_items(const json& b) {
  if (!b.contains("request_counts")) return -1;
  return b["request_counts"]["completed"].get<int64_t>() + b["request_counts"]["failed"].get<int64_t>();
}

TEST(ServeJobs, BatchJobOf200ItemsCompletesExactlyOnceAcrossRestarts) {
  const std::string yaml = "gateway:\n  batch_concurrency: 4\ndeployments:\n" +
                           stories_deployment("story", "    min_instances: 1\n    max_instances: 1\n");
  Serve s(yaml);
  ASSERT_FALSE(s.address().empty());
  std::string type;
  const std::string upload = multipart_upload(batch_input("story", 200, 100), &type);
  auto up = call("POST", s.address(), "/v1/files", upload, {{"Content-Type", type}});
  ASSERT_EQ(up.status, 200) << up.body;
  const std::string file_id = json::parse(up.body)["id"];
  EXPECT_EQ(json::parse(up.body)["purpose"], "batch");
  auto created = call("POST", s.address(), "/v1/batches",
                      json{{"input_file_id", file_id}, {"endpoint", "/v1/chat/completions"}, {"completion_window", "24h"},
                           {"metadata", {{"team", "e2e"}}}}
                          .dump());
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = json::parse(created.body)["id"];
  EXPECT_EQ(json::parse(created.body)["request_counts"]["total"], 200);

  // Interactive requests keep being served while the job fills every slot.
  const auto solo = json::parse(s.post(chat("story", 16)).body)["choices"][0]["message"]["content"];
  ASSERT_TRUE(wait_for([&] { return done_items(get_batch(s.address(), id)) >= 10; }, 60s));
  for (int i = 0; i < 3; ++i) {
    auto r = s.post(chat("story", 16));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["choices"][0]["message"]["content"], solo);
  }

  // A clean restart in the middle: items in flight finish first, so none runs twice.
  ASSERT_TRUE(wait_for([&] { return done_items(get_batch(s.address(), id)) >= 40; }, 60s));
  ASSERT_EQ(s.stop(), 0);
  s.start();
  ASSERT_FALSE(s.address().empty());
  json b = get_batch(s.address(), id);
  ASSERT_EQ(b["status"], "in_progress") << b.dump();
  const int64_t at_restart = done_items(b);
  EXPECT_GE(at_restart, 40);
  EXPECT_LT(at_restart, 200);  // the test needs the job to span the restart
  EXPECT_EQ(b["zeroserve"]["attempts"], at_restart);

  // A crash (SIGKILL) in the middle: items in flight run again, results still once.
  ASSERT_TRUE(wait_for([&] { return done_items(get_batch(s.address(), id)) >= at_restart + 20; }, 60s));
  s.process().signal(SIGKILL);
  s.process().wait_exit(10s);
  s.start();
  ASSERT_FALSE(s.address().empty());

  ASSERT_TRUE(wait_for([&] { return get_batch(s.address(), id).value("status", "") == "completed"; }, 120s))
      << get_batch(s.address(), id).dump();
  b = get_batch(s.address(), id);
  EXPECT_EQ(b["request_counts"]["completed"], 200);
  EXPECT_EQ(b["request_counts"]["failed"], 0);
  EXPECT_EQ(b["metadata"]["team"], "e2e");
  EXPECT_TRUE(b["error_file_id"].is_null());
  EXPECT_GE(b["zeroserve"]["attempts"].get<int64_t>(), 200);
  auto out = call("GET", s.address(), "/v1/files/" + b["output_file_id"].get<std::string>() + "/content");
  ASSERT_EQ(out.status, 200);
  std::istringstream lines(out.body);
  std::set<std::string> ids;
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    ++n;
    json item = json::parse(line);
    ids.insert(item["custom_id"].get<std::string>());
    EXPECT_EQ(item["response"]["status_code"], 200) << line;
    EXPECT_EQ(item["response"]["body"]["usage"]["completion_tokens"].get<int>() > 0, true) << line;
  }
  EXPECT_EQ(n, 200);
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_GT(metric(s.address(), "zs_batch_items_total{outcome=\"completed\"}"), 0);
}

TEST(ServeJobs, ABatchItemMayAskForAJsonSchemaOrAToolCall) {
  // ctx 1024: the tool's description in the prompt takes most of 512.
  Serve s("deployments:\n  - name: story\n    model: " + zs::testing::golden_model("stories260K.gguf") +
          "\n    slots: 2\n    ctx: 1024\n    threads: 1\n    min_instances: 1\n");
  const json schema = {{"type", "object"},
                       {"properties", {{"city", {{"type", "string"}, {"maxLength", 8}}}, {"ok", {{"type", "boolean"}}}}},
                       {"required", {"city", "ok"}},
                       {"additionalProperties", false}};
  const json ask = json::array({{{"role", "user"}, {"content", "Where is the cat?"}}});
  const json items[] = {
      {{"custom_id", "schema"},
       {"method", "POST"},
       {"url", "/v1/chat/completions"},
       {"body",
        {{"model", "story"}, {"messages", ask}, {"max_tokens", 200}, {"seed", 3},
         {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "place"}, {"schema", schema}, {"strict", true}}}}}}}},
      {{"custom_id", "tool"},
       {"method", "POST"},
       {"url", "/v1/chat/completions"},
       {"body",
        {{"model", "story"}, {"messages", ask}, {"max_tokens", 200}, {"seed", 4},
         {"tools", json::array({{{"type", "function"}, {"function", {{"name", "find"}, {"parameters", schema}}}}})},
         {"tool_choice", {{"type", "function"}, {"function", {{"name", "find"}}}}}}}}};
  const std::string id = submit_batch(s.address(), items[0].dump() + "\n" + items[1].dump() + "\n");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for([&] { return get_batch(s.address(), id).value("status", "") == "completed"; }, 120s))
      << get_batch(s.address(), id).dump();
  const json b = get_batch(s.address(), id);
  EXPECT_EQ(b["request_counts"]["completed"], 2) << b.dump();
  auto out = call("GET", s.address(), "/v1/files/" + b["output_file_id"].get<std::string>() + "/content");
  ASSERT_EQ(out.status, 200);
  auto valid = [](const json& v) {
    return v.is_object() && v.size() == 2 && v["city"].is_string() && v["city"].get<std::string>().size() <= 8 * 4 &&
           v["ok"].is_boolean();
  };
  std::istringstream lines(out.body);
  int seen = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const json item = json::parse(line);
    const json& choice = item["response"]["body"]["choices"][0];
    if (item["custom_id"] == "schema") {
      EXPECT_EQ(choice["finish_reason"], "stop") << line;
      EXPECT_TRUE(valid(json::parse(choice["message"]["content"].get<std::string>(), nullptr, false))) << line;
    } else {
      EXPECT_EQ(choice["finish_reason"], "tool_calls") << line;
      ASSERT_TRUE(choice["message"]["tool_calls"].is_array()) << line;
      EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["name"], "find") << line;
      EXPECT_TRUE(valid(json::parse(choice["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>(),
                                    nullptr, false)))
          << line;
    }
    ++seen;
  }
  EXPECT_EQ(seen, 2);
}

TEST(ServeJobs, BatchJobWaitsForCapacityAndSurvivesARestartWhileWaiting) {
  Serve s("deployments:\n" + stories_deployment("story", "    keep_alive: 60s\n"));
  const std::string id = submit_batch(s.address(), batch_input("story", 6, 4));
  ASSERT_FALSE(id.empty());
  // Nothing runs and batch_max_instances is 0: the items wait for capacity, no instance starts.
  ASSERT_TRUE(wait_for([&] { return metric(s.address(), "zs_deployment_batch_queued_requests{deployment=\"story\"}") >= 1; }, 20s));
  EXPECT_EQ(s.state_of("story"), "idle");
  // Waiting items give way at shutdown at once (the drain does not wait for them) and were
  // not attempts: no model saw them.
  ASSERT_EQ(s.stop(std::chrono::seconds(20)), 0);
  s.start();
  json b = get_batch(s.address(), id);
  EXPECT_EQ(b["status"], "in_progress");
  EXPECT_EQ(done_items(b), 0);
  EXPECT_EQ(b["zeroserve"]["attempts"], 0);
  // Interactive traffic brings an instance up; the job then fills its free slots.
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  ASSERT_TRUE(wait_for([&] { return get_batch(s.address(), id).value("status", "") == "completed"; }, 60s));
  EXPECT_EQ(get_batch(s.address(), id)["request_counts"]["completed"], 6);
}

TEST(ServeJobs, BatchApiRefusesBadInputNamingTheProblem) {
  Serve s("deployments:\n" + stories_deployment("story"));
  std::string type;
  auto bad_purpose = call("POST", s.address(), "/v1/files?purpose=fine-tune", "{}\n", {{"Content-Type", "application/jsonl"}});
  EXPECT_EQ(bad_purpose.status, 400);
  EXPECT_NE(bad_purpose.body.find("purpose must be 'batch'"), std::string::npos) << bad_purpose.body;
  auto truncated = call("POST", s.address(), "/v1/files", "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx",
                        {{"Content-Type", "multipart/form-data; boundary=b"}});
  EXPECT_EQ(truncated.status, 400) << truncated.body;
  // A line naming an unknown model is refused at creation, with its line number.
  std::string input = batch_input("story", 2, 4) + batch_input("nope", 1, 4, 2);
  auto up = call("POST", s.address(), "/v1/files?purpose=batch", input, {{"Content-Type", "application/jsonl"}});
  ASSERT_EQ(up.status, 200) << up.body;
  auto created = call("POST", s.address(), "/v1/batches",
                      json{{"input_file_id", json::parse(up.body)["id"]}, {"endpoint", "/v1/chat/completions"}}.dump());
  EXPECT_EQ(created.status, 400);
  EXPECT_NE(created.body.find("line 3"), std::string::npos) << created.body;
  EXPECT_NE(created.body.find("nope"), std::string::npos) << created.body;
  auto wrong_endpoint = call("POST", s.address(), "/v1/batches",
                             json{{"input_file_id", json::parse(up.body)["id"]}, {"endpoint", "/v1/embeddings"}}.dump());
  EXPECT_EQ(wrong_endpoint.status, 400);
  EXPECT_EQ(call("GET", s.address(), "/v1/batches/batch_nope").status, 404);
  EXPECT_EQ(call("GET", s.address(), "/v1/files/file-nope/content").status, 404);
}

TEST(ServeJobs, EachKeySeesOnlyItsOwnFilesAndBatches) {
  Serve s("gateway:\n  api_keys: [{key: sk-alice, admin: true}, sk-bob]\ndeployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  auto as = [](const std::string& key) {
    return gateway::HttpHeaders{{"Authorization", "Bearer " + key}, {"Content-Type", "application/jsonl"}};
  };
  EXPECT_EQ(call("POST", s.address(), "/v1/files?purpose=batch", batch_input("story", 1, 2)).status, 401);
  auto up = call("POST", s.address(), "/v1/files?purpose=batch", batch_input("story", 2, 2), as("sk-alice"));
  ASSERT_EQ(up.status, 200) << up.body;
  const std::string file_id = json::parse(up.body)["id"];
  const std::string create = json{{"input_file_id", file_id}, {"endpoint", "/v1/chat/completions"}}.dump();
  EXPECT_EQ(call("POST", s.address(), "/v1/batches", create, as("sk-bob")).status, 404);  // not bob's file
  auto created = call("POST", s.address(), "/v1/batches", create, as("sk-alice"));
  ASSERT_EQ(created.status, 200) << created.body;
  const std::string id = json::parse(created.body)["id"];
  EXPECT_EQ(call("GET", s.address(), "/v1/batches/" + id, "", as("sk-bob")).status, 404);
  EXPECT_EQ(call("POST", s.address(), "/v1/batches/" + id + "/cancel", "", as("sk-bob")).status, 404);
  EXPECT_EQ(call("GET", s.address(), "/v1/files/" + file_id + "/content", "", as("sk-bob")).status, 404);
  EXPECT_EQ(json::parse(call("GET", s.address(), "/v1/batches", "", as("sk-bob")).body)["data"].size(), 0u);
  EXPECT_EQ(json::parse(call("GET", s.address(), "/v1/batches", "", as("sk-alice")).body)["data"].size(), 1u);
  json b;
  ASSERT_TRUE(wait_for([&] {
    auto r = call("GET", s.address(), "/v1/batches/" + id, "", as("sk-alice"));
    b = json::parse(r.body);
    return b.value("status", "") == "completed";
  }, 60s)) << b.dump();
  const std::string out = b["output_file_id"];
  EXPECT_EQ(call("GET", s.address(), "/v1/files/" + out + "/content", "", as("sk-bob")).status, 404);
  EXPECT_EQ(call("GET", s.address(), "/v1/files/" + out + "/content", "", as("sk-alice")).status, 200);
  // The job's requests are metered to alice, as batch work (quotas do not apply to them).
  bool metered = wait_for([&] {
    const json costs = json::parse(call("GET", s.address(), "/admin/costs", "", as("sk-alice")).body);
    for (const auto& k : costs["keys"])
      if (k["api_key"] == "key-1" && k["class"] == "batch" && k["requests"] == 2) return true;
    return false;
  }, 10s);
  EXPECT_TRUE(metered) << call("GET", s.address(), "/admin/costs", "", as("sk-alice")).body;
}

TEST(ServeJobs, CancelledBatchStopsAndReportsTheRestAsCancelled) {
  Serve s("gateway:\n  batch_concurrency: 1\ndeployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  const std::string id = submit_batch(s.address(), batch_input("story", 50, 100));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for([&] { return done_items(get_batch(s.address(), id)) >= 1; }, 60s));
  auto cancel = call("POST", s.address(), "/v1/batches/" + id + "/cancel");
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  ASSERT_TRUE(wait_for([&] { return get_batch(s.address(), id).value("status", "") == "cancelled"; }, 60s));
  json b = get_batch(s.address(), id);
  EXPECT_LT(done_items(b), 50);
  ASSERT_TRUE(b["error_file_id"].is_string()) << b.dump();
  auto errors = call("GET", s.address(), "/v1/files/" + b["error_file_id"].get<std::string>() + "/content");
  EXPECT_NE(errors.body.find("batch_cancelled"), std::string::npos);
  EXPECT_EQ(call("POST", s.address(), "/v1/batches/" + id + "/cancel").status, 409);  // already final
}

TEST(ServeJobs, BatchRequestsUseOnlyRunningInstancesByDefault) {
  Serve s("deployments:\n" + stories_deployment("story", "    request_timeout: 2s\n"));
  auto bad = s.post(chat("story", 2), {{"X-Priority", "urgent"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("X-Priority"), std::string::npos) << bad.body;
  // No instance runs and batch_max_instances is 0: the request waits, then times out,
  // without a cold start.
  auto batch = s.post(chat("story", 2), {{"X-Priority", "batch"}});
  EXPECT_EQ(batch.status, 504) << batch.body;
  EXPECT_EQ(s.state_of("story"), "idle");
  // Once interactive traffic has an instance running, batch requests use its free slots.
  ASSERT_EQ(s.post(chat("story", 2)).status, 200);
  auto later = s.post(chat("story", 2), {{"X-Priority", "batch"}});
  EXPECT_EQ(later.status, 200) << later.body;
  EXPECT_TRUE(later.header("X-Zeroserve-Cold-Start-Ms").empty());
}

TEST(ServeJobs, MistypedFieldsAreClearErrorsNot500) {
  Serve s("deployments:\n" + stories_deployment("story"));
  json body = chat("story", 2);
  body["stream"] = "yes";
  auto r = s.post(body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("'stream' must be true or false"), std::string::npos) << r.body;
  body = chat("story", 2);
  body["priority"] = "high";  // not a number: ignored, as OpenAI ignores unknown fields
  EXPECT_EQ(s.post(body).status, 200);
  // Mistyped content parts reach the worker's validation, which names them.
  body = chat("story", 2);
  body["messages"][0]["content"] = json::array({{{"type", 5}, {"image_url", {{"url", 7}}}}});
  r = s.post(body);
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST(ServeJobs, MutatedRequestsNeverGetA500) {
  Serve s("deployments:\n" + stories_deployment("story", "    min_instances: 1\n"));
  json seed = chat("story", 2);
  seed["messages"][0]["content"] = json::array({{{"type", "text"}, {"text", "hi"}},
                                               {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,AAAA"}}}}});
  const std::string base = seed.dump();
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,0123456789-.eE tfnurlasx\\";
  int server_errors = 0;
  for (int i = 0; i < 300; ++i) {
    std::string body = base;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const size_t at = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: body.erase(at, 1 + rng() % 8); break;
        default: body.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    auto r = gateway::http_request("POST", s.address(), "/v1/chat/completions", body, {}, std::chrono::seconds(60));
    ASSERT_TRUE(r.is_ok()) << "the server stopped answering after: " << body;
    if (r->status >= 500) {
      ++server_errors;
      ADD_FAILURE() << r->status << " for " << body << " -> " << r->body;
    }
  }
  EXPECT_EQ(server_errors, 0);
  EXPECT_EQ(s.post(chat("story", 2)).status, 200);
}

TEST(ServeJobs, BatchMaxInstancesLetsBatchWorkStartAnInstance) {
  Serve s("deployments:\n" + stories_deployment("story", "    max_instances: 2\n    batch_max_instances: 1\n"));
  auto batch = s.post(chat("story", 2), {{"X-Priority", "batch"}});
  EXPECT_EQ(batch.status, 200) << batch.body;
  EXPECT_FALSE(batch.header("X-Zeroserve-Cold-Start-Ms").empty());
  EXPECT_EQ(metric(s.address(), "zs_autoscale_decisions_total{deployment=\"story\",action=\"scale_out\"}"), 1);
}

TEST(ServeJobs, QuotasRefuseWith429NamingTheLimit) {
  // "slow" starts 2.5 s after it is asked for: a request to it holds its key's concurrency slot
  // for that long, whatever the engine's speed (a long generation on stories260K takes ~30 ms).
  const std::string slow_cmd = "sh -c 'sleep 2.5; exec " + std::string(ZS_BINARY) +
                               " worker --listen 127.0.0.1:{port} --model {model} --threads 1'";
  Serve s(R"(gateway:
  api_keys:
    - {key: sk-rpm, name: rpm, requests_per_minute: 2}
    - {key: sk-tpm, name: tpm, tokens_per_minute: 10}
    - {key: sk-con, name: con, max_concurrent: 1}
    - {key: sk-free, name: free}
deployments:
)" + stories_deployment("story", "    min_instances: 1\n") +
          "  - name: slow\n    runtime: command\n    command: \"" + slow_cmd + "\"\n    model: " +
          zs::testing::golden_model("stories260K.gguf") + "\n    memory: 64MiB\n");
  auto as = [](const std::string& key) { return gateway::HttpHeaders{{"Authorization", "Bearer " + key}}; };
  EXPECT_EQ(s.post(chat("story", 2), as("sk-rpm")).status, 200);
  EXPECT_EQ(s.post(chat("story", 2), as("sk-rpm")).status, 200);
  auto r = s.post(chat("story", 2), as("sk-rpm"));
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("requests_per_minute limit of 2"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("X-Zeroserve-Limit"), "requests_per_minute=2");
  EXPECT_GE(std::stoi(r.header("Retry-After")), 1);
  EXPECT_EQ(s.post(chat("story", 2), as("sk-free")).status, 200);  // other keys are not affected

  EXPECT_EQ(s.post(chat("story", 20), as("sk-tpm")).status, 200);  // > 10 tokens: the bucket is spent
  r = s.post(chat("story", 2), as("sk-tpm"));
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("tokens_per_minute limit of 10"), std::string::npos) << r.body;

  auto long_one = std::async(std::launch::async, [&] { return s.post(chat("slow", 4), as("sk-con")); });
  ASSERT_TRUE(wait_for([&] { return metric(s.address(), "zs_deployment_queued_requests{deployment=\"slow\"}") >= 1; }, 20s));
  r = s.post(chat("story", 2), as("sk-con"));
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("max_concurrent"), std::string::npos) << r.body;
  EXPECT_EQ(long_one.get().status, 200);
  EXPECT_EQ(s.post(chat("story", 2), as("sk-con")).status, 200);  // the slot came back
  EXPECT_EQ(metric(s.address(), "zs_gateway_quota_refusals_total{key=\"rpm\",limit=\"requests_per_minute\"}"), 1);
}

TEST(ServeJobs, ABurstScalesOutAndBackIn) {
  // Six clients keep sending until the third instance is up, so the burst outlasts the
  // policy's 2 s evaluation interval however fast this machine decodes (a fixed burst of six
  // requests once finished within it on a quiet machine and left no load to scale out for).
  zs::testing::TempDir models;
  const std::string model = models.file("m.gguf");
  ASSERT_EQ(zs::testing::run_command(std::string(ZS_BINARY) + " gen-model --preset smollm2-135m --type q8_0 --out " + model).exit_code, 0);
  Serve s("deployments:\n  - name: story\n    model: " + model +
          "\n    slots: 1\n    ctx: 256\n    threads: 1\n    max_instances: 3\n    keep_alive: 1s\n"
          "    autoscale: {policy: concurrency, target_concurrency: 1, stable_window: 2s, panic_window: 1s}\n");
  std::atomic<bool> enough{false};
  std::vector<std::future<std::vector<int>>> burst;  // each client's statuses
  for (int i = 0; i < 6; ++i) {
    burst.push_back(std::async(std::launch::async, [&] {
      std::vector<int> statuses;
      do {
        statuses.push_back(s.post(chat("story", 48)).status);
      } while (!enough && statuses.size() < 200);
      return statuses;
    }));
  }
  int most = 0;
  for (int i = 0; i < 1000; ++i) {
    auto r = gateway::http_request("GET", s.address(), "/admin/deployments");
    if (r.is_ok()) {
      const json all = json::parse(r->body);
      const json& inst = all["deployments"][0]["instances"];
      most = std::max(most, inst["ready"].get<int>() + inst["starting"].get<int>());
    }
    if (most >= 3) break;
    std::this_thread::sleep_for(20ms);
  }
  enough = true;
  for (auto& f : burst) {
    for (int status : f.get()) EXPECT_EQ(status, 200);
  }
  EXPECT_EQ(most, 3);
  EXPECT_GE(metric(s.address(), "zs_autoscale_decisions_total{deployment=\"story\",action=\"scale_out\"}"), 3);
  // Load gone: every instance stops after its keep-alive.
  EXPECT_TRUE(wait_for([&] { return s.state_of("story") == "idle"; }, 30s));
  EXPECT_GE(metric(s.address(), "zs_autoscale_decisions_total{deployment=\"story\",action=\"scale_in\"}"), 3);
}

}  // namespace
}  // namespace zs
