#include "engine/kafka/consumer.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <string>
#include <utility>

#include "engine/kafka/error.h"

namespace kcqrs::kafka {

// librdkafka's C callbacks, given the Consumer as the handle's opaque.
struct ConsumerCallbacks {
  static void OnRebalance(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions,
                          void* opaque) {
    static_cast<Consumer*>(opaque)->HandleRebalance(err, partitions);
  }
};

namespace {

// Kafka's null (no key, a tombstone, a null header value) is nullopt; the
// bytes go into the string already there, reusing its capacity.
void AssignBytes(const void* data, size_t size, std::optional<std::string>* out) {
  if (data == nullptr) {
    out->reset();
  } else if (out->has_value()) {
    (*out)->assign(static_cast<const char*>(data), size);
  } else {
    out->emplace(static_cast<const char*>(data), size);
  }
}

void Fill(const rd_kafka_message_t* m, bool skip_headers, Record* out) {
  out->topic.assign(rd_kafka_topic_name(m->rkt));
  out->partition = m->partition;
  out->offset = m->offset;
  AssignBytes(m->key, m->key_len, &out->key);
  AssignBytes(m->payload, m->len, &out->value);
  rd_kafka_timestamp_type_t type;
  out->timestamp_ms = rd_kafka_message_timestamp(m, &type);
  // The message is const for the caller, but librdkafka parses headers
  // lazily into it; the parse does not change what the message holds.
  size_t n = 0;
  rd_kafka_headers_t* headers = nullptr;
  if (!skip_headers && rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (; rd_kafka_header_get_all(headers, n, &name, &value, &size) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
         ++n) {
      if (n == out->headers.size()) out->headers.emplace_back();
      kcqrs::Header& h = out->headers[n];
      h.key.assign(name);
      AssignBytes(value, size, &h.value);
    }
  }
  // Shrinking keeps the vector's capacity; the headers past n are freed,
  // and a record with more headers than the last builds them again.
  out->headers.resize(n);
}

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};

}  // namespace

Result<std::unique_ptr<Consumer>> Consumer::Create(
    const Properties& properties) {
  const bool has_group_id = properties.count("group.id") != 0;
  Properties effective = properties;
  if (!has_group_id) {
    // librdkafka's consumer refuses even Assign without a group.id. A
    // private one serves that; this class then refuses every call that
    // would use the group (Subscribe, CommitSync, Committed,
    // GroupMetadata), and auto-commit is off so nothing is committed to it.
    // Assign never joins a group, so consumers may share the name. It
    // starts with the client id (kcqrs starts those with the application
    // id): librdkafka still looks the group's coordinator up, which a
    // secured cluster allows only for groups an ACL names, and the
    // application's prefixed group ACL then covers it.
    const auto client_id = properties.find("client.id");
    effective["group.id"] =
        (client_id != properties.end() && !client_id->second.empty() ? client_id->second + "-"
                                                                      : std::string()) +
        "kcqrs-assign-only";
    effective["enable.auto.commit"] = "false";
  }
  auto conf = internal::NewConf(effective, "consumer");
  if (!conf.ok()) return conf.status();
  // The consumer's address is the callbacks' opaque, so it exists before
  // the handle does.
  std::unique_ptr<Consumer> consumer(new Consumer());
  consumer->has_group_id_ = has_group_id;
  rd_kafka_conf_set_opaque(conf->get(), consumer.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), &ConsumerCallbacks::OnRebalance);
  auto rk = internal::NewHandle(internal::ClientType::kConsumer,
                                std::move(*conf), "consumer");
  if (!rk.ok()) return rk.status();
  consumer->rk_ = std::move(*rk);
  // One queue for everything: errors and rebalances are then served by
  // Poll, on the owner's thread, rather than piling up unread in the main
  // queue.
  rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(consumer->rk_.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, "redirecting the consumer's main queue");
  }
  return consumer;
}

Consumer::~Consumer() {
  if (rk_ == nullptr) return;
  Status status = Close();
  if (!status.ok()) {
    spdlog::warn("closing consumer {}: {}", rd_kafka_name(rk_.get()),
                 status.ToString());
  }
}

Status Consumer::CheckOpen(const char* call) const {
  if (closed_) {
    return Status::FailedPrecondition(std::string(call) +
                                      ": the consumer is closed");
  }
  return Status::OK();
}

Status Consumer::CheckGroup(const char* call) const {
  if (!has_group_id_) {
    return Status::FailedPrecondition(
        std::string(call) +
        " needs the consumer property 'group.id' (Assign and Poll work "
        "without one)");
  }
  return Status::OK();
}

