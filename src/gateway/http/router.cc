#include "gateway/http/router.h"

#include "gateway/openai/openai_error.h"

namespace zs::gateway {

void Router::add(const std::string& method, const std::string& path, Handler handler) {
  routes_[path][method] = std::move(handler);
}

void Router::dispatch(const HttpRequest& request,
                      const std::shared_ptr<ResponseWriter>& writer) const {
  std::string path(request.path());
  auto it = routes_.find(path);
  if (it == routes_.end()) {
    if (fallback_) return fallback_(request, writer);
    writer->respond_json(404, openai::openai_error_json("no route for " + request.method + " " + path,
                                                        "invalid_request_error", "", "not_found"));
    return;
  }
  auto m = it->second.find(request.method);
  if (m == it->second.end()) {
    std::string allow;
    for (const auto& [method, h] : it->second) allow += (allow.empty() ? "" : ", ") + method;
    writer->respond_json(
        405,
        openai::openai_error_json("method " + request.method + " is not allowed on " + path +
                                      " (allowed: " + allow + ")",
                                  "invalid_request_error", "", "method_not_allowed"),
        {{"Allow", allow}});
    return;
  }
  m->second(request, writer);
}

}  // namespace zs::gateway
