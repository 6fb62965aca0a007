#include "engine/kafka/producer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "engine/kafka/error.h"

namespace kcqrs::kafka {

// librdkafka's C callbacks, given the Producer as the handle's opaque.
struct ProducerCallbacks {
  static void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* message,
                         void* opaque) {
    static_cast<Producer*>(opaque)->OnDelivery(message);
  }
};

namespace {

struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};

constexpr std::chrono::milliseconds kQueueFullBackoff{100};

}  // namespace

Result<std::unique_ptr<Producer>> Producer::Create(
    const Properties& properties) {
  auto conf = internal::NewConf(properties, "producer");
  if (!conf.ok()) return conf.status();
  // The producer's address is the callbacks' opaque, so it exists before
  // the handle does.
  std::unique_ptr<Producer> producer(new Producer());
  producer->transactional_ = properties.count("transactional.id") != 0;
  char value[64];
  size_t size = sizeof(value);
  if (rd_kafka_conf_get(conf->get(), "message.timeout.ms", value, &size) ==
      RD_KAFKA_CONF_OK) {
    producer->max_block_ =
        std::chrono::milliseconds(std::strtoll(value, nullptr, 10));
  }
  rd_kafka_conf_set_opaque(conf->get(), producer.get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &ProducerCallbacks::OnDelivery);
  auto rk = internal::NewHandle(internal::ClientType::kProducer,
                                std::move(*conf), "producer");
  if (!rk.ok()) return rk.status();
  producer->rk_ = std::move(*rk);
  return producer;
}

Producer::~Producer() {
  if (!rk_) return;
  // Records still queued or in flight carry their delivery handlers as
  // opaques: destroying the handle would drop them unanswered (and leak
  // them). Purge them, so that each handler is called with the purge error
  // and freed, before the handle goes.
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);
}

void Producer::OnDelivery(const rd_kafka_message_s* message) {
  std::unique_ptr<DeliveryHandler> handler(
      static_cast<DeliveryHandler*>(message->_private));
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Reports come a produce response, so a partition's batch, at a time:
      // the partition of the last report is checked first, and the others
      // are scanned (no string, no map node per report).
      auto same = [&](const Delivered& d) {
        return d.topic == message->rkt && d.partition == message->partition;
      };
      if (last_delivered_ >= delivered_.size() || !same(delivered_[last_delivered_])) {
        last_delivered_ = static_cast<size_t>(
            std::find_if(delivered_.begin(), delivered_.end(), same) - delivered_.begin());
        if (last_delivered_ == delivered_.size()) {
          delivered_.push_back({message->rkt, message->partition, message->offset});
        }
      }
      Delivered& d = delivered_[last_delivered_];
      if (message->offset > d.offset) d.offset = message->offset;
    }
    if (handler) (*handler)(Status::OK(), message->partition, message->offset);
    return;
  }
  std::string where =
      "delivering to " +
      PartitionContext(rd_kafka_topic_name(message->rkt), message->partition);
  Status status =
      message->err == RD_KAFKA_RESP_ERR__FATAL
          ? FatalStatus(where.c_str())
          // Not rd_kafka_message_errstr: in a delivery report the payload
          // is the record's value, not an error string.
          : StatusFromKafkaError(message->err, where);
  if (handler) (*handler)(status, message->partition, -1);
  std::lock_guard<std::mutex> lock(mu_);
  if (first_delivery_error_.ok()) first_delivery_error_ = std::move(status);
}

std::map<std::pair<std::string, int32_t>, int64_t> Producer::TakeDeliveredOffsets() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::pair<std::string, int32_t>, int64_t> taken;
  for (const Delivered& d : delivered_) {
    // Every handle is one of topics_, alive as long as the producer.
    taken[{rd_kafka_topic_name(d.topic), d.partition}] = d.offset;
  }
  delivered_.clear();
  return taken;
}

void Producer::TopicDeleter::operator()(rd_kafka_topic_s* rkt) const {
  rd_kafka_topic_destroy(rkt);
}