Status Consumer::Subscribe(const std::vector<std::string>& topics,
                           RebalanceListener* listener) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Subscribe"));
  KCQRS_RETURN_IF_ERROR(CheckGroup("Subscribe"));
  if (topics.empty()) {
    return Status::InvalidArgument("Subscribe needs at least one topic");
  }
  internal::PartitionListPtr list(
      rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  std::string names;
  for (const auto& topic : topics) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(),
                                      RD_KAFKA_PARTITION_UA);
    names += names.empty() ? topic : "," + topic;
  }
  listener_ = listener;
  return StatusFromKafkaError(rd_kafka_subscribe(rk_.get(), list.get()),
                              "subscribing to " + names);
}

Status Consumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Assign"));
  internal::PartitionListPtr list = internal::ToPartitionList(partitions);
  return StatusFromKafkaError(rd_kafka_assign(rk_.get(), list.get()),
                              "assigning partitions");
}

Result<std::vector<TopicPartitionOffset>> Consumer::Assignment() const {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Assignment"));
  rd_kafka_topic_partition_list_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_assignment(rk_.get(), &raw);
  internal::PartitionListPtr list(raw);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return StatusFromKafkaError(err, "reading the assignment");
  }
  std::vector<TopicPartitionOffset> tpos = internal::FromPartitionList(raw);
  for (auto& tpo : tpos) tpo.offset = kOffsetInvalid;
  return tpos;
}

Result<std::optional<ConsumedRecord>> Consumer::Poll(
    std::chrono::milliseconds timeout) {
  Record r;
  auto got = PollInto(timeout, &r);
  if (!got.ok()) return got.status();
  if (!*got) return std::optional<ConsumedRecord>();
  ConsumedRecord c{std::move(r.topic), r.partition, r.offset, std::move(r.key),
                   std::move(r.value), std::move(r.headers), r.timestamp_ms};
  return std::optional<ConsumedRecord>(std::move(c));
}

Result<bool> Consumer::PollInto(std::chrono::milliseconds timeout, Record* out) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Poll"));
  // An error from a rebalance callback during an earlier Poll is reported
  // before polling again, so that no fetched record is dropped for it.
  if (!rebalance_error_.ok()) return std::exchange(rebalance_error_, Status());
  skipped_.reset();
  std::unique_ptr<rd_kafka_message_t, MessageDeleter> m(
      rd_kafka_consumer_poll(rk_.get(), static_cast<int>(timeout.count())));
  if (m == nullptr && !rebalance_error_.ok()) {
    return std::exchange(rebalance_error_, Status());
  }
  if (m == nullptr) return false;
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return false;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::string where = "consumer";
    if (m->rkt != nullptr) {
      where = PartitionContext(rd_kafka_topic_name(m->rkt), m->partition,
                               m->offset);
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      char errstr[512];
      rd_kafka_resp_err_t fatal =
          rd_kafka_fatal_error(rk_.get(), errstr, sizeof(errstr));
      return Status::Fenced(
          StatusFromKafkaError(fatal, where + ": fatal consumer error", errstr)
              .message() +
          "; close and recreate the consumer");
    }
    // A consumer error carries its description as the payload, which need
    // not be NUL-terminated (so not rd_kafka_message_errstr).
    std::string detail;
    if (m->payload != nullptr) {
      detail.assign(static_cast<const char*>(m->payload), m->len);
      while (!detail.empty() && detail.back() == '\0') detail.pop_back();
    }
    return StatusFromKafkaError(m->err, where, detail);
  }
  const bool skip = Skips(m->rkt);
  Fill(m.get(), skip, out);
  if (skip) skipped_.reset(m.release());
  return true;
}

void Consumer::MessageDeleter::operator()(rd_kafka_message_s* m) const {
  rd_kafka_message_destroy(m);
}

void Consumer::SkipHeaders(std::set<std::string> topics) {
  skip_headers_ = std::move(topics);
  skips_by_handle_.clear();
}

bool Consumer::Skips(const rd_kafka_topic_s* rkt) {
  if (skip_headers_.empty()) return false;
  for (const auto& [handle, skip] : skips_by_handle_) {
    if (handle == rkt) return skip;
  }
  // librdkafka keeps a topic's handle for the client's life, so the
  // address names the topic from then on.
  const bool skip = skip_headers_.count(rd_kafka_topic_name(rkt)) != 0;
  skips_by_handle_.emplace_back(rkt, skip);
  return skip;
}

bool Consumer::SkippedHeaders(const Record& r, std::vector<kcqrs::Header>* out) const {
  const rd_kafka_message_t* m = skipped_.get();
  if (m == nullptr || m->partition != r.partition || m->offset != r.offset ||
      r.topic != rd_kafka_topic_name(m->rkt)) {
    return false;
  }
  Record full;
  Fill(m, /*skip_headers=*/false, &full);
  *out = std::move(full.headers);
  return true;
}

