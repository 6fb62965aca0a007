#include "engine/kafka/admin.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "engine/kafka/error.h"

namespace kcqrs::kafka {
namespace {

using Clock = std::chrono::steady_clock;

struct AdminDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const {
    rd_kafka_NewTopic_destroy(t);
  }
  void operator()(rd_kafka_DeleteTopic_t* t) const {
    rd_kafka_DeleteTopic_destroy(t);
  }
  void operator()(rd_kafka_AdminOptions_t* o) const {
    rd_kafka_AdminOptions_destroy(o);
  }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_ConfigResource_t* r) const { rd_kafka_ConfigResource_destroy(r); }
  void operator()(rd_kafka_AlterConsumerGroupOffsets_t* a) const {
    rd_kafka_AlterConsumerGroupOffsets_destroy(a);
  }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(const rd_kafka_metadata_t* m) const {
    rd_kafka_metadata_destroy(m);
  }
};
template <typename T>
using AdminPtr = std::unique_ptr<T, AdminDeleter>;

constexpr std::chrono::milliseconds kMetadataRetryInterval{100};

// At least 1 ms, since librdkafka reads 0 as "do not wait".
int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 1));
}

Result<AdminPtr<rd_kafka_AdminOptions_t>> NewOptions(rd_kafka_t* rk,
                                                     rd_kafka_admin_op_t op,
                                                     int timeout_ms) {
  AdminPtr<rd_kafka_AdminOptions_t> options(rd_kafka_AdminOptions_new(rk, op));
  char errstr[512];
  rd_kafka_resp_err_t err = rd_kafka_AdminOptions_set_request_timeout(
      options.get(), timeout_ms, errstr, sizeof(errstr));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (op == RD_KAFKA_ADMIN_OP_CREATETOPICS ||
                                            op == RD_KAFKA_ADMIN_OP_DELETETOPICS)) {
    // How long the controller may take to finish the operation before it
    // answers; waiting here saves polling metadata for long.
    err = rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms,
                                                      errstr, sizeof(errstr));
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, "admin options", errstr);
  }
  return options;
}

// Waits for the one result event of an admin request on `queue`.
Result<AdminPtr<rd_kafka_event_t>> AwaitResult(rd_kafka_queue_t* queue,
                                               Clock::time_point deadline,
                                               const char* what) {
  // The request carries the same deadline, so librdkafka answers with a
  // time-out event by then; the grace period covers the hand-over.
  AdminPtr<rd_kafka_event_t> event(
      rd_kafka_queue_poll(queue, RemainingMs(deadline) + 1000));
  if (event == nullptr) {
    return Status::TimedOut(std::string(what) + ": no answer from the broker");
  }
  rd_kafka_resp_err_t err = rd_kafka_event_error(event.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, what,
                                rd_kafka_event_error_string(event.get()));
  }
  return event;
}

}  // namespace

Result<std::unique_ptr<Admin>> Admin::Create(const Properties& properties) {
  auto conf = internal::NewConf(properties, "admin client");
  if (!conf.ok()) return conf.status();
  auto rk = internal::NewHandle(internal::ClientType::kProducer,
                                std::move(*conf), "admin client");
  if (!rk.ok()) return rk.status();
  std::unique_ptr<Admin> admin(new Admin());
  admin->rk_ = std::move(*rk);
  admin->queue_.reset(rd_kafka_queue_new(admin->rk_.get()));
  return admin;
}

Admin::~Admin() = default;

