// TopologyTestDriver: runs a topology synchronously, without Kafka, for fast
// and deterministic tests of its rules (as Kafka Streams' test-utils do).
//
// Every topic has one partition. PipeInput() hands a record to the topology
// and runs everything it causes before returning: records written to a topic
// the topology reads (events read by projections, repartition topics) are
// processed too, in order. Stores are in memory and each input is committed
// when it has been processed, so GetStore() shows what a query would.
//
// The same processors, expressions and Lua sandbox run here as in the
// engine; what differs is Kafka itself (no transactions, no partitions
// beyond one).
//
// Thread-safety: none; use a driver from one thread.
#ifndef KCQRS_TESTING_TOPOLOGY_TEST_DRIVER_H_
#define KCQRS_TESTING_TOPOLOGY_TEST_DRIVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kcqrs/key_value_store.h"
#include "kcqrs/options.h"
#include "kcqrs/record.h"
#include "kcqrs/status.h"

namespace kcqrs::testing {

class TopologyTestDriver {
 public:
  // Compiles the topology of `options` (expressions, Lua); errors as
  // Engine::Open reports them. Kafka and HTTP options are ignored.
  static Result<std::unique_ptr<TopologyTestDriver>> Create(const EngineOptions& options);

  ~TopologyTestDriver();
  TopologyTestDriver(const TopologyTestDriver&) = delete;
  TopologyTestDriver& operator=(const TopologyTestDriver&) = delete;

  // Produces a record to `topic` and processes it and all that follows.
  // timestamp_ms 0 means "the driver's clock", which starts at 1 and
  // advances by one millisecond per input. An error means the topology
  // stopped (errors.on_error: fail); dead letters are not errors.
  Status PipeInput(const std::string& topic, std::optional<std::string> key,
                   std::optional<std::string> value, int64_t timestamp_ms = 0,
                   std::vector<Header> headers = {});

  // Moves the driver's wall clock forward by `ms` and fires every timer now
  // due (process managers' deadlines, ProcessorContext::SetTimer), running
  // all that follows as PipeInput does. The wall clock starts at 0 and moves
  // only here, so deadlines fire exactly when a test says. Stream-time
  // timers fire as input timestamps pass them, during PipeInput.
  Status AdvanceWallClockTime(int64_t ms);
  int64_t wall_clock_ms() const;

  // The records written to `topic` since the last call (events, rejections,
  // dead letters, changelogs, repartition topics), in order.
  std::vector<Record> ReadOutput(const std::string& topic);

  // The committed contents of a store; nullptr for an unknown store.
  std::shared_ptr<const ReadOnlyKeyValueStore> GetStore(const std::string& name) const;

 private:
  class Impl;
  explicit TopologyTestDriver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTING_TOPOLOGY_TEST_DRIVER_H_
