// InstanceMetadata: how the instances of one application learn about each
// other, through Kafka only (Kafka Streams: the StreamsMetadata that its
// assignor spreads in the group's subscription userdata; librdkafka has no
// pluggable assignor, so kcqrs spreads it through a topic instead).
//
// Two internal topics, created by InternalTopics before the threads start:
//
//   <application.id>-instances  compacted, 1 partition. Key: instance id;
//     value: the instance's InstanceInfo as JSON (EncodeInstanceInfo). An
//     instance writes it on every change of what it holds (polled every
//     250 ms) and every 2 s as a heartbeat; a tombstone when it stops
//     cleanly. A reader that has not heard from an instance for three
//     heartbeats (6 s) no longer offers it as a holder (a kill -9 leaves
//     no tombstone); the compacted record stays, and `kcqrs describe --live`
//     applies the same rule by the record's timestamp.
//   <application.id>-commits  cleanup.policy=delete, retention 1 h, 1
//     partition. Key: instance id; value: one local PositionLog entry per
//     stream-thread commit (EncodeCommit). Each instance appends the
//     others' entries to its own PositionLog as remote entries, so a
//     position token from one instance can be followed on another
//     (read-your-writes across instances). Read from its end at start:
//     older commits are older than any token worth waiting for.
//
// Both are written by one plain idempotent producer (no transaction: the
// records describe, they do not change state) and read by one consumer
// that is assigned the partitions (no group).
//
// Crash behaviour: nothing of it is kept locally. After a kill -9 the
// others stop offering the instance within 6 s; its restart publishes anew.
//
// Ownership: the Engine owns it. Thread-safety: the InstanceDirectory
// methods and PublishCommit are safe from any thread; Stop from one.
#ifndef KCQRS_ENGINE_RUNTIME_INSTANCE_METADATA_H_
#define KCQRS_ENGINE_RUNTIME_INSTANCE_METADATA_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/kafka/properties.h"
#include "engine/serving/instance_directory.h"
#include "engine/serving/position_log.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

std::string InstancesTopic(const std::string& application_id);  // "<app>-instances"
std::string CommitsTopic(const std::string& application_id);    // "<app>-commits"

// The URL others reach this instance's HTTP API at: `advertised_url` when
// set, else "http://" + `bound_address` ("127.0.0.1:8080", "[::1]:8080"),
// with `hostname` in place of an address that means every interface
// (0.0.0.0, [::]), which others cannot connect to.
std::string AdvertisedUrl(const std::string& advertised_url, const std::string& bound_address,
                          const std::string& hostname);
// The same with this machine's hostname.
std::string AdvertisedUrl(const std::string& advertised_url, const std::string& bound_address);

// How often an instance says it is there, and how long the others wait
// before they consider it gone.
inline constexpr std::chrono::milliseconds kInstanceHeartbeat{2000};
inline constexpr std::chrono::milliseconds kInstanceLiveFor{3 * kInstanceHeartbeat};

// {"v":1,"id":..,"url":..,"active":[..],"standby":[..],"updated_ms":..}.
// `self` is not written. Decode: InvalidArgument saying what is wrong.
std::string EncodeInstanceInfo(const InstanceInfo& info);
Result<InstanceInfo> DecodeInstanceInfo(std::string_view json);

// One commit, compactly (one record per commit per stream thread): topics
// are named once per record, partitions and offsets as arrays:
// {"v":1,"t":["orders.events",..],"c":[[ti,p,next],..],"p":[[ti,p,last],..],
//  "d":[[ti,p,offset,"reason"],..]}. Decode gives local = false.
std::string EncodeCommit(const PositionLog::Entry& entry);
Result<PositionLog::Entry> DecodeCommit(std::string_view json);

// The directory logic, without Kafka: what was heard from whom and when,
// liveness, tombstones, and which of two claimants holds a task. The clock
// is injected so that tests need not sleep.
//
// Thread-safety: every method locks; safe from any thread.
class InstanceTable final : public InstanceDirectory {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  InstanceTable(std::string self_id, Clock clock = std::chrono::steady_clock::now,
                std::chrono::milliseconds live_for = kInstanceLiveFor);

