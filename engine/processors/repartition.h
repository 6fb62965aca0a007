// The repartition: re-keys events for a projection keyed differently from
// its source topic, through the projection's repartition topic.
#ifndef KCQRS_ENGINE_PROCESSORS_REPARTITION_H_
#define KCQRS_ENGINE_PROCESSORS_REPARTITION_H_

#include <memory>

#include "engine/graph/compiled_topology.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

class ParsedRecord;

// Sends the events `projection` folds to its repartition topic under the
// key its `key` expression gives. The event's headers go along only when
// the projection's rules read `meta`: downstream reads nothing else of them.
// `parsed` (the task's) must outlive it.
std::unique_ptr<Processor> MakeRepartition(const CompiledProjection& projection,
                                           const CompiledTopology& topology,
                                           ParsedRecord* parsed);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_REPARTITION_H_
