// A real StreamThread on scripted Kafka clients (tests/support/fake_kafka.h):
// the commit, abort, rewind, fence, wipe and stop paths of the runtime, each
// checked by what a user would see: the events written, the balances
// served, the offsets the group commits. The same paths against a real
// broker are in tests/integration/fault_injection_test.cc; here each
// failure lands exactly where the test puts it, in milliseconds.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "engine/graph/compiled_topology.h"
#include "engine/runtime/standby_thread.h"
#include "engine/runtime/stream_thread.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
#include "json/document.h"
#include "state/rocksdb_env.h"
#include "tests/support/examples.h"
#include "tests/support/fake_kafka.h"

namespace kcqrs::engine {
namespace {

using kcqrs::testing::FakeKafka;

class StreamThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kcqrs-stream-thread-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_ = kcqrs::testing::LoadExample(
        "bank", {"application.state_dir=" + dir_.string(), "application.commit_interval_ms=20"});
    auto compiled = CompiledTopology::Compile(options_);
    ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
    ASSERT_TRUE((*compiled)->ResolvePartitions({{"bank.commands", 1}, {"bank.events", 1}}).ok());
    topology_ = std::move(compiled).value();
    rocksdb_ = state::RocksDbEnv::Create();
    NewKafka();
  }
  void TearDown() override {
    if (thread_) thread_->Stop();
    thread_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A new Kafka (the old one's logs are gone); one member owns everything.
  void NewKafka() {
    kafka_ = std::make_shared<FakeKafka>();
    kafka_->SetAssignment({{"bank.commands", 0}, {"bank.events", 0}});
  }

  void Start() {
    // A test may have made it first (a standby shares it).
    if (!state_directory_) state_directory_ = std::make_unique<StateDirectory>(dir_.string());
    registry_ = std::make_unique<StoreRegistry>(
        std::map<std::string, int>{{"accounts", 1}, {"balances", 1}});
    StreamThreadConfig c;
    c.options = options_;
    c.bootstrap_servers = "fake:9092";
    c.member_id = "bank-test-0";
    c.topology = topology_;
    c.rocksdb = rocksdb_;
    c.registry = registry_.get();
    c.standby_registry = standby_registry_.get();
    c.positions = &positions_;
    c.state_directory = state_directory_.get();
    c.clients = kafka_->Supplier();
    thread_ = std::make_unique<StreamThread>(std::move(c));
    thread_->Start();
  }
  void Stop() {
    thread_->Stop();
    thread_.reset();
  }

  void Command(const std::string& json) {
    const auto doc = kcqrs::Json::parse(json);
    kafka_->Produce("bank.commands", 0, doc["accountId"].get<std::string>(), json);
  }

  // Waits until `done` holds (10 s at most).
  template <typename Pred>
  bool WaitFor(Pred done) {
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < until;) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
  }
  bool CommandsCommitted(int64_t next) {
    return WaitFor([&] {
      const int64_t events = static_cast<int64_t>(kafka_->Read("bank.events").size());
      return kafka_->GroupOffset("bank.commands", 0) == next &&
             kafka_->GroupOffset("bank.events", 0) == (events == 0 ? -1 : events);
    });
  }

  std::vector<std::string> Events() {
    std::vector<std::string> types;
    for (const auto& r : kafka_->Read("bank.events")) {
      types.push_back(kcqrs::Json::parse(*r.value)["type"].get<std::string>());
    }
    return types;
  }
  std::vector<std::string> Rejections() {
    std::vector<std::string> codes;
    for (const auto& r : kafka_->Read("bank.rejections")) {
      codes.push_back(kcqrs::Json::parse(*r.value)["code"].get<std::string>());
    }
    return codes;
  }
  // The balance the balances store serves, or -1 when it has no row.
  int64_t Balance(const std::string& account) {
    auto view = registry_->View("balances");
    if (!view) return -1;
    auto got = view->Get(account);
    if (!got.ok() || !got->has_value()) return -1;
    return kcqrs::Json::parse(**got)["balance"].get<int64_t>();
  }

  std::filesystem::path dir_;
  EngineOptions options_;
  std::shared_ptr<const CompiledTopology> topology_;
  std::shared_ptr<state::RocksDbEnv> rocksdb_;
  std::shared_ptr<FakeKafka> kafka_;
  std::unique_ptr<StateDirectory> state_directory_;
  std::unique_ptr<StoreRegistry> registry_;
  std::unique_ptr<StoreRegistry> standby_registry_;  // a test with standbys makes it
  PositionLog positions_;
  std::unique_ptr<StreamThread> thread_;
};

constexpr char kOpen[] =
    R"({"type":"OpenAccount","accountId":"a-1","owner":"ada","commandId":"c-1"})";
constexpr char kDeposit50[] =
    R"({"type":"Deposit","accountId":"a-1","amount":50,"commandId":"c-2"})";
constexpr char kDeposit25[] =
    R"({"type":"Deposit","accountId":"a-1","amount":25,"commandId":"c-3"})";

TEST_F(StreamThreadTest, EventsStateAndOffsetsCommitTogether) {
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 50; })) << Balance("a-1");
  EXPECT_EQ(Events(), (std::vector<std::string>{"AccountOpened", "MoneyDeposited"}));
  EXPECT_EQ(kafka_->aborts(), 0);
  EXPECT_EQ(thread_->stats().running_tasks.load(), 2);
}

