// Internal to config/: reads the topology sections of a kcqrs file
// (aggregates, projections, processors, transforms, process managers,
// stores, errors) into TopologySpec.
// Shapes and names are checked here; expressions and Lua are compiled later
// by the engine, with the positions recorded here.
#ifndef KCQRS_CONFIG_TOPOLOGY_READER_H_
#define KCQRS_CONFIG_TOPOLOGY_READER_H_

#include <yaml-cpp/yaml.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/yaml_errors.h"
#include "kcqrs/topology_spec.h"

namespace kcqrs::config {

// Interpolated scalar text, or nullopt after reporting an error.
using ScalarFn =
    std::function<std::optional<std::string>(const YAML::Node&, std::string_view)>;

class TopologyReader {
 public:
  // `text` is the whole file, used to tell block scalars (`lua: |`) from
  // inline ones so that positions point at the first line of code.
  TopologyReader(Diagnostics* diag, ScalarFn scalar, const std::string& text)
      : diag_(diag), scalar_(std::move(scalar)), text_(text) {}

  void ReadAggregates(const YAML::Node& node, TopologySpec* out);
  void ReadProjections(const YAML::Node& node, TopologySpec* out);
  void ReadProcessors(const YAML::Node& node, TopologySpec* out);
  void ReadTransforms(const YAML::Node& node, TopologySpec* out);
  void ReadProcessManagers(const YAML::Node& node, TopologySpec* out);
  void ReadStores(const YAML::Node& node, TopologySpec* out);
  void ReadErrors(const YAML::Node& node, TopologySpec* out);

 private:
  SourcePosition Where(const YAML::Node& node) const;
  SourcePosition ContentStart(const YAML::Node& node) const;
  std::optional<ExpressionSpec> Expr(const YAML::Node& node, std::string_view where);
  std::optional<LuaSpec> Lua(const YAML::Node& node, std::string_view where);
  // A name or a list of names (topics, stores, processors: `noun`).
  std::vector<std::string> Topics(const YAML::Node& node, std::string_view where,
                                  std::string_view noun = "topic");
  std::vector<std::pair<std::string, ExpressionSpec>> Fields(
      const YAML::Node& node, std::string_view where);
  std::optional<DecideSpec> Decide(const YAML::Node& node, const std::string& where);
  // How a document changes: an aggregate's evolve (set, merge, delete,
  // lua), a projection's rule (upsert, merge, delete, lua), or a process
  // manager reaction's state update (set or merge, among the reaction's
  // other keys; nullopt without either: the state stays as it is).
  enum class UpdateFlavour { kAggregate, kProjection, kReaction };
  std::optional<UpdateSpec> Update(const YAML::Node& node, const std::string& where,
                                   UpdateFlavour flavour);
  // One reaction (a map) or several (a list of maps), under `where`.
  std::vector<ReactionSpec> Reactions(const YAML::Node& node, const std::string& where);
  std::optional<ReactionSpec> Reaction(const YAML::Node& node, const std::string& where);
  std::optional<SendSpec> Send(const YAML::Node& node, const std::string& where);
  std::optional<std::string> Name(const YAML::Node& node, std::string_view where);

  Diagnostics* diag_;
  ScalarFn scalar_;
  const std::string& text_;
};

}  // namespace kcqrs::config

#endif  // KCQRS_CONFIG_TOPOLOGY_READER_H_
