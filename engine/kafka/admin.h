// Admin: creates, deletes and lists topics; describes a consumer group and
// sets its committed offsets.
//
// The engine uses it at start-up to create the changelog, rejection and
// dead-letter topics a topology declares. CreateTopics returns only once
// the broker's metadata shows every topic with a leader for each
// partition, so that a producer or consumer created next can use it.
//
// Ownership: the creator owns it through std::unique_ptr; it owns its
// librdkafka handle and result queue.
//
// Thread-safety: not safe for concurrent use; calls are synchronous and
// share one result queue.
#ifndef KCQRS_ENGINE_KAFKA_ADMIN_H_
#define KCQRS_ENGINE_KAFKA_ADMIN_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/kafka/client.h"
#include "engine/kafka/properties.h"
#include "engine/kafka/record.h"
#include "kcqrs/status.h"

namespace kcqrs::kafka {

class Admin {
 public:
  struct NewTopic {
    std::string name{};
    int partitions = 1;
    int replication_factor = -1;                   // -1: the broker's default
    std::map<std::string, std::string> configs{};  // e.g. cleanup.policy
  };

  struct TopicInfo {
    std::string name{};
    int partitions = 0;

    friend bool operator==(const TopicInfo&, const TopicInfo&) = default;
  };

  struct GroupInfo {
    // "Empty", "Stable", "PreparingRebalance", "CompletingRebalance",
    // "Dead" (a group that does not exist is Dead with no members).
    std::string state{};
    // "<group.instance.id or client.id>@<host>" of each member.
    std::vector<std::string> members{};
  };

  // `properties` are librdkafka client properties (at least
  // "bootstrap.servers"). InvalidArgument names a bad property.
  static Result<std::unique_ptr<Admin>> Create(const Properties& properties);

  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;
  ~Admin();

  // Creates `topics` and waits, within `timeout` overall, until metadata
  // shows them usable. A topic that exists already is OK when
  // `ok_if_exists` (whatever its partition count: check with ListTopics),
  // AlreadyExists otherwise. TimedOut if the broker or the metadata did not
  // catch up in time. NotSupported, at once, on a cluster without a
  // controller (librdkafka's mock: use MockCluster::CreateTopic there).
  Status CreateTopics(const std::vector<NewTopic>& topics,
                      std::chrono::milliseconds timeout,
                      bool ok_if_exists = true);

  // Deletes `topics` and waits, within `timeout`, until metadata no longer
  // shows them. NotFound for a topic that does not exist.
  Status DeleteTopics(const std::vector<std::string>& topics,
                      std::chrono::milliseconds timeout);

  // The configuration of each of `topics` (every entry the broker reports,
  // defaults included), by topic, then by key (e.g. "max.message.bytes").
  Result<std::map<std::string, std::map<std::string, std::string>>> DescribeTopicConfigs(
      const std::vector<std::string>& topics, std::chrono::milliseconds timeout);

  // The state and members of consumer group `group`.
  Result<GroupInfo> DescribeGroup(const std::string& group, std::chrono::milliseconds timeout);

  // Sets the committed offsets of `group` (each the next offset to read).
  // The broker refuses while the group has members: FailedPrecondition.
  Status AlterGroupOffsets(const std::string& group,
                           const std::vector<TopicPartitionOffset>& offsets,
                           std::chrono::milliseconds timeout);

  // Every topic the cluster's metadata shows (internal ones such as
  // __consumer_offsets included), sorted by name.
  Result<std::vector<TopicInfo>> ListTopics(std::chrono::milliseconds timeout);

 private:
  Admin() = default;
  Status CheckController(std::chrono::steady_clock::time_point deadline);
  // Polls metadata until every one of `topics` is present with a leader
  // for each partition (or, with `present` false, absent), or `deadline`
  // passes.
  Status WaitForMetadata(const std::vector<std::string>& topics, bool present,
                         std::chrono::steady_clock::time_point deadline);

  // Declared in this order so that the queue goes before the handle.
  internal::HandlePtr rk_;
  internal::QueuePtr queue_;
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_ADMIN_H_