rd_kafka_topic_s* Producer::Topic(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = topics_.find(name);
  if (it != topics_.end()) return it->second.get();
  // The producer's default topic configuration, as a record naming its
  // topic got.
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
  if (rkt == nullptr) return nullptr;
  return topics_.emplace(name, TopicPtr(rkt)).first->second.get();
}

Status Producer::FatalStatus(const char* context) const {
  char errstr[512];
  rd_kafka_resp_err_t err =
      rd_kafka_fatal_error(rk_.get(), errstr, sizeof(errstr));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Fenced(std::string(context) +
                          ": fatal producer error; destroy the producer");
  }
  Status cause = StatusFromKafkaError(err, std::string(context) + ": fatal producer error",
                                      errstr);
  // Refused by the cluster (ACLs, login): a new producer would be too.
  if (IsAccessError(err)) return cause;
  return Status::Fenced(cause.message() + "; destroy the producer");
}

Status Producer::Send(const OutgoingRecord& record) {
  return SendWithOpaque(record, nullptr);
}

Status Producer::Send(const OutgoingRecord& record, DeliveryHandler on_delivery) {
  // The handler travels with the record as its opaque and comes back in the
  // delivery report, which calls and frees it.
  auto* handler = new DeliveryHandler(std::move(on_delivery));
  Status s = SendWithOpaque(record, handler);
  if (!s.ok()) delete handler;
  return s;
}

void Producer::Poll(std::chrono::milliseconds timeout) {
  rd_kafka_poll(rk_.get(), static_cast<int>(timeout.count()));
}

Status Producer::SendWithOpaque(const OutgoingRecord& record, void* opaque) {
  std::unique_ptr<rd_kafka_headers_t, HeadersDeleter> headers;
  if (!record.headers.empty()) {
    headers.reset(rd_kafka_headers_new(record.headers.size()));
    for (const Header& h : record.headers) {
      // A null value pointer is how librdkafka spells a null header value.
      rd_kafka_header_add(headers.get(), h.key.data(),
                          static_cast<ssize_t>(h.key.size()),
                          h.value ? h.value->data() : nullptr,
                          h.value ? static_cast<ssize_t>(h.value->size()) : 0);
    }
  }
  rd_kafka_vu_t vus[8];
  size_t n = 0;
  if (opaque != nullptr) {
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = opaque;
  }
  rd_kafka_topic_t* topic = Topic(record.topic);
  if (topic == nullptr) {
    return StatusFromKafkaError(rd_kafka_last_error(),
                                "sending to " + record.topic + ": no topic handle");
  }
  vus[n].vtype = RD_KAFKA_VTYPE_RKT;
  vus[n++].u.rkt = topic;
  vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
  vus[n++].u.i32 = record.partition;
  vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
  // Absent key or value: leave the field out, which librdkafka sends as
  // null. An empty string is sent as empty, not null.
  if (record.key) {
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = const_cast<char*>(record.key->data());
    vus[n++].u.mem.size = record.key->size();
  }
  if (record.value) {
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(record.value->data());
    vus[n++].u.mem.size = record.value->size();
  }
  if (record.timestamp_ms != 0) {
    vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vus[n++].u.i64 = record.timestamp_ms;
  }
  if (headers != nullptr) {
    vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
    vus[n++].u.headers = headers.get();
  }

  // Built only for an error: the happy path formats nothing and reads no
  // clock.
  auto where = [&record] {
    return "sending to " + (record.partition == kAnyPartition
                                ? record.topic
                                : PartitionContext(record.topic, record.partition));
  };
  std::optional<std::chrono::steady_clock::time_point> deadline;
  for (;;) {
    rd_kafka_error_t* error = rd_kafka_produceva(rk_.get(), vus, n);
    if (error == nullptr) break;
    rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !deadline) {
      deadline = std::chrono::steady_clock::now() + max_block_;
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL &&
        std::chrono::steady_clock::now() < *deadline) {
      rd_kafka_error_destroy(error);
      // Delivery reports free queue space; serving them is what makes
      // progress here.
      rd_kafka_poll(rk_.get(), static_cast<int>(kQueueFullBackoff.count()));
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      rd_kafka_error_destroy(error);
      return FatalStatus(where().c_str());
    }
    if (err == RD_KAFKA_RESP_ERR__STATE && transactional_) {
      std::string text = rd_kafka_error_string(error);
      rd_kafka_error_destroy(error);
      // librdkafka refuses records outside a transaction and inside one
      // that has failed; only the second is the broker's doing.
      if (in_transaction_) {
        return Status::Aborted(where() + ": " + text +
                               " (_STATE); abort the transaction");
      }
      return Status::FailedPrecondition(
          where() + ": " + text + " (_STATE); call BeginTransaction first");
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_error_destroy(error);
      return Status::TimedOut(where() + ": the producer queue stayed full for " +
                              std::to_string(max_block_.count()) + " ms");
    }
    return StatusFromKafkaErrorObject(error, where());
  }
  (void)headers.release();  // librdkafka owns them once the record is queued
  if (sends_since_poll_.fetch_add(1, std::memory_order_relaxed) + 1 >= kSendsPerPoll) {
    sends_since_poll_.store(0, std::memory_order_relaxed);
    rd_kafka_poll(rk_.get(), 0);
  }
  return Status::OK();
}

