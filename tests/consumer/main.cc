// Builds against the installed package: the embedded coordinator (SQLite
// journal, gRPC client) runs a saga whose steps need no branch service.

#include "dtx/dtx.h"
#include "dtx/embedded.h"

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer <journal path>\n");
    return 2;
  }
  dtx::EmbeddedOptions embedded;
  embedded.journal_path = argv[1];
  auto dtm = dtx::OpenEmbeddedCoordinator(dtx::Options(), embedded);
  if (!dtm.ok()) {
    std::fprintf(stderr, "%s\n", dtm.status().ToString().c_str());
    return 1;
  }
  auto gid = (*dtm)->NewGid();
  if (!gid.ok()) return 1;
  dtx::Status s = dtx::Saga(**dtm, *gid)
                      .Add("", "", "")
                      .Add("", "", "")
                      .WaitResult(true)
                      .Submit();
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto found = (*dtm)->Query(*gid);
  if (!found.ok()) return 1;
  std::printf("dtx %s: %s %s %s\n", dtx::kVersion, found->trans.gid.c_str(),
              std::string(dtx::ToString(found->trans.trans_type)).c_str(),
              std::string(dtx::ToString(found->trans.status)).c_str());
  return 0;
}
