// include/kcqrs/logging.h on spdlog: every module logs through spdlog's
// default logger, so replacing that logger's sink or its formatter here
// redirects them all. The default logger is swapped whole
// (spdlog::set_default_logger), which spdlog makes safe against concurrent
// logging.
#include "kcqrs/logging.h"

#include <spdlog/formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace kcqrs {
namespace {

// The name JSON and sinks report when a logger has none (the default
// logger's name is empty).
constexpr std::string_view kComponent = "kcqrs";

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kCritical: return spdlog::level::critical;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

LogLevel FromSpdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return LogLevel::kTrace;
    case spdlog::level::debug: return LogLevel::kDebug;
    case spdlog::level::info: return LogLevel::kInfo;
    case spdlog::level::warn: return LogLevel::kWarn;
    case spdlog::level::err: return LogLevel::kError;
    case spdlog::level::critical: return LogLevel::kCritical;
    default: return LogLevel::kOff;
  }
}

std::string_view Component(const spdlog::details::log_msg& msg) {
  return msg.logger_name.size() == 0
             ? kComponent
             : std::string_view(msg.logger_name.data(), msg.logger_name.size());
}

void AppendJsonString(std::string_view s, spdlog::memory_buf_t& out) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out.append(std::string_view(escaped));
        } else {
          out.push_back(c);  // UTF-8 passes through as JSON allows
        }
    }
  }
  out.push_back('"');
}

// One JSON object per line: {"ts","level","logger","thread","msg"}.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto since_epoch = msg.time.time_since_epoch();
    std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
    auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char ts[96];  // room for any int the compiler imagines in each field
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(millis));
    dest.append(std::string_view("{\"ts\":\""));
    dest.append(std::string_view(ts));
    dest.append(std::string_view("\",\"level\":\""));
    dest.append(LogLevelName(FromSpdlog(msg.level)));
    dest.append(std::string_view("\",\"logger\":"));
    AppendJsonString(Component(msg), dest);
    dest.append(std::string_view(",\"thread\":"));
    dest.append(std::to_string(msg.thread_id));
    dest.append(std::string_view(",\"msg\":"));
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    dest.append(std::string_view("}\n"));
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// Hands each event to the host's sink. base_sink's mutex serialises calls,
// so a sink sees one event at a time.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogSink sink) : sink_(std::move(sink)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    sink_(FromSpdlog(msg.level), Component(msg),
          std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  LogSink sink_;
};

// The settings the default logger is rebuilt from.
std::mutex settings_mutex;
LogFormat current_format = LogFormat::kText;
LogSink current_sink;

void RebuildDefaultLogger() {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (current_sink) {
    sink = std::make_shared<CallbackSink>(current_sink);
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    if (current_format == LogFormat::kJson) sink->set_formatter(std::make_unique<JsonFormatter>());
  }
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(previous->name(), std::move(sink));
  logger->set_level(previous->level());
  logger->flush_on(previous->flush_level());
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kCritical: return "critical";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

void SetLogLevel(LogLevel level) { spdlog::set_level(ToSpdlog(level)); }

void SetLogSink(LogSink sink) {
  std::lock_guard lock(settings_mutex);
  current_sink = std::move(sink);
  RebuildDefaultLogger();
}

void SetLogFormat(LogFormat format) {
  std::lock_guard lock(settings_mutex);
  current_format = format;
  RebuildDefaultLogger();
}

}  // namespace kcqrs
