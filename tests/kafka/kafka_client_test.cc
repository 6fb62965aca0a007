// Producer, Consumer and Admin against librdkafka's mock cluster: the
// wrapper's own behaviour (record fidelity, Status mapping, no hangs).
// Transactional guarantees are tested against the real broker, in
// kafka_transactions_integration_test.cc, because the mock does not keep
// them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka/admin.h"
#include "engine/kafka/consumer.h"
#include "engine/kafka/mock_cluster.h"
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

constexpr milliseconds kTimeout{10000};

class KafkaClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = MockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
  }

  Properties Common() const {
    return {{"bootstrap.servers", cluster_->bootstrap_servers()}};
  }

  std::unique_ptr<Producer> MakeProducer(Properties extra = {}) {
    Properties p = Common();
    p.merge(extra);
    auto producer = Producer::Create(p);
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    return producer.ok() ? std::move(*producer) : nullptr;
  }

  std::unique_ptr<Consumer> MakeConsumer(Properties extra = {}) {
    Properties p = Common();
    p["auto.offset.reset"] = "earliest";
    p["enable.auto.commit"] = "false";
    p.merge(extra);
    auto consumer = Consumer::Create(p);
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    return consumer.ok() ? std::move(*consumer) : nullptr;
  }

  std::string Topic(int partitions) {
    std::string topic = UniqueName("t");
    EXPECT_TRUE(cluster_->CreateTopic(topic, partitions, 1).ok());
    return topic;
  }

  std::unique_ptr<MockCluster> cluster_;
};

// Polls until `n` records arrived or `timeout` passed; any error fails the
// test, since nothing here should produce one.
std::vector<ConsumedRecord> PollRecords(Consumer& consumer, size_t n,
                                        milliseconds timeout = kTimeout) {
  std::vector<ConsumedRecord> records;
  const auto deadline = Clock::now() + timeout;
  while (records.size() < n && Clock::now() < deadline) {
    auto polled = consumer.Poll(milliseconds(100));
    if (!polled.ok()) {
      ADD_FAILURE() << polled.status().ToString();
      continue;
    }
    if (polled->has_value()) records.push_back(std::move(**polled));
  }
  return records;
}

class RecordingListener : public RebalanceListener {
 public:
  void OnPartitionsAssigned(
      const std::vector<TopicPartitionOffset>& p) override {
    assigned.insert(assigned.end(), p.begin(), p.end());
  }
  void OnPartitionsRevoked(
      const std::vector<TopicPartitionOffset>& p) override {
    revoked.insert(revoked.end(), p.begin(), p.end());
  }
  std::vector<TopicPartitionOffset> assigned;
  std::vector<TopicPartitionOffset> revoked;
};

TEST_F(KafkaClientTest, RoundTripKeepsKeysValuesHeadersAndNulls) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  const std::string binary("\0\x01\xff", 3);
  std::vector<OutgoingRecord> sent = {
      {topic,
       0,
       "k1",
       "v1",
       {{"h1", "a"}, {"h2", std::nullopt}},
       1700000000123},
      {topic, 0, std::nullopt, std::nullopt, {}, 1700000000124},  // tombstone
      {topic, 0, "", "", {{"empty", ""}}, 1700000000125},
      {topic, 0, binary, binary, {{"bin", binary}}, 1700000000126},
  };
  for (const auto& r : sent) ASSERT_OK(producer->Send(r));
  ASSERT_OK(producer->Flush(kTimeout));
  EXPECT_EQ(producer->OutstandingRecords(), 0);

  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Assign({{topic, 0, kOffsetBeginning}}));
  std::vector<ConsumedRecord> got = PollRecords(*consumer, sent.size());
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE(i);
    ConsumedRecord want{topic,
                        0,
                        static_cast<int64_t>(i),
                        sent[i].key,
                        sent[i].value,
                        sent[i].headers,
                        sent[i].timestamp_ms};
    EXPECT_EQ(got[i], want);
  }
  // Nothing more than was sent.
  auto extra = consumer->Poll(milliseconds(300));
  ASSERT_TRUE(extra.ok()) << extra.status().ToString();
  EXPECT_FALSE(extra->has_value());
  EXPECT_TRUE(consumer->Close().ok());
}

