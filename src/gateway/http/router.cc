#include "gateway/http/router.h"

#include "gateway/openai/openai_error.h"

namespace zs::gateway {

void respond_method_not_allowed(ResponseWriter& w, const std::string& method, const std::string& path,
                                const std::string& allow) {
  w.respond(405, "application/json",
            openai::openai_error_json("method " + method + " is not allowed on " + path + " (allowed: " + allow + ")",
                                      "invalid_request_error", "", "method_not_allowed"),
            {{"Allow", allow}});
}

void Router::add(const std::string& method, const std::string& path, Handler handler) {
  routes_[path][method] = std::move(handler);
}

void Router::dispatch(const HttpRequest& request,
                      const std::shared_ptr<ResponseWriter>& writer) const {
  std::string path(request.path());
  auto it = routes_.find(path);
  if (it == routes_.end()) {
    if (fallback_) return fallback_(request, writer);
    return openai::respond_error(*writer, core::Status::not_found("no route for " + request.method + " " + path), "",
                                 "not_found");
  }
  auto m = it->second.find(request.method);
  if (m == it->second.end()) {
    std::string allow;
    for (const auto& [method, h] : it->second) allow += (allow.empty() ? "" : ", ") + method;
    return respond_method_not_allowed(*writer, request.method, path, allow);
  }
  m->second(request, writer);
}

}  // namespace zs::gateway
