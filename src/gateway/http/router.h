#pragma once
// Maps (method, exact path) to a handler. Unknown paths answer 404, known paths with another
// method answer 405 with an Allow header; both with an OpenAI-style error body.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gateway/http/http_types.h"
#include "gateway/http/response_writer.h"

namespace zs::gateway {

// Runs on an I/O thread: must not block. Long work goes to another thread, which keeps the
// writer and responds later.
using Handler = std::function<void(const HttpRequest&, std::shared_ptr<ResponseWriter>)>;

// Answers 405 for a method `path` does not take, with an Allow header listing the ones it does
// ("GET, POST"). A protocol answer, not the failure of an operation: it has no Status code.
void respond_method_not_allowed(ResponseWriter& w, const std::string& method, const std::string& path,
                                const std::string& allow);

class Router {
 public:
  // Registers `handler` for `method` (e.g. "POST") on `path` (without query, e.g.
  // "/v1/chat/completions"). A later registration of the same pair replaces the earlier.
  void add(const std::string& method, const std::string& path, Handler handler);

  // Called for paths no route names (instead of the 404), e.g. to proxy them elsewhere.
  void set_fallback(Handler handler) { fallback_ = std::move(handler); }

  // Dispatches one request; answers 404/405 itself.
  void dispatch(const HttpRequest& request, const std::shared_ptr<ResponseWriter>& writer) const;

 private:
  std::map<std::string, std::map<std::string, Handler>> routes_;  // path -> method -> handler
  Handler fallback_;
};

}  // namespace zs::gateway
