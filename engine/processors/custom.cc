#include "engine/processors/custom.h"

#include <exception>

#include "engine/graph/processor_registry.h"

namespace kcqrs::engine {

Result<std::unique_ptr<Processor>> MakeCustomProcessor(const CustomProcessorSpec& spec) {
  auto factory = FindProcessor(spec.processor);
  if (!factory) {
    return Status::NotFound("no C++ processor is registered as '" + spec.processor + "'");
  }
  std::unique_ptr<Processor> p;
  try {
    p = (*factory)(spec.config);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("the C++ processor '" + spec.processor +
                                   "' rejected its configuration: " + e.what());
  } catch (...) {
    return Status::InvalidArgument("the C++ processor '" + spec.processor +
                                   "' threw an exception that is not a std::exception");
  }
  if (!p) return Status::Internal("the factory of '" + spec.processor + "' returned null");
  return p;
}

}  // namespace kcqrs::engine
