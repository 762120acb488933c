// The web console in a real headless Chromium (WebDriver), against a real `zeroserve serve` on
// loopback: pages load without console errors, instance states update as a request cold-starts
// one, the playground streams from a real model and sends an image, charts draw, the cost
// table matches /admin/costs, admin actions need an admin key, and 1,000 deployments are
// interactive within 2 s. Serial: the 2 s measurement must not share the CPUs with other tests.
//
// With ZS_CONSOLE_SCREENSHOTS=<dir> the tests save a screenshot of each page there
// (scripts/console-screenshots.sh writes docs/images/console/ that way).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "e2e/serve_fixture.h"
#include "test_util/webdriver.h"

namespace zs {
namespace {

using nlohmann::json;
using testing::Browser;
using testing::Serve;

const std::string kStories = testing::golden_model("TinyStories-656K-Q8_0.gguf");

// A deployment of the real tiny story model.
std::string stories(const std::string& name, const std::string& extra = "") {
  return "  - name: " + name + "\n    model: " + kStories + "\n    slots: 2\n    ctx: 512\n    threads: 1\n" + extra;
}

void screenshot(Browser& b, const std::string& page) {
  const char* dir = std::getenv("ZS_CONSOLE_SCREENSHOTS");
  if (!dir || !*dir) return;
  std::filesystem::create_directories(dir);
  b.screenshot(std::string(dir) + "/" + page + ".png");
}

gateway::HttpResponse call(const std::string& method, const std::string& address, const std::string& path,
                           const std::string& body = "", const std::string& key = "") {
  gateway::HttpHeaders h{{"Content-Type", "application/json"}};
  if (!key.empty()) h.push_back({"Authorization", "Bearer " + key});
  auto r = gateway::http_request(method, address, path, body, h, std::chrono::seconds(120));
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r.value() : gateway::HttpResponse{};
}

#define START_BROWSER(b) \
  Browser b;             \
  ASSERT_TRUE(b.ok()) << b.why_not();

TEST(ConsoleInTheBrowser, ShowsAnInstanceColdStartingThenIdleWithChartsAndNoConsoleErrors) {
  // A command runtime that takes 2.5 s to come up, so that the page (one poll a second) sees
  // the instance starting and the request queued behind it.
  const std::string cmd = "sh -c 'sleep 2.5; exec " + std::string(ZS_BINARY) +
                          " worker --listen 127.0.0.1:{port} --model {model} --threads 1'";
  Serve s("deployments:\n  - name: slow-story\n    runtime: command\n    command: \"" + cmd + "\"\n    model: " + kStories +
          "\n    memory: 64MiB\n    keep_alive: 300s\n" + stories("story"));
  ASSERT_FALSE(s.address().empty());
  START_BROWSER(b);
  b.go("http://" + s.address() + "/");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'deployments'", std::chrono::seconds(20)));
  EXPECT_EQ(b.js("return document.querySelectorAll('#dep-table tbody tr').length").get<int>(), 2);
  EXPECT_EQ(b.js("return document.querySelector('tr[data-deployment=\"slow-story\"] [data-field=instances]').textContent")
                .get<std::string>(),
            "0");

  std::thread request([&] {
    auto r = call("POST", s.address(), "/v1/chat/completions", testing::chat("slow-story", 8, true).dump());
    EXPECT_EQ(r.status, 200) << r.body;
  });
  const std::string row = "document.querySelector('tr[data-deployment=\"slow-story\"]')";
  EXPECT_TRUE(b.wait_until(row + ".querySelector('[data-phase=starting]') !== null", std::chrono::seconds(20)))
      << "the page never showed the instance starting";
  EXPECT_TRUE(b.wait_until(row + ".querySelector('td.num').textContent.startsWith('1 /')", std::chrono::seconds(5)))
      << "the page never showed the request queued while the instance started";
  request.join();
  EXPECT_TRUE(b.wait_until(row + ".querySelector('[data-phase=idle]') !== null", std::chrono::seconds(20)))
      << b.js("return " + row + ".textContent").dump();
  EXPECT_EQ(b.js("return " + row + ".querySelector('[data-field=cold_starts]').textContent").get<std::string>(), "1");
  // Keep-alive countdown: 300 s minus the idle time so far.
  EXPECT_TRUE(b.wait_until(row + ".querySelector('[data-field=scale_to_zero]').textContent.match(/^4 min|^5 min/)",
                           std::chrono::seconds(5)))
      << b.js("return " + row + ".querySelector('[data-field=scale_to_zero]').textContent").dump();

  // Charts: the series endpoint has the request now; every chart draws, TTFT and requests with data.
  b.click("tr[data-deployment=\"slow-story\"] a.dep");
  EXPECT_TRUE(b.wait_until("Number(document.getElementById('chart-ttft').dataset.points) > 0 && "
                           "Number(document.getElementById('chart-cold').dataset.points) > 0",
                           std::chrono::seconds(15)));
  // Non-empty canvases: pixels in the data colour (the first series' blue), not only grey axes.
  const auto blue = b.js(R"(const c = document.getElementById('chart-ttft');
    const d = c.getContext('2d').getImageData(0, 20, c.width, c.height - 40).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 2] > 150 && d[i] < 120 && d[i + 1] < 160) n++;
    return n;)");
  EXPECT_GT(blue.get<int>(), 0);
  screenshot(b, "deployments");
  EXPECT_EQ(b.console_errors(), std::vector<std::string>{});
  for (const std::string page : {"costs", "batches", "playground", "admin"}) {
    b.click("#nav a[data-page=" + page + "]");
    EXPECT_TRUE(b.wait_until("document.body.dataset.loaded === '" + page + "'", std::chrono::seconds(15))) << page;
    EXPECT_EQ(b.js("return location.pathname").get<std::string>(), "/console/" + page);
  }
  EXPECT_EQ(b.console_errors(), std::vector<std::string>{});
}

