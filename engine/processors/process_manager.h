// The process manager (a saga, in Axon's words): coordinates aggregates by
// reacting to their events with commands, keeping one state document per
// instance and at most one deadline (a durable timer) per instance.
//
// Two nodes, as a projection keyed differently: the correlation re-keys the
// events the process manager reacts to by instance id, through its
// repartition topic, so that one task owns each instance; the process
// manager reads that topic, folds each event into the instance and sends
// the commands its reaction names, all in the task's transaction.
#ifndef KCQRS_ENGINE_PROCESSORS_PROCESS_MANAGER_H_
#define KCQRS_ENGINE_PROCESSORS_PROCESS_MANAGER_H_

#include <memory>

#include "engine/graph/compiled_topology.h"
#include "engine/metrics/metrics.h"
#include "engine/processors/lua_functions.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

class ParsedRecord;

// Told by the task when a record's effects are dropped (it failed) and when
// its transaction commits or aborts: for a built-in processor that keeps a
// count of committed state in memory.
class TransactionListener {
 public:
  virtual ~TransactionListener() = default;
  virtual void RecordDropped() = 0;
  virtual void Committed() = 0;
  virtual void Aborted() = 0;
};

// Sends each event `pm` reacts to to its repartition topic, keyed by the
// instance id: the kcqrs.process.id header of an answer to a command the
// process manager sent, else its `id` expression. The event's headers go
// along, and where it came from (kcqrs.source.*) when it has no aggregate
// version to be known by. `parsed` (the task's) must outlive it.
std::unique_ptr<Processor> MakeCorrelation(const CompiledProcessManager& pm,
                                           const CompiledTopology& topology,
                                           ParsedRecord* parsed);

// The process manager itself, reading its repartition topic. `lua`,
// `metrics` (nullable) and `parsed` must outlive it.
std::unique_ptr<Processor> MakeProcessManager(const CompiledProcessManager& pm,
                                              const CompiledTopology& topology,
                                              LuaFunctions* lua, metrics::Metrics* metrics,
                                              ParsedRecord* parsed);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_PROCESS_MANAGER_H_