// PollInto into one Record, as the stream thread polls: each record comes
// whole (the previous one's longer value, extra headers or key do not
// linger), and a topic whose headers are skipped comes without them until
// SkippedHeaders asks for the record last polled.
TEST_F(KafkaClientTest, PollIntoReusesOneRecordAndSkipsHeadersOfChosenTopics) {
  const std::string kept = Topic(1);
  const std::string skipped = Topic(1);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  const std::string long_value(300, 'x');
  std::vector<OutgoingRecord> sent = {
      {kept, 0, "a-long-key-beyond-sso", long_value, {{"h1", "a"}, {"h2", std::nullopt}, {"h3", "c"}}, 1},
      {kept, 0, std::nullopt, "short", {{"only", "one"}}, 2},
      {kept, 0, "k", std::nullopt, {}, 3},
      {skipped, 0, "k1", "v1", {{"kcqrs.type", "OrderCreated"}, {"kcqrs.version", "1"}}, 4},
      {skipped, 0, "k2", "v2", {}, 5},
  };
  for (const auto& r : sent) ASSERT_OK(producer->Send(r));
  ASSERT_OK(producer->Flush(kTimeout));

  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  consumer->SkipHeaders({skipped});
  ASSERT_OK(consumer->Assign({{kept, 0, kOffsetBeginning}}));
  Record r;
  std::vector<kcqrs::Header> headers;
  auto next = [&]() {
    const auto deadline = Clock::now() + kTimeout;
    while (Clock::now() < deadline) {
      auto got = consumer->PollInto(milliseconds(100), &r);
      if (!got.ok()) {
        ADD_FAILURE() << got.status().ToString();
        return false;
      }
      if (*got) return true;
    }
    ADD_FAILURE() << "no record within the timeout";
    return false;
  };
  for (int64_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(next());
    EXPECT_EQ(r.topic, kept);
    EXPECT_EQ(r.offset, i);
    EXPECT_EQ(r.key, sent[i].key);
    EXPECT_EQ(r.value, sent[i].value);
    EXPECT_EQ(r.headers, sent[i].headers);
    EXPECT_EQ(r.timestamp_ms, sent[i].timestamp_ms);
    // Kept topics have their headers already: nothing was skipped.
    EXPECT_FALSE(consumer->SkippedHeaders(r, &headers));
  }
  ASSERT_OK(consumer->Assign({{skipped, 0, kOffsetBeginning}}));
  ASSERT_TRUE(next());
  EXPECT_EQ(r.topic, skipped);
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(r.value, "v1");
  EXPECT_TRUE(r.headers.empty());
  Record other = r;
  other.offset = 1;
  EXPECT_FALSE(consumer->SkippedHeaders(other, &headers)) << "not the record last polled";
  ASSERT_TRUE(consumer->SkippedHeaders(r, &headers));
  EXPECT_EQ(headers, sent[3].headers);
  ASSERT_TRUE(next());
  EXPECT_EQ(r.offset, 1);
  EXPECT_TRUE(r.headers.empty());
  headers.clear();
  ASSERT_TRUE(consumer->SkippedHeaders(r, &headers));
  EXPECT_TRUE(headers.empty());
  EXPECT_TRUE(consumer->Close().ok());
}