  // What this instance holds: always live, answered without a round trip
  // through Kafka.
  void SetSelf(InstanceInfo info);
  InstanceInfo self() const;
  // Another instance's record, heard at `heard_at` (steady clock). Records
  // of this instance's own id are ignored (the local view is fresher).
  void Heard(InstanceInfo info, std::chrono::steady_clock::time_point heard_at);
  // A tombstone: the instance stopped cleanly.
  void Remove(const std::string& id);

  // InstanceDirectory
  std::vector<InstanceInfo> Instances() const override;
  std::optional<InstanceInfo> ActiveHolder(const std::string& task) const override;
  std::vector<InstanceInfo> StandbyHolders(const std::string& task) const override;
  std::string self_id() const override { return self_id_; }

 private:
  struct Seen {
    InstanceInfo info;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<InstanceInfo> LiveLocked() const;

  const std::string self_id_;
  const Clock clock_;
  const std::chrono::milliseconds live_for_;
  mutable std::mutex mu_;
  InstanceInfo self_;
  std::map<std::string, Seen> others_;
};

// What this instance holds, as the engine tells it.
struct HeldTasks {
  std::vector<std::string> active;   // "0_1"
  std::vector<std::string> standby;  // "0_1"
};

struct InstanceMetadataConfig {
  std::string application_id;
  std::string instance_id;
  std::string url;  // advertised, no trailing slash
  kafka::Properties producer_properties;  // bootstrap.servers and the user's
  kafka::Properties consumer_properties;
  // Polled every `poll_interval` from the publisher's thread; must be safe
  // from there.
  std::function<HeldTasks()> held;
  // Where the other instances' commits go (local = false). Not owned; must
  // outlive this.
  PositionLog* positions = nullptr;
  // Produced topics not worth publishing: no task reads them (changelogs).
  std::set<std::string> unfollowed_topics;
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds heartbeat = kInstanceHeartbeat;
};

class InstanceMetadata final : public InstanceDirectory {
 public:
  // Creates the clients and starts the publisher and the reader threads.
  // The topics must exist. Errors: InvalidArgument for a bad client property.
  static Result<std::unique_ptr<InstanceMetadata>> Start(InstanceMetadataConfig config);

  InstanceMetadata(const InstanceMetadata&) = delete;
  InstanceMetadata& operator=(const InstanceMetadata&) = delete;
  ~InstanceMetadata() override;

  // Queues a local PositionLog entry for the other instances (the
  // PositionLog's local listener). Never blocks on Kafka. Dropped after Stop.
  void PublishCommit(const PositionLog::Entry& entry);

  // Publishes the tombstone (waits up to 5 s for it) and stops both
  // threads. The directory goes on answering from what it last knew, until
  // destroyed. Idempotent.
  void Stop();

  // InstanceDirectory
  std::vector<InstanceInfo> Instances() const override { return table_.Instances(); }
  std::optional<InstanceInfo> ActiveHolder(const std::string& task) const override {
    return table_.ActiveHolder(task);
  }
  std::vector<InstanceInfo> StandbyHolders(const std::string& task) const override {
    return table_.StandbyHolders(task);
  }
  std::string self_id() const override { return table_.self_id(); }

  // Counters, for tests and logs.
  uint64_t published_infos() const { return published_infos_.load(); }
  uint64_t remote_commits() const { return remote_commits_.load(); }

 private:
  struct Clients;  // the producer and the consumer (engine/kafka), in the .cc
  InstanceMetadata(InstanceMetadataConfig config, std::unique_ptr<Clients> clients);
  void PublishLoop();
  void ReadLoop();

  const InstanceMetadataConfig config_;
  InstanceTable table_;
  std::unique_ptr<Clients> clients_;

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<std::string> commits_;  // encoded, waiting for the publisher

  std::atomic<bool> reading_{true};
  std::atomic<uint64_t> published_infos_{0};
  std::atomic<uint64_t> remote_commits_{0};
  std::thread publisher_;
  std::thread reader_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_RUNTIME_INSTANCE_METADATA_H_
