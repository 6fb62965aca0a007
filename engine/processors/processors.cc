#include "engine/processors/processors.h"

#include "engine/processors/custom.h"
#include "engine/processors/process_manager.h"
#include "engine/processors/projection.h"
#include "engine/processors/repartition.h"
#include "engine/processors/transform.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {

Result<std::unique_ptr<Processor>> MakeProcessor(const Node& node,
                                                 const CompiledTopology& topology,
                                                 LuaFunctions* lua, metrics::Metrics* metrics,
                                                 ParsedRecord* parsed) {
  const auto index = static_cast<size_t>(node.index);
  switch (node.kind) {
    case NodeKind::kAggregate:
      return MakeCommandHandler(topology.aggregates()[index], topology, lua, metrics);
    case NodeKind::kProjection:
      return MakeProjection(topology.projections()[index], topology, lua, parsed);
    case NodeKind::kRepartition:
      return MakeRepartition(topology.projections()[index], topology, parsed);
    case NodeKind::kTransform:
      return MakeTransform(topology.transforms()[index], topology.json_limits());
    case NodeKind::kCustom:
      return MakeCustomProcessor(topology.custom()[index]);
    case NodeKind::kCorrelate:
      return MakeCorrelation(topology.process_managers()[index], topology, parsed);
    case NodeKind::kProcessManager:
      return MakeProcessManager(topology.process_managers()[index], topology, lua, metrics,
                                parsed);
  }
  return Status::Internal("unknown node kind");
}

namespace {

bool ReadsHeaders(const Node& node, const CompiledTopology& topology) {
  const auto index = static_cast<size_t>(node.index);
  switch (node.kind) {
    case NodeKind::kAggregate:
      return !topology.process_managers().empty() ||
             topology.aggregates()[index].spec.misrouted_commands ==
                 AggregateSpec::Misrouted::kForward;
    case NodeKind::kProjection:
      return ProjectionSeesMeta(topology.projections()[index], topology);
    case NodeKind::kRepartition: {
      const CompiledProjection& p = topology.projections()[index];
      return (p.key && p.key->UsesRoot(1)) || ProjectionSeesMeta(p, topology);
    }
    case NodeKind::kTransform:
    case NodeKind::kCustom:
    case NodeKind::kCorrelate:
    case NodeKind::kProcessManager:
      return true;
  }
  return true;
}

}  // namespace

std::set<std::string> TopicsReadWithoutHeaders(const CompiledTopology& topology) {
  std::set<std::string> without;
  std::set<std::string> with;
  for (const SubTopology& sub : topology.subtopologies()) {
    for (const Node& node : sub.nodes) {
      const bool reads = ReadsHeaders(node, topology);
      for (const std::string& topic : node.sources) (reads ? with : without).insert(topic);
    }
  }
  for (const std::string& topic : with) without.erase(topic);
  return without;
}

}  // namespace kcqrs::engine
