#include "engine/kafka/client.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <string>

#include "engine/kafka/error.h"

namespace kcqrs::kafka::internal {
namespace {

// librdkafka logs with syslog levels (0 emergency .. 7 debug).
spdlog::level::level_enum LevelFor(int syslog_level) {
  if (syslog_level <= 2) return spdlog::level::critical;
  if (syslog_level == 3) return spdlog::level::err;
  if (syslog_level == 4) return spdlog::level::warn;
  if (syslog_level <= 6) return spdlog::level::info;
  return spdlog::level::debug;
}

// Called on librdkafka's own threads; spdlog's default logger is
// thread-safe.
void LogToSpdlog(const rd_kafka_t* rk, int level, const char* facility,
                 const char* message) {
  spdlog::log(LevelFor(level), "librdkafka {} {}: {}", rd_kafka_name(rk),
              facility, message);
}

}  // namespace

void Deleter::operator()(rd_kafka_s* rk) const { rd_kafka_destroy(rk); }
void Deleter::operator()(rd_kafka_conf_s* conf) const {
  rd_kafka_conf_destroy(conf);
}
void Deleter::operator()(rd_kafka_queue_s* queue) const {
  rd_kafka_queue_destroy(queue);
}
void Deleter::operator()(rd_kafka_topic_partition_list_s* list) const {
  rd_kafka_topic_partition_list_destroy(list);
}
void Deleter::operator()(rd_kafka_consumer_group_metadata_s* metadata) const {
  rd_kafka_consumer_group_metadata_destroy(metadata);
}

Result<ConfPtr> NewConf(const Properties& properties, std::string_view client) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &LogToSpdlog);
  char errstr[512];
  for (const auto& [key, value] : properties) {
    errstr[0] = '\0';
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(std::string(client) + " property '" + key +
                                     "' = '" + value + "': " + errstr);
    }
  }
  return conf;
}

}  // namespace kcqrs::kafka::internal

namespace kcqrs::kafka {

Status CheckProperties(const Properties& properties) {
  auto conf = internal::NewConf(properties, "kafka.properties:");
  return conf.ok() ? Status::OK() : conf.status();
}

}  // namespace kcqrs::kafka

namespace kcqrs::kafka::internal {

Result<HandlePtr> NewHandle(ClientType type, ConfPtr conf,
                            std::string_view client) {
  char errstr[512];
  errstr[0] = '\0';
  rd_kafka_t* rk = rd_kafka_new(
      type == ClientType::kProducer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
      conf.get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    // Properties that are each valid but do not fit together (say,
    // transactional.id with enable.idempotence=false) fail here.
    return Status::InvalidArgument("creating the " + std::string(client) +
                                   ": " + errstr);
  }
  (void)conf.release();  // rd_kafka_new took it over
  return HandlePtr(rk);
}

PartitionListPtr ToPartitionList(
    const std::vector<TopicPartitionOffset>& tpos) {
  PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(tpos.size())));
  for (const auto& tpo : tpos) {
    rd_kafka_topic_partition_list_add(list.get(), tpo.topic.c_str(),
                                      tpo.partition)
        ->offset = tpo.offset;
  }
  return list;
}

std::vector<TopicPartitionOffset> FromPartitionList(
    const rd_kafka_topic_partition_list_s* list) {
  std::vector<TopicPartitionOffset> tpos;
  if (list == nullptr) return tpos;
  tpos.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = list->elems[i];
    tpos.push_back({p.topic, p.partition, p.offset});
  }
  return tpos;
}

Status FirstPartitionError(const rd_kafka_topic_partition_list_s* list,
                           std::string_view context) {
  if (list == nullptr) return Status::OK();
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return StatusFromKafkaError(
          p.err,
          std::string(context) + " " + PartitionContext(p.topic, p.partition));
    }
  }
  return Status::OK();
}

}  // namespace kcqrs::kafka::internal
