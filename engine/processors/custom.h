// Custom processors: C++ processors registered by name (kcqrs/processor.h)
// that a topology uses under `processors:`.
#ifndef KCQRS_ENGINE_PROCESSORS_CUSTOM_H_
#define KCQRS_ENGINE_PROCESSORS_CUSTOM_H_

#include <memory>

#include "engine/graph/compiled_topology.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {

// Makes the processor registered as `spec.processor`, with its `config`.
// NotFound when nothing is registered under that name; InvalidArgument
// when the factory rejects its configuration (throws); Internal when it
// returns null.
Result<std::unique_ptr<Processor>> MakeCustomProcessor(const CustomProcessorSpec& spec);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_CUSTOM_H_
