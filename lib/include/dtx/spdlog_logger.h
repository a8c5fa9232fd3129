// Adapter from dtx::Logger to a host's spdlog logger. spdlog itself stays out
// of this header: include <spdlog/spdlog.h> where the logger is built.
//
//   auto host = spdlog::stdout_color_mt("payments");
//   options.logger = dtx::NewSpdlogLogger(host);

#ifndef DTX_SPDLOG_LOGGER_H_
#define DTX_SPDLOG_LOGGER_H_

#include "dtx/core_export.h"
#include "dtx/logger.h"

#include <memory>

namespace spdlog {
class logger;
}  // namespace spdlog

namespace dtx {

// Writes through `logger`, whose level and sinks stay the host's.
// REQUIRES: logger != nullptr.
DTX_CORE_EXPORT std::shared_ptr<Logger> NewSpdlogLogger(
    std::shared_ptr<spdlog::logger> logger);

}  // namespace dtx

#endif  // DTX_SPDLOG_LOGGER_H_
