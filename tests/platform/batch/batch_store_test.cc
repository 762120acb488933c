#include "platform/batch/batch_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_util/temp_dir.h"

namespace zs::platform {
namespace {

using zs::testing::TempDir;

constexpr const char* kChat = "/v1/chat/completions";

// A store on a virtual clock the test moves by hand.
struct Fixture {
  TempDir dir;
  std::shared_ptr<int64_t> clock = std::make_shared<int64_t>(1000);
  std::unique_ptr<BatchStore> store;

  Fixture() { reopen(); }
  std::string path() const { return dir.file("state/batches.db"); }
  void reopen() {
    store.reset();  // closes the database first, as a restart does
    auto clock_copy = clock;
    auto s = BatchStore::open(path(), [clock_copy] { return *clock_copy; });
    EXPECT_TRUE(s.is_ok()) << s.status().message();
    if (s.is_ok()) store = std::move(s).value();
  }
  std::string input_file() {
    auto f = store->add_file("batch", "in.jsonl", "{}\n");
    EXPECT_TRUE(f.is_ok()) << f.status().message();
    return f.is_ok() ? f->id : std::string();
  }
  // A batch of `n` items on lines 1..n with custom ids "a", "b", ...
  BatchRecord create(int n, int64_t window_seconds = 86400) {
    std::vector<BatchItem> items;
    for (int i = 1; i <= n; ++i) {
      items.push_back({i, std::string(1, static_cast<char>('a' + i - 1)), "POST", kChat,
                       R"({"model":"m","n":)" + std::to_string(i) + "}"});
    }
    auto b = store->create_batch(input_file(), kChat, "24h", window_seconds, R"({"k":"v"})", "alice", items);
    EXPECT_TRUE(b.is_ok()) << b.status().message();
    return b.is_ok() ? std::move(b).value() : BatchRecord{};
  }
  BatchRecord get(const std::string& id) {
    auto b = store->batch(id);
    EXPECT_TRUE(b.is_ok()) << b.status().message();
    return b.is_ok() ? std::move(b).value() : BatchRecord{};
  }
  bool outcome(const std::string& id, int64_t line, int status, const std::string& body = "{}") {
    ItemOutcome o;
    o.status_code = status;
    o.body = body;
    auto r = store->record_outcome(id, line, o);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() && *r;
  }
  std::string content(const std::string& file_id) {
    auto c = store->file_content(file_id);
    EXPECT_TRUE(c.is_ok()) << c.status().message();
    return c.is_ok() ? std::move(c).value() : std::string();
  }
};

std::vector<int64_t> lines_of(const std::vector<PendingItem>& items) {
  std::vector<int64_t> out;
  for (const auto& i : items) out.push_back(i.line);
  return out;
}

bool is_hex_id(const std::string& id, const std::string& prefix) {
  if (id.size() != prefix.size() + 24 || id.rfind(prefix, 0) != 0) return false;
  return id.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

TEST(BatchStore, StateNames) {
  EXPECT_EQ(batch_state_name(BatchState::kValidating), "validating");
  EXPECT_EQ(batch_state_name(BatchState::kFailed), "failed");
  EXPECT_EQ(batch_state_name(BatchState::kInProgress), "in_progress");
  EXPECT_EQ(batch_state_name(BatchState::kFinalizing), "finalizing");
  EXPECT_EQ(batch_state_name(BatchState::kCompleted), "completed");
  EXPECT_EQ(batch_state_name(BatchState::kExpired), "expired");
  EXPECT_EQ(batch_state_name(BatchState::kCancelling), "cancelling");
  EXPECT_EQ(batch_state_name(BatchState::kCancelled), "cancelled");
}

TEST(BatchStore, FilesRoundTripBinaryContent) {
  Fixture fx;
  const std::string bytes("a\0b\xff\n", 5);
  auto f = fx.store->add_file("batch", "in.jsonl", bytes);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_TRUE(is_hex_id(f->id, "file-")) << f->id;
  EXPECT_EQ(f->purpose, "batch");
  EXPECT_EQ(f->filename, "in.jsonl");
  EXPECT_EQ(f->bytes, 5);
  EXPECT_EQ(f->created_at, 1000);
  EXPECT_EQ(fx.content(f->id), bytes);

  *fx.clock = 2000;
  auto empty = fx.store->add_file("user_data", "empty.txt", "");
  ASSERT_TRUE(empty.is_ok()) << empty.status().message();
  EXPECT_EQ(fx.content(empty->id), "");
  EXPECT_NE(empty->id, f->id);

  auto listed = fx.store->list_files();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].id, empty->id);  // newest first
  EXPECT_EQ(listed[0].created_at, 2000);
  EXPECT_EQ(listed[1].id, f->id);

