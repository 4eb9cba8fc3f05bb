// Structured logging for mnemod over spdlog.
//
// Every event is a message plus key fields. In json format each event is one
// JSON object per line: {"ts":..., "level":..., "msg":..., <fields>}; in text
// format it is `TS LEVEL msg="..." key=value ...`. Timestamps are UTC.
#ifndef MNEMO_SERVER_LOGGING_H_
#define MNEMO_SERVER_LOGGING_H_

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mnemo::server {

enum class LogFormat { kText, kJson };

using LogFields = std::vector<std::pair<std::string, nlohmann::json>>;

// Installs the default spdlog logger (stderr) with the given format and
// level ("trace", "debug", "info", "warn", "error", "critical", "off").
// INVALID_ARGUMENT on an unknown level.
absl::Status InitLogging(LogFormat format, absl::string_view level);

// Logs one event through the default logger. Cheap when the level is off.
void LogEvent(spdlog::level::level_enum level, absl::string_view msg,
              const LogFields& fields = {});

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_LOGGING_H_
