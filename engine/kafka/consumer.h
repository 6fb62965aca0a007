// Consumer: a Kafka consumer (group member or manually assigned) that
// returns kcqrs records and Status codes.
//
// Ownership: the creator owns it through std::unique_ptr; it owns its
// librdkafka handle. Close() revokes the assignment (running the revoke
// callback on the calling thread) and leaves the group, unless a static
// member (see LeaveGroup); the destructor calls Close() if the owner did
// not, then destroys the handle.
//
// Thread-safety: not safe for concurrent use. One stream thread owns the
// consumer and makes every call; the RebalanceListener runs on that thread,
// inside Poll() (and inside LeaveGroup() and Close()). Producer::SendOffsetsToTransaction may
// read the consumer's group metadata from the same thread.
#ifndef KCQRS_ENGINE_KAFKA_CONSUMER_H_
#define KCQRS_ENGINE_KAFKA_CONSUMER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/kafka/client.h"
#include "engine/kafka/properties.h"
#include "engine/kafka/record.h"
#include "kcqrs/record.h"
#include "kcqrs/status.h"

struct rd_kafka_s;
struct rd_kafka_message_s;
struct rd_kafka_topic_s;
struct rd_kafka_consumer_group_metadata_s;
struct rd_kafka_topic_partition_list_s;

namespace kcqrs::kafka {

// Told about partition assignment changes of a subscribed consumer. Called
// on the polling thread from inside Consumer::Poll (and Consumer::Close),
// never concurrently.
//
// With the default (eager) protocols, "range" and "roundrobin", every
// rebalance first revokes the whole assignment and then assigns the whole
// new one, so the lists are complete assignments. With
// partition.assignment.strategy=cooperative-sticky they are the increments.
//
// OnPartitionsAssigned runs after the partitions are assigned, so the
// listener may call Consumer::Seek or Consumer::Committed for them.
// OnPartitionsRevoked runs before they are taken away, so the listener may
// still commit their offsets (a Kafka Streams task commits here).
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void OnPartitionsAssigned(
      const std::vector<TopicPartitionOffset>& partitions) = 0;
  virtual void OnPartitionsRevoked(
      const std::vector<TopicPartitionOffset>& partitions) = 0;
  // The partitions were already given to another member (session timed
  // out, the group moved on): committing for them will fail with Fenced.
  // By default treated as a revocation.
  virtual void OnPartitionsLost(
      const std::vector<TopicPartitionOffset>& partitions) {
    OnPartitionsRevoked(partitions);
  }
};

// What a transactional producer needs to commit a consumer's offsets inside
// a transaction (group id, generation, member id), as an opaque value so
// that librdkafka's type does not leak. Movable, not copyable; it does not
// refer to the consumer and may outlive it.
class ConsumerGroupMetadata {
 public:
  // librdkafka's handle; for engine/kafka's Producer only.
  const rd_kafka_consumer_group_metadata_s* raw() const { return raw_.get(); }

 private:
  friend class Consumer;
  explicit ConsumerGroupMetadata(rd_kafka_consumer_group_metadata_s* raw)
      : raw_(raw) {}

  std::unique_ptr<rd_kafka_consumer_group_metadata_s, internal::Deleter> raw_;
};

class Consumer {
 public:
  // `properties` are librdkafka consumer properties ("bootstrap.servers",
  // "group.id", "isolation.level", "enable.auto.commit", ...), passed
  // through unchanged. InvalidArgument names a bad property. Without
  // "group.id" only Assign, Seek, Pause/Resume and Poll work; the group
  // calls return FailedPrecondition. librdkafka's defaults apply, among
  // them enable.auto.commit=true: set it to false when offsets are
  // committed with CommitSync or through a transaction.
  static Result<std::unique_ptr<Consumer>> Create(const Properties& properties);

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // Joins the consumer group (needs group.id) for `topics`. `listener`, if
  // not null, must outlive the consumer or the next Subscribe.
  Status Subscribe(const std::vector<std::string>& topics,
                   RebalanceListener* listener);

  // Reads exactly these partitions, without group membership, starting at
  // each offset (a real offset, kOffsetBeginning, kOffsetEnd, or
  // kOffsetStored for the group's committed offset). Replaces any previous
  // assignment; an empty list unassigns everything.
  Status Assign(const std::vector<TopicPartitionOffset>& partitions);

  // The partitions currently assigned (offsets are kOffsetInvalid).
  Result<std::vector<TopicPartitionOffset>> Assignment() const;

  // Waits up to `timeout` for the next record. Returns:
  //   a record;
  //   an empty optional on time-out and on reaching the end of a partition
  //     (when enable.partition.eof=true);
  //   Fenced when the consumer hit a fatal error (e.g. a static member was
  //     fenced): close and recreate it;
  //   any other non-OK Status for an error that is not fatal (a broker is
  //     down, a subscribed topic does not exist, a rebalance callback
  //     failed to assign): log it and keep polling, librdkafka recovers on
  //     its own.
  // Rebalance callbacks run inside this call.
  Result<std::optional<ConsumedRecord>> Poll(std::chrono::milliseconds timeout);

  // As Poll, into *out: true when a record was stored there, false on
  // time-out or the end of a partition (*out is then unspecified). The
  // record's strings and header list keep their capacity from one call to
  // the next, so a thread that polls into the same Record allocates nothing
  // per record once they have grown to its records' sizes (Poll builds a
  // new record, a handful of allocations each time).
  Result<bool> PollInto(std::chrono::milliseconds timeout, Record* out);