  auto got = fx.store->file(f->id);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->filename, "in.jsonl");
  EXPECT_EQ(got->bytes, 5);

  ASSERT_TRUE(fx.store->delete_file(f->id).is_ok());
  EXPECT_EQ(fx.store->file(f->id).status().message(), "no such file: " + f->id);
  EXPECT_EQ(fx.store->file_content(f->id).status().message(), "no such file: " + f->id);
  EXPECT_EQ(fx.store->delete_file(f->id).message(), "no such file: " + f->id);
  EXPECT_EQ(fx.store->list_files().size(), 1u);
  EXPECT_FALSE(fx.store->add_file("", "x", "y").is_ok());
}

TEST(BatchStore, CreateBatchRecordsEverything) {
  Fixture fx;
  const BatchRecord b = fx.create(3);
  EXPECT_TRUE(is_hex_id(b.id, "batch_")) << b.id;
  EXPECT_EQ(b.endpoint, kChat);
  EXPECT_EQ(b.completion_window, "24h");
  EXPECT_EQ(b.owner, "alice");
  EXPECT_EQ(b.metadata_json, R"({"k":"v"})");
  EXPECT_EQ(b.state, BatchState::kInProgress);
  EXPECT_EQ(b.created_at, 1000);
  EXPECT_EQ(b.in_progress_at, 1000);
  EXPECT_EQ(b.expires_at, 1000 + 86400);
  EXPECT_EQ(b.finalizing_at, 0);
  EXPECT_EQ(b.completed_at, 0);
  EXPECT_EQ(b.cancelling_at, 0);
  EXPECT_EQ(b.output_file_id, "");
  EXPECT_EQ(b.error_file_id, "");
  EXPECT_EQ(b.total, 3);
  EXPECT_EQ(b.completed, 0);
  EXPECT_EQ(b.failed, 0);
  EXPECT_EQ(b.attempts, 0);
  auto pending = fx.store->pending_items(b.id, 10, {});
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[1].batch_id, b.id);
  EXPECT_EQ(pending[1].line, 2);
  EXPECT_EQ(pending[1].custom_id, "b");
  EXPECT_EQ(pending[1].url, kChat);
  EXPECT_EQ(pending[1].body, R"({"model":"m","n":2})");
  EXPECT_EQ(fx.store->active_batch_ids(), std::vector<std::string>{b.id});
  EXPECT_EQ(fx.store->pending_count(b.id).value(), 3);
}

TEST(BatchStore, CreateBatchErrors) {
  Fixture fx;
  const std::vector<BatchItem> items = {{1, "a", "POST", kChat, R"({"model":"m"})"}};
  EXPECT_EQ(fx.store->create_batch("file-nope", kChat, "24h", 86400, "{}", "", items).status().message(),
            "creating a batch from file-nope: no such file: file-nope");
  const std::string file = fx.input_file();
  EXPECT_FALSE(fx.store->create_batch(file, kChat, "24h", 86400, "{}", "", {}).is_ok());
  EXPECT_FALSE(fx.store->create_batch(file, kChat, "24h", 0, "{}", "", items).is_ok());
  EXPECT_EQ(fx.store->create_batch(file, kChat, "24h", 86400, "[1]", "", items).status().message(),
            "creating a batch from " + file + ": metadata must be a JSON object");
  // Duplicate lines roll the whole batch back.
  const std::vector<BatchItem> dup = {items[0], items[0]};
  EXPECT_FALSE(fx.store->create_batch(file, kChat, "24h", 86400, "", "", dup).is_ok());
  EXPECT_TRUE(fx.store->list_batches(10, "").empty());
  // Empty metadata is stored as an empty object.
  auto b = fx.store->create_batch(file, kChat, "24h", 86400, "", "", items);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->metadata_json, "{}");
  EXPECT_EQ(fx.store->batch("batch_nope").status().message(), "no such batch: batch_nope");
}

