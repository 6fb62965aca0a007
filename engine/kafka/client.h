// Internal to engine/kafka: RAII ownership of librdkafka objects and the
// setup every client shares (configuration, logging to spdlog, partition
// list conversion). Other modules use producer.h, consumer.h, admin.h and
// mock_cluster.h instead.
//
// Only forward declarations of librdkafka's structs appear here, so that
// even this header compiles without librdkafka's headers.
//
// Thread-safety: the functions are stateless; the objects they return are
// owned by the caller.
#ifndef KCQRS_ENGINE_KAFKA_CLIENT_H_
#define KCQRS_ENGINE_KAFKA_CLIENT_H_

#include <memory>
#include <string_view>
#include <vector>

#include "engine/kafka/properties.h"
#include "engine/kafka/record.h"
#include "kcqrs/status.h"

struct rd_kafka_s;
struct rd_kafka_conf_s;
struct rd_kafka_queue_s;
struct rd_kafka_topic_partition_list_s;
struct rd_kafka_consumer_group_metadata_s;

namespace kcqrs::kafka::internal {

// One deleter for every librdkafka object kcqrs holds; std::unique_ptr
// picks the overload by pointer type.
struct Deleter {
  void operator()(rd_kafka_s* rk) const;  // rd_kafka_destroy
  void operator()(rd_kafka_conf_s* conf) const;
  void operator()(rd_kafka_queue_s* queue) const;
  void operator()(rd_kafka_topic_partition_list_s* list) const;
  void operator()(rd_kafka_consumer_group_metadata_s* metadata) const;
};

using HandlePtr = std::unique_ptr<rd_kafka_s, Deleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_s, Deleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_s, Deleter>;
using PartitionListPtr =
    std::unique_ptr<rd_kafka_topic_partition_list_s, Deleter>;

// A configuration holding `properties`, with librdkafka's log lines routed
// to spdlog. An unknown property or a bad value is InvalidArgument naming
// it; `client` ("producer", "consumer", ...) goes in front of the message.
Result<ConfPtr> NewConf(const Properties& properties, std::string_view client);

enum class ClientType { kProducer, kConsumer };

// Creates the handle from `conf`, which librdkafka takes over on success
// (and which is destroyed here on failure).
Result<HandlePtr> NewHandle(ClientType type, ConfPtr conf,
                            std::string_view client);

PartitionListPtr ToPartitionList(const std::vector<TopicPartitionOffset>& tpos);
std::vector<TopicPartitionOffset> FromPartitionList(
    const rd_kafka_topic_partition_list_s* list);

// The first per-partition error in `list`, with its topic[partition].
Status FirstPartitionError(const rd_kafka_topic_partition_list_s* list,
                           std::string_view context);

}  // namespace kcqrs::kafka::internal

#endif  // KCQRS_ENGINE_KAFKA_CLIENT_H_
