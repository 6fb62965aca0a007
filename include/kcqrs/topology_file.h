// Loading a kcqrs YAML file (docs/topology.md) into EngineOptions, as
// `kcqrs run` and `kcqrs validate` do, for a program that embeds the engine.
//
// Every problem in the file is reported, not just the first, each as
// "file:line:col: what was expected, what was found" (unknown keys get a
// "did you mean"). `${VAR}` and `${VAR:-default}` in scalar values are
// replaced from the environment (or `getenv` below); `$$` is a literal `$`.
// Overrides "path.to.key=value" (what `kcqrs run --set` takes) are applied
// on top of the file, the value parsed as YAML.
//
// Thread-safety: the functions are pure; call them from any thread.
#ifndef KCQRS_TOPOLOGY_FILE_H_
#define KCQRS_TOPOLOGY_FILE_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kcqrs/options.h"
#include "kcqrs/status.h"

namespace kcqrs {

// One problem found in a file. line and column are 1-based; 0 when the
// problem has no place in the file (an override, a missing file).
struct TopologyFileError {
  std::string source;  // the file's path, or "--set KEY" for an override
  int line = 0;
  int column = 0;
  std::string message;

  std::string ToString() const;  // "file:line:col: message"
};

struct TopologyFileOptions {
  // "path.to.key=value" overrides, applied in order after the file is read.
  // Default: none.
  std::vector<std::string> overrides;
  // Looks up environment variables for ${VAR}. Default (empty): std::getenv.
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

// The options the file describes, or an InvalidArgument (NotFound for a
// missing file) whose message holds every error, one "file:line:col:
// message" per line; the same errors one by one in `errors` when not null.
Result<EngineOptions> LoadTopologyFile(const std::string& path,
                                       const TopologyFileOptions& options = {},
                                       std::vector<TopologyFileError>* errors = nullptr);

// As above, for YAML held in memory; `source` names it in errors.
Result<EngineOptions> LoadTopologyString(const std::string& yaml, const std::string& source,
                                         const TopologyFileOptions& options = {},
                                         std::vector<TopologyFileError>* errors = nullptr);

}  // namespace kcqrs

#endif  // KCQRS_TOPOLOGY_FILE_H_
