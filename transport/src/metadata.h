// Checks of gRPC metadata before it reaches grpc::ClientContext, which aborts
// the whole process on a key or value it does not accept.

#ifndef DTX_TRANSPORT_METADATA_H_
#define DTX_TRANSPORT_METADATA_H_

#include "dtx/status.h"

#include <string>
#include <string_view>

namespace dtx::internal {

// Lower-cases `key` in place and checks it: non-empty, only 0-9 a-z - _ .,
// not reserved (grpc-*, a leading ':').
Status NormalizeMetadataKey(std::string* key);

// Checks a value for `key` (already normalized): any bytes for "-bin" keys,
// printable ASCII (0x20-0x7E) otherwise.
Status CheckMetadataValue(std::string_view key, std::string_view value);

}  // namespace dtx::internal

#endif  // DTX_TRANSPORT_METADATA_H_