TEST_F(StreamThreadTest, AnAbortedCommitRewindsAndDoublesNothing) {
  // The first commit fails as a transaction Kafka aborts: its events, its
  // state writes and its offsets must all be gone, and the records must
  // come again from the committed offsets.
  kafka_->FailCommits({Status::Aborted("injected: transaction aborted by the coordinator")});
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 50; })) << Balance("a-1");
  EXPECT_EQ(Events(), (std::vector<std::string>{"AccountOpened", "MoneyDeposited"}));
  EXPECT_TRUE(Rejections().empty());  // not "already_open": the aborted state is gone
  EXPECT_GE(kafka_->aborts(), 1);
  EXPECT_GE(thread_->stats().aborts.load(), 1u);
  // Nothing was committed before: back to the first record processed, as
  // an absolute offset (a logical one makes librdkafka look it up, and a
  // stale lookup can move the partition again later on its own).
  const auto seeks = kafka_->seeks();
  EXPECT_NE(std::find(seeks.begin(), seeks.end(),
                      kafka::TopicPartitionOffset{"bank.commands", 0, 0}),
            seeks.end());
  for (const auto& seek : seeks) {
    EXPECT_GE(seek.offset, 0) << seek.topic << " sought logically";
    // Nothing of the events was processed (none was committed yet): its
    // position has nothing to undo.
    EXPECT_NE(seek.topic, "bank.events");
  }
  EXPECT_NE(thread_->last_abort_reason().find("injected"), std::string::npos)
      << thread_->last_abort_reason();
}

TEST_F(StreamThreadTest, AFencedProducerStartsOverWithNewClientsAndLosesNothing) {
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_EQ(kafka_->producers_created(), 1);
  // Another incarnation with this transactional id appears: this one's
  // next transaction is refused, and it must start over with new clients,
  // its tasks closed and restored, without deciding twice.
  kafka_->Fence();
  Command(kDeposit25);
  ASSERT_TRUE(CommandsCommitted(3));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 75; })) << Balance("a-1");
  EXPECT_EQ(kafka_->producers_created(), 2);
  EXPECT_EQ(Events(),
            (std::vector<std::string>{"AccountOpened", "MoneyDeposited", "MoneyDeposited"}));
}

TEST_F(StreamThreadTest, AFatalCommitErrorDropsTheUnappliedWritesAndStartsOver) {
  // A fatal commit error (not an abort) costs the clients; the new life
  // must not apply the failed transaction's writes, and decides its
  // commands again, once.
  Command(kOpen);
  Start();
  ASSERT_TRUE(CommandsCommitted(1));
  kafka_->FailCommits({Status::Fenced("injected: producer fenced at commit")});
  Command(kDeposit50);
  Command(kDeposit25);
  ASSERT_TRUE(CommandsCommitted(3));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 75; })) << Balance("a-1");
  EXPECT_EQ(Events(),
            (std::vector<std::string>{"AccountOpened", "MoneyDeposited", "MoneyDeposited"}));
  EXPECT_EQ(kafka_->producers_created(), 2);
}

