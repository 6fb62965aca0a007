// The librdkafka configuration of every Kafka client the runtime creates,
// as pure functions of the options (Kafka Streams: StreamsConfig's
// getProducerConfigs, getMainConsumerConfigs, getRestoreConsumerConfigs and
// getAdminConfigs).
//
// Three kinds of setting, applied in this order:
//   1. defaults kcqrs chose for speed or failover (linger.ms,
//      session.timeout.ms, queued.min.messages, ...): the user's
//      kafka.properties override them;
//   2. the user's kafka.properties, passed through unchanged;
//   3. settings exactly-once and the group protocol depend on
//      (enable.auto.commit, isolation.level, transactional.id, the
//      assignor, ...): these override the user's, and each user value so
//      overridden is named in `overridden`, for the caller to log, as Kafka
//      Streams logs the consumer configs it does not let users change.
#ifndef KCQRS_ENGINE_RUNTIME_CLIENT_CONFIGS_H_
#define KCQRS_ENGINE_RUNTIME_CLIENT_CONFIGS_H_

#include <string>
#include <vector>

#include "engine/kafka/properties.h"
#include "kcqrs/options.h"

namespace kcqrs::engine {

struct ClientConfig {
  kafka::Properties properties;
  // "<key>=<user value> (kcqrs needs <value>: <why>)" for each user setting
  // replaced by one the runtime depends on.
  std::vector<std::string> overridden;
};

// Who a stream thread's clients belong to.
struct StreamThreadIdentity {
  std::string bootstrap_servers;
  int thread_index = 0;
  // "<application.id>-<instance>-<thread>": the transactional id under
  // exactly-once and the static group member id (ClientConfig comments).
  std::string member_id;
};

// The stream thread's producer: idempotent; transactional under
// exactly-once, with the member id as transactional.id.
ClientConfig ProducerConfig(const EngineOptions& options, const StreamThreadIdentity& who);

// The stream thread's consumer: a static member (group.instance.id = the
// member id) of the application's group, read_committed, committing only
// through the producer's transactions (or explicitly, at-least-once).
ClientConfig MainConsumerConfig(const EngineOptions& options, const StreamThreadIdentity& who);

// The consumer that replays changelogs into stores: assigned by hand,
// never a group member, read_committed, stopping at each partition's end.
ClientConfig RestoreConsumerConfig(const EngineOptions& options,
                                   const StreamThreadIdentity& who);

// The clients of InstanceMetadata (engine/runtime/instance_metadata.h),
// which tell the instances of the application about each other: an
// idempotent producer, never transactional (the records describe, they
// change no state), and a consumer assigned by hand, never a group member.
// `who` names the instance ("<application.id>-<instance>-metadata").
ClientConfig MetadataProducerConfig(const EngineOptions& options,
                                    const std::string& bootstrap_servers,
                                    const std::string& who);
ClientConfig MetadataConsumerConfig(const EngineOptions& options,
                                    const std::string& bootstrap_servers,
                                    const std::string& who);

// The admin client that creates and checks the topics.
ClientConfig AdminConfig(const EngineOptions& options, const std::string& bootstrap_servers);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_CLIENT_CONFIGS_H_
