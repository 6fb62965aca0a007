// librdkafka helpers shared by the bench harness (kbench) and the raw pipe
// (kbench_pipe): owned handles, configuration, topic creation, watermarks and
// reading topics to their end.
//
// These are peers of the engines under test, not part of kcqrs, so they use
// librdkafka's C API directly instead of engine/kafka. They are command-line
// tools whose every failure ends the run, so errors are thrown as
// kbench::Error and main() turns them into a message and exit code 1.
// Not thread-safe: each handle belongs to the thread that made it.
#ifndef KCQRS_BENCH_TOOLS_KAFKA_UTIL_H_
#define KCQRS_BENCH_TOOLS_KAFKA_UTIL_H_

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kbench {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using Handle = std::unique_ptr<rd_kafka_t, HandleDeleter>;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using Topic = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

using Config = std::map<std::string, std::string>;

// A producer or consumer on `bootstrap` with `config` on top of librdkafka's
// defaults. `setup` may register callbacks on the conf before the handle is
// made. Throws Error on a bad property.
Handle NewHandle(rd_kafka_type_t type, const std::string& bootstrap,
                 const Config& config,
                 const std::function<void(rd_kafka_conf_t*)>& setup = {});

// Closes a consumer (leaving its group if it joined one) and destroys it.
void CloseConsumer(Handle h);

// The number of partitions of `topic`, or 0 when the topic does not exist.
int PartitionCount(rd_kafka_t* rk, const std::string& topic);

// Creates `topic` with `partitions` partitions, replication factor 1 and the
// topic-level `config` (e.g. cleanup.policy=compact) unless it exists; throws
// Error when it exists with another partition count (its config is not
// checked). Returns true when this call created it.
bool EnsureTopic(rd_kafka_t* rk, const std::string& topic, int partitions,
                 const Config& config = {});

struct Watermark {
  std::string topic;
  int32_t partition = 0;
  int64_t low = 0;
  int64_t high = 0;
};

// The low and high watermarks of every partition of `topic` (throws Error
// when the topic does not exist).
std::vector<Watermark> Watermarks(rd_kafka_t* rk, const std::string& topic);

// The latest offsets of the partitions of `topic`, in one ListOffsets request
// per leader (faster than a query per partition).
std::vector<int64_t> EndOffsets(rd_kafka_t* rk, const std::string& topic,
                                int partitions);

// Reads every record of `topics` from the beginning up to their high
// watermarks as of the call, with isolation.level=read_committed, calling
// `on_record` for each. A partition is done when the consumer's position (or
// the end-of-partition offset) reaches the high watermark, so that a trailing
// transaction marker, which is never delivered, does not leave it waiting.
// Throws Error when `timeout` passes first. Returns the records read.
uint64_t ReadToEnd(
    const std::string& bootstrap, const std::vector<std::string>& topics,
    const std::function<void(const rd_kafka_message_t&)>& on_record,
    std::chrono::seconds timeout);

// A group.id for a consumer that only assigns: librdkafka 2.0 refuses
// rd_kafka_assign without one. Unique per call and never committed to, so no
// group is ever created on the broker.
std::string PrivateGroupId(const std::string& purpose);

int64_t NowMs();  // wall clock (system_clock), ms since the epoch
double NowUs();   // wall clock, µs since the epoch

}  // namespace kbench

#endif  // KCQRS_BENCH_TOOLS_KAFKA_UTIL_H_