Status Admin::CheckController(Clock::time_point deadline) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(
      rk_.get(), /*all_topics=*/0, nullptr, &raw, RemainingMs(deadline));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, "reading cluster metadata");
  }
  AdminPtr<const rd_kafka_metadata_t> metadata(raw);
  // Topic requests go to the controller, and librdkafka waits for it until
  // the deadline. librdkafka 2.0.2's mock names controller 0, which is
  // none of its brokers (they count from 1), so it never comes: say so at
  // once.
  const int32_t controller = rd_kafka_controllerid(rk_.get(), 0);
  const bool known = std::any_of(
      metadata->brokers, metadata->brokers + metadata->broker_cnt,
      [&](const rd_kafka_metadata_broker_t& b) { return b.id == controller; });
  if (!known) {
    return Status::NotSupported(
        "the cluster's metadata names controller " +
        std::to_string(controller) +
        ", which is not one of its brokers, so it cannot create or delete "
        "topics (librdkafka's mock cluster is such a cluster: use "
        "MockCluster::CreateTopic there)");
  }
  return Status::OK();
}

Status Admin::CreateTopics(const std::vector<NewTopic>& topics,
                           std::chrono::milliseconds timeout,
                           bool ok_if_exists) {
  if (topics.empty()) return Status::OK();
  const auto deadline = Clock::now() + timeout;
  std::vector<AdminPtr<rd_kafka_NewTopic_t>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  for (const NewTopic& topic : topics) {
    char errstr[512];
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(topic.name.c_str(), topic.partitions,
                              topic.replication_factor, errstr, sizeof(errstr));
    if (nt == nullptr) {
      return Status::InvalidArgument("topic '" + topic.name + "': " + errstr);
    }
    owned.emplace_back(nt);
    raw.push_back(nt);
    for (const auto& [key, value] : topic.configs) {
      KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
          rd_kafka_NewTopic_set_config(nt, key.c_str(), value.c_str()),
          "topic '" + topic.name + "' config '" + key + "'"));
    }
  }
  KCQRS_RETURN_IF_ERROR(CheckController(deadline));
  auto options = NewOptions(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS,
                            static_cast<int>(timeout.count()));
  if (!options.ok()) return options.status();
  rd_kafka_CreateTopics(rk_.get(), raw.data(), raw.size(), options->get(),
                        queue_.get());
  auto event = AwaitResult(queue_.get(), deadline, "creating topics");
  if (!event.ok()) return event.status();

  const rd_kafka_CreateTopics_result_t* result =
      rd_kafka_event_CreateTopics_result(event->get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(result, &count);
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) {
    const char* name = rd_kafka_topic_result_name(results[i]);
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && ok_if_exists) {
      err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* detail = rd_kafka_topic_result_error_string(results[i]);
      return StatusFromKafkaError(err,
                                  std::string("creating topic '") + name + "'",
                                  detail != nullptr ? detail : "");
    }
    names.emplace_back(name);
  }
  return WaitForMetadata(names, /*present=*/true, deadline);
}