TEST_F(KafkaClientTest, ExplicitPartitionIsKeptAndAssignSeesOnlyIt) {
  const std::string topic = Topic(3);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->Send({topic, 2, "a", "to-2"}));
  ASSERT_OK(producer->Send({topic, 1, "a", "to-1"}));
  ASSERT_OK(producer->Flush(kTimeout));

  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Assign({{topic, 2, kOffsetBeginning}}));
  auto got = PollRecords(*consumer, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].partition, 2);
  EXPECT_EQ(got[0].value, "to-2");
  auto assignment = consumer->Assignment();
  ASSERT_OK(assignment);
  EXPECT_EQ(*assignment,
            (std::vector<TopicPartitionOffset>{{topic, 2, kOffsetInvalid}}));
}

// The HTTP command producer sends from request threads while a thread of
// its own serves delivery reports; the stream thread's takes the highest
// offset delivered per partition at each commit.
TEST_F(KafkaClientTest, ConcurrentSendsAreEachReportedOnceAndTheHighestOffsetsTaken) {
  const std::string a = Topic(2);
  const std::string b = Topic(2);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;  // more than Producer::kSendsPerPoll
  std::atomic<int> ok_reports{0};
  std::atomic<int> bad_reports{0};
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop) producer->Poll(milliseconds(5));
  });
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Thread t writes topic t%2, partition (t/2)%2: each partition gets
        // exactly one thread's records.
        OutgoingRecord r{t % 2 == 0 ? a : b, (t / 2) % 2, "k", std::to_string(i)};
        Status s = producer->Send(r, [&](const Status& st, int32_t, int64_t) {
          (st.ok() ? ok_reports : bad_reports)++;
        });
        if (!s.ok()) ADD_FAILURE() << s.ToString();
      }
    });
  }
  for (std::thread& s : senders) s.join();
  ASSERT_OK(producer->Flush(kTimeout));
  stop = true;
  poller.join();
  EXPECT_EQ(ok_reports.load(), kThreads * kPerThread);
  EXPECT_EQ(bad_reports.load(), 0);
  const auto delivered = producer->TakeDeliveredOffsets();
  const std::map<std::pair<std::string, int32_t>, int64_t> expected{
      {{a, 0}, kPerThread - 1},
      {{a, 1}, kPerThread - 1},
      {{b, 0}, kPerThread - 1},
      {{b, 1}, kPerThread - 1}};
  EXPECT_EQ(delivered, expected);
  EXPECT_TRUE(producer->TakeDeliveredOffsets().empty());  // taken once

  // A record after the take is counted from scratch.
  ASSERT_OK(producer->Send({a, 1, "k", "late"}));
  ASSERT_OK(producer->Flush(kTimeout));
  const auto after = producer->TakeDeliveredOffsets();
  EXPECT_EQ(after, (std::map<std::pair<std::string, int32_t>, int64_t>{{{a, 1}, kPerThread}}));
}

TEST_F(KafkaClientTest, SeekRereadsFromTheGivenOffset) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  for (const char* v : {"r0", "r1", "r2"}) {
    ASSERT_OK(producer->Send({topic, 0, std::nullopt, v}));
  }
  ASSERT_OK(producer->Flush(kTimeout));
  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Assign({{topic, 0, kOffsetBeginning}}));
  ASSERT_EQ(PollRecords(*consumer, 3).size(), 3u);
  ASSERT_OK(consumer->Seek({topic, 0, 1}, kTimeout));
  auto again = PollRecords(*consumer, 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].offset, 1);
  EXPECT_EQ(again[0].value, "r1");
  EXPECT_EQ(again[1].value, "r2");
}

TEST_F(KafkaClientTest, AdminListsTopicsAndRefusesToCreateOnTheMock) {
  auto admin = Admin::Create(Common());
  ASSERT_OK(admin);
  const std::string a = Topic(3);
  const std::string b = Topic(1);
  auto topics = (*admin)->ListTopics(kTimeout);
  ASSERT_OK(topics);
  EXPECT_NE(std::find(topics->begin(), topics->end(), Admin::TopicInfo{a, 3}),
            topics->end());
  EXPECT_NE(std::find(topics->begin(), topics->end(), Admin::TopicInfo{b, 1}),
            topics->end());
  EXPECT_TRUE(std::is_sorted(
      topics->begin(), topics->end(),
      [](const auto& x, const auto& y) { return x.name < y.name; }));

  // librdkafka 2.0.2's mock names no controller: CreateTopics says so at
  // once instead of waiting out its timeout.
  const auto start = Clock::now();
  Status created =
      (*admin)->CreateTopics({{UniqueName("c"), 1, 1, {}}}, kTimeout);
  EXPECT_EQ(created.code(), Status::Code::kNotSupported) << created.ToString();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
}

