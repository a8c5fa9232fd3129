// Process-wide settings of the runtime under gRPC, for a program's main
// (dtx-server's, and the benchmarks' on both sides of their comparisons).
// A host that embeds dtx decides these for its own process.
//
// Thread safety: call before any thread that takes an absl::Mutex starts.

#ifndef DTX_TRANSPORT_GRPC_PROCESS_H_
#define DTX_TRANSPORT_GRPC_PROCESS_H_

#include "dtx/transport/grpc_export.h"

namespace dtx {

// Turns off Abseil's mutex deadlock detection. Debian builds Abseil without
// NDEBUG, so the detection is on: each absl::Mutex lock (gRPC takes many per
// call) records the lock order in a graph under one process-wide lock.
// A release build of Abseil leaves it off, as this does (docs/operations.md,
// "Threads").
DTX_GRPC_EXPORT void DisableMutexDeadlockDetection();

}  // namespace dtx

#endif  // DTX_TRANSPORT_GRPC_PROCESS_H_
