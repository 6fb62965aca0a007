// Where kcqrs logs, and how: for a program that embeds the engine and has a
// logger of its own, and for `kcqrs run --log-format json`.
//
// By default kcqrs writes one line per event to stderr ("[2026-11-30
// 17:51:25.123] [info] message"). SetLogSink() hands every event to the
// host's logger instead; SetLogFormat(kJson) writes one JSON object per
// line to stderr, for log shippers:
//
//   {"ts":"2026-11-30T17:51:25.123Z","level":"info","logger":"kcqrs",
//    "thread":4242,"msg":"started 1 stream thread(s) for application orders"}
//
// Thread-safety: the first call of SetLogSink or SetLogFormat installs
// kcqrs's own sink under spdlog's default logger, which must not race with
// logging: make it before Engine::Open (before kcqrs logs anything). After
// that, all functions may be called from any thread, also while an engine
// runs. A sink is called one event at a time, from whichever engine thread
// logs (stream threads, the HTTP server, librdkafka's).
#ifndef KCQRS_LOGGING_H_
#define KCQRS_LOGGING_H_

#include <functional>
#include <string_view>

namespace kcqrs {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

// Events below `level` are dropped before they are formatted. Default: kInfo.
void SetLogLevel(LogLevel level);

// "trace", "debug", "info", "warn", "error", "critical", "off".
std::string_view LogLevelName(LogLevel level);

// `component` is the part of kcqrs that logs ("kcqrs" today); `message` is
// the text alone, without time or level. Both are valid during the call only.
using LogSink =
    std::function<void(LogLevel level, std::string_view component, std::string_view message)>;

// Sends every event to `sink` instead of stderr; an empty sink restores
// stderr (in the current format).
void SetLogSink(LogSink sink);

enum class LogFormat {
  kText,  // "[time] [level] message" (default)
  kJson,  // one JSON object per line: ts (UTC, ms), level, logger, thread, msg
};

// The format of what goes to stderr (not to a sink set with SetLogSink).
void SetLogFormat(LogFormat format);

}  // namespace kcqrs

#endif  // KCQRS_LOGGING_H_
