#include "kafka_util.h"

#include <unistd.h>

#include <algorithm>
#include <thread>
#include <utility>

namespace kbench {
namespace {

using Clock = std::chrono::steady_clock;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const {
    rd_kafka_metadata_destroy(m);
  }
};
using Metadata = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const {
    rd_kafka_NewTopic_destroy(t);
  }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const {
    rd_kafka_AdminOptions_destroy(o);
  }
};

std::string KafkaError(const std::string& what, rd_kafka_resp_err_t err) {
  return what + ": " + rd_kafka_err2str(err);
}

// The topic's metadata entry, or null when the broker does not know it. The
// metadata request names the topic, so it costs one round trip; consumers do
// not auto-create topics by it (allow.auto.create.topics defaults to false).
Metadata TopicMetadata(rd_kafka_t* rk, const std::string& topic,
                       const rd_kafka_metadata_topic_t** entry) {
  Topic t(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t.get(), &raw, 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw Error(KafkaError("metadata of topic " + topic, err));
  }
  Metadata md(raw);
  *entry = nullptr;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic == md->topics[i].topic &&
        md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      *entry = &md->topics[i];
    }
  }
  return md;
}

}  // namespace

Handle NewHandle(rd_kafka_type_t type, const std::string& bootstrap,
                 const Config& config,
                 const std::function<void(rd_kafka_conf_t*)>& setup) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  Config all = config;
  all["bootstrap.servers"] = bootstrap;
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw Error("config " + k + "=" + v + ": " + errstr);
    }
  }
  if (setup) setup(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);  // rd_kafka_new owns it only on success
    throw Error(std::string("creating the Kafka client: ") + errstr);
  }
  return Handle(rk);
}

void CloseConsumer(Handle h) {
  if (h) rd_kafka_consumer_close(h.get());
}

int PartitionCount(rd_kafka_t* rk, const std::string& topic) {
  const rd_kafka_metadata_topic_t* entry = nullptr;
  Metadata md = TopicMetadata(rk, topic, &entry);
  return entry == nullptr ? 0 : entry->partition_cnt;
}

bool EnsureTopic(rd_kafka_t* rk, const std::string& topic, int partitions,
                 const Config& config) {
  int existing = PartitionCount(rk, topic);
  bool created = false;
  if (existing == 0) {
    char errstr[512];
    std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter> nt(
        rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, errstr,
                              sizeof(errstr)));
    if (!nt) throw Error("topic " + topic + ": " + errstr);
    for (const auto& [key, value] : config) {
      if (rd_kafka_NewTopic_set_config(nt.get(), key.c_str(), value.c_str()) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw Error("topic " + topic + ": bad config " + key + "=" + value);
      }
    }
    std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), 30000, errstr,
                                                sizeof(errstr));
    std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(
        rd_kafka_queue_new(rk));
    rd_kafka_NewTopic_t* raw = nt.get();
    rd_kafka_CreateTopics(rk, &raw, 1, options.get(), queue.get());
    std::unique_ptr<rd_kafka_event_t, EventDeleter> ev(
        rd_kafka_queue_poll(queue.get(), 60000));
    if (!ev)
      throw Error("creating topic " + topic + ": no answer from the broker");
    if (rd_kafka_event_error(ev.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error("creating topic " + topic + ": " +
                  rd_kafka_event_error_string(ev.get()));
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(
            rd_kafka_event_CreateTopics_result(ev.get()), &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        continue;  // a racing creator
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* detail = rd_kafka_topic_result_error_string(results[i]);
        throw Error("creating topic " + topic + ": " +
                    (detail ? detail : rd_kafka_err2str(err)));
      }
      created = true;
    }
    // The topic exists once the controller says so, but producers and
    // consumers see it only once the brokers' metadata has it with a leader
    // for every partition.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      const rd_kafka_metadata_topic_t* entry = nullptr;
      Metadata md = TopicMetadata(rk, topic, &entry);
      bool ready = entry != nullptr && entry->partition_cnt > 0;
      for (int i = 0; ready && i < entry->partition_cnt; ++i) {
        ready = entry->partitions[i].leader >= 0;
      }
      if (ready) {
        existing = entry->partition_cnt;
        break;
      }
      if (Clock::now() > deadline)
        throw Error("topic " + topic + " has no leaders after 30 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (existing != partitions) {
    throw Error("topic " + topic + " exists with " + std::to_string(existing) +
                " partitions, expected " + std::to_string(partitions));
  }
  return created;
}

