#include "platform/batch/batch_input.h"

#include <gtest/gtest.h>

#include <string>

namespace zs::platform {
namespace {

constexpr const char* kChat = "/v1/chat/completions";

std::string request(const std::string& custom_id, const std::string& url = kChat,
                    const std::string& body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})") {
  return R"({"custom_id":")" + custom_id + R"(","method":"POST","url":")" + url + R"(","body":)" + body + "}";
}

std::string error_of(std::string_view jsonl, const std::string& endpoint = kChat, size_t max = kMaxBatchItems) {
  auto r = parse_batch_input(jsonl, endpoint, max);
  EXPECT_FALSE(r.is_ok());
  return r.is_ok() ? std::string() : r.status().message();
}

TEST(BatchInput, ParsesRequestsWithTheirLineNumbers) {
  // Blank lines (and a CRLF file) are skipped but still counted, so lines match an editor's.
  const std::string jsonl = request("a") + "\r\n\r\n" + request("b") + "\n   \n" + request("c") + "\n";
  auto r = parse_batch_input(jsonl, kChat);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].line, 1);
  EXPECT_EQ((*r)[1].line, 3);
  EXPECT_EQ((*r)[2].line, 5);
  EXPECT_EQ((*r)[0].custom_id, "a");
  EXPECT_EQ((*r)[2].custom_id, "c");
  EXPECT_EQ((*r)[1].method, "POST");
  EXPECT_EQ((*r)[1].url, kChat);
  EXPECT_EQ((*r)[0].body, R"({"messages":[{"content":"hi","role":"user"}],"model":"m"})");
}

TEST(BatchInput, CompletionsEndpointAndByteOrderMark) {
  const std::string jsonl = "\xEF\xBB\xBF" + request("x", "/v1/completions", R"({"model":"m","prompt":"p"})");
  auto r = parse_batch_input(jsonl, "/v1/completions");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].custom_id, "x");
}

TEST(BatchInput, UnsupportedEndpoint) {
  EXPECT_EQ(error_of(request("a", "/v1/audio/speech"), "/v1/audio/speech"),
            "unsupported batch endpoint \"/v1/audio/speech\": use /v1/chat/completions, /v1/completions or "
            "/v1/embeddings");
}

TEST(BatchInput, EmbeddingsIsABatchEndpoint) {
  auto r = parse_batch_input(request("e", "/v1/embeddings", R"({"model":"m","input":["a","b"]})"), "/v1/embeddings");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].url, "/v1/embeddings");
}

TEST(BatchInput, EmptyAndOversizedFiles) {
  EXPECT_EQ(error_of(""), "the file has no requests");
  EXPECT_EQ(error_of("\n \r\n\n"), "the file has no requests");
  std::string three = request("a") + "\n" + request("b") + "\n" + request("c") + "\n";
  EXPECT_EQ(error_of(three, kChat, 2), "the file has 3 requests; the limit is 2");
  EXPECT_TRUE(parse_batch_input(three, kChat, 3).is_ok());
}

TEST(BatchInput, DefaultLimitIs50000) {
  std::string jsonl;
  for (int i = 0; i <= 50000; ++i) jsonl += "x\n";  // counted before parsing: never parsed
  EXPECT_EQ(error_of(jsonl), "the file has 50001 requests; the limit is 50000");
}

TEST(BatchInput, MalformedJsonNamesTheLine) {
  const std::string jsonl = request("a") + "\n" + request("b") + "\n{\"custom_id\": oops}\n";
  EXPECT_EQ(error_of(jsonl),
            "line 3: not valid JSON: column 15: syntax error while parsing value - invalid literal; last read: "
            "'\"custom_id\": o'");
  const std::string msg = error_of(request("a").substr(0, 30));
  EXPECT_EQ(msg.rfind("line 1: not valid JSON: ", 0), 0u) << msg;
  // Invalid UTF-8 is not JSON.
  EXPECT_EQ(error_of(request("a\xff")).rfind("line 1: not valid JSON: ", 0), 0u);
}

