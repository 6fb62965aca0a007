#include "engine/runtime/internal_topics.h"

#include <spdlog/spdlog.h>

#include <set>
#include <vector>

#include "engine/runtime/instance_metadata.h"
#include "engine/runtime/task.h"

namespace kcqrs::engine {
namespace {

constexpr std::chrono::milliseconds kAdminTimeout{30000};
// One attempt to reach Kafka at start. Short, because a stop waits for the
// attempt under way (librdkafka's metadata call cannot be interrupted): with
// the 30 s of the other calls, Ctrl-C against an unreachable Kafka took 22 s.
// Nothing is lost by retrying: the admin client keeps connecting in the
// background between attempts, and a reachable broker answers a metadata
// request in milliseconds.
constexpr std::chrono::milliseconds kProbeTimeout{1000};

bool Retriable(const Status& s) { return s.IsUnavailable() || s.IsTimedOut(); }

}  // namespace

InternalTopics::InternalTopics(kafka::Admin* admin, kafka::MockCluster* embedded,
                               std::string bootstrap_servers, std::function<bool()> backoff)
    : admin_(admin),
      embedded_(embedded),
      bootstrap_servers_(std::move(bootstrap_servers)),
      backoff_(std::move(backoff)) {}

Result<std::map<std::string, size_t>> InternalTopics::Setup(
    CompiledTopology* topology, const kafka::Properties& kafka_properties) {
  std::vector<kafka::Admin::TopicInfo> topics;
  for (bool logged = false;;) {
    auto listed = admin_->ListTopics(kProbeTimeout);
    if (listed.ok()) {
      topics = std::move(listed).value();
      break;
    }
    if (!logged) {
      spdlog::warn("waiting for Kafka at {}: {} (retrying; /readyz says 503 until then)",
                   bootstrap_servers_, listed.status().message());
      logged = true;
    }
    if (!backoff_()) return Status::Aborted("stopping");
  }
  std::map<std::string, int> existing;
  for (const auto& t : topics) existing[t.name] = t.partitions;
  KCQRS_RETURN_IF_ERROR(topology->ResolvePartitions(existing));

  std::vector<TopicToCreate> to_create = topology->topics_to_create();
  // Where the instances tell each other what they hold and what they
  // committed (engine/runtime/instance_metadata.h). One partition each:
  // every instance reads all of both. Segments roll every 10 minutes so that
  // compaction and retention can act on them (they work on closed
  // segments only): the heartbeats of a day would otherwise be read again
  // at every start.
  const std::string app = topology->application_id();
  to_create.push_back({InstancesTopic(app), 1,
                       {{"cleanup.policy", "compact"}, {"segment.ms", "600000"}}});
  to_create.push_back({CommitsTopic(app), 1,
                       {{"cleanup.policy", "delete"},
                        {"retention.ms", "3600000"},
                        {"segment.ms", "600000"}}});
  for (const TopicToCreate& t : to_create) {
    if (existing.count(t.name)) continue;
    for (;;) {
      Status created = Create(t);
      if (created.ok()) {
        spdlog::info("created topic {} ({} partitions)", t.name, t.partitions);
        break;
      }
      if (!Retriable(created)) return created.WithContext("creating topic " + t.name);
      spdlog::warn("creating topic {}: {}; retrying", t.name, created.message());
      if (!backoff_()) return Status::Aborted("stopping");
    }
  }
  if (embedded_ != nullptr) return std::map<std::string, size_t>{};
  return CheckConfigs(*topology, kafka_properties);
}

Status InternalTopics::Create(const TopicToCreate& t) {
  if (embedded_ != nullptr) return embedded_->CreateTopic(t.name, t.partitions, 1);
  kafka::Admin::NewTopic nt;
  nt.name = t.name;
  nt.partitions = t.partitions;
  nt.configs = t.configs;
  return admin_->CreateTopics({nt}, kAdminTimeout, /*ok_if_exists=*/true);
}

Result<std::map<std::string, size_t>> InternalTopics::CheckConfigs(
    const CompiledTopology& topology, const kafka::Properties& kafka_properties) {
  std::set<std::string> written;
  std::set<std::string> changelogs;
  for (const SubTopology& st : topology.subtopologies()) {
    written.insert(st.sources.begin(), st.sources.end());  // forwarded commands
    for (const Node& n : st.nodes) written.insert(n.sinks.begin(), n.sinks.end());
    for (const std::string& store : st.stores) {
      written.insert(topology.ChangelogTopic(store));
      changelogs.insert(topology.ChangelogTopic(store));
    }
  }
  const size_t producer_max = MaxRecordBytesFor(kafka_properties);
  for (;;) {
    auto configs = admin_->DescribeTopicConfigs({written.begin(), written.end()}, kAdminTimeout);
    if (!configs.ok()) {
      if (!Retriable(configs.status())) return configs.status();
      spdlog::warn("describing topic configs: {}; retrying", configs.status().message());
      if (!backoff_()) return Status::Aborted("stopping");
      continue;
    }
    std::map<std::string, size_t> limits;
    for (const auto& [topic, entries] : *configs) {
      if (changelogs.count(topic)) {
        auto policy = entries.find("cleanup.policy");
        if (policy != entries.end() && policy->second.find("compact") == std::string::npos) {
          return Status::FailedPrecondition(
              "changelog topic " + topic + " has cleanup.policy=" + policy->second +
              ": Kafka would delete the state it holds as it ages, and a restore would lose "
              "keys; make it compacted (kafka-configs --alter --entity-type topics "
              "--entity-name " + topic + " --add-config cleanup.policy=compact)");
        }
      }
      auto m = entries.find("max.message.bytes");
      if (m == entries.end()) continue;
      size_t max = 0;
      try {
        max = static_cast<size_t>(std::stoull(m->second));
      } catch (...) {
        continue;
      }
      max = max > kRecordFramingBytes ? max - kRecordFramingBytes : 0;
      if (max < producer_max) {
        spdlog::info("topic {} takes records of up to {} bytes (max.message.bytes)", topic, max);
        limits[topic] = max;
      }
    }
    return limits;
  }
}

}  // namespace kcqrs::engine