std::vector<Watermark> Watermarks(rd_kafka_t* rk, const std::string& topic) {
  int n = PartitionCount(rk, topic);
  if (n == 0) throw Error("topic " + topic + " does not exist");
  std::vector<Watermark> out;
  for (int32_t p = 0; p < n; ++p) {
    Watermark w{topic, p, 0, 0};
    rd_kafka_resp_err_t err;
    // Right after a topic is created (or a broker restarted) leadership is
    // still settling; those errors pass within seconds.
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &w.low,
                                             &w.high, 10000);
      const bool transient =
          err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
          err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
          err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
      if (!transient || Clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(KafkaError(
          "watermarks of " + topic + "[" + std::to_string(p) + "]", err));
    }
    out.push_back(w);
  }
  return out;
}

std::vector<int64_t> EndOffsets(rd_kafka_t* rk, const std::string& topic,
                                int partitions) {
  PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p) {
    // offsets_for_times reads the offset field as the timestamp to look up;
    // RD_KAFKA_OFFSET_END (-1) asks for the latest offset.
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_END;
  }
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(KafkaError("end offsets of " + topic, err));
  std::vector<int64_t> out(static_cast<size_t>(partitions), 0);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& tp = list->elems[i];
    if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(KafkaError(
          "end offset of " + topic + "[" + std::to_string(tp.partition) + "]",
          tp.err));
    }
    out[static_cast<size_t>(tp.partition)] = tp.offset;
  }
  return out;
}

uint64_t ReadToEnd(
    const std::string& bootstrap, const std::vector<std::string>& topics,
    const std::function<void(const rd_kafka_message_t&)>& on_record,
    std::chrono::seconds timeout) {
  Handle consumer = NewHandle(RD_KAFKA_CONSUMER, bootstrap,
                              {{"group.id", PrivateGroupId("reader")},
                               {"isolation.level", "read_committed"},
                               {"enable.auto.commit", "false"},
                               {"enable.partition.eof", "true"},
                               {"fetch.max.bytes", "52428800"},
                               {"max.partition.fetch.bytes", "10485760"}});
  rd_kafka_poll_set_consumer(consumer.get());

  // Targets are fixed before reading starts: a record written later is not
  // part of the outcome being checked.
  struct Target {
    Watermark w;
    int64_t reached = 0;
  };
  std::map<std::pair<std::string, int32_t>, Target> targets;
  PartitionList assignment(rd_kafka_topic_partition_list_new(16));
  for (const std::string& topic : topics) {
    for (const Watermark& w : Watermarks(consumer.get(), topic)) {
      if (w.high <= w.low) continue;  // empty
      targets[{topic, w.partition}] = Target{w, w.low};
      rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(),
                                        w.partition)
          ->offset = w.low;
    }
  }
  if (targets.empty()) return 0;
  rd_kafka_resp_err_t err = rd_kafka_assign(consumer.get(), assignment.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) throw Error(KafkaError("assign", err));

  auto all_done = [&] {
    return std::all_of(targets.begin(), targets.end(), [](const auto& t) {
      return t.second.reached >= t.second.w.high;
    });
  };
  // Positions include the offsets of transaction markers skipped after the
  // last delivered record, which the record offsets alone never show.
  auto update_positions = [&] {
    rd_kafka_position(consumer.get(), assignment.get());
    for (int i = 0; i < assignment->cnt; ++i) {
      const auto& tp = assignment->elems[i];
      auto& t = targets[{tp.topic, tp.partition}];
      if (tp.offset >= 0) t.reached = std::max(t.reached, tp.offset);
    }
  };

  uint64_t records = 0;
  const auto deadline = Clock::now() + timeout;
  while (!all_done()) {
    if (Clock::now() > deadline) {
      std::string stuck;
      for (const auto& [tp, t] : targets) {
        if (t.reached < t.w.high) {
          stuck += " " + tp.first + "[" + std::to_string(tp.second) + "] at " +
                   std::to_string(t.reached) + "/" + std::to_string(t.w.high);
        }
      }
      throw Error("reading to the end timed out after " +
                  std::to_string(timeout.count()) + " s:" + stuck);
    }
    Message m(rd_kafka_consumer_poll(consumer.get(), 100));
    if (!m) {
      update_positions();
      continue;
    }
    const char* topic = rd_kafka_topic_name(m->rkt);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      auto& t = targets[{topic, m->partition}];
      t.reached = std::max(t.reached, m->offset);
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw Error(std::string("consuming ") + (topic ? topic : "?") + ": " +
                  rd_kafka_message_errstr(m.get()));
    }
    auto& t = targets[{topic, m->partition}];
    if (m->offset >= t.w.high)
      continue;  // written after the targets were fixed
    t.reached = std::max(t.reached, m->offset + 1);
    on_record(*m);
    ++records;
    if (t.reached == t.w.high - 1)
      update_positions();  // a marker may be all that is left
  }
  CloseConsumer(std::move(consumer));
  return records;
}

std::string PrivateGroupId(const std::string& purpose) {
  static int calls = 0;
  return "kbench-" + purpose + "-" + std::to_string(getpid()) + "-" +
         std::to_string(NowMs()) + "-" + std::to_string(++calls);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double NowUs() {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace kbench
