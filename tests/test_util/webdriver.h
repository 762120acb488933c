#pragma once
// A headless Chromium driven over WebDriver (W3C, through Debian's chromedriver), for the
// console's browser tests. The browser is started so that it contacts nothing but loopback:
// no background networking, component updates, sync or first-run pages, and every host name
// but 127.0.0.1 resolves to nothing. Each Browser has its own profile directory.
//
// Failure behaviour: a missing chromium or chromedriver leaves ok() false and why_not() says
// why (tests fail with it: scripts/install-deps.sh installs both); a WebDriver call that fails records a GoogleTest failure naming the command and
// returns a null JSON value. Not thread-safe: one test thread drives one browser.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/http/http_client.h"
#include "gateway/openai/base64.h"
#include "test_util/process.h"
#include "test_util/temp_dir.h"

namespace zs::testing {

class Browser {
 public:
  static constexpr const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";  // W3C element reference

  // The chromium binary itself (not Debian's launcher script), or "" when not installed.
  static std::string chromium_binary() {
    for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"})
      if (std::filesystem::exists(p)) return p;
    return "";
  }
  static std::string chromedriver_binary() {
    for (const char* p : {"/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"})
      if (std::filesystem::exists(p)) return p;
    return "";
  }

  Browser(int width = 1280, int height = 900) {
    const std::string chrome = chromium_binary(), driver = chromedriver_binary();
    if (chrome.empty() || driver.empty()) {
      why_not_ = "chromium or chromedriver is not installed (scripts/install-deps.sh installs them)";
      return;
    }
    driver_ = std::make_unique<ChildProcess>(std::vector<std::string>{driver, "--port=0"});
    // "ChromeDriver was started successfully on port 41235."
    for (int i = 0; i < 10 && driver_port_.empty(); ++i) {
      auto line = driver_->read_line(std::chrono::seconds(20));
      if (!line) break;
      const std::string marker = "on port ";
      if (auto at = line->find(marker); at != std::string::npos && line->find("successfully") != std::string::npos) {
        driver_port_ = line->substr(at + marker.size());
        while (!driver_port_.empty() && !std::isdigit(static_cast<unsigned char>(driver_port_.back()))) driver_port_.pop_back();
      }
    }
    if (driver_port_.empty()) {
      why_not_ = "chromedriver did not start";
      return;
    }
    nlohmann::json args = {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--disable-background-networking", "--disable-component-update", "--no-first-run",
                           "--disable-sync", "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
                           "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
                           "--metrics-recording-only", "--safebrowsing-disable-auto-update", "--password-store=basic",
                           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                           "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                           "--user-data-dir=" + profile_.file("profile")};
    nlohmann::json caps = {
        {"capabilities",
         {{"alwaysMatch",
           {{"browserName", "chrome"},
            {"goog:chromeOptions", {{"binary", chrome}, {"args", args}}},
            {"goog:loggingPrefs", {{"browser", "ALL"}}}}}}}};
    auto r = raw("POST", "/session", caps);
    if (r.contains("value") && r["value"].is_object() && r["value"].contains("sessionId"))
      session_ = r["value"]["sessionId"].get<std::string>();
    if (session_.empty()) why_not_ = "no WebDriver session: " + r.dump();
  }

  ~Browser() {
    if (!session_.empty()) raw("DELETE", "/session/" + session_, nullptr);
    if (driver_) {
      driver_->signal(SIGTERM);
      driver_->wait_exit(std::chrono::seconds(10));
    }
  }

  bool ok() const { return !session_.empty(); }
  const std::string& why_not() const { return why_not_; }

  void go(const std::string& url) { command("POST", "/url", {{"url", url}}); }

  // Runs `body` as a function in the page; `arguments[0..]` are `args`. Returns its value.
  nlohmann::json js(const std::string& body, nlohmann::json args = nlohmann::json::array()) {
    return command("POST", "/execute/sync", {{"script", body}, {"args", args}});
  }

  // The first element matching a CSS selector, or "" when there is none.
  std::string find(const std::string& css) {
    auto r = raw("POST", "/session/" + session_ + "/element", {{"using", "css selector"}, {"value", css}});
    if (r.contains("value") && r["value"].is_object() && r["value"].contains(kElementKey))
      return r["value"][kElementKey].get<std::string>();
    return "";
  }
  // Clicks and types as a user does (the events a real click and real keys raise).
  void click(const std::string& css) {
    const std::string e = find(css);
    ASSERT_FALSE(e.empty()) << "no element " << css;
    command("POST", "/element/" + e + "/click", nlohmann::json::object());
  }
  void type(const std::string& css, const std::string& text) {
    const std::string e = find(css);
    ASSERT_FALSE(e.empty()) << "no element " << css;
    command("POST", "/element/" + e + "/value", {{"text", text}});
  }

  // Waits until `expr` (a JavaScript expression) is truthy in the page.
  bool wait_until(const std::string& expr, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto v = js("try { return !!(" + expr + "); } catch (e) { return false; }");
      if (v.is_boolean() && v.get<bool>()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // Messages the page logged at SEVERE level (console errors, failed loads, uncaught
  // exceptions) since the last call.
  std::vector<std::string> console_errors() {
    std::vector<std::string> out;
    auto r = command("POST", "/se/log", {{"type", "browser"}});
    if (r.is_array())
      for (const auto& e : r)
        if (e.value("level", "") == "SEVERE") out.push_back(e.value("message", ""));
    return out;
  }

  // Saves a PNG of the viewport.
  void screenshot(const std::string& path) {
    auto r = command("GET", "/screenshot", nullptr);
    if (!r.is_string()) return;
    auto png = gateway::openai::base64_decode(r.get<std::string>());
    ASSERT_TRUE(png.is_ok()) << png.status().message();
    std::ofstream(path, std::ios::binary) << png.value();
  }

 private:
  nlohmann::json command(const std::string& method, const std::string& path, const nlohmann::json& body) {
    auto r = raw(method, "/session/" + session_ + path, body);
    if (!r.contains("value")) {
      ADD_FAILURE() << "WebDriver " << method << " " << path << ": " << r.dump();
      return nullptr;
    }
    if (r["value"].is_object() && r["value"].contains("error")) {
      ADD_FAILURE() << "WebDriver " << method << " " << path << ": " << r["value"].value("message", r.dump());
      return nullptr;
    }
    return r["value"];
  }
  nlohmann::json raw(const std::string& method, const std::string& path, const nlohmann::json& body) {
    auto r = gateway::http_request(method, "127.0.0.1:" + driver_port_, path, body.is_null() ? "" : body.dump(),
                                   {{"Content-Type", "application/json"}}, std::chrono::seconds(60));
    if (!r) return {{"transport_error", r.status().message()}};
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    return j.is_discarded() ? nlohmann::json{{"body", r->body}} : j;
  }

  TempDir profile_;
  std::unique_ptr<ChildProcess> driver_;
  std::string driver_port_;
  std::string session_;
  std::string why_not_;
};

}  // namespace zs::testing
