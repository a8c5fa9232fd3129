#include "temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <stdlib.h>
#include <sys/stat.h>

namespace dtx::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr ? base : "/tmp") + "/dtx-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  // World-traversable, so that helpers running as another user can reach it.
  chmod(pattern.c_str(), 0755);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path_, ec);
}

}  // namespace dtx::testing
