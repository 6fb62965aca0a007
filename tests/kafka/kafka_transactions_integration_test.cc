// Exactly-once building blocks against the real Apache Kafka broker that
// scripts/kafka starts: what read_committed readers see after commits and
// aborts, offsets committed with a transaction, and fencing of a zombie
// producer. librdkafka's mock cannot show any of these (see
// engine/kafka/mock_cluster.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/producer.h"
#include "engine/kafka/record.h"
#include "tests/support/test_kafka.h"

namespace kcqrs::kafka {
namespace {

using std::chrono::milliseconds;

// Asserts a Status or Result is OK, printing it when it is not.
#define ASSERT_OK(expr)                                                    \
  do {                                                                     \
    const auto& kafka_test_s_ = (expr);                                    \
    ASSERT_TRUE(kafka_test_s_.ok()) << StatusOf(kafka_test_s_).ToString(); \
  } while (false)

Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}

using Clock = std::chrono::steady_clock;
using kcqrs::testing::UniqueName;

constexpr milliseconds kTimeout{30000};
// After the expected records arrived, how long to keep polling to make
// sure nothing else (an aborted record, say) follows.
constexpr milliseconds kQuietPeriod{1500};

class KafkaTransactionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bootstrap_ = kcqrs::testing::TestBootstrapServers();
    ASSERT_FALSE(bootstrap_.empty());
    auto admin = Admin::Create({{"bootstrap.servers", bootstrap_}});
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_ = std::move(*admin);
  }

  std::string NewTopic(int partitions = 1) {
    std::string topic = UniqueName("kafka-it");
    Status s = admin_->CreateTopics({{topic, partitions, 1, {}}}, kTimeout);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return topic;
  }

  std::unique_ptr<Producer> MakeProducer(Properties extra = {}) {
    Properties p{{"bootstrap.servers", bootstrap_}};
    p.merge(extra);
    auto producer = Producer::Create(p);
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    return producer.ok() ? std::move(*producer) : nullptr;
  }

  std::unique_ptr<Consumer> MakeConsumer(Properties extra = {}) {
    Properties p{{"bootstrap.servers", bootstrap_},
                 {"auto.offset.reset", "earliest"},
                 {"enable.auto.commit", "false"}};
    p.merge(extra);
    auto consumer = Consumer::Create(p);
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    return consumer.ok() ? std::move(*consumer) : nullptr;
  }

  // Every value in partition 0 of `topic` as `isolation` reader sees it:
  // polls until `expected` values arrived, then for kQuietPeriod more.
  std::vector<std::string> ReadValues(const std::string& topic,
                                      const std::string& isolation,
                                      size_t expected) {
    std::vector<std::string> values;
    auto consumer = MakeConsumer({{"isolation.level", isolation}});
    if (consumer == nullptr) return values;
    EXPECT_TRUE(consumer->Assign({{topic, 0, kOffsetBeginning}}).ok());
    auto deadline = Clock::now() + kTimeout;
    bool quiet = false;
    while (Clock::now() < deadline) {
      if (!quiet && values.size() >= expected) {
        quiet = true;
        deadline = Clock::now() + kQuietPeriod;
      }
      auto polled = consumer->Poll(milliseconds(100));
      if (!polled.ok()) {
        ADD_FAILURE() << polled.status().ToString();
        continue;
      }
      if (polled->has_value())
        values.push_back((*polled)->value.value_or("<null>"));
    }
    EXPECT_TRUE(consumer->Close().ok());
    return values;
  }

  std::string bootstrap_;
  std::unique_ptr<Admin> admin_;
};