TEST(BatchStore, ReopenPreservesEverything) {
  Fixture fx;
  const BatchRecord b = fx.create(3);
  const BatchRecord c = fx.create(1);
  ASSERT_TRUE(fx.store->record_attempt(b.id, 1).is_ok());
  ASSERT_TRUE(fx.store->record_attempt(b.id, 2).is_ok());
  ASSERT_TRUE(fx.outcome(b.id, 1, 200, R"({"ok":true})"));
  *fx.clock = 1500;
  ASSERT_TRUE(fx.store->request_cancel(c.id).is_ok());

  fx.reopen();
  ASSERT_TRUE(fx.store);
  const BatchRecord b2 = fx.get(b.id);
  EXPECT_EQ(b2.state, BatchState::kInProgress);
  EXPECT_EQ(b2.completed, 1);
  EXPECT_EQ(b2.failed, 0);
  EXPECT_EQ(b2.attempts, 2);
  EXPECT_EQ(b2.expires_at, 1000 + 86400);
  EXPECT_EQ(b2.metadata_json, R"({"k":"v"})");
  // Line 2 was sent but its answer was lost with the restart: it is pending again.
  EXPECT_EQ(lines_of(fx.store->pending_items(b.id, 10, {})), (std::vector<int64_t>{2, 3}));
  const BatchRecord c2 = fx.get(c.id);
  EXPECT_EQ(c2.state, BatchState::kCancelling);
  EXPECT_EQ(c2.cancelling_at, 1500);
  EXPECT_EQ(fx.store->active_batch_ids(), (std::vector<std::string>{b.id, c.id}));
  // The answer recorded before the restart still counts once.
  EXPECT_FALSE(fx.outcome(b.id, 1, 200));
  EXPECT_EQ(fx.get(b.id).completed, 1);
  EXPECT_EQ(fx.store->list_files().size(), 2u);
}

TEST(BatchStore, RecordOutcomeIsExactlyOnce) {
  Fixture fx;
  const BatchRecord b = fx.create(2);
  EXPECT_TRUE(fx.outcome(b.id, 1, 200, R"({"first":1})"));
  EXPECT_FALSE(fx.outcome(b.id, 1, 500, R"({"second":2})"));
  EXPECT_FALSE(fx.outcome(b.id, 1, 200, R"({"third":3})"));
  BatchRecord now = fx.get(b.id);
  EXPECT_EQ(now.completed, 1);
  EXPECT_EQ(now.failed, 0);
  EXPECT_TRUE(fx.outcome(b.id, 2, 404));
  now = fx.get(b.id);
  EXPECT_EQ(now.completed, 1);
  EXPECT_EQ(now.failed, 1);
  EXPECT_EQ(fx.store->pending_count(b.id).value(), 0);
  // The first answer is the one in the results.
  auto done = fx.store->finalize(b.id, BatchState::kCompleted);
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_NE(fx.content(done->output_file_id).find(R"("body":{"first":1})"), std::string::npos);
}

TEST(BatchStore, ConcurrentOutcomesCountEachItemOnce) {
  Fixture fx;
  const int kItems = 20;
  const BatchRecord b = fx.create(kItems);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int line = 1; line <= kItems; ++line) {
        ItemOutcome o;
        o.status_code = 200;
        auto r = fx.store->record_outcome(b.id, line, o);
        if (r.is_ok() && *r) ++accepted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), kItems);
  EXPECT_EQ(fx.get(b.id).completed, kItems);
}

TEST(BatchStore, RecordOutcomeErrors) {
  Fixture fx;
  const BatchRecord b = fx.create(1);
  ItemOutcome o;
  o.status_code = 200;
  EXPECT_EQ(fx.store->record_outcome(b.id, 9, o).status().message(),
            "recording the outcome of line 9 of " + b.id + ": the batch has no such line");
  EXPECT_EQ(fx.store->record_outcome("batch_nope", 1, o).status().message(),
            "recording the outcome of line 1 of batch_nope: no such batch: batch_nope");
  o.status_code = 0;
  EXPECT_EQ(fx.store->record_outcome(b.id, 1, o).status().message(),
            "recording the outcome of line 1 of " + b.id + ": an outcome without an HTTP status needs an error code");
  o.status_code = 42;
  EXPECT_FALSE(fx.store->record_outcome(b.id, 1, o).is_ok());
  const BatchRecord after = fx.get(b.id);
  EXPECT_EQ(after.completed + after.failed, 0);
}