Status Consumer::CommitSync(const std::vector<TopicPartitionOffset>& offsets) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("CommitSync"));
  KCQRS_RETURN_IF_ERROR(CheckGroup("CommitSync"));
  // librdkafka reads a null or empty list as "commit the current
  // positions", which is not what an empty list asks for.
  if (offsets.empty()) return Status::OK();
  internal::PartitionListPtr list = internal::ToPartitionList(offsets);
  KCQRS_RETURN_IF_ERROR(
      StatusFromKafkaError(rd_kafka_commit(rk_.get(), list.get(), /*async=*/0),
                           "committing offsets"));
  return internal::FirstPartitionError(list.get(), "committing offsets for");
}

Result<std::vector<TopicPartitionOffset>> Consumer::Committed(
    const std::vector<TopicPartitionOffset>& partitions,
    std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Committed"));
  KCQRS_RETURN_IF_ERROR(CheckGroup("Committed"));
  if (partitions.empty()) return std::vector<TopicPartitionOffset>();
  internal::PartitionListPtr list = internal::ToPartitionList(partitions);
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_committed(rk_.get(), list.get(),
                         static_cast<int>(timeout.count())),
      "reading committed offsets"));
  KCQRS_RETURN_IF_ERROR(
      internal::FirstPartitionError(list.get(), "reading committed offset of"));
  return internal::FromPartitionList(list.get());
}

Result<std::pair<int64_t, int64_t>> Consumer::QueryWatermarks(
    const std::string& topic, int32_t partition,
    std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("QueryWatermarks"));
  int64_t low = 0;
  int64_t high = 0;
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition,
                                       &low, &high,
                                       static_cast<int>(timeout.count())),
      "querying watermarks of " + PartitionContext(topic, partition)));
  return std::make_pair(low, high);
}

Result<std::vector<TopicPartitionOffset>> Consumer::OffsetsForTimes(
    const std::vector<TopicPartitionOffset>& partitions, std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("OffsetsForTimes"));
  if (partitions.empty()) return std::vector<TopicPartitionOffset>();
  internal::PartitionListPtr list = internal::ToPartitionList(partitions);
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_offsets_for_times(rk_.get(), list.get(), static_cast<int>(timeout.count())),
      "looking up offsets by timestamp"));
  KCQRS_RETURN_IF_ERROR(
      internal::FirstPartitionError(list.get(), "looking up the offset by timestamp of"));
  auto out = internal::FromPartitionList(list.get());
  // librdkafka answers -1 (the end) when no record is that late.
  for (TopicPartitionOffset& o : out) {
    if (o.offset < 0) {
      auto marks = QueryWatermarks(o.topic, o.partition, timeout);
      if (!marks.ok()) return marks.status();
      o.offset = marks->second;
    }
  }
  return out;
}

Result<std::pair<int64_t, int64_t>> Consumer::CachedWatermarks(
    const std::string& topic, int32_t partition) const {
  KCQRS_RETURN_IF_ERROR(CheckOpen("CachedWatermarks"));
  int64_t low = -1;
  int64_t high = -1;
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_get_watermark_offsets(rk_.get(), topic.c_str(), partition, &low,
                                     &high),
      "reading cached watermarks of " + PartitionContext(topic, partition)));
  return std::make_pair(low, high);
}

Result<int64_t> Consumer::Position(const std::string& topic,
                                   int32_t partition) const {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Position"));
  internal::PartitionListPtr list =
      internal::ToPartitionList({{topic, partition, kOffsetInvalid}});
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_position(rk_.get(), list.get()), "reading the position"));
  auto parts = internal::FromPartitionList(list.get());
  if (parts.empty()) return kOffsetInvalid;
  return parts[0].offset < 0 ? kOffsetInvalid : parts[0].offset;
}

Status Consumer::Seek(const TopicPartitionOffset& position,
                      std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Seek"));
  internal::PartitionListPtr list = internal::ToPartitionList({position});
  std::string where =
      "seeking " + PartitionContext(position.topic, position.partition,
                                    static_cast<long long>(position.offset));
  rd_kafka_error_t* error = rd_kafka_seek_partitions(
      rk_.get(), list.get(), static_cast<int>(timeout.count()));
  if (error != nullptr && rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    // librdkafka before 2.1 waits `timeout` in microseconds, not
    // milliseconds (confluentinc/librdkafka#4230): a main thread busy for
    // 10 ms times out a seek that is merely queued. The seek set its
    // version barrier before queueing (records fetched before it are
    // dropped at the poll), and a partition's operations run in order: a
    // queued seek is as good as a finished one.
    rd_kafka_error_destroy(error);
    return Status::OK();
  }
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaErrorObject(error, where));
  return internal::FirstPartitionError(list.get(), "seeking");
}

Status Consumer::Pause(const std::vector<TopicPartitionOffset>& partitions) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Pause"));
  internal::PartitionListPtr list = internal::ToPartitionList(partitions);
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_pause_partitions(rk_.get(), list.get()), "pausing"));
  return internal::FirstPartitionError(list.get(), "pausing");
}

