// The whole load of a topology file from bytes, as `kcqrs validate` and
// `kcqrs run` do it: config::LoadEngineOptionsFromString (YAML, ${VAR}
// interpolation, --set overrides, the schema) and then Engine::Validate
// (expressions, templates and Lua compiled, the graph checked).
//
// Input: a kcqrs YAML file. Leading lines of the form "#set KEY=VALUE" (YAML
// comments, so the file stays valid) are also passed as --set overrides.
// ${VAR} looks up a fixed environment: KAFKA=localhost:9092, EMPTY="",
// NUM=3, YAML=[a, b]; every other name is unset.
//
// What must hold: nothing throws, crashes or hangs; a load that fails
// reports at least one error, each with a message, and a Status whose
// message is not empty.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"
#include "kcqrs/engine.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "topology_fuzzer: %s\n", what.c_str());
  std::abort();
}

std::optional<std::string> FakeEnv(const std::string& name) {
  if (name == "KAFKA") return "localhost:9092";
  if (name == "EMPTY") return "";
  if (name == "NUM") return "3";
  if (name == "YAML") return "[a, b]";
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);

  kcqrs::config::LoadOptions load;
  load.getenv = FakeEnv;
  constexpr std::string_view kSet = "#set ";
  size_t line_start = 0;
  while (yaml.compare(line_start, kSet.size(), kSet) == 0) {
    size_t end = yaml.find('\n', line_start);
    if (end == std::string::npos) end = yaml.size();
    load.overrides.push_back(yaml.substr(line_start + kSet.size(), end - line_start - kSet.size()));
    line_start = end + 1;
    if (line_start >= yaml.size()) break;
  }

  std::vector<kcqrs::config::ConfigError> errors;
  auto options = kcqrs::config::LoadEngineOptionsFromString(yaml, "fuzz.yaml", load, &errors);
  if (!options.ok()) {
    if (errors.empty()) Fail("load failed without a ConfigError: " + options.status().ToString());
    if (options.status().message().empty()) Fail("load failed with an empty message");
    for (const auto& e : errors) {
      if (e.message.empty()) Fail("a ConfigError without a message: " + e.ToString());
      (void)e.ToString();
    }
    return 0;
  }
  kcqrs::Status valid = kcqrs::Engine::Validate(*options);
  if (!valid.ok() && valid.message().empty()) Fail("Validate failed with an empty message");
  return 0;
}