TEST(BatchStore, PendingItemsSkipInFlightAndFinishedLines) {
  Fixture fx;
  const BatchRecord b = fx.create(5);
  EXPECT_EQ(lines_of(fx.store->pending_items(b.id, 2, {1, 2})), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(lines_of(fx.store->pending_items(b.id, 10, {2, 4})), (std::vector<int64_t>{1, 3, 5}));
  ASSERT_TRUE(fx.outcome(b.id, 3, 200));
  EXPECT_EQ(lines_of(fx.store->pending_items(b.id, 2, {1, 2})), (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(fx.store->pending_items(b.id, 0, {}).empty());
  EXPECT_TRUE(fx.store->pending_items(b.id, 10, {1, 2, 4, 5}).empty());
  EXPECT_TRUE(fx.store->pending_items("batch_nope", 10, {}).empty());
  EXPECT_EQ(fx.store->pending_count(b.id).value(), 4);
  EXPECT_FALSE(fx.store->pending_count("batch_nope").is_ok());
}

TEST(BatchStore, RecordAttemptCountsSendings) {
  Fixture fx;
  const BatchRecord b = fx.create(2);
  ASSERT_TRUE(fx.store->record_attempt(b.id, 1).is_ok());
  ASSERT_TRUE(fx.store->record_attempt(b.id, 1).is_ok());  // a retry after a lost answer
  ASSERT_TRUE(fx.store->record_attempt(b.id, 2).is_ok());
  EXPECT_EQ(fx.get(b.id).attempts, 3);
  ASSERT_TRUE(fx.outcome(b.id, 1, 200));
  EXPECT_EQ(fx.store->record_attempt(b.id, 1).message(),
            "recording an attempt at line 1 of " + b.id + ": the item already has an outcome");
  EXPECT_EQ(fx.store->record_attempt(b.id, 7).message(),
            "recording an attempt at line 7 of " + b.id + ": the batch has no such line");
  EXPECT_FALSE(fx.store->record_attempt("batch_nope", 1).is_ok());
  EXPECT_EQ(fx.get(b.id).attempts, 3);
}

TEST(BatchStore, WithdrawAttemptUndoesOneSendingWithoutOutcome) {
  Fixture fx;
  const BatchRecord b = fx.create(2);
  ASSERT_TRUE(fx.store->record_attempt(b.id, 1).is_ok());
  ASSERT_TRUE(fx.store->record_attempt(b.id, 1).is_ok());
  ASSERT_TRUE(fx.store->withdraw_attempt(b.id, 1).is_ok());
  EXPECT_EQ(fx.get(b.id).attempts, 1);
  EXPECT_FALSE(fx.store->withdraw_attempt(b.id, 2).is_ok());  // never sent
  ASSERT_TRUE(fx.outcome(b.id, 1, 200));
  EXPECT_FALSE(fx.store->withdraw_attempt(b.id, 1).is_ok());  // its outcome is recorded
  EXPECT_EQ(fx.get(b.id).attempts, 1);
}

TEST(BatchStore, CancelOnlyFromInProgress) {
  Fixture fx;
  const BatchRecord b = fx.create(2);
  *fx.clock = 1234;
  ASSERT_TRUE(fx.store->request_cancel(b.id).is_ok());
  BatchRecord c = fx.get(b.id);
  EXPECT_EQ(c.state, BatchState::kCancelling);
  EXPECT_EQ(c.cancelling_at, 1234);
  EXPECT_EQ(fx.store->request_cancel(b.id).message(), "batch " + b.id + " cannot be cancelled: it is cancelling");
  EXPECT_EQ(fx.store->active_batch_ids(), std::vector<std::string>{b.id});  // still winding down
  ASSERT_TRUE(fx.store->finalize(b.id, BatchState::kCancelled).is_ok());
  EXPECT_EQ(fx.store->request_cancel(b.id).message(), "batch " + b.id + " cannot be cancelled: it is cancelled");
  EXPECT_EQ(fx.store->request_cancel("batch_nope").message(), "no such batch: batch_nope");
  EXPECT_TRUE(fx.store->active_batch_ids().empty());

  const BatchRecord done = fx.create(1);
  ASSERT_TRUE(fx.outcome(done.id, 1, 200));
  ASSERT_TRUE(fx.store->finalize(done.id, BatchState::kCompleted).is_ok());
  EXPECT_EQ(fx.store->request_cancel(done.id).message(), "batch " + done.id + " cannot be cancelled: it is completed");
}

TEST(BatchStore, FinalizeWritesOutputAndErrorFilesExactly) {
  Fixture fx;
  const BatchRecord b = fx.create(4);
  const std::string hex = b.id.substr(6);
  ASSERT_TRUE(fx.outcome(b.id, 1, 200, "{\n  \"x\": 1, \"a\": [true]\n}"));  // pretty JSON is compacted
  ASSERT_TRUE(fx.outcome(b.id, 2, 400, R"({"error":{"message":"bad"}})"));
  ItemOutcome refused;
  refused.error_code = "connection_failed";
  refused.error_message = "connection refused";
  ASSERT_TRUE(fx.store->record_outcome(b.id, 3, refused).value());
  ItemOutcome text;
  text.status_code = 201;
  text.body = "not json";
  text.request_id = "rid-4";
  ASSERT_TRUE(fx.store->record_outcome(b.id, 4, text).value());

  *fx.clock = 5000;
  auto done = fx.store->finalize(b.id, BatchState::kCompleted);
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(done->state, BatchState::kCompleted);
  EXPECT_EQ(done->completed_at, 5000);
  EXPECT_EQ(done->finalizing_at, 5000);
  EXPECT_EQ(done->completed, 2);
  EXPECT_EQ(done->failed, 2);
  ASSERT_FALSE(done->output_file_id.empty());
  ASSERT_FALSE(done->error_file_id.empty());

  EXPECT_EQ(
      fx.content(done->output_file_id),
      R"({"id":"batch_req_)" + hex + R"(_1","custom_id":"a","response":{"status_code":200,"request_id":"req_)" + hex +
          R"(_1","body":{"x":1,"a":[true]}},"error":null})" + "\n" + R"({"id":"batch_req_)" + hex +
          R"(_4","custom_id":"d","response":{"status_code":201,"request_id":"rid-4","body":"not json"},"error":null})" +
          "\n");
  EXPECT_EQ(
      fx.content(done->error_file_id),
      R"({"id":"batch_req_)" + hex +
          R"(_2","custom_id":"b","response":{"status_code":400,"body":{"error":{"message":"bad"}}},"error":null})" +
          "\n" + R"({"id":"batch_req_)" + hex +
          R"(_3","custom_id":"c","response":null,"error":{"code":"connection_failed","message":"connection refused"}})" +
          "\n");
  auto out = fx.store->file(done->output_file_id);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->purpose, "batch_output");
  EXPECT_EQ(out->filename, b.id + "_output.jsonl");
  EXPECT_EQ(out->created_at, 5000);
  EXPECT_EQ(out->bytes, static_cast<int64_t>(fx.content(done->output_file_id).size()));
  auto err = fx.store->file(done->error_file_id);
  ASSERT_TRUE(err.is_ok());
  EXPECT_EQ(err->purpose, "batch_output");
  EXPECT_EQ(err->filename, b.id + "_errors.jsonl");

  // The stored record matches what finalize returned, also after a restart.
  fx.reopen();
  const BatchRecord again = fx.get(b.id);
  EXPECT_EQ(again.state, BatchState::kCompleted);
  EXPECT_EQ(again.output_file_id, done->output_file_id);
  EXPECT_EQ(again.error_file_id, done->error_file_id);
  EXPECT_EQ(again.completed_at, 5000);
  EXPECT_TRUE(fx.store->active_batch_ids().empty());
}

