#include "dtx/dtm_api.h"

namespace dtx {

DtmApi::~DtmApi() = default;

}  // namespace dtx
