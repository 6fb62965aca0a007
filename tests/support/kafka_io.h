// Producing to and reading back from a real broker in integration tests,
// through the project's own Kafka wrapper.
#ifndef KCQRS_TESTS_SUPPORT_KAFKA_IO_H_
#define KCQRS_TESTS_SUPPORT_KAFKA_IO_H_

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/producer.h"

namespace kcqrs::testing {

// A producer that partitions keys as Java clients (and kcqrs) do.
inline std::unique_ptr<kafka::Producer> MakeProducer(const std::string& bootstrap) {
  auto p = kafka::Producer::Create({{"bootstrap.servers", bootstrap},
                                    {"partitioner", "murmur2_random"},
                                    {"enable.idempotence", "true"},
                                    {"linger.ms", "5"}});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? std::move(p).value() : nullptr;
}

inline void Produce(kafka::Producer* p, const std::string& topic, std::optional<std::string> key,
                    std::optional<std::string> value) {
  kafka::OutgoingRecord r;
  r.topic = topic;
  r.key = std::move(key);
  r.value = std::move(value);
  Status s = p->Send(r);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Every committed record of `topic` (all partitions, from the start): reads
// until `expected` records arrived and then `settle` more passed with no new
// one (so extra records would be seen), or until `timeout`.
inline std::vector<kafka::ConsumedRecord> ReadCommitted(
    const std::string& bootstrap, const std::string& topic, size_t expected,
    std::chrono::milliseconds timeout = std::chrono::seconds(60),
    std::chrono::milliseconds settle = std::chrono::seconds(2)) {
  std::vector<kafka::ConsumedRecord> out;
  auto admin = kafka::Admin::Create({{"bootstrap.servers", bootstrap}});
  EXPECT_TRUE(admin.ok());
  if (!admin.ok()) return out;
  int partitions = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (partitions == 0 && std::chrono::steady_clock::now() < deadline) {
    auto topics = (*admin)->ListTopics(std::chrono::seconds(10));
    if (topics.ok()) {
      for (const auto& t : *topics) {
        if (t.name == topic) partitions = t.partitions;
      }
    }
    if (partitions == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GT(partitions, 0) << "topic " << topic << " never appeared";
  auto consumer = kafka::Consumer::Create({{"bootstrap.servers", bootstrap},
                                           {"isolation.level", "read_committed"},
                                           {"enable.auto.commit", "false"}});
  EXPECT_TRUE(consumer.ok());
  if (!consumer.ok()) return out;
  std::vector<kafka::TopicPartitionOffset> assign;
  for (int p = 0; p < partitions; ++p) assign.push_back({topic, p, kafka::kOffsetBeginning});
  EXPECT_TRUE((*consumer)->Assign(assign).ok());
  auto last_new = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = (*consumer)->Poll(std::chrono::milliseconds(100));
    if (r.ok() && r->has_value()) {
      out.push_back(std::move(**r));
      last_new = std::chrono::steady_clock::now();
      continue;
    }
    if (out.size() >= expected && std::chrono::steady_clock::now() - last_new >= settle) break;
  }
  (void)(*consumer)->Close();
  return out;
}

inline std::string HeaderValue(const kafka::ConsumedRecord& r, const std::string& name) {
  for (const kafka::Header& h : r.headers) {
    if (h.key == name && h.value) return *h.value;
  }
  return "";
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_KAFKA_IO_H_
