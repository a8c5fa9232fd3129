#include "dtx/alert_sink.h"

namespace dtx {

AlertSink::~AlertSink() = default;

}  // namespace dtx
