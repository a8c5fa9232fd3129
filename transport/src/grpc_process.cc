#include "dtx/transport/grpc_process.h"

#include <absl/synchronization/mutex.h>

namespace dtx {

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace dtx