TEST_F(StreamThreadTest, RecordsTheConsumerHandsOverAgainAreNotProcessedTwice) {
  // librdkafka can send a partition's fetch position back on its own after
  // a seek (a stale offset lookup, confluentinc/librdkafka#2256). The
  // deposit decided again would emit a second event, and the event folded
  // again would add 50 twice, both committed: each record must be
  // processed once, and the consumer put back where the thread is.
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 50; })) << Balance("a-1");
  kafka_->MovePositionBack({"bank.commands", 0}, 1);
  kafka_->MovePositionBack({"bank.events", 0}, 1);
  Command(kDeposit25);
  ASSERT_TRUE(CommandsCommitted(3));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 75; })) << Balance("a-1");
  EXPECT_EQ(Events(),
            (std::vector<std::string>{"AccountOpened", "MoneyDeposited", "MoneyDeposited"}));
  EXPECT_TRUE(Rejections().empty());
  EXPECT_EQ(Balance("a-1"), 75);
  EXPECT_EQ(thread_->stats().records_redelivered.load(), 2u);
  const auto seeks = kafka_->seeks();
  EXPECT_NE(std::find(seeks.begin(), seeks.end(),
                      kafka::TopicPartitionOffset{"bank.commands", 0, 2}),
            seeks.end());
  EXPECT_NE(std::find(seeks.begin(), seeks.end(),
                      kafka::TopicPartitionOffset{"bank.events", 0, 2}),
            seeks.end());
  EXPECT_EQ(kafka_->aborts(), 0);
}

TEST_F(StreamThreadTest, ATopicRecreatedUnderTheThreadIsReadAgainNotSkipped) {
  // The commands topic is deleted and made again while the thread runs:
  // its new records sit below the offset the group committed. They are new
  // commands, not ones handed over again, and must be decided.
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  kafka_->RecreateTopic("bank.commands");
  Command(R"({"type":"Deposit","accountId":"a-1","amount":25,"commandId":"c-9"})");
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 75; })) << Balance("a-1");
  EXPECT_EQ(Events(),
            (std::vector<std::string>{"AccountOpened", "MoneyDeposited", "MoneyDeposited"}));
  EXPECT_EQ(thread_->stats().records_redelivered.load(), 0u);
}

TEST_F(StreamThreadTest, StateThatDoesNotFitItsChangelogIsWipedNotServed) {
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 50; }));
  Stop();
  // The cluster is replaced by an empty one (topics recreated): the local
  // stores' checkpoints point past the end of the new changelogs. Serving
  // or deciding against that state would resurrect an account Kafka no
  // longer knows.
  NewKafka();
  Command(kDeposit25);
  Start();
  ASSERT_TRUE(CommandsCommitted(1));
  EXPECT_EQ(Rejections(), (std::vector<std::string>{"not_found"}));
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(Balance("a-1"), -1);
}

TEST_F(StreamThreadTest, AStopDuringAnAssignmentProcessesNothingOfAnUnrestoredTask) {
  Command(kOpen);
  // The engine is asked to stop inside the poll that brings the
  // assignment: the tasks are open but not restored, and the record polled
  // with it must be neither processed (against unrestored state) nor
  // committed past.
  kafka_->OnNextAssignment([this] { thread_->RequestStop(); });
  Start();
  ASSERT_TRUE(WaitFor([&] { return thread_->state() == StreamThread::State::kStopped; }));
  Stop();
  EXPECT_TRUE(Events().empty());
  EXPECT_EQ(kafka_->GroupOffset("bank.commands", 0), -1);
  // The next start decides it, once.
  Start();
  ASSERT_TRUE(CommandsCommitted(1));
  EXPECT_EQ(Events(), (std::vector<std::string>{"AccountOpened"}));
}

