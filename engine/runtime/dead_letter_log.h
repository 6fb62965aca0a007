// DeadLetterLog: the log lines that say a record went to the dead-letter
// topic, and why.
//
// A dead letter is an operational incident (a record no rule could handle),
// so an operator must see it without reading the dead-letter topic. But a
// bad producer can send thousands a second, and a line each would bury the
// log: at most one line per source topic per second (kInterval) names the
// record (topic-partition@offset) and the reason; the ones in between are
// counted and the count goes with the next line, or with Flush() once the
// second is over, so that the last of a burst is never silent.
//
// Ownership: one per stream thread (its TaskManager), so the limit is per
// source topic per stream thread. Not thread-safe: the owning thread calls
// it. Time comes in as an argument, so tests need no clock.
#ifndef KCQRS_ENGINE_RUNTIME_DEAD_LETTER_LOG_H_
#define KCQRS_ENGINE_RUNTIME_DEAD_LETTER_LOG_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace kcqrs::engine {

class DeadLetterLog {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kInterval{1};

  // `dead_letter_topic` is named in each line; `sink` receives each line
  // (by default spdlog's warn).
  explicit DeadLetterLog(std::string dead_letter_topic,
                         std::function<void(const std::string&)> sink = nullptr);

  // One record went to the dead-letter topic because of `reason`.
  void Add(const std::string& topic, int32_t partition, int64_t offset,
           const std::string& reason, Clock::time_point now);

  // Says how many were left unsaid for each topic whose interval is over.
  void Flush(Clock::time_point now);

 private:
  struct PerTopic {
    Clock::time_point last_line{};
    bool logged = false;
    uint64_t suppressed = 0;
    std::string last;  // the last suppressed one: where, and why
  };

  std::string dead_letter_topic_;
  std::function<void(const std::string&)> sink_;
  std::map<std::string, PerTopic> topics_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_DEAD_LETTER_LOG_H_
