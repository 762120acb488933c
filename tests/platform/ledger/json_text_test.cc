#include "platform/ledger/json_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "platform/ledger/cost_ledger.h"
#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

std::string quoted(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string number(double v) {
  std::string out;
  append_json_number(out, v);
  return out;
}

TEST(JsonText, EscapesStrings) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted(""), "\"\"");
  EXPECT_EQ(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(quoted(std::string_view("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(quoted(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(quoted("/"), "\"/\"");
  // Valid UTF-8 is kept as is: é, €, 😀.
  EXPECT_EQ(quoted("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
}

TEST(JsonText, ReplacesInvalidUtf8) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(quoted("a\xFF" "b"), "\"a" + r + "b\"");
  EXPECT_EQ(quoted("\xC3"), "\"" + r + "\"");                    // truncated
  EXPECT_EQ(quoted("\xC0\xAF"), "\"" + r + r + "\"");            // overlong '/'
  EXPECT_EQ(quoted("\xED\xA0\x80"), "\"" + r + r + r + "\"");    // surrogate
  EXPECT_EQ(quoted("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // past U+10FFFF
  EXPECT_EQ(quoted("\xE2\x82" "\""), "\"" + r + r + "\\\"\"");   // cut short by a quote
}

TEST(JsonText, RendersNumbers) {
  EXPECT_EQ(number(0), "0");
  EXPECT_EQ(number(0.06), "0.06");
  EXPECT_EQ(number(60), "60");
  EXPECT_EQ(number(-1.5), "-1.5");
  EXPECT_EQ(number(1e300), "1e+300");
  EXPECT_EQ(number(NAN), "null");
  EXPECT_EQ(number(INFINITY), "null");
  std::string i;
  append_json_number(i, int64_t{-9007199254740993});
  EXPECT_EQ(i, "-9007199254740993");
}

TEST(CostLedgerJson, RendersCostsAndParsesBack) {
  zs::testing::TempDir dir;
  auto ledger_or = CostLedger::open(dir.file("ledger.db"));
  ASSERT_TRUE(ledger_or.is_ok()) << ledger_or.status().message();
  auto& ledger = *ledger_or;
  const std::string weird = std::string("we\"ird\\name\n\x01 \xC3\xA9", 16);
  ASSERT_TRUE(ledger->instance_started("i1", weird, "gpu", 0.001, 0, 100, true).is_ok());
  ASSERT_TRUE(ledger->instance_stopped("i1", 160).is_ok());
  ASSERT_TRUE(ledger->record_request(weird, "", "interactive", 10, 20, 200, 0, 120).is_ok());
  ASSERT_TRUE(ledger->record_request(weird, "", "interactive", 5, 0, 200, 0, 130).is_ok());
  ASSERT_TRUE(ledger->instance_started("i2", "plain", "cpu", 0.0001, 0, 100, false).is_ok());

  auto text = ledger->costs_json(0, 1000, 200);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  const auto j = nlohmann::json::parse(*text);  // throws, failing the test, if not valid JSON
  EXPECT_EQ(j["from"], 0);
  EXPECT_EQ(j["to"], 1000);
  ASSERT_EQ(j["deployments"].size(), 2u);
  const auto& plain = j["deployments"][0];
  EXPECT_EQ(plain["deployment"], "plain");
  EXPECT_DOUBLE_EQ(plain["instance_seconds"].get<double>(), 100);
  EXPECT_EQ(plain["requests"], 0);
  const auto& w = j["deployments"][1];
  EXPECT_EQ(w["deployment"].get<std::string>(), weird);
  EXPECT_DOUBLE_EQ(w["instance_seconds"].get<double>(), 60);
  EXPECT_NEAR(w["cost"].get<double>(), 0.06, 1e-12);
  EXPECT_EQ(w["requests"], 2);
  EXPECT_EQ(w["prompt_tokens"], 15);
  EXPECT_EQ(w["completion_tokens"], 20);
  EXPECT_EQ(w["cold_starts"], 1);
  EXPECT_NEAR(w["cost_per_request"].get<double>(), 0.03, 1e-12);
  EXPECT_NEAR(w["cost_per_1k_requests"].get<double>(), 30, 1e-9);
  EXPECT_DOUBLE_EQ(w["starting_seconds"].get<double>(), 60);  // never reported ready
  EXPECT_DOUBLE_EQ(w["idle_seconds"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(w["idle_share"].get<double>(), 0);
  EXPECT_EQ(w["peak_instances"], 1);
  EXPECT_NEAR(w["always_on_cost"].get<double>(), 0.001 * 100, 1e-12);  // [100, 200) covered
  EXPECT_EQ(plain["peak_instances"], 1);
  EXPECT_NEAR(j["total_cost"].get<double>(), 0.06 + 0.01, 1e-12);

  ASSERT_TRUE(ledger->instance_stopped("i2", 200).is_ok());
  auto empty = ledger->costs_json(5000, 6000, 7000);
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(*empty, "{\"from\":5000,\"to\":6000,\"deployments\":[],\"keys\":[],\"total_cost\":0}");
}

}  // namespace
}  // namespace zs::platform
