#pragma once
// The OpenAI Files and Batch APIs: JSONL uploads (POST /v1/files, multipart/form-data like
// OpenAI's SDKs send, or a raw JSONL body), batch jobs over them (POST /v1/batches, GET
// /v1/batches[/{id}], POST /v1/batches/{id}/cancel) and their results as files (GET
// /v1/files/{id}/content). Jobs live in the BatchStore; the BatchRunner executes them.
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "gateway/batch/batch_runner.h"
#include "gateway/http/router.h"
#include "platform/batch/batch_store.h"

namespace zs::gateway {

class BatchApi {
 public:
  using ModelExists = std::function<bool(const std::string& model)>;
  BatchApi(platform::BatchStore& store, BatchRunner& runner, ModelExists model_exists, size_t max_file_bytes);

  // Any request under /v1/files or /v1/batches, authenticated already; `owner` is the
  // caller's key name: it owns the files and jobs it creates and sees only those ("" when the
  // API is open: everything is shared).
  void handle(const HttpRequest& req, std::shared_ptr<ResponseWriter> w, const std::string& owner);

 private:
  core::Result<platform::StoredFile> visible_file(const std::string& id, const std::string& owner);
  void upload_file(const HttpRequest& req, ResponseWriter& w, const std::string& owner);
  void create_batch(const HttpRequest& req, ResponseWriter& w, const std::string& owner);
  void list_batches(const HttpRequest& req, ResponseWriter& w, const std::string& owner);
  nlohmann::json batch_json(const platform::BatchRecord& b) const;

  platform::BatchStore& store_;
  BatchRunner& runner_;
  ModelExists model_exists_;
  size_t max_file_bytes_;
};

}  // namespace zs::gateway
