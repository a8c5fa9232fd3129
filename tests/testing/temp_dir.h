// A temporary directory removed with its contents when the object dies.

#ifndef DTX_TESTS_TESTING_TEMP_DIR_H_
#define DTX_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace dtx::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace dtx::testing

#endif  // DTX_TESTS_TESTING_TEMP_DIR_H_