TEST_F(StreamThreadTest, ALongRestoreNeitherStopsTheOtherTasksNorThePoll) {
  // The balances store's changelog holds 3,000 rows, replayed at 1 ms each:
  // a restore of some 3 s. The aggregate's task (nothing to restore) must
  // decide commands meanwhile, and the thread must keep polling.
  const std::string changelog = topology_->ChangelogTopic("balances");
  for (int i = 0; i < 3000; ++i) {
    const std::string id = "acc-" + std::to_string(i);
    kafka_->Produce(changelog, 0, id, R"({"accountId":")" + id + R"(","balance":1})");
  }
  kafka_->SetRestoreDelay(std::chrono::milliseconds(1));
  Command(kOpen);
  Start();
  ASSERT_TRUE(WaitFor([&] { return kafka_->GroupOffset("bank.commands", 0) == 1; }));
  std::string projection_state;
  for (const TaskStatus& t : thread_->Tasks()) {
    if (t.task == "1_0") projection_state = t.state;
  }
  EXPECT_EQ(projection_state, "RESTORING");
  EXPECT_EQ(Events(), (std::vector<std::string>{"AccountOpened"}));
  EXPECT_EQ(Balance("a-1"), -1);  // not served before its store is restored
  // Then it is restored, and catches up with what it was held back from.
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 0; })) << Balance("a-1");
  EXPECT_EQ(Balance("acc-2999"), 1);
  EXPECT_EQ(thread_->stats().restored_records.load(), 3000u);
}

TEST_F(StreamThreadTest, TheNewOwnerOfATaskStartsFromItsStandbysCopy) {
  // Another instance owns the projection's task and has written 2,000 rows
  // to its changelog; this instance keeps a standby of it.
  const std::string changelog = topology_->ChangelogTopic("balances");
  auto row = [&](int i) {
    const std::string id = "acc-" + std::to_string(i);
    kafka_->Produce(changelog, 0, id, R"({"accountId":")" + id + R"(","balance":1})");
  };
  for (int i = 0; i < 2000; ++i) row(i);
  state_directory_ = std::make_unique<StateDirectory>(dir_.string());
  StandbyThreadConfig sc;
  sc.options = options_;
  sc.bootstrap_servers = "fake:9092";
  sc.member_id = "bank-test";
  sc.topology = topology_;
  sc.rocksdb = rocksdb_;
  sc.state_directory = state_directory_.get();
  sc.clients = kafka_->Supplier();
  sc.desired = [] { return std::set<std::string>{"1_0"}; };
  standby_registry_ = std::make_unique<StoreRegistry>(
      std::map<std::string, int>{{"accounts", 1}, {"balances", 1}});
  sc.registry = standby_registry_.get();
  StandbyThread standby(std::move(sc));
  standby.Start();
  ASSERT_TRUE(WaitFor([&] { return standby.Tasks() == std::vector<std::string>{"1_0"}; }));
  // The owner goes on writing while the standby follows.
  for (int i = 2000; i < 2100; ++i) row(i);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The owner writes 50 more rows and dies; the group gives the task to
  // this instance. Its stream thread takes the directory over from the
  // standby and restores only what the copy has not got, not the whole
  // changelog, slowly (10 ms a record, the standby's reads too).
  kafka_->SetRestoreDelay(std::chrono::milliseconds(10));
  for (int i = 2100; i < 2150; ++i) row(i);
  // While it restores, the copy goes on answering, a moment behind, from
  // the standby registry (Kcqrs-Standby answers), until the active task
  // answers: a key is never answered by neither for more than a moment
  // (before, for the whole restore).
  auto copy_answers = [&] {
    auto view = standby_registry_->View("balances");
    if (!view) return false;
    auto got = view->Get("acc-0");
    return got.ok() && got->has_value();
  };
  ASSERT_TRUE(copy_answers());
  Start();
  // The time between two looks that both found neither answering: the
  // answers go from the copy to the task once, so such a span lies inside
  // the gap, however long this thread slept between the looks (under a
  // loaded machine a single look can come hundreds of ms after the last).
  auto unanswered = std::chrono::steady_clock::duration::zero();
  auto last = std::chrono::steady_clock::now();
  bool neither_before = false;
  bool restored_seen = false;
  ASSERT_TRUE(WaitFor([&] {
    const auto now = std::chrono::steady_clock::now();
    const bool neither = Balance("acc-0") != 1 && !copy_answers();
    if (neither && neither_before) unanswered += now - last;
    neither_before = neither;
    last = now;
    if (Balance("acc-2149") == 1) restored_seen = true;
    return restored_seen;
  })) << Balance("acc-2149");
  EXPECT_LT(unanswered, std::chrono::milliseconds(200));
  EXPECT_FALSE(copy_answers()) << "a running task is no copy";
  EXPECT_EQ(Balance("acc-0"), 1);
  EXPECT_LT(thread_->stats().restored_records.load(), 2000u);
  EXPECT_TRUE(standby.Tasks().empty());
  standby.Stop();
  Stop();
}

