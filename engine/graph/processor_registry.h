// The process-wide registry behind kcqrs::RegisterProcessor.
//
// Thread-safety: all functions lock; safe from any thread.
#ifndef KCQRS_ENGINE_GRAPH_PROCESSOR_REGISTRY_H_
#define KCQRS_ENGINE_GRAPH_PROCESSOR_REGISTRY_H_

#include <optional>
#include <string>
#include <vector>

#include "kcqrs/processor.h"

namespace kcqrs::engine {

std::optional<ProcessorFactory> FindProcessor(const std::string& name);
std::vector<std::string> RegisteredProcessors();

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_GRAPH_PROCESSOR_REGISTRY_H_
