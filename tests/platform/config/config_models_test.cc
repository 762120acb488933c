// Deployments that name models on the hub ("hf:OWNER/REPO:QUANT") instead of paths.
#include <gtest/gtest.h>

#include "platform/config/config.h"

namespace zs::platform {
namespace {

core::Result<Config> parse(const std::string& yaml) {
  ConfigEnvironment env;
  env.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  env.physical_memory_bytes = uint64_t{16} << 30;
  return parse_config(yaml, "zeroserve.yaml", "/etc/zs", env);
}

TEST(ConfigModelNames, AnHfModelAndMmprojAreKeptAsWrittenNotTakenForPaths) {
  auto c = parse("deployments:\n  - name: vl\n    model: hf:ggml-org/SmolVLM-256M-Instruct-GGUF:Q8_0\n"
                 "    mmproj: hf:ggml-org/SmolVLM-256M-Instruct-GGUF/mmproj-SmolVLM-256M-Instruct-Q8_0.gguf@main\n");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->deployments[0].model, "hf:ggml-org/SmolVLM-256M-Instruct-GGUF:Q8_0");
  EXPECT_EQ(c->deployments[0].mmproj, "hf:ggml-org/SmolVLM-256M-Instruct-GGUF/mmproj-SmolVLM-256M-Instruct-Q8_0.gguf@main");
  // Not on disk yet: pulled at the first start, so the file check leaves them alone.
  EXPECT_TRUE(validate_files(*c).is_ok());
}

TEST(ConfigModelNames, AMalformedNameIsAnErrorAtItsLine) {
  auto c = parse("deployments:\n  - name: a\n    model: hf:acme/only-a-repo\n");
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("zeroserve.yaml:3"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("deployments[0].model"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("hf:acme/only-a-repo:Q4_K_M"), std::string::npos) << "shows the form: " << c.status().message();
}

TEST(ConfigModelNames, TheCommandRuntimeNeedsAPathNotAName) {
  auto c = parse("deployments:\n  - name: a\n    model: hf:acme/m-GGUF:Q4_K_M\n    command: llama-server --port {port} -m {model}\n");
  ASSERT_FALSE(c.is_ok());
  EXPECT_NE(c.status().message().find("zeroserve.yaml:3"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("builtin runtime only"), std::string::npos) << c.status().message();
}

TEST(ConfigModelNames, ADraftModelMayBeAName) {
  auto c = parse("deployments:\n  - name: a\n    model: a.gguf\n    speculative: {method: draft-model, draft_model: 'hf:acme/d-GGUF:Q8_0'}\n");
  ASSERT_TRUE(c.is_ok()) << c.status().message();
  EXPECT_EQ(c->deployments[0].draft_model, "hf:acme/d-GGUF:Q8_0");
}

}  // namespace
}  // namespace zs::platform
