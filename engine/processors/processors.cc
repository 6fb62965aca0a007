#include "engine/processors/processors.h"

#include "engine/processors/custom.h"
#include "engine/processors/process_manager.h"
#include "engine/processors/projection.h"
#include "engine/processors/repartition.h"
#include "engine/processors/transform.h"

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

}  // namespace kcqrs::engine
