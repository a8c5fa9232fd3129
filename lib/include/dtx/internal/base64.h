// Standard base64 with padding (RFC 4648 §4), as Go's encoding/json writes
// []byte and protojson writes bytes fields: dtm's workflow data, results and
// progresses, and binary branch headers in the journal's options. Internal to
// dtx (its adapters share it); not part of the API.

#ifndef DTX_INTERNAL_BASE64_H_
#define DTX_INTERNAL_BASE64_H_

#include "dtx/core_export.h"

#include <optional>
#include <string>
#include <string_view>

namespace dtx::internal {

DTX_CORE_EXPORT std::string Base64Encode(std::string_view in);
// nullopt for anything that is not padded standard base64.
DTX_CORE_EXPORT std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace dtx::internal

#endif  // DTX_INTERNAL_BASE64_H_