TEST(BatchStore, FinalizeIsIdempotentAndRefusesAnotherEnd) {
  Fixture fx;
  const BatchRecord b = fx.create(1);
  ASSERT_TRUE(fx.outcome(b.id, 1, 200));
  auto first = fx.store->finalize(b.id, BatchState::kCompleted);
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  EXPECT_TRUE(first->error_file_id.empty());  // nothing failed: no error file
  const size_t files = fx.store->list_files().size();
  *fx.clock = 9999;
  auto second = fx.store->finalize(b.id, BatchState::kCompleted);
  ASSERT_TRUE(second.is_ok()) << second.status().message();
  EXPECT_EQ(second->output_file_id, first->output_file_id);
  EXPECT_EQ(second->completed_at, first->completed_at);
  EXPECT_EQ(fx.store->list_files().size(), files);
  EXPECT_EQ(fx.store->finalize(b.id, BatchState::kCancelled).status().message(),
            "finalizing batch " + b.id + " as cancelled: it is already completed");
  EXPECT_EQ(fx.store->finalize(b.id, BatchState::kInProgress).status().message(),
            "finalizing batch " + b.id + ": in_progress is not a final state (use completed, cancelled or expired)");
  EXPECT_EQ(fx.store->finalize("batch_nope", BatchState::kCompleted).status().message(), "no such batch: batch_nope");
}