Status Consumer::Resume(const std::vector<TopicPartitionOffset>& partitions) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("Resume"));
  internal::PartitionListPtr list = internal::ToPartitionList(partitions);
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaError(
      rd_kafka_resume_partitions(rk_.get(), list.get()), "resuming"));
  return internal::FirstPartitionError(list.get(), "resuming");
}

Result<ConsumerGroupMetadata> Consumer::GroupMetadata() const {
  KCQRS_RETURN_IF_ERROR(CheckOpen("GroupMetadata"));
  KCQRS_RETURN_IF_ERROR(CheckGroup("GroupMetadata"));
  rd_kafka_consumer_group_metadata_t* raw =
      rd_kafka_consumer_group_metadata(rk_.get());
  if (raw == nullptr) {
    return Status::FailedPrecondition("the consumer has no group metadata");
  }
  return ConsumerGroupMetadata(raw);
}

namespace {

// The member id the coordinator gave this consumer; empty before it joined
// and once librdkafka has left the group.
bool HasMemberId(rd_kafka_t* rk) {
  char* id = rd_kafka_memberid(rk);
  const bool has = id != nullptr && *id != '\0';
  if (id != nullptr) rd_kafka_mem_free(rk, id);
  return has;
}

}  // namespace

Status Consumer::LeaveGroup(std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(CheckOpen("LeaveGroup"));
  KCQRS_RETURN_IF_ERROR(CheckGroup("LeaveGroup"));
  rd_kafka_t* rk = rk_.get();
  if (!HasMemberId(rk)) return Status::OK();  // never joined: nothing to leave
  // Nothing more is fetched (pausing also drops what was fetched and not
  // yet polled): the owner has committed and stops processing.
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(rk, &raw) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    internal::PartitionListPtr assigned(raw);
    if (assigned != nullptr && assigned->cnt > 0) {
      (void)rd_kafka_pause_partitions(rk, assigned.get());
    }
  }
  KCQRS_RETURN_IF_ERROR(
      StatusFromKafkaError(rd_kafka_unsubscribe(rk), "unsubscribing to leave the group"));
  // librdkafka revokes first (the callback runs in this poll), then, the
  // unassignment done, sends the LeaveGroup and forgets the member id. A
  // rebalance under way postpones the unsubscribe until it completes.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::unique_ptr<rd_kafka_message_t, MessageDeleter> m(rd_kafka_consumer_poll(rk, 10));
    if (!HasMemberId(rk)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::TimedOut("leaving the group: librdkafka did not send LeaveGroup within " +
                              std::to_string(timeout.count()) + " ms");
    }
  }
  return Status::OK();
}

Status Consumer::Close() {
  if (closed_) return Status::OK();
  closed_ = true;
  // librdkafka's close waits for every message it handed out.
  skipped_.reset();
  return StatusFromKafkaError(rd_kafka_consumer_close(rk_.get()),
                              "closing the consumer");
}

void Consumer::HandleRebalance(int err,
                               rd_kafka_topic_partition_list_s* partitions) {
  rd_kafka_t* rk = rk_.get();
  const bool cooperative =
      std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::vector<TopicPartitionOffset> tpos =
      internal::FromPartitionList(partitions);
  Status status;
  switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
      status = cooperative
                   ? StatusFromKafkaErrorObject(
                         rd_kafka_incremental_assign(rk, partitions),
                         "assigning partitions (cooperative rebalance)")
                   : StatusFromKafkaError(rd_kafka_assign(rk, partitions),
                                          "assigning partitions");
      if (status.ok() && listener_ != nullptr) {
        listener_->OnPartitionsAssigned(tpos);
      }
      break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
      if (listener_ != nullptr) {
        if (rd_kafka_assignment_lost(rk)) {
          listener_->OnPartitionsLost(tpos);
        } else {
          listener_->OnPartitionsRevoked(tpos);
        }
      }
      status = cooperative ? StatusFromKafkaErrorObject(
                                 rd_kafka_incremental_unassign(rk, partitions),
                                 "revoking partitions (cooperative rebalance)")
                           : StatusFromKafkaError(rd_kafka_assign(rk, nullptr),
                                                  "revoking partitions");
      break;
    default:
      // librdkafka asks for the assignment to be dropped on a rebalance
      // error, and the error itself goes to the owner through Poll.
      status = StatusFromKafkaError(err, "rebalance");
      (void)rd_kafka_assign(rk, nullptr);
      break;
  }
  if (!status.ok()) {
    spdlog::warn("consumer {}: {}", rd_kafka_name(rk), status.ToString());
    if (rebalance_error_.ok()) rebalance_error_ = status;
  }
}

}  // namespace kcqrs::kafka
