// The `kcqrs` binary as a child process of a test: the daemon users run,
// with its own address space, so that the test can kill it or keep it
// running while the test disturbs Kafka around it.
#ifndef KCQRS_TESTS_INTEGRATION_KCQRS_CHILD_H_
#define KCQRS_TESTS_INTEGRATION_KCQRS_CHILD_H_

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kcqrs::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One run of `binary run topology --set ...`, stdout and stderr appended to
// `log`. Killed with SIGKILL when destroyed (a failed assertion must not
// leave it running), and when the test process dies (CTest kills a test on
// its time-out with SIGKILL, which runs no destructor). The kernel ties the
// child to the creating thread, so create it on a thread that outlives it
// (the test's own).
class KcqrsChild {
 public:
  KcqrsChild(const std::string& binary, const std::string& topology,
             const std::vector<std::string>& sets, const std::string& log) {
    const pid_t parent = getpid();
    // The child inherits the test's unwritten stdio buffers; freopen below
    // would write them out a second time.
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(97);  // the test died before prctl

      FILE* out = std::freopen(log.c_str(), "a", stdout);
      if (out == nullptr) _exit(99);
      dup2(fileno(stdout), STDERR_FILENO);
      std::vector<std::string> args = {binary, "run", topology};
      for (const std::string& s : sets) {
        args.push_back("--set");
        args.push_back(s);
      }
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(98);
    }
  }
  KcqrsChild(const KcqrsChild&) = delete;
  KcqrsChild& operator=(const KcqrsChild&) = delete;
  ~KcqrsChild() { Kill(SIGKILL); }

  // Sends `sig` and waits for the process to end.
  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    exit_status_ = status;
    pid_ = -1;
  }

  // Sends `sig` and returns at once (a clean stop the test times from the
  // signal, not from the exit); Running() or Kill() reaps the process.
  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // True while the process has not ended (it may have crashed on its own).
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = status;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // The wait status once it ended (WIFEXITED, WIFSIGNALED...).
  int exit_status() const { return exit_status_; }

 private:
  pid_t pid_ = -1;
  int exit_status_ = 0;
};

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_INTEGRATION_KCQRS_CHILD_H_
