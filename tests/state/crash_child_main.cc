// state_crash_child DIR COMMITS [VALUE_BYTES [MAX_UNFLUSHED_WRITES]]: opens
// the task state in DIR (RocksDbEnvOptions::max_unflushed_writes as given,
// else the default), commits COMMITS transactions (keys "o<i>" in store
// orders and "v<i>" in store views, each a value of VALUE_BYTES bytes,
// default 9, beginning with "committed"; checkpoint offset i + 1), buffers
// one more write that it never commits, and then kills itself with SIGKILL,
// so that nothing is closed or flushed: what a kill -9 or an OOM kill does.
//
// A separate program (spawned, not forked from the test) because RocksDB
// starts threads, and a forked copy of a multi-threaded process may not.
// Exit codes other than death by SIGKILL mean the child failed: 2 usage,
// 3 open, 4 put, 5 commit.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "state/rocksdb_env.h"
#include "state/task_state.h"
#include "state/task_storage.h"
#include "tests/state/crash_child.h"

int main(int argc, char** argv) {
  using kcqrs::state::TaskState;
  using kcqrs::state::TaskStorage;
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: %s DIR COMMITS [VALUE_BYTES [MAX_UNFLUSHED_WRITES]]\n",
                 argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int commits = std::atoi(argv[2]);
  const size_t value_bytes = argc >= 4 ? std::strtoul(argv[3], nullptr, 10) : 9;
  kcqrs::state::RocksDbEnvOptions env_options;
  if (argc == 5) env_options.max_unflushed_writes = std::strtoull(argv[4], nullptr, 10);
  std::string value = "committed";
  value.resize(std::max(value.size(), value_bytes), '.');
  auto storage = TaskStorage::OpenRocksDb(
      dir, kcqrs::state::testing::kCrashChildStores,
      kcqrs::state::RocksDbEnv::Create(env_options));
  if (!storage.ok()) {
    std::fprintf(stderr, "%s\n", storage.status().ToString().c_str());
    return 3;
  }
  // Leaked on purpose: SIGKILL below must find the database open.
  auto* state = new TaskState(std::move(storage).value(), nullptr);
  for (int i = 0; i < commits; ++i) {
    const std::string n = std::to_string(i);
    if (!state->Store("orders")->Put("o" + n, value).ok() ||
        !state->Store("views")->Put("v" + n, value).ok()) {
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
