// A Kafka broker of one test's own, started and stopped by the project's
// scripts/kafka, for tests that stop, kill or restart it: doing that to the
// shared broker of the "kafka" CTest fixture would disturb every other
// test. The including target defines KCQRS_SOURCE_DIR.
#ifndef KCQRS_TESTS_INTEGRATION_OWN_BROKER_H_
#define KCQRS_TESTS_INTEGRATION_OWN_BROKER_H_

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace kcqrs::testing {

// Runs `scripts/kafka ARGS` and returns its exit code (-1 if it did not
// exit).
inline int KafkaScript(const std::string& args) {
  const std::string cmd = std::string(KCQRS_SOURCE_DIR) + "/scripts/kafka " + args;
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A one-node broker in `dir` (a cluster a killed run left there is
// replaced), stopped when destroyed. bootstrap() is empty if it did not
// start.
class OwnBroker {
 public:
  explicit OwnBroker(std::string dir) : dir_(std::move(dir)) {
    if (KafkaScript("start --replace --dir " + dir_ + " >/dev/null") == 0) {
      std::ifstream in(dir_ + "/bootstrap");
      std::getline(in, bootstrap_);
    }
  }
  ~OwnBroker() { KafkaScript("stop --dir " + dir_ + " >/dev/null 2>&1"); }
  OwnBroker(const OwnBroker&) = delete;
  OwnBroker& operator=(const OwnBroker&) = delete;
  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string bootstrap_;
};

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_INTEGRATION_OWN_BROKER_H_
