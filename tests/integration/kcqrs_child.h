// The `kcqrs` binary as a child process of a test: the daemon users run,
// with its own address space, so that the test can kill it or keep it
// running while the test disturbs Kafka around it.
#ifndef KCQRS_TESTS_INTEGRATION_KCQRS_CHILD_H_
#define KCQRS_TESTS_INTEGRATION_KCQRS_CHILD_H_

#include <fcntl.h>
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
    // Everything the child needs is made here: between fork and exec a
    // child of a multi-threaded process may only call async-signal-safe
    // functions (another thread may hold the malloc or stdio lock forever
    // in the copy), so it only redirects and execs.
    std::vector<std::string> args = {binary, "run", topology};
    for (const std::string& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;  // pid_ stays -1: Running() is false at once
    // The child inherits the test's unwritten stdio buffers; nothing in it
    // writes them, but flushing keeps the test's own output in order.
    std::fflush(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(97);  // the test died before prctl
      if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) _exit(99);
      execv(binary.c_str(), argv.data());
      _exit(98);
    }
    close(fd);
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