  // Records of these topics come from PollInto without their headers
  // (Record::headers left empty), for topics none of whose processors read
  // them: librdkafka 2.0.2 parses a record's headers into allocations of
  // its own on every call, which with the copies cost more than the poll
  // itself (3,700 instructions for an event with kcqrs's six headers, 600
  // for a record without any). SkippedHeaders gives them when a rare path
  // needs them after all. Replaces the previous set.
  void SkipHeaders(std::set<std::string> topics);

  // When `r` is the record the last PollInto returned (same topic,
  // partition and offset) and its headers were skipped: fills *out with
  // them and returns true (the message is kept until the next poll for
  // this). False otherwise, *out untouched.
  bool SkippedHeaders(const Record& r, std::vector<kcqrs::Header>* out) const;

  // Commits these offsets for the group, synchronously. Offsets are the
  // NEXT offsets to read (last processed + 1). An empty list is a no-op.
  // Fenced when the group has moved on to a generation without this member.
  Status CommitSync(const std::vector<TopicPartitionOffset>& offsets);

  // The group's committed offsets for `partitions` (their offsets are
  // ignored); kOffsetInvalid for a partition with no committed offset.
  Result<std::vector<TopicPartitionOffset>> Committed(
      const std::vector<TopicPartitionOffset>& partitions,
      std::chrono::milliseconds timeout);

  // The low and high watermarks (first offset, and the offset after the
  // last) of a partition, asked of its leader.
  Result<std::pair<int64_t, int64_t>> QueryWatermarks(const std::string& topic,
                                                       int32_t partition,
                                                       std::chrono::milliseconds timeout);

  // For each of `partitions`, whose offsets are timestamps (ms since the
  // epoch), the first offset whose record timestamp is at or after it;
  // the partition's end (high watermark) when no record is that late.
  Result<std::vector<TopicPartitionOffset>> OffsetsForTimes(
      const std::vector<TopicPartitionOffset>& partitions, std::chrono::milliseconds timeout);

  // The watermarks the consumer last learned from fetch responses: no
  // request is sent. (-1, -1) before the first fetch.
  Result<std::pair<int64_t, int64_t>> CachedWatermarks(const std::string& topic,
                                                       int32_t partition) const;

  // The offset the next record of an assigned partition will have, past any
  // transaction markers already read; kOffsetInvalid before the first fetch.
  Result<int64_t> Position(const std::string& topic, int32_t partition) const;

  // Makes the next Poll of this (assigned) partition return `position`'s
  // offset.
  Status Seek(const TopicPartitionOffset& position,
              std::chrono::milliseconds timeout);

  // Stops and resumes fetching from assigned partitions; the position is
  // kept, so that a stream thread can apply back-pressure per partition.
  Status Pause(const std::vector<TopicPartitionOffset>& partitions);
  Status Resume(const std::vector<TopicPartitionOffset>& partitions);

  // For Producer::SendOffsetsToTransaction. FailedPrecondition without a
  // group.id.
  Result<ConsumerGroupMetadata> GroupMetadata() const;

  // Leaves the group now, also as a static member (group.instance.id), so
  // that the group hands this member's partitions to the others at once
  // instead of after session.timeout.ms. Close does not do this for a
  // static member: KIP-345 has a closing static member stay in the group
  // until its session expires, so that a restart takes its partitions back
  // without a rebalance. Call LeaveGroup before Close when this member is
  // going away for good (Kafka Streams: KafkaStreams#close with
  // CloseOptions#leaveGroup(true), KIP-812).
  //
  // How, without an admin API (librdkafka 2.0.2 has no
  // RemoveMembersFromConsumerGroup): an explicit unsubscribe is not a
  // termination, so librdkafka sends a LeaveGroup with the member id, which
  // the coordinator honours for a static member too. It does so only once
  // the revocation is done, and only if the consumer is not closing yet;
  // so this pauses the assignment (nothing more is fetched), unsubscribes,
  // and polls (the listener's OnPartitionsRevoked runs here; records still
  // fetched are dropped, their offsets neither stored nor committed) until
  // librdkafka has sent the LeaveGroup, i.e. has dropped the member id.
  // TimedOut if that took longer than `timeout` (Close then does not leave
  // either). OK at once when the consumer has not joined. The consumer is
  // unsubscribed afterwards: Close it.
  Status LeaveGroup(std::chrono::milliseconds timeout);

  // Stops fetching and closes: revokes the assignment (the listener's
  // OnPartitionsRevoked runs here) and leaves the group, except as a static
  // member, which stays until its session expires (see LeaveGroup).
  // Idempotent; every other call fails after it.
  Status Close();

 private:
  friend struct ConsumerCallbacks;  // librdkafka's C callbacks, in the .cc
  Consumer() = default;
  void HandleRebalance(int err, rd_kafka_topic_partition_list_s* partitions);
  Status CheckOpen(const char* call) const;
  Status CheckGroup(const char* call) const;

  struct MessageDeleter {
    void operator()(rd_kafka_message_s* m) const;
  };
  // Whether records of this topic come without headers (SkipHeaders), by
  // librdkafka's topic handle: a few handles, found by a scan.
  bool Skips(const rd_kafka_topic_s* rkt);

  internal::HandlePtr rk_;
  std::set<std::string> skip_headers_;
  std::vector<std::pair<const rd_kafka_topic_s*, bool>> skips_by_handle_;
  // The message PollInto last returned without its headers, for
  // SkippedHeaders; destroyed at the next poll and before the handle.
  std::unique_ptr<rd_kafka_message_s, MessageDeleter> skipped_;
  RebalanceListener* listener_ = nullptr;  // not owned
  bool has_group_id_ = false;
  bool closed_ = false;
  // An error met inside the rebalance callback, which cannot return one;
  // the next Poll returns it.
  Status rebalance_error_;
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_CONSUMER_H_