TEST(BatchInput, NotAnObject) {
  EXPECT_EQ(error_of("[1,2]"), "line 1: a request must be a JSON object, not an array");
  EXPECT_EQ(error_of(request("a") + "\n\"str\""), "line 2: a request must be a JSON object, not a string");
}

TEST(BatchInput, DuplicateCustomIdNamesBothLines) {
  const std::string jsonl = request("a") + "\n" + request("b") + "\n" + request("a") + "\n";
  EXPECT_EQ(error_of(jsonl), "line 3: 'custom_id' \"a\" repeats line 1");
  // A hostile id is quoted back shortened and escaped.
  const std::string long_id(200, 'q');
  EXPECT_EQ(error_of(request(long_id) + "\n" + request(long_id)),
            "line 2: 'custom_id' \"" + std::string(64, 'q') + "...\" repeats line 1");
}

TEST(BatchInput, CustomIdProblems) {
  EXPECT_EQ(error_of(R"({"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})"),
            "line 1: 'custom_id' is missing");
  EXPECT_EQ(error_of(R"({"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}})"),
            "line 1: 'custom_id' must be a string, not a number");
  EXPECT_EQ(error_of(request("")), "line 1: 'custom_id' is empty");
}

TEST(BatchInput, MethodAndUrlProblems) {
  EXPECT_EQ(error_of(R"({"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}})"),
            "line 1: 'method' must be \"POST\", not \"GET\"");
  EXPECT_EQ(error_of(R"({"custom_id":"a","url":"/v1/chat/completions","body":{"model":"m"}})"),
            "line 1: 'method' is missing");
  EXPECT_EQ(error_of(request("a") + "\n" + request("b", "/v1/completions")),
            "line 2: 'url' \"/v1/completions\" is not the batch's endpoint /v1/chat/completions");
  EXPECT_EQ(error_of(R"({"custom_id":"a","method":"POST","url":null,"body":{"model":"m"}})"),
            "line 1: 'url' must be a string, not null");
}

TEST(BatchInput, BodyProblems) {
  EXPECT_EQ(error_of(R"({"custom_id":"a","method":"POST","url":"/v1/chat/completions"})"), "line 1: 'body' is missing");
  EXPECT_EQ(error_of(request("a", kChat, "[]")), "line 1: 'body' must be a JSON object, not an array");
  EXPECT_EQ(error_of(request("a", kChat, R"({"messages":[]})")), "line 1: 'body.model' is missing");
  EXPECT_EQ(error_of(request("a", kChat, R"({"model":3})")), "line 1: 'body.model' must be a string, not a number");
}

TEST(BatchInput, FirstErrorWins) {
  const std::string jsonl = request("a") + "\n" + request("b", kChat, "1") + "\nnot json\n";
  EXPECT_EQ(error_of(jsonl), "line 2: 'body' must be a JSON object, not a number");
}

TEST(CompletionWindow, AcceptsHoursFrom1To168) {
  auto w = parse_completion_window("24h");
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(*w, 86400);
  EXPECT_EQ(parse_completion_window("1h").value(), 3600);
  EXPECT_EQ(parse_completion_window("168h").value(), 168 * 3600);
}

TEST(CompletionWindow, RefusesOtherValues) {
  for (const char* bad :
       {"", "h", "0h", "169h", "24", "24H", "24m", "1d", "-1h", "024h", " 24h", "24h ", "9999h", "1.5h"}) {
    auto w = parse_completion_window(bad);
    EXPECT_FALSE(w.is_ok()) << bad;
  }
  EXPECT_EQ(parse_completion_window("7d").status().message(),
            "completion_window \"7d\" is not supported: use \"24h\" (or \"<n>h\" with n from 1 to 168)");
}

}  // namespace
}  // namespace zs::platform
