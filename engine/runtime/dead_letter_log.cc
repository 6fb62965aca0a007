#include "engine/runtime/dead_letter_log.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace kcqrs::engine {

DeadLetterLog::DeadLetterLog(std::string dead_letter_topic,
                             std::function<void(const std::string&)> sink)
    : dead_letter_topic_(std::move(dead_letter_topic)), sink_(std::move(sink)) {
  if (!sink_) sink_ = [](const std::string& line) { spdlog::warn("{}", line); };
}

void DeadLetterLog::Add(const std::string& topic, int32_t partition, int64_t offset,
                        const std::string& reason, Clock::time_point now) {
  PerTopic& t = topics_[topic];
  const std::string where = topic + "-" + std::to_string(partition) + "@" + std::to_string(offset);
  if (t.logged && now - t.last_line < kInterval) {
    ++t.suppressed;
    t.last = where + ": " + reason;
    return;
  }
  std::string line = "dead letter: " + where + " went to " + dead_letter_topic_ + ": " + reason;
  if (t.suppressed > 0) {
    line += " (and " + std::to_string(t.suppressed) + " more from " + topic +
            " since the last such line)";
  }
  t.logged = true;
  t.last_line = now;
  t.suppressed = 0;
  t.last.clear();
  sink_(line);
}

void DeadLetterLog::Flush(Clock::time_point now) {
  for (auto& [topic, t] : topics_) {
    if (t.suppressed == 0 || now - t.last_line < kInterval) continue;
    sink_("dead letters: " + std::to_string(t.suppressed) + " more from " + topic + " went to " +
          dead_letter_topic_ + " (the last: " + t.last + ")");
    t.last_line = now;
    t.suppressed = 0;
    t.last.clear();
  }
}

}  // namespace kcqrs::engine