TEST_F(KafkaTransactionsTest, PlainProduceIsConsumedBack) {
  const std::string topic = NewTopic();
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->Send({topic, 0, "k1", "v1", {{"h", "x"}}}));
  ASSERT_OK(producer->Send({topic, 0, "k2", std::nullopt}));
  Status flushed = producer->Flush(kTimeout);
  ASSERT_TRUE(flushed.ok()) << flushed.ToString();

  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Assign({{topic, 0, kOffsetBeginning}}));
  std::vector<ConsumedRecord> got;
  const auto deadline = Clock::now() + kTimeout;
  while (got.size() < 2 && Clock::now() < deadline) {
    auto polled = consumer->Poll(milliseconds(100));
    ASSERT_TRUE(polled.ok()) << polled.status().ToString();
    if (polled->has_value()) got.push_back(std::move(**polled));
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].key, "k1");
  EXPECT_EQ(got[0].value, "v1");
  EXPECT_EQ(got[0].headers, (std::vector<Header>{{"h", "x"}}));
  EXPECT_EQ(got[0].offset, 0);
  EXPECT_EQ(got[1].key, "k2");
  EXPECT_EQ(got[1].value, std::nullopt);
  EXPECT_EQ(got[1].offset, 1);
}

TEST_F(KafkaTransactionsTest, AdminCreatesListsAndDeletesTopics) {
  const std::string topic = UniqueName("kafka-it-admin");
  ASSERT_OK(admin_->CreateTopics(
      {{topic, 3, 1, {{"cleanup.policy", "compact"}}}}, kTimeout));
  auto listed = admin_->ListTopics(kTimeout);
  ASSERT_OK(listed);
  EXPECT_NE(
      std::find(listed->begin(), listed->end(), Admin::TopicInfo{topic, 3}),
      listed->end());

  EXPECT_TRUE(admin_->CreateTopics({{topic, 3, 1, {}}}, kTimeout).ok());
  Status again = admin_->CreateTopics({{topic, 3, 1, {}}}, kTimeout,
                                      /*ok_if_exists=*/false);
  EXPECT_EQ(again.code(), Status::Code::kAlreadyExists) << again.ToString();
  Status bad = admin_->CreateTopics(
      {{UniqueName("kafka-it-bad"), 1, 1, {{"cleanup.policy", "sometimes"}}}},
      kTimeout);
  EXPECT_TRUE(bad.IsInvalidArgument()) << bad.ToString();

  ASSERT_OK(admin_->DeleteTopics({topic}, kTimeout));
  listed = admin_->ListTopics(kTimeout);
  ASSERT_OK(listed);
  EXPECT_EQ(std::find_if(listed->begin(), listed->end(),
                         [&](const auto& t) { return t.name == topic; }),
            listed->end());
  Status gone = admin_->DeleteTopics({topic}, kTimeout);
  EXPECT_TRUE(gone.IsNotFound()) << gone.ToString();
}

TEST_F(KafkaTransactionsTest, ReadCommittedSeesCommittedRecordsOnly) {
  const std::string topic = NewTopic();
  auto producer = MakeProducer({{"transactional.id", UniqueName("tx")}});
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->InitTransactions(kTimeout));

  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "c1"}));
  ASSERT_OK(producer->Send({topic, 0, "k", "c2"}));
  Status commit = producer->CommitTransaction(kTimeout);
  ASSERT_TRUE(commit.ok()) << commit.ToString();

  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "a1"}));
  ASSERT_OK(producer->Send({topic, 0, "k", "a2"}));
  // Written to the log before the abort, so that a reader must skip them.
  ASSERT_OK(producer->Flush(kTimeout));
  Status abort = producer->AbortTransaction(kTimeout);
  ASSERT_TRUE(abort.ok()) << abort.ToString();

  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "c3"}));
  ASSERT_OK(producer->CommitTransaction(kTimeout));

  EXPECT_EQ(ReadValues(topic, "read_committed", 3),
            (std::vector<std::string>{"c1", "c2", "c3"}));
  // The aborted records are really in the log: only the isolation level
  // hides them.
  EXPECT_EQ(ReadValues(topic, "read_uncommitted", 5),
            (std::vector<std::string>{"c1", "c2", "a1", "a2", "c3"}));
}

