// InstanceDirectory: the instances of this application and the tasks each
// holds, as this instance last learned them (Kafka Streams:
// StreamsMetadata, KafkaStreams#queryMetadataForKey). Instances learn about
// each other through Kafka only: each publishes what it holds to the
// application's internal `<application.id>-instances` topic, and reads what
// the others publish (engine/runtime/instance_metadata.h).
//
// Serving uses it to answer for keys this instance does not hold: a query
// is forwarded to the instance that holds the key's task as an active task
// (one hop), a scan fans out to every holder, a command goes to the holder
// of its command partition. What it says may be a moment behind a
// rebalance: a forwarded request that meets a non-holder is answered 503
// with Retry-After, never forwarded again.
//
// Thread-safety: every method is safe from any thread.
#ifndef KCQRS_ENGINE_SERVING_INSTANCE_DIRECTORY_H_
#define KCQRS_ENGINE_SERVING_INSTANCE_DIRECTORY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kcqrs::engine {

struct InstanceInfo {
  std::string id;   // the instance id (kept in its state directory)
  // Where its HTTP API answers, as others reach it: http.advertised_url, or
  // http://<listen address> ("http://10.0.0.5:8080"); no trailing slash.
  std::string url;
  std::vector<std::string> active_tasks;   // "0_1", sorted
  std::vector<std::string> standby_tasks;  // "0_1", sorted
  // Milliseconds since the epoch when it last said so (it says so on every
  // change and every few seconds); an instance not heard from for a while
  // is not offered as a holder.
  int64_t updated_ms = 0;
  bool self = false;  // this instance
};

class InstanceDirectory {
 public:
  virtual ~InstanceDirectory() = default;

  // Every live instance, this one included, ordered by id.
  virtual std::vector<InstanceInfo> Instances() const = 0;
  // The instance that holds `task` ("0_1") as an active task now, if known.
  virtual std::optional<InstanceInfo> ActiveHolder(const std::string& task) const = 0;
  // The instances that hold a warm standby copy of `task`.
  virtual std::vector<InstanceInfo> StandbyHolders(const std::string& task) const = 0;
  virtual std::string self_id() const = 0;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_INSTANCE_DIRECTORY_H_