TEST_F(KafkaClientTest, GroupCommitIsReadBackByAnotherMember) {
  const std::string topic = Topic(1);
  const std::string group = UniqueName("g");
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(producer->Send({topic, 0, "k", std::to_string(i)}));
  }
  ASSERT_OK(producer->Flush(kTimeout));

  RecordingListener listener;
  auto consumer = MakeConsumer({{"group.id", group}});
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Subscribe({topic}, &listener));
  auto got = PollRecords(*consumer, 5);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(listener.assigned,
            (std::vector<TopicPartitionOffset>{{topic, 0, kOffsetInvalid}}));

  auto before = consumer->Committed({{topic, 0, 0}}, kTimeout);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ((*before)[0].offset, kOffsetInvalid);

  ASSERT_OK(consumer->CommitSync({{topic, 0, got.back().offset + 1}}));
  auto after = consumer->Committed({{topic, 0, 0}}, kTimeout);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, (std::vector<TopicPartitionOffset>{{topic, 0, 5}}));

  // Close leaves the group, telling the listener first.
  ASSERT_OK(consumer->Close());
  EXPECT_EQ(listener.revoked,
            (std::vector<TopicPartitionOffset>{{topic, 0, kOffsetInvalid}}));
  EXPECT_TRUE(consumer->Poll(milliseconds(1)).status().code() ==
              Status::Code::kFailedPrecondition);

  // The offset lives in the cluster, not in the closed consumer.
  auto other = MakeConsumer({{"group.id", group}});
  ASSERT_NE(other, nullptr);
  auto seen = other->Committed({{topic, 0, 0}}, kTimeout);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ((*seen)[0].offset, 5);
}

TEST_F(KafkaClientTest, GroupOperationsNeedAGroupId) {
  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  Status s = consumer->Subscribe({"x"}, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("group.id"), std::string::npos);
  EXPECT_EQ(consumer->GroupMetadata().status().code(),
            Status::Code::kFailedPrecondition);
}

TEST_F(KafkaClientTest, InvalidPropertyIsInvalidArgumentNamingIt) {
  Properties unknown = Common();
  unknown["no.such.property"] = "1";
  for (Status s :
       {Producer::Create(unknown).status(), Consumer::Create(unknown).status(),
        Admin::Create(unknown).status()}) {
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_NE(s.message().find("no.such.property"), std::string::npos)
        << s.ToString();
  }
  Properties bad_value = Common();
  bad_value["acks"] = "banana";
  Status s = Producer::Create(bad_value).status();
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find("acks"), std::string::npos) << s.ToString();
}

TEST_F(KafkaClientTest, ProduceRetriesThroughTransientInjectedErrors) {
  const std::string topic = Topic(1);
  cluster_->PushRequestErrors(
      ApiKey::kProduce,
      {BrokerError::kNotEnoughReplicas, BrokerError::kRequestTimedOut});
  auto producer = MakeProducer({{"retry.backoff.ms", "10"}});
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->Send({topic, 0, "k", "survives"}));
  Status flushed = producer->Flush(kTimeout);
  EXPECT_TRUE(flushed.ok()) << flushed.ToString();

  auto consumer = MakeConsumer();
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Assign({{topic, 0, kOffsetBeginning}}));
  auto got = PollRecords(*consumer, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "survives");
}

