// MockCluster: librdkafka's built-in mock Kafka cluster, in process.
//
// It speaks the Kafka protocol on loopback ports, so that any client
// (Producer, Consumer, Admin, even kcat) can use bootstrap_servers(). It
// serves `make demo` and fault-injection unit tests: request errors,
// brokers going down, latency.
//
// It is NOT evidence of exactly-once. librdkafka 2.0.2's mock accepts the
// whole transactional API (init, begin, send offsets, commit, abort) but
// drops offsets sent in a transaction (the group's committed offsets stay
// unset), writes no commit/abort markers, and shows aborted records to
// read_committed readers. It keeps nothing on disk: everything is gone
// when it is destroyed. Prove transactional behaviour against a real
// broker.
//
// Ownership: the creator owns it; it owns a dedicated librdkafka handle
// whose threads run the brokers. Destroy every client connected to it
// first, or they will spend their time reconnecting.
//
// Thread-safety: every method may be called from any thread; librdkafka
// hands each request to the mock's own thread.
#ifndef KCQRS_ENGINE_KAFKA_MOCK_CLUSTER_H_
#define KCQRS_ENGINE_KAFKA_MOCK_CLUSTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kafka/client.h"
#include "engine/kafka/tcp_forwarder.h"
#include "kcqrs/status.h"

struct rd_kafka_mock_cluster_s;

namespace kcqrs::kafka {

// Kafka protocol request types, for error injection.
enum class ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kCreateTopics = 19,
  kDeleteTopics = 20,
  kInitProducerId = 22,
  kAddPartitionsToTxn = 24,
  kAddOffsetsToTxn = 25,
  kEndTxn = 26,
  kTxnOffsetCommit = 28,
};

// Kafka protocol error codes a broker answers with (a selection; the
// values are the protocol's and librdkafka's).
enum class BrokerError : int16_t {
  kNone = 0,
  kUnknownTopicOrPartition = 3,
  kLeaderNotAvailable = 5,
  kNotLeaderForPartition = 6,
  kRequestTimedOut = 7,
  kMessageTooLarge = 10,
  kCoordinatorLoadInProgress = 14,
  kCoordinatorNotAvailable = 15,
  kNotCoordinator = 16,
  kNotEnoughReplicas = 19,
  kNotEnoughReplicasAfterAppend = 20,
  kIllegalGeneration = 22,
  kUnknownMemberId = 25,
  kRebalanceInProgress = 27,
  kTopicAuthorizationFailed = 29,
  kOutOfOrderSequenceNumber = 45,
  kInvalidProducerEpoch = 47,
  kInvalidTxnState = 48,
  kConcurrentTransactions = 51,
  kTransactionalIdAuthorizationFailed = 53,
  kInvalidRecord = 87,
  kProducerFenced = 90,
};

class MockCluster {
 public:
  // Starts `num_brokers` brokers (ids 1..num_brokers) on loopback ports
  // the kernel picks. With `bootstrap_port` > 0, clients bootstrap from
  // 127.0.0.1:`bootstrap_port` instead (relayed to broker 1 by a
  // TcpForwarder: librdkafka cannot bind its brokers to a chosen port), so
  // the address stays the same from one start to the next; when that port
  // is in use, the kernel's ports are used and bootstrap_port_note() says so.
  static Result<std::unique_ptr<MockCluster>> Create(int num_brokers,
                                                     uint16_t bootstrap_port = 0);

  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;
  ~MockCluster();

  // "127.0.0.1:port,..." for the clients' bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int num_brokers() const { return num_brokers_; }
  // Why the bootstrap port asked for is not used ("" when it is, or when
  // none was asked for).
  const std::string& bootstrap_port_note() const { return bootstrap_port_note_; }

  // Creates a topic directly, without a CreateTopics request: the way to
  // create topics on the mock, whose metadata names no usable controller
  // (Admin::CreateTopics returns NotSupported there).
  Status CreateTopic(const std::string& topic, int partitions,
                     int replication_factor);

  // The next errors.size() requests of type `api`, to any broker, fail with
  // these errors, in order (kNone lets one through).
  void PushRequestErrors(ApiKey api, const std::vector<BrokerError>& errors);
  void ClearRequestErrors(ApiKey api);

  // Makes metadata requests report `error` for `topic` (kNone to clear).
  void SetTopicError(const std::string& topic, BrokerError error);

  // Closes a broker's connections and refuses new ones, without moving
  // partition leadership away from it; SetBrokerUp undoes it.
  Status SetBrokerDown(int32_t broker_id);
  Status SetBrokerUp(int32_t broker_id);
  // Delays every response of the broker by `rtt_ms`.
  Status SetBrokerRtt(int32_t broker_id, int rtt_ms);

  Status SetPartitionLeader(const std::string& topic, int32_t partition,
                            int32_t broker_id);

  // Makes `broker_id` the coordinator of a consumer group or transactional
  // id.
  enum class CoordinatorType { kGroup, kTransaction };
  Status SetCoordinator(CoordinatorType type, const std::string& key,
                        int32_t broker_id);

 private:
  MockCluster() = default;

  struct MockDeleter {
    void operator()(rd_kafka_mock_cluster_s* cluster) const;
  };
  // Declared in this order so that the cluster goes before the handle it
  // runs on.
  internal::HandlePtr rk_;
  std::unique_ptr<rd_kafka_mock_cluster_s, MockDeleter> cluster_;
  std::string bootstrap_servers_;
  std::string bootstrap_port_note_;
  int num_brokers_ = 0;
  // Last: it goes first, before the brokers it relays to.
  std::unique_ptr<TcpForwarder> forwarder_;
};

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_MOCK_CLUSTER_H_
