// Loads a kcqrs YAML file into EngineOptions.
//
// Every problem in the file is reported, not just the first, each as
// "file:line:col: what was expected, what was found" (unknown keys get a
// "did you mean"). `${VAR}` and `${VAR:-default}` in scalar values are
// replaced from the environment; `$$` is a literal `$`. Overrides of the form
// "path.to.key=value" (from `kcqrs run --set`) are applied on top of the file,
// the value parsed as YAML so lists work: `kafka.bootstrap_servers=[a:9092,b:9092]`.
//
// Thread-safety: the functions are pure; call them from any thread.
#ifndef KCQRS_CONFIG_CONFIG_LOADER_H_
#define KCQRS_CONFIG_CONFIG_LOADER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs::config {

// One problem found in a config file. line and column are 1-based; 0 when the
// problem has no place in the file (an override, a missing file).
struct ConfigError {
  std::string source;  // file path, or "--set KEY" for an override
  int line = 0;
  int column = 0;
  std::string message;

  std::string ToString() const;  // "file:line:col: message"
};

struct LoadOptions {
  // "path.to.key=value" overrides, applied in order after the file is read.
  std::vector<std::string> overrides;
  // Looks up environment variables for ${VAR}; default: std::getenv.
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

// The options, or every error found (also in `errors` when not null). The
// Status message holds one error per line.
Result<EngineOptions> LoadEngineOptionsFromFile(
    const std::string& path, const LoadOptions& options,
    std::vector<ConfigError>* errors = nullptr);

// As above, for YAML held in memory; `source` names it in errors.
Result<EngineOptions> LoadEngineOptionsFromString(
    const std::string& yaml, const std::string& source,
    const LoadOptions& options, std::vector<ConfigError>* errors = nullptr);

}  // namespace kcqrs::config

#endif  // KCQRS_CONFIG_CONFIG_LOADER_H_
