// include/kcqrs/logging.h on spdlog: every module logs through spdlog's
// default logger, so a sink of ours under it (SwitchSink) redirects them
// all.
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

// The one sink of the default logger once kcqrs/logging.h is used: it
// forwards each event to the current target (the host's sink, or stderr in
// text or JSON). Switching the target takes base_sink's mutex, which every
// event holds too, so it is safe while other threads log; replacing the
// default logger itself is not (spdlog.h: set_default_logger must not race
// with logging), which is why that happens once only.
class SwitchSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SwitchSink() { Apply(); }

  void Set(LogFormat format) {
    std::lock_guard<std::mutex> lock(mutex_);
    format_ = format;
    Apply();
  }
  void Set(LogSink sink) {
    std::lock_guard<std::mutex> lock(mutex_);
    sink_ = std::move(sink);
    Apply();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (sink_) {
      sink_(FromSpdlog(msg.level), Component(msg),
            std::string_view(msg.payload.data(), msg.payload.size()));
    } else {
      stderr_->log(msg);
    }
  }
  void flush_() override { stderr_->flush(); }

 private:
  // Under mutex_.
  void Apply() {
    stderr_ = std::make_shared<spdlog::sinks::stderr_color_sink_st>();
    if (format_ == LogFormat::kJson) stderr_->set_formatter(std::make_unique<JsonFormatter>());
  }

  LogFormat format_ = LogFormat::kText;
  LogSink sink_;
  std::shared_ptr<spdlog::sinks::sink> stderr_;
};

// Installs the SwitchSink as the default logger's only sink, once.
SwitchSink& Switch() {
  static SwitchSink* const sink = [] {
    auto s = std::make_shared<SwitchSink>();
    auto previous = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(previous->name(), s);
    logger->set_level(previous->level());
    logger->flush_on(previous->flush_level());
    spdlog::set_default_logger(logger);
    return s.get();  // the registry keeps the logger, and so the sink, alive
  }();
  return *sink;
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

void SetLogSink(LogSink sink) { Switch().Set(std::move(sink)); }

void SetLogFormat(LogFormat format) { Switch().Set(format); }

}  // namespace kcqrs