TEST(BatchStore, CompletingWithPendingItemsIsRefused) {
  Fixture fx;
  const BatchRecord b = fx.create(3);
  ASSERT_TRUE(fx.outcome(b.id, 2, 200));
  EXPECT_EQ(fx.store->finalize(b.id, BatchState::kCompleted).status().message(),
            "finalizing batch " + b.id + ": 2 items have no outcome yet");
  EXPECT_EQ(fx.get(b.id).state, BatchState::kInProgress);
  EXPECT_EQ(fx.store->list_files().size(), 1u);  // the input only: nothing half-written
}

TEST(BatchStore, CancelledBatchListsUnsentItemsAsErrors) {
  Fixture fx;
  const BatchRecord b = fx.create(3);
  const std::string hex = b.id.substr(6);
  ASSERT_TRUE(fx.outcome(b.id, 2, 500, ""));
  ASSERT_TRUE(fx.store->request_cancel(b.id).is_ok());
  *fx.clock = 3000;
  auto done = fx.store->finalize(b.id, BatchState::kCancelled);
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(done->state, BatchState::kCancelled);
  EXPECT_EQ(done->cancelled_at, 3000);
  EXPECT_EQ(done->completed_at, 0);
  EXPECT_EQ(done->output_file_id, "");  // nothing succeeded
  EXPECT_EQ(done->failed, 1);
  const std::string cancelled =
      R"(,"response":null,"error":{"code":"batch_cancelled","message":"the batch was cancelled before this request was completed"}})";
  EXPECT_EQ(fx.content(done->error_file_id),
            R"({"id":"batch_req_)" + hex + R"(_1","custom_id":"a")" + cancelled + "\n" + R"({"id":"batch_req_)" + hex +
                R"(_2","custom_id":"b","response":{"status_code":500,"body":null},"error":null})" + "\n" +
                R"({"id":"batch_req_)" + hex + R"(_3","custom_id":"c")" + cancelled + "\n");
  // An answer that arrives after the files were written is dropped, and nothing is sent.
  EXPECT_FALSE(fx.outcome(b.id, 1, 200));
  EXPECT_EQ(fx.get(b.id).completed, 0);
  EXPECT_EQ(fx.store->record_attempt(b.id, 3).message(),
            "recording an attempt at line 3 of " + b.id + ": the batch is cancelled");
}

