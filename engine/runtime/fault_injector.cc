#include "engine/runtime/fault_injector.h"

#include <mutex>

namespace kcqrs::engine {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::shared_ptr<FaultInjector>& Installed() {
  static std::shared_ptr<FaultInjector> injector;
  return injector;
}

}  // namespace

void SetFaultInjectorForTesting(std::shared_ptr<FaultInjector> injector) {
  std::lock_guard<std::mutex> lock(Mu());
  Installed() = std::move(injector);
}

std::shared_ptr<FaultInjector> FaultInjectorForTesting() {
  std::lock_guard<std::mutex> lock(Mu());
  return Installed();
}

}  // namespace kcqrs::engine
