#include "engine/graph/processor_registry.h"

#include <map>
#include <mutex>

namespace kcqrs {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, ProcessorFactory> factories;
};

Registry& GetRegistry() {
  static Registry* registry = new Registry();  // never destroyed: used at exit
  return *registry;
}

}  // namespace

Status RegisterProcessor(const std::string& name, ProcessorFactory factory) {
  if (name.empty()) return Status::InvalidArgument("processor name is empty");
  if (!factory) return Status::InvalidArgument("processor factory is empty: " + name);
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.factories.emplace(name, std::move(factory)).second) {
    return Status::AlreadyExists("a processor is already registered as '" + name + "'");
  }
  return Status::OK();
}

namespace engine {

std::optional<ProcessorFactory> FindProcessor(const std::string& name) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.factories.find(name);
  if (it == r.factories.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> RegisteredProcessors() {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

}  // namespace engine
}  // namespace kcqrs