TEST_F(KafkaTransactionsTest, OffsetsCommitAndAbortWithTheTransaction) {
  const std::string input = NewTopic();
  const std::string output = NewTopic();
  const std::string group = UniqueName("group");
  {
    auto plain = MakeProducer();
    ASSERT_NE(plain, nullptr);
    for (const char* v : {"a", "b", "c", "d"}) {
      ASSERT_OK(plain->Send({input, 0, "k", v}));
    }
    ASSERT_OK(plain->Flush(kTimeout));
  }

  auto consumer = MakeConsumer(
      {{"group.id", group}, {"isolation.level", "read_committed"}});
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Subscribe({input}, nullptr));
  auto producer = MakeProducer({{"transactional.id", UniqueName("tx")}});
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->InitTransactions(kTimeout));

  // Consume-transform-produce, one record per transaction: a and b commit,
  // c aborts.
  std::vector<std::string> outcomes = {"commit", "commit", "abort"};
  for (const std::string& outcome : outcomes) {
    std::optional<ConsumedRecord> record;
    const auto deadline = Clock::now() + kTimeout;
    while (!record && Clock::now() < deadline) {
      auto polled = consumer->Poll(milliseconds(100));
      ASSERT_TRUE(polled.ok()) << polled.status().ToString();
      record = std::move(*polled);
    }
    ASSERT_TRUE(record.has_value());
    ASSERT_OK(producer->BeginTransaction());
    ASSERT_OK(producer->Send({output, 0, record->key, *record->value + "'"}));
    Status offsets = producer->SendOffsetsToTransaction(
        {{input, record->partition, record->offset + 1}}, *consumer, kTimeout);
    ASSERT_TRUE(offsets.ok()) << offsets.ToString();
    Status end = outcome == "commit" ? producer->CommitTransaction(kTimeout)
                                     : producer->AbortTransaction(kTimeout);
    ASSERT_TRUE(end.ok()) << outcome << ": " << end.ToString();
  }

  // The group's offset moved with the committed transactions only.
  auto committed = consumer->Committed({{input, 0, 0}}, kTimeout);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(*committed, (std::vector<TopicPartitionOffset>{{input, 0, 2}}));
  ASSERT_OK(consumer->Close());

  EXPECT_EQ(ReadValues(output, "read_committed", 2),
            (std::vector<std::string>{"a'", "b'"}));

  // A new member of the group resumes after the last committed record.
  auto resumed = MakeConsumer(
      {{"group.id", group}, {"isolation.level", "read_committed"}});
  ASSERT_NE(resumed, nullptr);
  ASSERT_OK(resumed->Subscribe({input}, nullptr));
  std::optional<ConsumedRecord> first;
  const auto deadline = Clock::now() + kTimeout;
  while (!first && Clock::now() < deadline) {
    auto polled = resumed->Poll(milliseconds(100));
    ASSERT_TRUE(polled.ok()) << polled.status().ToString();
    first = std::move(*polled);
  }
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->offset, 2);
  EXPECT_EQ(first->value, "c");
}

TEST_F(KafkaTransactionsTest, SecondProducerWithTheSameIdFencesTheFirst) {
  const std::string topic = NewTopic();
  const std::string id = UniqueName("tx");
  auto first = MakeProducer({{"transactional.id", id}});
  ASSERT_NE(first, nullptr);
  ASSERT_OK(first->InitTransactions(kTimeout));
  ASSERT_OK(first->BeginTransaction());
  ASSERT_OK(first->Send({topic, 0, "k", "first-1"}));
  ASSERT_OK(first->CommitTransaction(kTimeout));

  auto second = MakeProducer({{"transactional.id", id}});
  ASSERT_NE(second, nullptr);
  Status init = second->InitTransactions(kTimeout);
  ASSERT_TRUE(init.ok()) << init.ToString();

  // The zombie: whichever step notices first, it is fenced and commits
  // nothing.
  Status zombie = first->BeginTransaction();
  if (zombie.ok()) zombie = first->Send({topic, 0, "k", "zombie"});
  if (zombie.ok()) zombie = first->CommitTransaction(kTimeout);
  EXPECT_TRUE(zombie.IsFenced()) << zombie.ToString();
  EXPECT_TRUE(first->BeginTransaction().IsFenced());

  ASSERT_OK(second->BeginTransaction());
  ASSERT_OK(second->Send({topic, 0, "k", "second-1"}));
  Status commit = second->CommitTransaction(kTimeout);
  ASSERT_TRUE(commit.ok()) << commit.ToString();

  EXPECT_EQ(ReadValues(topic, "read_committed", 2),
            (std::vector<std::string>{"first-1", "second-1"}));
}

}  // namespace
}  // namespace kcqrs::kafka
