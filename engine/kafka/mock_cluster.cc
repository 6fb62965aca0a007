#include "engine/kafka/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "engine/kafka/error.h"

namespace kcqrs::kafka {

void MockCluster::MockDeleter::operator()(
    rd_kafka_mock_cluster_s* cluster) const {
  rd_kafka_mock_cluster_destroy(cluster);
}

Result<std::unique_ptr<MockCluster>> MockCluster::Create(int num_brokers,
                                                         uint16_t bootstrap_port) {
  if (num_brokers < 1) {
    return Status::InvalidArgument(
        "a mock cluster needs at least one broker, got " +
        std::to_string(num_brokers));
  }
  // The brokers run on a handle of their own; it never connects anywhere.
  // log_level 4: keep librdkafka from noting at every start that this
  // handle has no bootstrap.servers, which it never needs.
  auto conf = internal::NewConf(
      {{"client.id", "kcqrs-mock-cluster"}, {"log_level", "4"}},
      "mock cluster");
  if (!conf.ok()) return conf.status();
  auto rk = internal::NewHandle(internal::ClientType::kProducer,
                                std::move(*conf), "mock cluster");
  if (!rk.ok()) return rk.status();
  std::unique_ptr<MockCluster> mock(new MockCluster());
  mock->rk_ = std::move(*rk);
  mock->cluster_.reset(rd_kafka_mock_cluster_new(mock->rk_.get(), num_brokers));
  if (mock->cluster_ == nullptr) {
    return Status::Internal("librdkafka could not start a mock cluster of " +
                            std::to_string(num_brokers) + " brokers");
  }
  mock->bootstrap_servers_ =
      rd_kafka_mock_cluster_bootstraps(mock->cluster_.get());
  mock->num_brokers_ = num_brokers;
  if (bootstrap_port == 0) return mock;
  // "127.0.0.1:port,...": broker 1 comes first.
  const std::string& all = mock->bootstrap_servers_;
  const size_t colon = all.find(':');
  const int broker_port = colon == std::string::npos ? 0 : std::atoi(all.c_str() + colon + 1);
  if (broker_port <= 0 || broker_port > 65535) {
    return Status::Internal("mock cluster: cannot read broker 1's port in '" + all + "'");
  }
  auto forwarder = TcpForwarder::Start(bootstrap_port, static_cast<uint16_t>(broker_port));
  if (!forwarder.ok()) {
    mock->bootstrap_port_note_ = forwarder.status().message();
    return mock;
  }
  mock->forwarder_ = std::move(forwarder).value();
  mock->bootstrap_servers_ = mock->forwarder_->address();
  return mock;
}

MockCluster::~MockCluster() = default;

Status MockCluster::CreateTopic(const std::string& topic, int partitions,
                                int replication_factor) {
  return StatusFromKafkaError(
      rd_kafka_mock_topic_create(cluster_.get(), topic.c_str(), partitions,
                                 replication_factor),
      "mock cluster: creating topic '" + topic + "'");
}

void MockCluster::PushRequestErrors(ApiKey api,
                                    const std::vector<BrokerError>& errors) {
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (BrokerError e : errors)
    codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(
      cluster_.get(), static_cast<int16_t>(api), codes.size(), codes.data());
}

void MockCluster::ClearRequestErrors(ApiKey api) {
  rd_kafka_mock_clear_request_errors(cluster_.get(), static_cast<int16_t>(api));
}

void MockCluster::SetTopicError(const std::string& topic, BrokerError error) {
  rd_kafka_mock_topic_set_error(cluster_.get(), topic.c_str(),
                                static_cast<rd_kafka_resp_err_t>(error));
}

Status MockCluster::SetBrokerDown(int32_t broker_id) {
  return StatusFromKafkaError(
      rd_kafka_mock_broker_set_down(cluster_.get(), broker_id),
      "mock cluster: taking broker " + std::to_string(broker_id) + " down");
}

Status MockCluster::SetBrokerUp(int32_t broker_id) {
  return StatusFromKafkaError(
      rd_kafka_mock_broker_set_up(cluster_.get(), broker_id),
      "mock cluster: bringing broker " + std::to_string(broker_id) + " up");
}

Status MockCluster::SetBrokerRtt(int32_t broker_id, int rtt_ms) {
  return StatusFromKafkaError(
      rd_kafka_mock_broker_set_rtt(cluster_.get(), broker_id, rtt_ms),
      "mock cluster: setting the round-trip time of broker " +
          std::to_string(broker_id));
}

Status MockCluster::SetPartitionLeader(const std::string& topic,
                                       int32_t partition, int32_t broker_id) {
  return StatusFromKafkaError(
      rd_kafka_mock_partition_set_leader(cluster_.get(), topic.c_str(),
                                         partition, broker_id),
      "mock cluster: moving the leader of " +
          PartitionContext(topic, partition));
}

Status MockCluster::SetCoordinator(CoordinatorType type, const std::string& key,
                                   int32_t broker_id) {
  return StatusFromKafkaError(
      rd_kafka_mock_coordinator_set(
          cluster_.get(),
          type == CoordinatorType::kGroup ? "group" : "transaction",
          key.c_str(), broker_id),
      "mock cluster: setting the coordinator of '" + key + "'");
}

}  // namespace kcqrs::kafka