TEST(BatchStore, ExpiryFollowsTheInjectedClock) {
  Fixture fx;
  *fx.clock = 10000;
  const BatchRecord b = fx.create(2, 3600);
  EXPECT_EQ(b.created_at, 10000);
  EXPECT_EQ(b.expires_at, 13600);
  const BatchRecord cancelling = fx.create(1, 60);
  ASSERT_TRUE(fx.store->request_cancel(cancelling.id).is_ok());
  ASSERT_TRUE(fx.outcome(b.id, 2, 200, R"({"ok":1})"));

  *fx.clock = 13599;
  EXPECT_TRUE(fx.store->expired_batch_ids().empty());
  *fx.clock = 13600;
  // The cancelling batch is past its window too, but ends as cancelled, not expired.
  EXPECT_EQ(fx.store->expired_batch_ids(), std::vector<std::string>{b.id});

  auto done = fx.store->finalize(b.id, BatchState::kExpired);
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(done->state, BatchState::kExpired);
  EXPECT_EQ(done->expired_at, 13600);
  EXPECT_EQ(done->completed_at, 0);
  EXPECT_FALSE(done->output_file_id.empty());
  EXPECT_EQ(
      fx.content(done->error_file_id),
      R"({"id":"batch_req_)" + b.id.substr(6) +
          R"(_1","custom_id":"a","response":null,"error":{"code":"batch_expired","message":"the batch expired before this request was completed"}})" +
          "\n");
  EXPECT_TRUE(fx.store->expired_batch_ids().empty());
  EXPECT_EQ(fx.store->active_batch_ids(), std::vector<std::string>{cancelling.id});
}

TEST(BatchStore, ListBatchesNewestFirstWithCursor) {
  Fixture fx;
  const BatchRecord a = fx.create(1);
  const BatchRecord b = fx.create(1);
  const BatchRecord c = fx.create(1);
  auto page = fx.store->list_batches(2, "");
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, c.id);
  EXPECT_EQ(page[1].id, b.id);
  page = fx.store->list_batches(2, page.back().id);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, a.id);
  EXPECT_EQ(page[0].total, 1);
  EXPECT_TRUE(fx.store->list_batches(2, a.id).empty());
  EXPECT_TRUE(fx.store->list_batches(2, "batch_unknown").empty());
  EXPECT_TRUE(fx.store->list_batches(0, "").empty());
}

TEST(BatchStore, OwnersSeeTheirOwnFilesAndBatches) {
  Fixture fx;
  auto mine = fx.store->add_file("batch", "mine.jsonl", "{}\n", "alice");
  auto theirs = fx.store->add_file("batch", "theirs.jsonl", "{}\n", "bob");
  ASSERT_TRUE(mine.is_ok() && theirs.is_ok());
  EXPECT_EQ(fx.store->file(mine->id)->owner, "alice");
  ASSERT_EQ(fx.store->list_files("alice").size(), 1u);
  EXPECT_EQ(fx.store->list_files("alice")[0].id, mine->id);
  EXPECT_EQ(fx.store->list_files().size(), 2u);  // "" lists everything
  const BatchRecord b = fx.create(1);            // owned by alice
  ASSERT_TRUE(fx.outcome(b.id, 1, 200));
  auto done = fx.store->finalize(b.id, BatchState::kCompleted);
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(fx.store->file(done->output_file_id)->owner, "alice");  // results belong to the batch's owner
  EXPECT_EQ(fx.store->list_batches(10, "", "alice").size(), 1u);
  EXPECT_TRUE(fx.store->list_batches(10, "", "bob").empty());
  EXPECT_EQ(fx.store->list_batches(10, "", "").size(), 1u);
}

TEST(BatchStore, OpenRefusesWhatIsNotABatchStore) {
  TempDir dir;
  EXPECT_FALSE(BatchStore::open("").is_ok());
  std::filesystem::create_directories(dir.file("a_dir"));
  EXPECT_EQ(BatchStore::open(dir.file("a_dir")).status().message(),
            "opening batch store " + dir.file("a_dir") + ": the path is a directory");

  // Another program's database is left alone.
  const std::string other = dir.file("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(BatchStore::open(other).status().message(),
            "opening batch store " + other + ": the file is an SQLite database of something else");

  // A file from a newer build is refused rather than misread.
  const std::string newer = dir.file("newer.db");
  { ASSERT_TRUE(BatchStore::open(newer).is_ok()); }
  ASSERT_EQ(sqlite3_open(newer.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(BatchStore::open(newer).status().message(),
            "opening batch store " + newer +
                ": the file has schema version 99, newer than this build's 1 (written by a newer zeroserve)");
}

TEST(BatchStore, UsesWalMode) {
  Fixture fx;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(fx.path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

}  // namespace
}  // namespace zs::platform
