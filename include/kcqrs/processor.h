// The Processor API: custom logic in C++, next to (or instead of) the
// declarative aggregates and projections of a topology.
//
// A Processor is created once per task (one input partition) and called for
// every record of its source topics in that partition, in offset order, on
// the stream thread that owns the task. Everything it does through its
// ProcessorContext (store writes, sends) belongs to the task's current Kafka
// transaction: visible to read_committed readers and applied to local state
// only if that transaction commits.
//
// Register a processor by name with RegisterProcessor() before Engine::Open;
// a topology uses it under `processors:` (docs/topology.md).
//
// Thread-safety: a Processor and its ProcessorContext are used by one stream
// thread only; RegisterProcessor is safe to call from any thread.
#ifndef KCQRS_PROCESSOR_H_
#define KCQRS_PROCESSOR_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kcqrs/key_value_store.h"
#include "kcqrs/record.h"
#include "kcqrs/status.h"

namespace kcqrs {

class ProcessorContext {
 public:
  virtual ~ProcessorContext() = default;

  // A store connected to this processor in the topology, for this task;
  // nullptr when the processor is not connected to `name`. Reads see this
  // transaction's own writes.
  virtual KeyValueStore* GetStateStore(const std::string& name) = 0;

  // Produces a record in the task's transaction. The partition is chosen
  // from the key as Java clients do (murmur2), so that records of one key
  // stay in one partition whoever produces them.
  virtual Status Send(const std::string& topic, std::optional<std::string> key,
                      std::optional<std::string> value,
                      std::vector<Header> headers = {}) = 0;

  // As Send, with the record's timestamp given (milliseconds since the
  // epoch) instead of the input record's, as Kafka Streams'
  // forward(record.withTimestamp(t)) does: for a record that stands for
  // something that happened at another time (a timer's due time, a
  // business date). 0 lets the producer stamp the time of sending;
  // InvalidArgument (a dead letter) for a negative timestamp.
  virtual Status SendWithTimestamp(const std::string& /*topic*/, int64_t /*timestamp_ms*/,
                                   std::optional<std::string> /*key*/,
                                   std::optional<std::string> /*value*/,
                                   std::vector<Header> /*headers*/ = {}) {
    return Status::NotSupported("this context cannot send with a timestamp");
  }

  // The largest record, in bytes (key, value and headers), that this task
  // can write to `topic`; 0 when there is no known limit. A send above it,
  // or a store value above the limit of the store's changelog topic, sends
  // the input record to the dead-letter topic. The producer's
  // message.max.bytes less framing, or the topic's own max.message.bytes
  // when that is lower.
  virtual size_t MaxRecordBytes(const std::string& /*topic*/) const { return 0; }

  // Durable timers, for a node declared with `timers:` (docs/topology.md):
  // at most one per key, kept in the node's store `<node>-timers`, so that
  // they survive restarts and move with the task. Setting, cancelling and
  // firing belong to the task's transaction like any store write. When the
  // timer's clock passes `due_ms` (wall-clock or stream time, as declared),
  // the engine calls Processor::OnTimer once, in a transaction with its
  // effects; a timer set again before that replaces the earlier one.
  // FailedPrecondition for a node without timers.
  virtual Status SetTimer(std::string_view /*key*/, int64_t /*due_ms*/) {
    return Status::FailedPrecondition("this node does not declare timers");
  }
  virtual Status CancelTimer(std::string_view /*key*/) {
    return Status::FailedPrecondition("this node does not declare timers");
  }
  // The node's timer clock now, in milliseconds since the epoch: the wall
  // clock, or the task's stream time (largest record timestamp processed).
  virtual int64_t TimerClockMs() const { return 0; }

  // Hands `record` to this processor's children (the processors that name
  // it under `parents:`, docs/topology.md), as Kafka Streams'
  // ProcessorContext.forward(record): each child's Process runs now, before
  // Forward returns, depth first, in declaration order, inside the input
  // record's transaction. A child sees `record`'s key, value, headers and
  // timestamp (its sends take that timestamp); its topic, partition and
  // offset are set to the input record's, where the record came from (an
  // empty topic and offset -1 when a timer fired).
  // A child's failure (an error or an exception) fails the input record as a
  // whole, whether or not the caller passes the status on: nothing done for
  // it stays, and its dead letter names the child. The status is returned so
  // that the caller can stop early. FailedPrecondition outside Process and
  // OnTimer (in Init, say).
  virtual Status Forward(Record /*record*/) {
    return Status::NotSupported("this context cannot forward records");
  }
  // As Forward, to the one child named `child` (Kafka Streams'
  // forward(record, childName)). NotFound when `child` is not a child of
  // this processor.
  virtual Status ForwardTo(const std::string& /*child*/, Record /*record*/) {
    return Status::NotSupported("this context cannot forward records");
  }

  virtual const std::string& application_id() const = 0;
  // "<subtopology>_<partition>", as Kafka Streams names tasks.
  virtual const std::string& task_id() const = 0;
  virtual int32_t partition() const = 0;
};

class Processor {
 public:
  virtual ~Processor() = default;

  // Called once when the task starts (after its stores are restored).
  virtual Status Init(ProcessorContext& /*context*/) { return Status::OK(); }

  // Called for each record. A non-OK status sends the record to the
  // dead-letter topic with the status message (or stops the task under
  // `errors.on_error: fail`); the store writes and sends made while
  // processing that record are discarded, so a failed record leaves no trace.
  virtual Status Process(const Record& record, ProcessorContext& context) = 0;

  // Called when a timer of this node fires (ProcessorContext::SetTimer),
  // with its key and the time it was due. Everything done through
  // `context` joins the transaction that removes the timer; a non-OK
  // status sends a dead letter naming the timer (or stops the task under
  // `errors.on_error: fail`) and drops the effects, not the removal.
  virtual Status OnTimer(std::string_view /*key*/, int64_t /*due_ms*/,
                         ProcessorContext& /*context*/) {
    return Status::OK();
  }

  // Called once when the task closes (rebalance or shutdown).
  virtual void Close() {}
};

// Makes a processor for one task; `config` is the node's `config:` map.
// A factory rejects a configuration it cannot run with by throwing
// (std::invalid_argument, say, whose what() says what is wrong) or by
// returning nullptr. The engine calls it once when it compiles the topology
// (`kcqrs validate`, Engine::Open), so a bad configuration is an error at
// start, with the node's position, not a failure later on a stream thread.
using ProcessorFactory = std::function<std::unique_ptr<Processor>(
    const std::map<std::string, std::string>& config)>;

// Registers `factory` under `name` for topologies to use. AlreadyExists when
// the name is taken.
Status RegisterProcessor(const std::string& name, ProcessorFactory factory);

}  // namespace kcqrs

#endif  // KCQRS_PROCESSOR_H_