Result<std::map<std::string, std::map<std::string, std::string>>> Admin::DescribeTopicConfigs(
    const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
  std::map<std::string, std::map<std::string, std::string>> out;
  if (topics.empty()) return out;
  const auto deadline = Clock::now() + timeout;
  std::vector<AdminPtr<rd_kafka_ConfigResource_t>> owned;
  std::vector<rd_kafka_ConfigResource_t*> raw;
  for (const std::string& topic : topics) {
    owned.emplace_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
    raw.push_back(owned.back().get());
  }
  auto options = NewOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS,
                            static_cast<int>(timeout.count()));
  if (!options.ok()) return options.status();
  rd_kafka_DescribeConfigs(rk_.get(), raw.data(), raw.size(), options->get(), queue_.get());
  auto event = AwaitResult(queue_.get(), deadline, "describing topic configs");
  if (!event.ok()) return event.status();
  const rd_kafka_DescribeConfigs_result_t* result =
      rd_kafka_event_DescribeConfigs_result(event->get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** resources =
      rd_kafka_DescribeConfigs_result_resources(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const std::string name = rd_kafka_ConfigResource_name(resources[i]);
    rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(resources[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* detail = rd_kafka_ConfigResource_error_string(resources[i]);
      return StatusFromKafkaError(err, "describing the configs of topic '" + name + "'",
                                  detail != nullptr ? detail : "");
    }
    size_t n = 0;
    const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(resources[i], &n);
    auto& configs = out[name];
    for (size_t k = 0; k < n; ++k) {
      const char* value = rd_kafka_ConfigEntry_value(entries[k]);
      configs[rd_kafka_ConfigEntry_name(entries[k])] = value != nullptr ? value : "";
    }
  }
  return out;
}

Status Admin::DeleteTopics(const std::vector<std::string>& topics,
                           std::chrono::milliseconds timeout) {
  if (topics.empty()) return Status::OK();
  const auto deadline = Clock::now() + timeout;
  std::vector<AdminPtr<rd_kafka_DeleteTopic_t>> owned;
  std::vector<rd_kafka_DeleteTopic_t*> raw;
  for (const std::string& topic : topics) {
    owned.emplace_back(rd_kafka_DeleteTopic_new(topic.c_str()));
    raw.push_back(owned.back().get());
  }
  KCQRS_RETURN_IF_ERROR(CheckController(deadline));
  auto options = NewOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DELETETOPICS,
                            static_cast<int>(timeout.count()));
  if (!options.ok()) return options.status();
  rd_kafka_DeleteTopics(rk_.get(), raw.data(), raw.size(), options->get(),
                        queue_.get());
  auto event = AwaitResult(queue_.get(), deadline, "deleting topics");
  if (!event.ok()) return event.status();

  const rd_kafka_DeleteTopics_result_t* result =
      rd_kafka_event_DeleteTopics_result(event->get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* detail = rd_kafka_topic_result_error_string(results[i]);
      return StatusFromKafkaError(err,
                                  std::string("deleting topic '") +
                                      rd_kafka_topic_result_name(results[i]) +
                                      "'",
                                  detail != nullptr ? detail : "");
    }
  }
  return WaitForMetadata(topics, /*present=*/false, deadline);
}

Result<Admin::GroupInfo> Admin::DescribeGroup(const std::string& group,
                                              std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto options = NewOptions(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                            static_cast<int>(timeout.count()));
  if (!options.ok()) return options.status();
  const char* groups[] = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(rk_.get(), groups, 1, options->get(), queue_.get());
  const std::string what = "describing consumer group '" + group + "'";
  auto event = AwaitResult(queue_.get(), deadline, what.c_str());
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_ConsumerGroupDescription_t** descs =
      rd_kafka_DescribeConsumerGroups_result_groups(
          rd_kafka_event_DescribeConsumerGroups_result(event->get()), &count);
  if (count != 1) return Status::Internal(what + ": " + std::to_string(count) + " answers");
  if (const rd_kafka_error_t* err = rd_kafka_ConsumerGroupDescription_error(descs[0])) {
    return StatusFromKafkaError(rd_kafka_error_code(err), what, rd_kafka_error_string(err));
  }
  GroupInfo info;
  info.state = rd_kafka_consumer_group_state_name(
      rd_kafka_ConsumerGroupDescription_state(descs[0]));
  const size_t members = rd_kafka_ConsumerGroupDescription_member_count(descs[0]);
  for (size_t i = 0; i < members; ++i) {
    const rd_kafka_MemberDescription_t* m =
        rd_kafka_ConsumerGroupDescription_member(descs[0], static_cast<int>(i));
    const char* instance = rd_kafka_MemberDescription_group_instance_id(m);
    const char* client = rd_kafka_MemberDescription_client_id(m);
    const char* host = rd_kafka_MemberDescription_host(m);
    info.members.push_back(std::string(instance != nullptr && *instance ? instance
                                       : client != nullptr               ? client
                                                                         : "?") +
                           "@" + (host != nullptr ? host : "?"));
  }
  return info;
}