TEST(ConsoleInTheBrowser, PlaygroundStreamsAnAnswerFromARealModelAndSendsAnImage) {
  const std::string llava = "  - name: llava\n    model: " + testing::golden_model("tiny-llama-f16.gguf") +
                            "\n    mmproj: " + testing::golden_model("tiny-llava-mmproj-f32.gguf") + "\n    threads: 1\n";
  Serve s("deployments:\n" + stories("story") + llava);
  ASSERT_FALSE(s.address().empty());
  START_BROWSER(b);
  b.go("http://" + s.address() + "/console/playground");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'playground'", std::chrono::seconds(20)));
  b.js("document.getElementById('pg-model').value = 'story'; document.getElementById('pg-temp').value = '0';"
       "document.getElementById('pg-max').value = '48';");
  // Counts the answer's updates as they arrive: a streamed answer grows in several steps.
  b.js(R"(window.zsUpdates = 0;
    new MutationObserver(() => { window.zsUpdates++; }).observe(document.getElementById('pg-log'),
      { childList: true, subtree: true, characterData: true });)");
  b.type("#pg-input", "Once upon a time");
  b.click("#pg-send");
  ASSERT_TRUE(b.wait_until("document.querySelector('.msg.assistant[data-done]')", std::chrono::seconds(60)));
  EXPECT_EQ(b.js("return document.querySelector('.msg.assistant').dataset.done").get<std::string>(), "true")
      << b.js("return document.querySelector('.msg.assistant').textContent").dump();
  const std::string answer = b.js("return document.querySelector('.msg.assistant .text').textContent").get<std::string>();
  EXPECT_GT(answer.size(), 20u) << answer;
  // Streamed: the answer arrived as many events, and the page showed it before it was complete.
  EXPECT_GT(std::stoi(b.js("return document.querySelector('.msg.assistant').dataset.pieces").get<std::string>()), 5);
  EXPECT_GE(b.js("return window.zsUpdates").get<int>(), 2);
  const std::string stats = b.js("return document.getElementById('pg-stats').textContent").get<std::string>();
  EXPECT_NE(stats.find("TTFT"), std::string::npos) << stats;
  EXPECT_NE(stats.find("tokens/s"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cold start yes"), std::string::npos) << stats;  // the first request started the instance
  screenshot(b, "playground");

  // The same deployment again: a warm instance, no cold start.
  b.type("#pg-input", "The cat");
  b.click("#pg-send");
  ASSERT_TRUE(b.wait_until("document.querySelectorAll('.msg.assistant[data-done]').length === 2", std::chrono::seconds(60)));
  EXPECT_NE(b.js("return document.getElementById('pg-stats').textContent").get<std::string>().find("cold start no"),
            std::string::npos);

  // An image, attached through the file input, to the vision deployment.
  b.click("#pg-clear");
  b.js("document.getElementById('pg-model').value = 'llava'; document.getElementById('pg-max').value = '4';");
  b.type("#pg-file", std::filesystem::canonical(testing::shared_dir() + "/golden/images/checker-100x100.png").string());
  ASSERT_TRUE(b.wait_until("!document.getElementById('pg-preview').hidden", std::chrono::seconds(10)));
  b.type("#pg-input", "What is in the picture?");
  b.click("#pg-send");
  ASSERT_TRUE(b.wait_until("document.querySelector('.msg.assistant[data-done]')", std::chrono::seconds(90)));
  EXPECT_EQ(b.js("return document.querySelector('.msg.assistant').dataset.done").get<std::string>(), "true")
      << b.js("return document.querySelector('.msg.assistant').textContent").dump();
  EXPECT_NE(b.js("return document.querySelector('.msg.user img') && document.querySelector('.msg.user img').src").dump().find(
                "data:image/png;base64,"),
            std::string::npos);
  const std::string image_stats = b.js("return document.getElementById('pg-stats').textContent").get<std::string>();
  EXPECT_NE(image_stats.find("image tokens 16"), std::string::npos) << image_stats;

  // An image pasted into the message box is attached the same way (a paste event carrying a file).
  ASSERT_TRUE(b.js("return document.getElementById('pg-preview').hidden").get<bool>());
  b.js(R"(const png = atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==');
    const bytes = Uint8Array.from(png, (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
    document.getElementById('pg-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));)");
  EXPECT_TRUE(b.wait_until("!document.getElementById('pg-preview').hidden && "
                           "document.getElementById('pg-preview').src.startsWith('data:image/png;base64,iVBOR')",
                           std::chrono::seconds(10)));
  EXPECT_EQ(b.console_errors(), std::vector<std::string>{});
}

TEST(ConsoleInTheBrowser, CostTableMatchesTheAdminApiAndAdminActionsNeedAnAdminKey) {
  Serve s("gateway:\n  api_keys:\n    - {key: sk-ops-secret, name: ops, admin: true}\n"
          "    - {key: sk-team-secret, name: team}\n"
          "devices:\n  - {name: cpu0, kind: cpu, memory: 8GiB, price_per_hour: 3.6}\ndeployments:\n" +
          stories("story", "    keep_alive: 1s\n    batch_max_instances: 1\n"));
  ASSERT_FALSE(s.address().empty());
  // Traffic from both keys and a batch job of two items, metered in the ledger.
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(call("POST", s.address(), "/v1/chat/completions", testing::chat("story", 6).dump(), "sk-team-secret").status, 200);
  EXPECT_EQ(call("POST", s.address(), "/v1/chat/completions", testing::chat("story", 6).dump(), "sk-ops-secret").status, 200);
  std::string jsonl;
  for (int i = 0; i < 2; ++i)
    jsonl += json{{"custom_id", "r" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"},
                  {"body", testing::chat("story", 4)}}.dump() + "\n";
  auto file = call("POST", s.address(), "/v1/files?purpose=batch&filename=in.jsonl", jsonl, "sk-ops-secret");
  ASSERT_EQ(file.status, 200) << file.body;
  auto batch = call("POST", s.address(), "/v1/batches",
                    json{{"input_file_id", json::parse(file.body)["id"]}, {"endpoint", "/v1/chat/completions"},
                         {"completion_window", "24h"}}.dump(),
                    "sk-ops-secret");
  ASSERT_EQ(batch.status, 200) << batch.body;
  const std::string batch_id = json::parse(batch.body)["id"];
  ASSERT_TRUE(testing::wait_for([&] {
    return json::parse(call("GET", s.address(), "/v1/batches/" + batch_id, "", "sk-ops-secret").body)["status"] == "completed";
  }, std::chrono::seconds(60)));

  // The admin API refuses a key without the admin role, whatever the endpoint.
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/admin/costs"}, {"GET", "/admin/deployments"}, {"POST", "/admin/deployments/story/prewarm"},
           {"POST", "/admin/reload"}}) {
    auto r = call(method, s.address(), path, "", "sk-team-secret");
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "admin_key_required") << r.body;
    EXPECT_EQ(r.body.find("sk-team-secret"), std::string::npos);  // never echoes the secret
  }
  // Costs are final once the instance has stopped (keep_alive: 1s): page and API see the same.
  ASSERT_TRUE(testing::wait_for([&] {
    auto d = json::parse(call("GET", s.address(), "/admin/deployments", "", "sk-ops-secret").body);
    return d["deployments"][0]["instances"]["ready"] == 0 && d["deployments"][0]["instances"]["starting"] == 0;
  }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  START_BROWSER(b);
  // The team's key: the console asks for a key, works read-only and refuses the admin parts.
  b.go("http://" + s.address() + "/console/costs");
  ASSERT_TRUE(b.wait_until("!document.getElementById('key-dialog').hidden", std::chrono::seconds(20)));
  b.type("#key-input", "sk-team-secret");
  b.click("#key-submit");
  ASSERT_TRUE(b.wait_until("document.getElementById('cost-error').textContent.includes('admin key')", std::chrono::seconds(20)));
  EXPECT_EQ(b.js("return document.querySelectorAll('#cost-table tbody tr').length").get<int>(), 0);
  b.click("#nav a[data-page=deployments]");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'deployments'", std::chrono::seconds(20)));
  EXPECT_TRUE(b.js("return document.querySelector('button[data-action=prewarm]').disabled").get<bool>());
  EXPECT_NE(b.js("return document.getElementById('who').textContent").get<std::string>().find("team · not an admin"),
            std::string::npos);
  b.click("#nav a[data-page=admin]");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'admin'", std::chrono::seconds(20)));
  EXPECT_TRUE(b.js("return document.getElementById('admin-reload').disabled").get<bool>());
  // No page ever shows a secret.
  EXPECT_EQ(b.js("return document.documentElement.outerHTML").get<std::string>().find("sk-team-secret"), std::string::npos);

  // The admin key: the cost table matches /admin/costs over the same range.
  b.click("#admin-forget");
  ASSERT_TRUE(b.wait_until("!document.getElementById('key-dialog').hidden", std::chrono::seconds(5)));
  b.type("#key-input", "sk-ops-secret");
  b.click("#key-submit");
  b.click("#nav a[data-page=costs]");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'costs' && document.querySelectorAll('#cost-table tbody tr').length > 0",
                           std::chrono::seconds(20)));
  const std::string source = b.js("return document.getElementById('cost-table').dataset.source").get<std::string>();
  ASSERT_EQ(source.rfind("/admin/costs?since=", 0), 0u) << source;
  const json api = json::parse(call("GET", s.address(), source, "", "sk-ops-secret").body);
  const json page = b.js(R"(const rows = (sel) => [...document.querySelectorAll(sel)].map((tr) =>
      Object.fromEntries([...tr.querySelectorAll('[data-field]')].map((td) => [td.dataset.field, td.dataset.value])));
    return { deployments: rows('#cost-table tbody tr'), keys: rows('#key-table tbody tr'),
             total: document.querySelector('#cost-table tfoot [data-field=total_cost]').dataset.value };)");
  ASSERT_EQ(page["deployments"].size(), api["deployments"].size()) << page.dump() << api.dump();
  for (size_t i = 0; i < api["deployments"].size(); ++i) {
    const auto& a = api["deployments"][i];
    const auto& p = page["deployments"][i];
    EXPECT_EQ(p["deployment"], a["deployment"]);
    EXPECT_EQ(std::stoll(p["requests"].get<std::string>()), a["requests"].get<int64_t>());
    EXPECT_DOUBLE_EQ(std::stod(p["cost"].get<std::string>()), a["cost"].get<double>());
    EXPECT_DOUBLE_EQ(std::stod(p["always_on_cost"].get<std::string>()), a["always_on_cost"].get<double>());
    EXPECT_DOUBLE_EQ(std::stod(p["instance_seconds"].get<std::string>()), a["instance_seconds"].get<double>());
  }
  EXPECT_EQ(api["deployments"][0]["requests"], 5);  // 3 interactive + 2 batch items
  ASSERT_EQ(page["keys"].size(), api["keys"].size()) << page.dump() << api.dump();
  for (size_t i = 0; i < api["keys"].size(); ++i) {
    EXPECT_EQ(page["keys"][i]["api_key"], api["keys"][i]["api_key"]);
    EXPECT_EQ(page["keys"][i]["class"], api["keys"][i]["class"]);
    EXPECT_EQ(std::stoll(page["keys"][i]["requests"].get<std::string>()), api["keys"][i]["requests"].get<int64_t>());
    EXPECT_DOUBLE_EQ(std::stod(page["keys"][i]["cost_share"].get<std::string>()), api["keys"][i]["cost_share"].get<double>());
  }
  EXPECT_DOUBLE_EQ(std::stod(page["total"].get<std::string>()), api["total_cost"].get<double>());
  EXPECT_GT(b.js("return Number(document.getElementById('chart-cost').dataset.points)").get<int>(), 0);
  screenshot(b, "costs");

  // Batch jobs: the finished job with its counts, progress and result download.
  b.click("#nav a[data-page=batches]");
  ASSERT_TRUE(b.wait_until("document.querySelector('tr[data-batch]')", std::chrono::seconds(20)));
  EXPECT_EQ(b.js("return document.querySelector('tr[data-batch] [data-field=counts]').textContent").get<std::string>(), "2 / 0 / 2");
  EXPECT_EQ(b.js("return document.querySelector('tr[data-batch] [data-field=status]').textContent").get<std::string>(), "completed");
  EXPECT_TRUE(b.js("return [...document.querySelectorAll('tr[data-batch] button')].some((x) => x.textContent === 'Results')")
                  .get<bool>());
  screenshot(b, "batches");

  // Admin actions with the admin key: pre-warm, scale (the page shows the instance), reload.
  b.click("#nav a[data-page=deployments]");
  ASSERT_TRUE(b.wait_until("document.querySelector('button[data-action=prewarm]') && "
                           "!document.querySelector('button[data-action=prewarm]').disabled",
                           std::chrono::seconds(20)));
  b.click("button[data-action=prewarm]");
  EXPECT_TRUE(b.wait_until("document.getElementById('toast').textContent === 'prewarm story: done'", std::chrono::seconds(20)))
      << b.js("return document.getElementById('toast').textContent").dump();
  // Scale holds an instance (a pre-warmed one may stop again within keep_alive: 1s).
  b.js("document.querySelector('tr[data-deployment=story] .scale-input').value = ''");
  b.type("tr[data-deployment=story] .scale-input", "1");
  b.click("button[data-action=scale]");
  EXPECT_TRUE(b.wait_until("document.querySelector('tr[data-deployment=story] [data-phase]') !== null", std::chrono::seconds(20)))
      << b.js("return document.getElementById('toast').textContent").dump();
  b.click("#nav a[data-page=admin]");
  ASSERT_TRUE(b.wait_until("document.body.dataset.loaded === 'admin' && !document.getElementById('admin-reload').disabled",
                           std::chrono::seconds(20)));
  b.click("#admin-reload");
  EXPECT_TRUE(b.wait_until("document.getElementById('admin-result').textContent.startsWith('Reloaded: 1 deployments')",
                           std::chrono::seconds(20)))
      << b.js("return document.getElementById('admin-result').textContent").dump();
  screenshot(b, "admin");
  EXPECT_EQ(b.js("return document.documentElement.outerHTML").get<std::string>().find("sk-ops-secret"), std::string::npos);
}

TEST(ConsoleInTheBrowser, AThousandDeploymentsAreInteractiveWithinTwoSecondsPagedAndFiltered) {
  std::string yaml = "deployments:\n";
  for (int i = 0; i < 1000; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "dep-%04d", i);
    yaml += "  - {name: " + std::string(name) + ", model: " + kStories + ", memory: 16MiB}\n";
  }
  Serve s(yaml);
  ASSERT_FALSE(s.address().empty());
  START_BROWSER(b);
  b.go("http://" + s.address() + "/console/deployments");
  ASSERT_TRUE(b.wait_until("performance.getEntriesByName('zs-first-render').length > 0", std::chrono::seconds(30)));
  // From the start of navigation to the first table rendered with its controls wired.
  const double ms = b.js("return performance.getEntriesByName('zs-first-render')[0].startTime").get<double>();
  EXPECT_LT(ms, 2000) << "first render after " << ms << " ms";
  EXPECT_EQ(b.js("return document.querySelectorAll('#dep-table tbody tr').length").get<int>(), 50);
  EXPECT_EQ(b.js("return document.getElementById('dep-range').textContent").get<std::string>(), "1–50 of 1,000");
  EXPECT_EQ(b.js("return document.getElementById('sum-deployments').textContent").get<std::string>(), "1,000");
  screenshot(b, "deployments-1000");
  b.click("#dep-next");
  EXPECT_TRUE(b.wait_until("document.querySelector('#dep-table tbody tr').dataset.deployment === 'dep-0050'", std::chrono::seconds(10)));
  b.type("#dep-filter", "dep-0999");
  EXPECT_TRUE(b.wait_until("document.querySelectorAll('#dep-table tbody tr').length === 1 && "
                           "document.querySelector('#dep-table tbody tr').dataset.deployment === 'dep-0999'",
                           std::chrono::seconds(10)));
  EXPECT_EQ(b.js("return document.getElementById('dep-range').textContent").get<std::string>(), "1–1 of 1 (of 1,000)");
  // No polling storm: over 3 s the page calls the API at most once a second.
  const int before = b.js("return performance.getEntriesByType('resource').filter((e) => e.name.includes('/console/api/')).length")
                         .get<int>();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const int after = b.js("return performance.getEntriesByType('resource').filter((e) => e.name.includes('/console/api/')).length")
                        .get<int>();
  EXPECT_GE(after - before, 1);
  EXPECT_LE(after - before, 4);
  EXPECT_EQ(b.console_errors(), std::vector<std::string>{});
}

}  // namespace
}  // namespace zs
