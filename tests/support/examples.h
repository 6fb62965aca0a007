// Loading the example topologies (examples/<name>/topology.yaml) in tests,
// with every ${VAR:-default} taking its default whatever the environment.
// Tests that use it define KCQRS_SOURCE_DIR.
#ifndef KCQRS_TESTS_SUPPORT_EXAMPLES_H_
#define KCQRS_TESTS_SUPPORT_EXAMPLES_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "kcqrs/options.h"

namespace kcqrs::testing {

inline EngineOptions LoadExample(const std::string& name,
                                 std::vector<std::string> overrides = {}) {
  config::LoadOptions load;
  load.overrides = std::move(overrides);
  load.getenv = [](const std::string&) { return std::optional<std::string>(); };
  auto options = config::LoadEngineOptionsFromFile(
      std::string(KCQRS_SOURCE_DIR) + "/examples/" + name + "/topology.yaml", load);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return options.ok() ? *options : EngineOptions{};
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_EXAMPLES_H_