TEST_F(StreamThreadTest, AnEagerRebalanceThatGivesTasksBackNeitherClosesNorRestoresThem) {
  // The range assignor's rebalances revoke every partition of every member
  // and then assign them again, mostly the same ones (another instance
  // died or joined). The tasks given back are suspended, not closed: their
  // stores answer queries all through the rebalance, and nothing is
  // reopened or restored. Before, every rebalance closed every task of the
  // survivor too: its own keys answered 503 for 0.6-0.9 s (the failover
  // benchmark), and a thread with big stores reopened them all.
  Command(kOpen);
  Command(kDeposit50);
  Start();
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 50; }));
  const uint64_t restored = thread_->stats().restored_records.load();
  std::atomic<int64_t> during{-2};
  std::atomic<bool> rebalanced{false};
  kafka_->Rebalance({{"bank.commands", 0}, {"bank.events", 0}}, [&] {
    during = Balance("a-1");
    rebalanced = true;
  });
  ASSERT_TRUE(WaitFor([&] { return rebalanced.load(); }));
  EXPECT_EQ(during.load(), 50) << "the store was closed during the rebalance";
  // Work goes on where it was, once, on the same open stores.
  Command(kDeposit25);
  ASSERT_TRUE(CommandsCommitted(3));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") == 75; })) << Balance("a-1");
  EXPECT_EQ(thread_->stats().restored_records.load(), restored);
  EXPECT_EQ(Events(), (std::vector<std::string>{"AccountOpened", "MoneyDeposited", "MoneyDeposited"}));
  Stop();
}

TEST_F(StreamThreadTest, ATaskAnEagerRebalanceDoesNotGiveBackIsClosed) {
  // Suspended tasks the assignment does not give back are closed at once:
  // their partitions are another member's now, and their stores must not
  // go on answering as if current.
  Command(kOpen);
  Start();
  ASSERT_TRUE(CommandsCommitted(1));
  ASSERT_TRUE(WaitFor([&] { return Balance("a-1") != -1; }));
  std::atomic<bool> rebalanced{false};
  kafka_->Rebalance({{"bank.commands", 0}}, [&] { rebalanced = true; });
  ASSERT_TRUE(WaitFor([&] { return rebalanced.load(); }));
  // The projection's task (bank.events) went elsewhere: its store is gone.
  EXPECT_TRUE(WaitFor([&] { return Balance("a-1") == -1; }));
  Stop();
}

TEST_F(StreamThreadTest, OnlyACleanStopLeavesTheGroup) {
  // A thread that starts over after an error keeps its static membership,
  // so that it takes its partitions straight back; a clean stop leaves, so
  // that the group hands them over at once, not after the session timeout.
  Command(kOpen);
  Start();
  ASSERT_TRUE(CommandsCommitted(1));
  kafka_->Fence();
  Command(kDeposit50);
  ASSERT_TRUE(CommandsCommitted(2));
  ASSERT_EQ(kafka_->producers_created(), 2);
  EXPECT_EQ(kafka_->group_leaves(), 0);
  Stop();
  EXPECT_EQ(kafka_->group_leaves(), 1);
}

}  // namespace
}  // namespace kcqrs::engine
