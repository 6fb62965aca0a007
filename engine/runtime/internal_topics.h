// InternalTopics: the topics an application needs, made ready before its
// stream threads start (Kafka Streams: InternalTopicManager). It waits for
// Kafka, settles every topic's partition count (CompiledTopology::
// ResolvePartitions), creates what is missing (changelogs compacted; and
// the application's own `<application.id>-instances` and
// `<application.id>-commits`, through which its instances learn about each
// other: engine/runtime/instance_metadata.h), checks what exists, and learns
// the per-topic record size limits.
//
// Checked on existing topics, each a clear error that names the topic and
// the fix: a changelog whose partition count differs from its store's tasks
// (ResolvePartitions), and a changelog that is not compacted (cleanup.policy
// without "compact": Kafka would delete state as it ages, and a restore
// would silently lose keys).
//
// Retriable Kafka errors are retried for as long as `backoff` says to go
// on (it sleeps, and returns false when the engine is stopping: Aborted).
#ifndef KCQRS_ENGINE_RUNTIME_INTERNAL_TOPICS_H_
#define KCQRS_ENGINE_RUNTIME_INTERNAL_TOPICS_H_

#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "engine/graph/compiled_topology.h"
#include "engine/kafka/admin.h"
#include "engine/kafka/mock_cluster.h"
#include "engine/kafka/properties.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class InternalTopics {
 public:
  // `embedded` (nullable): topics are created through librdkafka's mock
  // cluster, which keeps no topic configs (nothing is checked then).
  // `bootstrap_servers` is for messages only.
  InternalTopics(kafka::Admin* admin, kafka::MockCluster* embedded,
                 std::string bootstrap_servers, std::function<bool()> backoff);

  // Makes every topic of `topology` ready. Returns the topics it writes
  // whose own max.message.bytes is below what the producer (configured by
  // `kafka_properties`) allows, with the largest record each takes: the
  // broker would refuse a larger one only when the transaction commits, and
  // every retry would meet it again; the tasks dead-letter it instead.
  Result<std::map<std::string, size_t>> Setup(CompiledTopology* topology,
                                              const kafka::Properties& kafka_properties);

 private:
  Status Create(const TopicToCreate& topic);
  Result<std::map<std::string, size_t>> CheckConfigs(const CompiledTopology& topology,
                                                     const kafka::Properties& kafka_properties);

  kafka::Admin* admin_;
  kafka::MockCluster* embedded_;
  std::string bootstrap_servers_;
  std::function<bool()> backoff_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_INTERNAL_TOPICS_H_
