// ReadProcessStats: the standard process_* metrics of the calling process,
// read from /proc/self (Linux). Each field is empty when it could not be
// read (another OS, /proc not mounted), so that Metrics leaves it out rather
// than report a made-up zero.
//
// Cost: a few small reads of /proc and one directory listing (open file
// descriptors); meant for once per scrape, not for a hot path.
// Thread-safety: a free function with no shared state.
#ifndef KCQRS_ENGINE_METRICS_PROCESS_STATS_H_
#define KCQRS_ENGINE_METRICS_PROCESS_STATS_H_

#include <optional>

namespace kcqrs::metrics {

struct ProcessStats {
  std::optional<double> cpu_seconds;         // user + system CPU time
  std::optional<double> resident_bytes;      // resident set size
  std::optional<double> virtual_bytes;       // virtual memory size
  std::optional<double> start_time_seconds;  // since the Unix epoch
  std::optional<double> open_fds;            // open file descriptors
  std::optional<double> max_fds;             // RLIMIT_NOFILE soft limit
};

ProcessStats ReadProcessStats() noexcept;

}  // namespace kcqrs::metrics

#endif  // KCQRS_ENGINE_METRICS_PROCESS_STATS_H_
