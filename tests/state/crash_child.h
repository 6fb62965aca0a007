// What state_crash_child writes, shared with the test that checks it.
#ifndef KCQRS_TESTS_STATE_CRASH_CHILD_H_
#define KCQRS_TESTS_STATE_CRASH_CHILD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "state/checkpoint.h"

namespace kcqrs::state::testing {

inline const std::vector<std::string> kCrashChildStores = {"orders", "views"};

inline Checkpoint CrashChildCheckpoint(int64_t offset) {
  Checkpoint cp;
  cp.changelog_offsets[{"app-orders-changelog", 1}] = offset;
  cp.metadata["input/commands/1"] = std::to_string(offset * 10);
  return cp;
}

}  // namespace kcqrs::state::testing

#endif  // KCQRS_TESTS_STATE_CRASH_CHILD_H_
