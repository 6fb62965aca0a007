// Where integration tests find the real Kafka broker.
//
// CTest's "kafka" fixture runs `scripts/kafka start --dir $KCQRS_TEST_KAFKA_DIR`,
// which writes the bootstrap address to $KCQRS_TEST_KAFKA_DIR/bootstrap. A test
// that needs Kafka calls TestBootstrapServers() and fails (never skips) when the
// broker is not there: a missing broker is a broken test run, not a pass.
#ifndef KCQRS_TESTS_SUPPORT_TEST_KAFKA_H_
#define KCQRS_TESTS_SUPPORT_TEST_KAFKA_H_

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

namespace kcqrs::testing {

// The bootstrap address of the test broker; adds a fatal failure to the
// current test and returns "" when there is none.
inline std::string TestBootstrapServers() {
  const char* dir = std::getenv("KCQRS_TEST_KAFKA_DIR");
  if (dir == nullptr || *dir == '\0') {
    ADD_FAILURE() << "KCQRS_TEST_KAFKA_DIR is not set: run integration tests "
                     "through ctest, whose 'kafka' fixture starts the broker "
                     "(or export it after `scripts/kafka start --dir DIR`)";
    return "";
  }
  std::ifstream in(std::string(dir) + "/bootstrap");
  std::string bootstrap;
  std::getline(in, bootstrap);
  if (bootstrap.empty()) {
    ADD_FAILURE() << "no broker address in " << dir
                  << "/bootstrap: did `scripts/kafka start` succeed?";
  }
  return bootstrap;
}

// A topic or group name no earlier run has used, so tests never see each
// other's records even when a broker is reused.
inline std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return prefix + "-" +
         std::to_string(
             std::chrono::duration_cast<std::chrono::microseconds>(now).count()) +
         "-" + std::to_string(counter++);
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_TEST_KAFKA_H_
