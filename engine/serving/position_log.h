// PositionLog: what each commit consumed and produced, for read-your-writes.
//
// A position token names a record (say a command at orders.commands-2@1234).
// A store has applied that record's effects when the task reading it has
// committed past it and, for stores further down (a projection of the
// events, a view behind a repartition topic), when their tasks have
// committed past the records those commits produced, hop by hop. Stream
// threads append one entry per applied commit: the next offsets it consumed
// and the last offsets it produced. Applied() follows the record through
// those entries to the store's inputs.
//
// Local entries are appended only after the commit's state is applied
// locally, so "a local entry covers it" means a query of this process sees
// it. Other instances' commits arrive as remote entries (the runtime reads
// them from Kafka, engine/runtime/instance_metadata.h): they carry a record
// across the hops other instances made (a command decided elsewhere, whose
// events this instance's projection reads), but the last hop, into the
// queried store, counts only local entries.
//
// Thread-safety: all methods lock; Append is called by stream threads,
// Applied and Wait by HTTP threads.
#ifndef KCQRS_ENGINE_SERVING_POSITION_LOG_H_
#define KCQRS_ENGINE_SERVING_POSITION_LOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/codec/command_outcome.h"

namespace kcqrs::engine {

struct RecordPosition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;

  auto operator<=>(const RecordPosition&) const = default;
};

// "eyJ0Ijoi..." <-> RecordPosition: base64url of {"t":topic,"p":p,"o":o}.
std::string EncodePositionToken(const RecordPosition& position);
std::optional<RecordPosition> DecodePositionToken(std::string_view token);

// The outcomes of the last `capacity` commands, by command id: a ring of
// slots overwritten oldest first (their strings keep their capacity) and an
// open-addressing index of slot numbers by the id's hash. It replaced an
// unordered_map with a deque of ids, whose node allocations and scattered
// lookups (an insert, an erase of the oldest, a copy of the id per command)
// were 1.8% of the process on the orders workload. Not thread-safe.
class OutcomeWindow {
 public:
  explicit OutcomeWindow(size_t capacity);

  // Remembers `outcome` for `id`; an id already remembered keeps its place
  // in the order and takes the new outcome.
  void Put(std::string id, CommandOutcome outcome);
  const CommandOutcome* Find(std::string_view id) const;
  size_t size() const { return ring_.size(); }

 private:
  struct Slot {
    std::string id;
    CommandOutcome outcome;
    size_t hash = 0;
  };
  static constexpr uint32_t kEmpty = 0;  // index entries are slot + 1

  // The index position holding `id`, or the empty position where it goes.
  size_t Probe(std::string_view id, size_t hash, bool* found) const;
  // Empties index position `pos` and shifts the entries after it back, so
  // that every probe sequence stays unbroken (no tombstones).
  void EraseAt(size_t pos);

  const size_t capacity_;
  std::vector<Slot> ring_;      // grows to capacity_, then is overwritten
  size_t next_ = 0;             // the slot written next (the oldest when full)
  std::vector<uint32_t> index_;  // a power of two, at least twice capacity_
  size_t mask_ = 0;
};

class PositionLog {
 public:
  using TopicPartition = std::pair<std::string, int32_t>;

  struct Entry {
    std::map<TopicPartition, int64_t> consumed_next;  // next offset per input
    std::map<TopicPartition, int64_t> produced_last;  // last offset per output
    // Records this commit sent to the dead-letter topic, with the reason.
    std::map<TopicPartition, std::map<int64_t, std::string>> dead_letters;
    // A commit of this process (else another instance's, read from Kafka).
    bool local = true;
    // The outcomes of the commands this commit decided, by command id
    // (local entries only; kept apart from the entry, see DecidedOutcome).
    std::vector<std::pair<std::string, CommandOutcome>> outcomes;
  };

  enum class Answer {
    kApplied,  // every store input on the record's path is past it
    kPending,  // not yet (or a hop is not hosted here)
    kTooOld,   // the record is older than what the log remembers
  };

  // Keeps the last `capacity` entries (at 10 commits a second per thread,
  // 100,000 entries remember almost three hours) and the outcomes of the
  // last `outcome_capacity` commands decided here.
  explicit PositionLog(size_t capacity = 100'000, size_t outcome_capacity = 20'000)
      : capacity_(capacity), outcomes_(outcome_capacity) {}

  void Append(Entry entry);

  // Called with every local entry as it is appended (on the appending
  // thread, outside the log's lock): the runtime publishes them for the
  // other instances. Set once, before the first Append.
  void SetLocalListener(std::function<void(const Entry&)> listener) {
    listener_ = std::move(listener);
  }

  // Has a store whose task reads `store_sources` applied `position`?
  // `path_topics`: the topics on the way from the record to the store (the
  // store's sources and, hop by hop, the sources of the tasks writing them);
  // produced records on other topics are not followed.
  Answer Applied(const RecordPosition& position, const std::set<std::string>& store_sources,
                 const std::set<std::string>& path_topics) const;

  // Why the record at `position` went to the dead-letter topic, if a
  // remembered commit of this process dead-lettered it.
  std::optional<std::string> DeadLetterReason(const RecordPosition& position) const;

  // The outcome of the command with this id, if a commit of this process
  // decided it recently. A waiter for a command is woken by the commit that
  // decided it, so the window only has to span that wake-up: 20,000
  // outcomes (a few MB) span seconds even at 100,000 commands a second.
  // A retry of the same command id finds the first decision's outcome
  // while it is remembered.
  std::optional<CommandOutcome> DecidedOutcome(std::string_view command_id) const;

  // A counter that changes with every Append, and a wait for it to change.
  uint64_t version() const;
  void WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const;

 private:
  const size_t capacity_;
  std::function<void(const Entry&)> listener_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<Entry> entries_;
  uint64_t version_ = 0;
  // Partitions of which entries were dropped: a record there older than
  // every remaining entry cannot be followed any more.
  std::set<TopicPartition> trimmed_;
  OutcomeWindow outcomes_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_POSITION_LOG_H_