TEST_F(KafkaClientTest, InjectedProduceErrorsSurfaceFromFlushWithTheirCode) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer({{"retries", "1"}, {"retry.backoff.ms", "10"}});
  ASSERT_NE(producer, nullptr);

  // Not retriable: the first answer is final.
  cluster_->PushRequestErrors(ApiKey::kProduce,
                              {BrokerError::kTopicAuthorizationFailed});
  ASSERT_OK(producer->Send({topic, 0, "k", "denied"}));
  Status denied = producer->Flush(kTimeout);
  EXPECT_EQ(denied.code(), Status::Code::kFailedPrecondition)
      << denied.ToString();
  EXPECT_NE(denied.message().find(topic + "[0]"), std::string::npos)
      << denied.ToString();
  EXPECT_NE(denied.message().find("TOPIC_AUTHORIZATION_FAILED"),
            std::string::npos)
      << denied.ToString();

  // librdkafka now refuses the topic at once, until metadata says
  // otherwise.
  Status refused = producer->Send({topic, 0, "k", "denied-again"});
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition)
      << refused.ToString();

  // Retriable, but more often than retries allows.
  const std::string other = Topic(1);
  cluster_->PushRequestErrors(
      ApiKey::kProduce,
      {BrokerError::kNotEnoughReplicas, BrokerError::kNotEnoughReplicas,
       BrokerError::kNotEnoughReplicas});
  ASSERT_OK(producer->Send({other, 0, "k", "no-replicas"}));
  Status unavailable = producer->Flush(kTimeout);
  EXPECT_TRUE(unavailable.IsUnavailable()) << unavailable.ToString();

  // A delivery error is reported once; the next flush is clean.
  cluster_->ClearRequestErrors(ApiKey::kProduce);
  ASSERT_OK(producer->Send({other, 0, "k", "ok"}));
  Status clean = producer->Flush(kTimeout);
  EXPECT_TRUE(clean.ok()) << clean.ToString();
}

TEST_F(KafkaClientTest, BrokerDownTimesOutInsteadOfHanging) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer({{"message.timeout.ms", "1500"}});
  auto consumer = MakeConsumer({{"group.id", UniqueName("g")}});
  auto admin = Admin::Create(Common());
  ASSERT_NE(producer, nullptr);
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(admin);
  ASSERT_OK(cluster_->SetBrokerDown(1));

  const auto start = Clock::now();
  ASSERT_OK(producer->Send({topic, 0, "k", "lost"}));
  Status flushed = producer->Flush(kTimeout);
  EXPECT_TRUE(flushed.IsTimedOut()) << flushed.ToString();
  EXPECT_NE(flushed.message().find(topic + "[0]"), std::string::npos)
      << flushed.ToString();

  auto committed = consumer->Committed({{topic, 0, 0}}, milliseconds(1000));
  EXPECT_TRUE(committed.status().IsTimedOut() ||
              committed.status().IsUnavailable())
      << committed.status().ToString();

  auto topics = (*admin)->ListTopics(milliseconds(1000));
  EXPECT_TRUE(topics.status().IsTimedOut() || topics.status().IsUnavailable())
      << topics.status().ToString();

  // Each call gave up near its own deadline (1.5 s + 1 s + 1 s), far below
  // the 10 s flush timeout.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(7));

  // And the clients recover when the broker comes back. Reconnecting may
  // take longer than this producer's short message timeout on a loaded
  // machine, so a record may time out once more; a later one must arrive.
  ASSERT_OK(cluster_->SetBrokerUp(1));
  Status recovered;
  for (int attempt = 0; attempt < 10; ++attempt) {
    ASSERT_OK(producer->Send({topic, 0, "k", "kept"}));
    recovered = producer->Flush(kTimeout);
    if (recovered.ok()) break;
  }
  EXPECT_TRUE(recovered.ok()) << recovered.ToString();
}

