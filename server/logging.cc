// Structured logging for mnemod (server/logging.h): spdlog sinks and JSON events.
#include "server/logging.h"

#include <atomic>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mnemo::server {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

// Text values stay bare when they are a single token, else JSON-quoted so
// that a line is still split unambiguously into key=value pairs.
std::string TextValue(const nlohmann::json& value) {
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    bool bare = !s.empty();
    for (char c : s) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '"' || c == '=') {
        bare = false;
        break;
      }
    }
    return bare ? s : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Prefix of a payload already formatted by LogEvent. Anything else was logged
// by another module through spdlog directly and is wrapped as a bare msg, so
// every line keeps the chosen format (one JSON object per line in json mode).
constexpr char kStructuredMarker = '\x1f';

std::string JsonDump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The %* flag: the event body (msg and fields).
class EventBodyFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit EventBodyFlag(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    absl::string_view payload(msg.payload.data(), msg.payload.size());
    std::string body;
    if (!payload.empty() && payload[0] == kStructuredMarker) {
      payload.remove_prefix(1);
    } else {
      nlohmann::json text(std::string(payload.data(), payload.size()));
      body = format_ == LogFormat::kJson ? absl::StrCat("\"msg\":", JsonDump(text))
                                         : absl::StrCat("msg=", TextValue(text));
      payload = body;
    }
    dest.append(payload.data(), payload.data() + payload.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EventBodyFlag>(format_);
  }

 private:
  const LogFormat format_;
};

}  // namespace

absl::Status InitLogging(LogFormat format, absl::string_view level) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept "off" when asked.
  if (lvl == spdlog::level::off && absl::AsciiStrToLower(level) != "off") {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level \"", level, "\""));
  }
  auto logger = spdlog::stderr_logger_mt("mnemod");
  logger->set_level(lvl);
  // The pattern adds the timestamp and level around the event body (%*).
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<EventBodyFlag>('*', format).set_pattern(
      format == LogFormat::kJson ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%*})"
                                 : "%Y-%m-%dT%H:%M:%S.%fZ %l %*");
  logger->set_formatter(std::move(formatter));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  g_format.store(format);
  return absl::OkStatus();
}

void LogEvent(spdlog::level::level_enum level, absl::string_view msg, const LogFields& fields) {
  auto logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string body(1, kStructuredMarker);
  if (g_format.load() == LogFormat::kJson) {
    absl::StrAppend(&body, "\"msg\":", JsonDump(nlohmann::json(std::string(msg))));
    for (const auto& [key, value] : fields) {
      absl::StrAppend(&body, ",", JsonDump(nlohmann::json(key)), ":", JsonDump(value));
    }
  } else {
    absl::StrAppend(&body, "msg=", TextValue(nlohmann::json(std::string(msg))));
    for (const auto& [key, value] : fields) {
      absl::StrAppend(&body, " ", key, "=", TextValue(value));
    }
  }
  logger->log(level, "{}", body);
}

}  // namespace mnemo::server
