// Internal to config/: collecting positioned errors while walking yaml-cpp
// nodes. Not part of the public API (it exposes yaml-cpp types).
#ifndef KCQRS_CONFIG_YAML_ERRORS_H_
#define KCQRS_CONFIG_YAML_ERRORS_H_

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.h"

namespace kcqrs::config {

// Gathers every error of one load, each with the place in the file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string source) : source_(std::move(source)) {}

  void Error(const YAML::Mark& mark, std::string message);
  void ErrorAt(std::string source, std::string message);  // no position

  // Where a mark is: the file and its line and column (1-based), or, for a
  // node that came from a `--set` override, that override (no position).
  struct Place {
    std::string source;
    int line = 0;
    int column = 0;
  };
  Place At(const YAML::Mark& mark) const;

  // The value of override `source` ("--set a.b=c") was parsed with its
  // first line numbered `first_line` (0-based, past every line of the file
  // and of the overrides before it), so that its nodes' marks say which
  // override they came from. Returns the first line free for the next one.
  int AddOverride(int first_line, int lines, std::string source);

  // Reports every key of `map` not in `allowed`, with a "did you mean" when
  // one allowed key is close. `where` names the map ("application").
  void CheckKeys(const YAML::Node& map, std::string_view where,
                 std::initializer_list<std::string_view> allowed);

  // Reports `node` when it is not of the given kind; true when it is.
  bool ExpectMap(const YAML::Node& node, std::string_view where);
  bool ExpectScalar(const YAML::Node& node, std::string_view where);
  bool ExpectSequence(const YAML::Node& node, std::string_view where);

  bool empty() const { return errors_.empty(); }
  const std::vector<ConfigError>& errors() const { return errors_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<ConfigError> errors_;
  struct Override {
    int first_line;
    int end_line;  // exclusive
    std::string source;
  };
  std::vector<Override> overrides_;
};

// The closest of `candidates` to `word` if it is near enough to be a likely
// typo, else "".
std::string DidYouMean(std::string_view word,
                       std::initializer_list<std::string_view> candidates);

// A human name for a node's kind: "a map", "a list", "a scalar", "nothing".
std::string_view KindName(const YAML::Node& node);

}  // namespace kcqrs::config

#endif  // KCQRS_CONFIG_YAML_ERRORS_H_
