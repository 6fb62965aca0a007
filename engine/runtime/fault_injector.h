// FaultInjector: failures on purpose, at chosen points of a running stream
// thread, so that tests can prove what each failure does (docs/reliability.md).
//
// A stream thread asks its injector at each point below; OK lets it go on,
// any other status is treated exactly as if Kafka or RocksDB had returned
// it there. Production engines have no injector (the check is one null
// test). Tests install one for the engines they open with
// SetFaultInjectorForTesting, before Engine::Open.
//
// Thread-safety: Check is called from every stream thread at once; an
// implementation must be thread-safe.
#ifndef KCQRS_ENGINE_RUNTIME_FAULT_INJECTOR_H_
#define KCQRS_ENGINE_RUNTIME_FAULT_INJECTOR_H_

#include <memory>

#include "kcqrs/status.h"

namespace kcqrs::engine {

class FaultInjector {
 public:
  enum class Point {
    kSend,         // handing one output record to the producer
    kSendOffsets,  // sending the consumed offsets to the transaction
    kCommit,       // committing the transaction (or, at least once, the offsets)
    kApplyState,   // applying a committed task's writes to RocksDB
  };

  virtual ~FaultInjector() = default;
  virtual Status Check(Point point) = 0;
};

// The injector that engines opened from now on give their stream threads
// (nullptr: none). For tests only.
void SetFaultInjectorForTesting(std::shared_ptr<FaultInjector> injector);
std::shared_ptr<FaultInjector> FaultInjectorForTesting();

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_FAULT_INJECTOR_H_
