// state_crash_child DIR COMMITS: opens the task state in DIR, commits COMMITS
// transactions (key "o<i>" = "committed", checkpoint offset i + 1), buffers
// one more write that it never commits, and then kills itself with SIGKILL,
// so that nothing is closed or flushed: what a kill -9 or an OOM kill does.
//
// A separate program (spawned, not forked from the test) because RocksDB
// starts threads, and a forked copy of a multi-threaded process may not.
// Exit codes other than death by SIGKILL mean the child failed: 2 usage,
// 3 open, 4 put, 5 commit.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "state/task_state.h"
#include "state/task_storage.h"
#include "tests/state/crash_child.h"

int main(int argc, char** argv) {
  using kcqrs::state::TaskState;
  using kcqrs::state::TaskStorage;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR COMMITS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int commits = std::atoi(argv[2]);
  auto storage = TaskStorage::OpenRocksDb(
      dir, kcqrs::state::testing::kCrashChildStores, nullptr);
  if (!storage.ok()) {
    std::fprintf(stderr, "%s\n", storage.status().ToString().c_str());
    return 3;
  }
  // Leaked on purpose: SIGKILL below must find the database open.
  auto* state = new TaskState(std::move(storage).value(), nullptr);
  for (int i = 0; i < commits; ++i) {
    if (!state->Store("orders")
             ->Put("o" + std::to_string(i), "committed")
             .ok()) {
      return 4;
    }
    if (!state->Commit(kcqrs::state::testing::CrashChildCheckpoint(i + 1))
             .ok()) {
      return 5;
    }
  }
  if (!state->Store("orders")->Put("o-last", "never committed").ok()) return 4;
  kill(getpid(), SIGKILL);
  pause();
  return 0;
}
