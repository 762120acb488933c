#include "gateway/openai/openai_error.h"

#include <nlohmann/json.hpp>

namespace zs::gateway::openai {

std::string openai_error_json(const std::string& message, const std::string& type,
                              const std::string& param, const std::string& code) {
  nlohmann::json err = {
      {"message", message},
      {"type", type},
      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
      {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)},
  };
  // Messages may quote client bytes that are not valid UTF-8; replace rather than throw.
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

}  // namespace zs::gateway::openai