Status Admin::AlterGroupOffsets(const std::string& group,
                                const std::vector<TopicPartitionOffset>& offsets,
                                std::chrono::milliseconds timeout) {
  if (offsets.empty()) return Status::OK();
  const auto deadline = Clock::now() + timeout;
  AdminPtr<rd_kafka_topic_partition_list_t> list(
      rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const TopicPartitionOffset& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset =
        o.offset;
  }
  AdminPtr<rd_kafka_AlterConsumerGroupOffsets_t> alter(
      rd_kafka_AlterConsumerGroupOffsets_new(group.c_str(), list.get()));
  auto options = NewOptions(rk_.get(), RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                            static_cast<int>(timeout.count()));
  if (!options.ok()) return options.status();
  rd_kafka_AlterConsumerGroupOffsets_t* raw[] = {alter.get()};
  rd_kafka_AlterConsumerGroupOffsets(rk_.get(), raw, 1, options->get(), queue_.get());
  const std::string what = "setting the offsets of consumer group '" + group + "'";
  auto event = AwaitResult(queue_.get(), deadline, what.c_str());
  if (!event.ok()) return event.status();
  size_t count = 0;
  const rd_kafka_group_result_t** groups = rd_kafka_AlterConsumerGroupOffsets_result_groups(
      rd_kafka_event_AlterConsumerGroupOffsets_result(event->get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* err = rd_kafka_group_result_error(groups[i])) {
      const rd_kafka_resp_err_t code = rd_kafka_error_code(err);
      if (code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) {
        return Status::FailedPrecondition(what + ": the group has members; stop every "
                                          "instance first");
      }
      return StatusFromKafkaError(code, what, rd_kafka_error_string(err));
    }
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(groups[i]);
    for (int k = 0; parts != nullptr && k < parts->cnt; ++k) {
      const rd_kafka_topic_partition_t& p = parts->elems[k];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return StatusFromKafkaError(p.err, what + " for " + p.topic + "-" +
                                               std::to_string(p.partition));
      }
    }
  }
  return Status::OK();
}

Result<std::vector<Admin::TopicInfo>> Admin::ListTopics(
    std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk_.get(), /*all_topics=*/1, nullptr, &raw,
                        static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, "reading cluster metadata");
  }
  AdminPtr<const rd_kafka_metadata_t> metadata(raw);
  std::vector<TopicInfo> topics;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& t = metadata->topics[i];
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    topics.push_back({t.topic, t.partition_cnt});
  }
  std::sort(
      topics.begin(), topics.end(),
      [](const TopicInfo& a, const TopicInfo& b) { return a.name < b.name; });
  return topics;
}

Status Admin::WaitForMetadata(const std::vector<std::string>& topics,
                              bool present, Clock::time_point deadline) {
  std::set<std::string> waiting(topics.begin(), topics.end());
  Status last;
  for (;;) {
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(
        rk_.get(), /*all_topics=*/1, nullptr, &raw, RemainingMs(deadline));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      AdminPtr<const rd_kafka_metadata_t> metadata(raw);
      std::set<std::string> ready;
      for (int i = 0; i < metadata->topic_cnt; ++i) {
        const rd_kafka_metadata_topic_t& t = metadata->topics[i];
        if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR || t.partition_cnt == 0)
          continue;
        bool has_leaders =
            std::all_of(t.partitions, t.partitions + t.partition_cnt,
                        [](const rd_kafka_metadata_partition_t& p) {
                          return p.leader >= 0;
                        });
        if (has_leaders) ready.insert(t.topic);
      }
      std::erase_if(waiting, [&](const std::string& name) {
        return ready.contains(name) == present;
      });
      if (waiting.empty()) return Status::OK();
      last = Status();
    } else {
      last = StatusFromKafkaError(err, "reading cluster metadata");
    }
    if (Clock::now() + kMetadataRetryInterval >= deadline) break;
    std::this_thread::sleep_for(kMetadataRetryInterval);
  }
  std::string names;
  for (const auto& name : waiting) names += names.empty() ? name : ", " + name;
  std::string msg = "metadata did not show topics " + names +
                    (present ? " as ready" : " as deleted") + " in time";
  if (!last.ok()) msg += " (last error: " + last.ToString() + ")";
  return Status::TimedOut(msg);
}

}  // namespace kcqrs::kafka
