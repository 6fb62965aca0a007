#include "engine/runtime/live_instances.h"

#include "json/document.h"

#include <algorithm>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "engine/runtime/client_configs.h"
#include "engine/runtime/instance_metadata.h"

namespace kcqrs::engine {
namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "(none)" : out;
}

}  // namespace

Result<std::vector<InstanceInfo>> ReadLiveInstances(const EngineOptions& options,
                                                    std::chrono::milliseconds timeout) {
  if (options.kafka.embedded) {
    return Status::InvalidArgument(
        "kafka.bootstrap_servers is 'embedded': that Kafka lives inside the `kcqrs run` "
        "process and cannot be read from outside; describe --live reads a real cluster "
        "(--set kafka.bootstrap_servers=host:port)");
  }
  if (options.kafka.bootstrap_servers.empty()) {
    return Status::InvalidArgument("kafka.bootstrap_servers is empty: give host:port of your "
                                   "brokers");
  }
  std::string bootstrap;
  for (const std::string& b : options.kafka.bootstrap_servers) {
    bootstrap += (bootstrap.empty() ? "" : ",") + b;
  }
  const std::string topic = InstancesTopic(options.application.id);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };

  auto admin = kafka::Admin::Create(AdminConfig(options, bootstrap).properties);
  if (!admin.ok()) return admin.status();
  auto topics = (*admin)->ListTopics(left());
  if (!topics.ok()) return topics.status().WithContext("listing the topics at " + bootstrap);
  if (std::none_of(topics->begin(), topics->end(),
                   [&](const kafka::Admin::TopicInfo& t) { return t.name == topic; })) {
    return Status::NotFound("topic " + topic + " does not exist at " + bootstrap +
                            ": no instance of application " + options.application.id +
                            " has run against this cluster");
  }

  auto consumer = kafka::Consumer::Create(
      MetadataConsumerConfig(options, bootstrap, options.application.id + "-describe")
          .properties);
  if (!consumer.ok()) return consumer.status();
  auto marks = (*consumer)->QueryWatermarks(topic, 0, left());
  if (!marks.ok()) return marks.status().WithContext("reading the end of " + topic);
  // No instance is "this one": the table's own entry has an empty id and is
  // left out below.
  InstanceTable table("");
  if (marks->second > marks->first) {
    KCQRS_RETURN_IF_ERROR((*consumer)->Assign(
        {{.topic = topic, .partition = 0, .offset = kafka::kOffsetBeginning}}));
    for (int64_t next = marks->first; next < marks->second;) {
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::TimedOut("reading " + topic + ": at offset " + std::to_string(next) +
                                " of " + std::to_string(marks->second) + " when time ran out");
      }
      auto polled = (*consumer)->Poll(std::chrono::milliseconds(200));
      if (!polled.ok() || !polled->has_value()) continue;
      const kafka::ConsumedRecord& r = **polled;
      next = r.offset + 1;
      if (!r.key || r.key->empty()) continue;
      if (!r.value) {
        table.Remove(*r.key);
        continue;
      }
      auto info = DecodeInstanceInfo(*r.value);
      if (!info.ok() || info->id != *r.key) continue;
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      const int64_t said_ms = r.timestamp_ms >= 0 ? r.timestamp_ms : info->updated_ms;
      table.Heard(std::move(info).value(),
                  std::chrono::steady_clock::now() -
                      std::chrono::milliseconds(std::max<int64_t>(0, now_ms - said_ms)));
    }
  }
  (void)(*consumer)->Close();
  std::vector<InstanceInfo> out;
  for (InstanceInfo& info : table.Instances()) {
    if (!info.id.empty()) out.push_back(std::move(info));
  }
  return out;
}

std::string FormatLiveInstances(const std::string& application_id,
                                const std::vector<InstanceInfo>& instances, bool json) {
  if (json) {
    kcqrs::Json list = kcqrs::Json::array();
    for (const InstanceInfo& i : instances) {
      list.push_back({{"id", i.id},
                      {"url", i.url},
                      {"active_tasks", i.active_tasks},
                      {"standby_tasks", i.standby_tasks},
                      {"updated_ms", i.updated_ms}});
    }
    return kcqrs::Json{{"application", application_id}, {"instances", list}}.dump(2) + "\n";
  }
  std::string out = "application " + application_id + ": " + std::to_string(instances.size()) +
                    " live instance(s)\n";
  for (const InstanceInfo& i : instances) {
    out += "instance " + i.id + " at " + i.url + "\n";
    out += "  active tasks:  " + Join(i.active_tasks) + "\n";
    out += "  standby tasks: " + Join(i.standby_tasks) + "\n";
  }
  return out;
}

}  // namespace kcqrs::engine
