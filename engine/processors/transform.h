// The transform: a stateless filter and reshape of JSON records.
#ifndef KCQRS_ENGINE_PROCESSORS_TRANSFORM_H_
#define KCQRS_ENGINE_PROCESSORS_TRANSFORM_H_

#include <memory>

#include "engine/graph/compiled_topology.h"
#include "engine/codec/json_codec.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// `limits`: the topology's JSON limits, for parsing each record.
std::unique_ptr<Processor> MakeTransform(const CompiledTransform& transform,
                                         const JsonLimits& limits);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_TRANSFORM_H_
