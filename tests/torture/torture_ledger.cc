// A barrier-protected ledger branch service in a process of its own
// (tests/testing/ledger_service.h), so that the crash torture can SIGKILL it
// and start it again on the same port and ledger file.
//
//   torture_ledger <ledger.db> <port> <accounts> <initial balance>
//
// Prints "ledger listening on 127.0.0.1:<port>", then serves until stdin
// closes (or the process is killed).

#include "ledger_service.h"

#include <cstdio>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr,
                 "usage: torture_ledger <ledger.db> <port> <accounts> "
                 "<initial balance>\n");
    return 2;
  }
  auto ledger = dtx::testing::LedgerService::Start(
      argv[1], std::stoi(argv[3]), std::stoll(argv[4]), std::stoi(argv[2]),
      /*identify_callers=*/false);
  if (!ledger.ok()) {
    std::fprintf(stderr, "torture_ledger: %s\n",
                 ledger.status().ToString().c_str());
    return 1;
  }
  std::printf("ledger listening on 127.0.0.1:%s\n", argv[2]);
  std::fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  return 0;
}