TEST_F(KafkaClientTest, PollReportsAMissingTopicAndKeepsGoing) {
  const std::string missing = UniqueName("missing");
  cluster_->SetTopicError(missing, BrokerError::kUnknownTopicOrPartition);
  auto consumer = MakeConsumer({{"group.id", UniqueName("g")}});
  ASSERT_NE(consumer, nullptr);
  ASSERT_OK(consumer->Subscribe({missing}, nullptr));
  Status error;
  const auto deadline = Clock::now() + kTimeout;
  while (error.ok() && Clock::now() < deadline) {
    auto polled = consumer->Poll(milliseconds(100));
    if (!polled.ok()) error = polled.status();
  }
  EXPECT_TRUE(error.IsNotFound()) << error.ToString();
  EXPECT_NE(error.message().find(missing), std::string::npos)
      << error.ToString();
  // Not fatal: the consumer still works.
  auto next = consumer->Poll(milliseconds(100));
  EXPECT_TRUE(next.ok() || !next.status().IsFenced())
      << next.status().ToString();
}

TEST_F(KafkaClientTest, TransactionalCallsOnTheMock) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer({{"transactional.id", UniqueName("tx")}});
  ASSERT_NE(producer, nullptr);
  EXPECT_TRUE(producer->transactional());

  Status early = producer->Send({topic, 0, "k", "no-txn"});
  EXPECT_EQ(early.code(), Status::Code::kFailedPrecondition)
      << early.ToString();

  ASSERT_OK(producer->InitTransactions(kTimeout));
  Status outside = producer->Send({topic, 0, "k", "outside"});
  EXPECT_EQ(outside.code(), Status::Code::kFailedPrecondition)
      << outside.ToString();

  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "committed"}));
  Status committed = producer->CommitTransaction(kTimeout);
  EXPECT_TRUE(committed.ok()) << committed.ToString();

  // An abortable failure: the broker refuses to add the partition.
  cluster_->PushRequestErrors(ApiKey::kAddPartitionsToTxn,
                              {BrokerError::kTopicAuthorizationFailed});
  ASSERT_OK(producer->BeginTransaction());
  Status sent = producer->Send({topic, 0, "k", "refused"});
  Status commit = sent.ok() ? producer->CommitTransaction(kTimeout) : sent;
  EXPECT_TRUE(commit.IsAborted()) << commit.ToString();
  Status aborted = producer->AbortTransaction(kTimeout);
  EXPECT_TRUE(aborted.ok()) << aborted.ToString();

  // Usable again after the abort.
  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "again"}));
  EXPECT_TRUE(producer->CommitTransaction(kTimeout).ok());
}

TEST_F(KafkaClientTest, FencingAtCommitIsFenced) {
  const std::string topic = Topic(1);
  auto producer = MakeProducer({{"transactional.id", UniqueName("tx")}});
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->InitTransactions(kTimeout));
  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "v"}));
  ASSERT_OK(producer->Flush(kTimeout));
  cluster_->PushRequestErrors(ApiKey::kEndTxn, {BrokerError::kProducerFenced});
  Status commit = producer->CommitTransaction(kTimeout);
  EXPECT_TRUE(commit.IsFenced()) << commit.ToString();
  // Fatal: nothing works any more.
  EXPECT_TRUE(producer->BeginTransaction().IsFenced());
}

TEST_F(KafkaClientTest, SendOffsetsToTransactionUsesTheConsumersGroup) {
  const std::string topic = Topic(1);
  auto consumer = MakeConsumer({{"group.id", UniqueName("g")}});
  ASSERT_NE(consumer, nullptr);
  auto producer = MakeProducer({{"transactional.id", UniqueName("tx")}});
  ASSERT_NE(producer, nullptr);
  ASSERT_OK(producer->InitTransactions(kTimeout));
  ASSERT_OK(producer->BeginTransaction());
  ASSERT_OK(producer->Send({topic, 0, "k", "v"}));
  Status sent =
      producer->SendOffsetsToTransaction({{topic, 0, 1}}, *consumer, kTimeout);
  EXPECT_TRUE(sent.ok()) << sent.ToString();
  EXPECT_TRUE(producer->CommitTransaction(kTimeout).ok());

  auto no_group = MakeConsumer();
  ASSERT_NE(no_group, nullptr);
  ASSERT_OK(producer->BeginTransaction());
  Status refused =
      producer->SendOffsetsToTransaction({{topic, 0, 1}}, *no_group, kTimeout);
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition)
      << refused.ToString();
  EXPECT_TRUE(producer->AbortTransaction(kTimeout).ok());
}

}  // namespace
}  // namespace kcqrs::kafka

