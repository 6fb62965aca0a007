#include "engine/metrics/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace kcqrs::metrics {
namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in),
              std::istreambuf_iterator<char>());
  return !in.bad();
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// The fields of /proc/self/stat from field 3 (state) on; see proc(5). The
// command name (field 2) is in parentheses and may itself hold spaces and
// parentheses, so the split starts after the last ')'.
std::vector<std::string> StatFields() {
  std::string stat;
  if (!ReadFile("/proc/self/stat", &stat)) return {};
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(stat.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(std::move(f));
  return fields;
}

// proc(5) numbers fields from 1; StatFields() starts at field 3.
std::optional<uint64_t> StatField(const std::vector<std::string>& fields,
                                  size_t n) {
  if (n < 3 || n - 3 >= fields.size()) return std::nullopt;
  return ParseU64(fields[n - 3]);
}

std::optional<uint64_t> BootTimeSeconds() {
  std::string stat;
  if (!ReadFile("/proc/stat", &stat)) return std::nullopt;
  std::istringstream lines(stat);
  for (std::string line; std::getline(lines, line);) {
    constexpr std::string_view kKey = "btime ";
    if (line.starts_with(kKey))
      return ParseU64(std::string_view(line).substr(kKey.size()));
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  // The listing counts the descriptor of the listing itself; leave it out.
  return n > 0 ? n - 1 : 0;
}

}  // namespace

ProcessStats ReadProcessStats() noexcept {
  ProcessStats s;
  try {
    const long ticks = sysconf(_SC_CLK_TCK);
    const long page = sysconf(_SC_PAGESIZE);
    const std::vector<std::string> fields = StatFields();
    if (ticks > 0) {
      const auto utime = StatField(fields, 14);
      const auto stime = StatField(fields, 15);
      if (utime && stime) {
        s.cpu_seconds =
            static_cast<double>(*utime + *stime) / static_cast<double>(ticks);
      }
      const auto start = StatField(fields, 22);
      const auto boot = BootTimeSeconds();
      if (start && boot) {
        s.start_time_seconds =
            static_cast<double>(*boot) +
            static_cast<double>(*start) / static_cast<double>(ticks);
      }
    }
    if (const auto vsize = StatField(fields, 23))
      s.virtual_bytes = static_cast<double>(*vsize);
    if (const auto rss = StatField(fields, 24); rss && page > 0) {
      s.resident_bytes = static_cast<double>(*rss) * static_cast<double>(page);
    }
    s.open_fds = OpenFds();
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
        limit.rlim_cur != RLIM_INFINITY) {
      s.max_fds = static_cast<double>(limit.rlim_cur);
    }
  } catch (...) {
    // Out of memory while reading /proc: report what was read so far.
  }
  return s;
}

}  // namespace kcqrs::metrics
