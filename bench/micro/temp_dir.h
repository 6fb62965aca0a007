// A directory under the system's temp directory for the lifetime of the
// object (RocksDB state of the micro benchmarks).
#ifndef KCQRS_BENCH_MICRO_TEMP_DIR_H_
#define KCQRS_BENCH_MICRO_TEMP_DIR_H_

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace kcqrs::bench {

class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kcqrs-micro-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace kcqrs::bench

#endif  // KCQRS_BENCH_MICRO_TEMP_DIR_H_