namespace kcqrs::kafka {
namespace {

// A producer destroyed with records still queued calls each record's
// delivery handler (with an error) instead of dropping it: the HTTP API
// answers its waiting POST /commands from these handlers.
TEST(ProducerLifetimeTest, DestroyingAProducerAnswersItsUndeliveredRecords) {
  auto cluster = MockCluster::Create(1);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->CreateTopic("t", 1, 1).ok());
  ASSERT_TRUE((*cluster)->SetBrokerDown(1).ok());
  auto producer = Producer::Create({{"bootstrap.servers", (*cluster)->bootstrap_servers()},
                                    {"message.timeout.ms", "60000"}});
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  int answered = 0;
  Status last;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*producer)
                    ->Send({"t", 0, "k", "v"},
                           [&](const Status& s, int32_t, int64_t) {
                             ++answered;
                             last = s;
                           })
                    .ok());
  }
  EXPECT_EQ(answered, 0);
  producer->reset();
  EXPECT_EQ(answered, 3);
  EXPECT_FALSE(last.ok());
}

}  // namespace
}  // namespace kcqrs::kafka

namespace kcqrs::kafka {
namespace {

// A loopback port free a moment ago.
uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Produces one record through `bootstrap` and reads it back.
void RoundTrip(const std::string& bootstrap, MockCluster& cluster) {
  const std::string topic = kcqrs::testing::UniqueName("fixed");
  ASSERT_TRUE(cluster.CreateTopic(topic, 1, 1).ok());
  auto producer = Producer::Create({{"bootstrap.servers", bootstrap}});
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  OutgoingRecord r;
  r.topic = topic;
  r.key = "k";
  r.value = "v";
  ASSERT_TRUE((*producer)->Send(r).ok());
  ASSERT_TRUE((*producer)->Flush(kTimeout).ok());
  auto consumer = Consumer::Create({{"bootstrap.servers", bootstrap},
                                    {"auto.offset.reset", "earliest"},
                                    {"enable.auto.commit", "false"}});
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  ASSERT_TRUE((*consumer)->Assign({{topic, 0, kOffsetBeginning}}).ok());
  auto records = PollRecords(**consumer, 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, "v");
}

// `make demo` prints kcat lines with the embedded broker's address: it is
// the same at every start, while its port is free.
TEST(MockClusterPortTest, ClientsBootstrapFromTheSamePortAtEveryStart) {
  const uint16_t port = FreePort();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  for (int start = 0; start < 2; ++start) {
    auto cluster = MockCluster::Create(1, port);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    EXPECT_EQ((*cluster)->bootstrap_servers(), address) << "start " << start;
    EXPECT_EQ((*cluster)->bootstrap_port_note(), "");
    RoundTrip((*cluster)->bootstrap_servers(), **cluster);
  }
}

TEST(MockClusterPortTest, ATakenPortFallsBackToOneTheSystemPicksAndSaysWhy) {
  const uint16_t port = FreePort();
  auto first = MockCluster::Create(1, port);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = MockCluster::Create(1, port);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_NE((*second)->bootstrap_servers(), (*first)->bootstrap_servers());
  EXPECT_EQ((*second)->bootstrap_port_note(), "127.0.0.1:" + std::to_string(port) + " is in use");
  RoundTrip((*second)->bootstrap_servers(), **second);
}

}  // namespace
}  // namespace kcqrs::kafka