Status Producer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err =
      rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!first_delivery_error_.ok()) {
      return std::exchange(first_delivery_error_, Status());
    }
  }
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    char errstr[256];
    if (rd_kafka_fatal_error(rk_.get(), errstr, sizeof(errstr)) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FatalStatus("flush");
    }
    return Status::TimedOut("flush: " + std::to_string(OutstandingRecords()) +
                            " records still undelivered after " +
                            std::to_string(timeout.count()) + " ms");
  }
  return StatusFromKafkaError(err, "flush");
}

int Producer::OutstandingRecords() const {
  return rd_kafka_outq_len(rk_.get());
}

Status Producer::InitTransactions(std::chrono::milliseconds timeout) {
  // The transactional id, so that a refusal says which one was refused.
  char id[256] = "";
  size_t size = sizeof(id);
  if (rd_kafka_conf_get(rd_kafka_conf(rk_.get()), "transactional.id", id, &size) !=
      RD_KAFKA_CONF_OK) {
    id[0] = '\0';
  }
  return StatusFromKafkaErrorObject(
      rd_kafka_init_transactions(rk_.get(), static_cast<int>(timeout.count())),
      std::string("init transactions of transactional id '") + id + "'");
}

Status Producer::BeginTransaction() {
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaErrorObject(
      rd_kafka_begin_transaction(rk_.get()), "begin transaction"));
  in_transaction_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  first_delivery_error_ = Status();
  return Status::OK();
}

Status Producer::SendOffsetsToTransaction(
    const std::vector<TopicPartitionOffset>& next_offsets,
    const Consumer& consumer, std::chrono::milliseconds timeout) {
  if (next_offsets.empty()) return Status::OK();
  auto group = consumer.GroupMetadata();
  if (!group.ok()) {
    return group.status().WithContext("send offsets to transaction");
  }
  return SendOffsetsToTransaction(next_offsets, *group, timeout);
}

Status Producer::SendOffsetsToTransaction(
    const std::vector<TopicPartitionOffset>& next_offsets,
    const ConsumerGroupMetadata& group, std::chrono::milliseconds timeout) {
  if (next_offsets.empty()) return Status::OK();
  internal::PartitionListPtr list = internal::ToPartitionList(next_offsets);
  return StatusFromKafkaErrorObject(
      rd_kafka_send_offsets_to_transaction(rk_.get(), list.get(), group.raw(),
                                           static_cast<int>(timeout.count())),
      "send offsets to transaction");
}

Status Producer::CommitTransaction(std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaErrorObject(
      rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout.count())),
      "commit transaction"));
  in_transaction_ = false;
  return Status::OK();
}

Status Producer::AbortTransaction(std::chrono::milliseconds timeout) {
  KCQRS_RETURN_IF_ERROR(StatusFromKafkaErrorObject(
      rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout.count())),
      "abort transaction"));
  in_transaction_ = false;
  // The abort purged what was queued; those "failures" are its intent.
  std::lock_guard<std::mutex> lock(mu_);
  first_delivery_error_ = Status();
  return Status::OK();
}

}  // namespace kcqrs::kafka
