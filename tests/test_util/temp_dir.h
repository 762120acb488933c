#pragma once
// A fresh directory under the system temp dir, removed with everything in it at scope end.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace zs::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "zs-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string shared_dir() { return ZS_SHARED_DIR; }
inline std::string golden_model(const std::string& name) { return shared_dir() + "/golden/models/" + name; }

}  // namespace zs::testing
