// The command handler on its own (MakeProcessor, as the runtime makes it),
// with a ProcessorContext that plays the task's part: it holds the store,
// collects the sends and tells the record size limit. What the handler
// writes is checked against that limit the way the task checks it before a
// record is released (Task::Context::CheckSizes): a store value whose key
// and value exceed the limit of the store's changelog topic would send the
// command to the dead-letter topic.
#include <gtest/gtest.h>

#include "json/document.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "engine/graph/compiled_topology.h"
#include "engine/processors/command_outcome.h"
#include "engine/processors/processors.h"
#include "kcqrs/processor.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

constexpr char kLedger[] = R"(application:
  id: ledger
kafka:
  bootstrap_servers: embedded
aggregates:
  account:
    command_topics: [accounts.commands]
    id_field: account
    event_topic: accounts.events
    rejection_topic: accounts.rejections
    store: accounts
    dedup_window: 100
    commands:
      Post:
        emit:
          - type: Posted
            with:
              note: command.note
      Open:
        require:
          - that: state == null
            code: exists
            reason: "account {command.account} exists"
        emit:
          - type: Opened
      Grow:
        emit:
          - type: Grew
            with:
              blob: command.blob
    events:
      Posted:
        merge:
          posts: coalesce(state.posts, 0) + 1
      Opened:
        merge:
          open: "true"
      Grew:
        merge:
          blob: event.blob
)";

class MapStore final : public KeyValueStore {
 public:
  class Empty final : public KeyValueIterator {
   public:
    bool Valid() const override { return false; }
    void Next() override {}
    std::string_view key() const override { return {}; }
    std::string_view value() const override { return {}; }
    Status status() const override { return Status::OK(); }
  };
  explicit MapStore(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    auto it = rows_.find(std::string(key));
    if (it == rows_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  std::unique_ptr<KeyValueIterator> Range(std::string_view, std::string_view) const override {
    return std::make_unique<Empty>();
  }
  std::unique_ptr<KeyValueIterator> Prefix(std::string_view) const override {
    return std::make_unique<Empty>();
  }
  uint64_t ApproximateNumEntries() const override { return rows_.size(); }
  Status Put(std::string_view key, std::string_view value) override {
    rows_[std::string(key)] = std::string(value);
    return Status::OK();
  }
  Status Delete(std::string_view key) override {
    rows_.erase(std::string(key));
    return Status::OK();
  }

 private:
  std::string name_;
  std::map<std::string, std::string> rows_;
};

class TaskLikeContext final : public ProcessorContext, public OutcomeRecorder {
 public:
  TaskLikeContext(std::string changelog, size_t limit)
      : changelog_(std::move(changelog)), limit_(limit) {}
  KeyValueStore* GetStateStore(const std::string& name) override {
    return name == store.name() ? &store : nullptr;
  }
  Status Send(const std::string& topic, std::optional<std::string> key,
              std::optional<std::string> value, std::vector<Header> headers) override {
    Record r;
    r.topic = topic;
    r.key = std::move(key);
    r.value = std::move(value);
    r.headers = std::move(headers);
    sent.push_back(std::move(r));
    return Status::OK();
  }
  size_t MaxRecordBytes(const std::string& topic) const override {
    return topic == changelog_ ? limit_ : 0;
  }
  const std::string& application_id() const override { return id_; }
  const std::string& task_id() const override { return id_; }
  int32_t partition() const override { return 0; }

  void RecordOutcome(std::string command_id, CommandOutcome outcome) override {
    outcomes[command_id] = std::move(outcome);
  }

  MapStore store{"accounts"};
  std::vector<Record> sent;
  std::map<std::string, CommandOutcome> outcomes;

 private:
  std::string changelog_;
  size_t limit_;
  std::string id_ = "0_0";
};

class CommandHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::LoadOptions load;
    auto options = config::LoadEngineOptionsFromString(kLedger, "ledger.yaml", load);
    ASSERT_TRUE(options.ok()) << options.status().ToString();
    auto compiled = CompiledTopology::Compile(*options);
    ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
    topology_ = std::move(compiled).value();
    ASSERT_TRUE(topology_->ResolvePartitions({{"accounts.commands", 1},
                                              {"accounts.events", 1},
                                              {"accounts.rejections", 1},
                                              {topology_->ChangelogTopic("accounts"), 1}})
                    .ok());
  }

  // The handler, with a limit of `limit` bytes on the store's changelog.
  void Start(size_t limit) {
    ctx_ = std::make_unique<TaskLikeContext>(topology_->ChangelogTopic("accounts"), limit);
    const Node* node = nullptr;
    for (const SubTopology& st : topology_->subtopologies()) {
      for (const Node& n : st.nodes) {
        if (n.kind == NodeKind::kAggregate) node = &n;
      }
    }
    ASSERT_NE(node, nullptr);
    auto p = MakeProcessor(*node, *topology_, nullptr, nullptr, &parsed_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    handler_ = std::move(p).value();
    ASSERT_TRUE(handler_->Init(*ctx_).ok());
  }

  // Processes one command; the status the task would see, the size check
  // included.
  Status Command(const json& command) {
    Record r;
    r.topic = "accounts.commands";
    r.partition = 0;
    r.offset = offset_++;
    r.key = command.value("account", "");
    r.value = command.dump();
    parsed_.Reset();
    Status s = handler_->Process(r, *ctx_);
    if (!s.ok()) return s;
    auto stored = ctx_->store.Get(*r.key);
    const size_t limit = ctx_->MaxRecordBytes(topology_->ChangelogTopic("accounts"));
    if (limit > 0 && stored.ok() && stored->has_value() &&
        r.key->size() + (*stored)->size() > limit) {
      return Status::InvalidArgument("the new value of '" + *r.key +
                                     "' in store 'accounts' would be above the maximum "
                                     "message size of " + std::to_string(limit) + " bytes");
    }
    return s;
  }

  json Stored(const std::string& account) {
    auto v = ctx_->store.Get(account);
    return v.ok() && v->has_value() ? json::parse(**v) : json();
  }

  size_t EventsSent() const {
    size_t n = 0;
    for (const Record& r : ctx_->sent) n += r.topic == "accounts.events";
    return n;
  }

  static std::string Id(int i) { return std::string(80, 'c') + "-" + std::to_string(i); }

  static json Post(const std::string& command_id) {
    return {{"type", "Post"}, {"account", "a-1"}, {"commandId", command_id},
            {"note", std::string(200, 'n')}};
  }

  std::unique_ptr<CompiledTopology> topology_;
  ParsedRecord parsed_;
  std::unique_ptr<TaskLikeContext> ctx_;
  std::unique_ptr<Processor> handler_;
  int64_t offset_ = 0;
};

// Issue 9: a busy aggregate's last `dedup_window` outcomes outgrow one
// Kafka message; its commands were dead-lettered from then on. The handler
// now drops the oldest outcomes instead. (Since issue 11 an outcome is an id
// and a version, so it takes long ids to outgrow the limit.)
TEST_F(CommandHandlerTest, OutcomesThatOutgrowTheRecordLimitLoseTheOldestNotTheCommand) {
  constexpr size_t kLimit = 4000;
  Start(kLimit);
  for (int i = 0; i < 60; ++i) {
    Status s = Command(Post(Id(i)));
    ASSERT_TRUE(s.ok()) << "command " << i << ": " << s.ToString();
  }
  EXPECT_EQ(EventsSent(), 60u);
  const json account = Stored("a-1");
  EXPECT_EQ(account["state"]["posts"], 60);
  EXPECT_EQ(account["version"], 60);
  const json& kept = account["commands"];
  // As many of the newest as fit, in order, the last one included.
  ASSERT_GT(kept.size(), 5u);
  ASSERT_LT(kept.size(), 60u);
  EXPECT_EQ(kept.back()["id"], Id(59));
  for (size_t k = 0; k < kept.size(); ++k) {
    EXPECT_EQ(kept[k]["id"], Id(static_cast<int>(60 - kept.size() + k)));
  }
  // A kept outcome still deduplicates a retry ...
  ASSERT_TRUE(Command(Post(Id(59))).ok());
  EXPECT_EQ(EventsSent(), 60u);
  // ... and a dropped one is past the window: decided again, as a retry
  // older than `dedup_window` commands always was.
  ASSERT_TRUE(Command(Post(Id(0))).ok());
  EXPECT_EQ(EventsSent(), 61u);
}

// Issue 11: the aggregate keeps each command's id and a pointer to its
// outcome (the version it made, or the rejection code), a few bytes where it
// kept the events; the whole outcome goes to the task's recorder, which
// answers POST /commands?wait=true.
TEST_F(CommandHandlerTest, TheAggregateKeepsIdsAndPointersTheRecorderWholeOutcomes) {
  Start(0);
  ASSERT_TRUE(Command({{"type", "Open"}, {"account", "a-1"}, {"commandId", "o-1"}}).ok());
  ASSERT_TRUE(Command(Post("p-1")).ok());
  ASSERT_TRUE(Command({{"type", "Open"}, {"account", "a-1"}, {"commandId", "o-2"}}).ok());
  const json account = Stored("a-1");
  EXPECT_EQ(account["commands"], json::parse(R"([{"id":"o-1","v":1},{"id":"p-1","v":2},
                                                 {"id":"o-2","rejected":"exists"}])"));
  EXPECT_EQ(account["version"], 2);
  EXPECT_LT(ctx_->store.Get("a-1")->value().size(), 150u) << account.dump();

  ASSERT_EQ(ctx_->outcomes.count("p-1"), 1u);
  const CommandOutcome& posted = ctx_->outcomes["p-1"];
  EXPECT_FALSE(posted.rejected);
  EXPECT_EQ(posted.version, 2);
  const json events = json::parse(posted.events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "Posted");
  EXPECT_EQ(events[0]["note"], std::string(200, 'n'));
  ASSERT_EQ(ctx_->outcomes.count("o-2"), 1u);
  EXPECT_TRUE(ctx_->outcomes["o-2"].rejected);
  EXPECT_EQ(ctx_->outcomes["o-2"].code, "exists");
  EXPECT_EQ(ctx_->outcomes["o-2"].reason, "account a-1 exists");
  // A retry is skipped: nothing sent, nothing recorded again.
  ctx_->outcomes.clear();
  const size_t sent = ctx_->sent.size();
  ASSERT_TRUE(Command(Post("p-1")).ok());
  EXPECT_EQ(ctx_->sent.size(), sent);
  EXPECT_TRUE(ctx_->outcomes.empty());
}

TEST_F(CommandHandlerTest, WithoutALimitEveryOutcomeOfTheWindowIsKept) {
  Start(0);
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(Command(Post("c-" + std::to_string(i))).ok());
  EXPECT_EQ(Stored("a-1")["commands"].size(), 100u);
}

// Dropping outcomes cannot help a state that does not fit on its own: the
// handler writes it whole, and the task dead-letters the command (the state
// is never cut).
TEST_F(CommandHandlerTest, AStateAboveTheLimitOnItsOwnIsStillRefused) {
  Start(4000);
  ASSERT_TRUE(Command(Post("c-0")).ok());
  Status s = Command({{"type", "Grow"}, {"account", "a-1"}, {"commandId", "g-1"},
                      {"blob", std::string(5000, 'b')}});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("above the maximum message size"), std::string::npos)
      << s.ToString();
}

// Optimistic concurrency (issue 12): a command carrying the version it was
// decided on is refused with "conflict" once the aggregate has moved past
// it, before its rules run, and the rejection says the current version.
TEST_F(CommandHandlerTest, AnExpectedVersionTheAggregateHasMovedPastIsAConflict) {
  Start(0);
  ASSERT_TRUE(Command(Post("p-1")).ok());
  ASSERT_TRUE(Command(Post("p-2")).ok());
  ASSERT_EQ(Stored("a-1")["version"], 2);
  const size_t sent = ctx_->sent.size();

  json stale = Post("p-3");
  stale["expectedVersion"] = 1;
  ASSERT_TRUE(Command(stale).ok());
  ASSERT_EQ(ctx_->sent.size(), sent + 1);
  const Record& r = ctx_->sent.back();
  EXPECT_EQ(r.topic, "accounts.rejections");
  const json rejection = json::parse(*r.value);
  EXPECT_EQ(rejection["code"], "conflict");
  EXPECT_EQ(rejection["currentVersion"], 2);
  EXPECT_EQ(rejection["expectedVersion"], 1);
  EXPECT_EQ(rejection["reason"],
            "account 'a-1' is at version 2, not the expected version 1: read it again and "
            "decide on the current state");
  // The rules did not run: no event, the state and version as they were.
  EXPECT_EQ(EventsSent(), 2u);
  EXPECT_EQ(Stored("a-1")["version"], 2);
  EXPECT_EQ(Stored("a-1")["state"]["posts"], 2);
  ASSERT_EQ(ctx_->outcomes.count("p-3"), 1u);
  EXPECT_TRUE(ctx_->outcomes["p-3"].rejected);
  EXPECT_EQ(ctx_->outcomes["p-3"].code, "conflict");
  EXPECT_EQ(ctx_->outcomes["p-3"].version, 2);
  // The same command id again is a retry, not a second conflict.
  ASSERT_TRUE(Command(stale).ok());
  EXPECT_EQ(ctx_->sent.size(), sent + 1);
}

TEST_F(CommandHandlerTest, TheCurrentExpectedVersionIsDecidedAsUsual) {
  Start(0);
  ASSERT_TRUE(Command(Post("p-1")).ok());
  json current = Post("p-2");
  current["expectedVersion"] = 1;
  ASSERT_TRUE(Command(current).ok());
  EXPECT_EQ(ctx_->sent.back().topic, "accounts.events");
  EXPECT_EQ(Stored("a-1")["version"], 2);
  EXPECT_FALSE(ctx_->outcomes["p-2"].rejected);
  EXPECT_EQ(ctx_->outcomes["p-2"].version, 2);
  // null says nothing, as an absent field does.
  json unsaid = Post("p-3");
  unsaid["expectedVersion"] = nullptr;
  ASSERT_TRUE(Command(unsaid).ok());
  EXPECT_EQ(Stored("a-1")["version"], 3);
}

// A missing aggregate is at version 0: expecting 0 creates only.
TEST_F(CommandHandlerTest, ExpectedVersionZeroCreatesOnly) {
  Start(0);
  json create = {{"type", "Post"}, {"account", "a-2"}, {"commandId", "c-1"},
                 {"note", "first"}, {"expectedVersion", 0}};
  ASSERT_TRUE(Command(create).ok());
  EXPECT_EQ(ctx_->sent.back().topic, "accounts.events");
  EXPECT_EQ(Stored("a-2")["version"], 1);

  create["commandId"] = "c-2";
  ASSERT_TRUE(Command(create).ok());
  const json rejection = json::parse(*ctx_->sent.back().value);
  EXPECT_EQ(ctx_->sent.back().topic, "accounts.rejections");
  EXPECT_EQ(rejection["code"], "conflict");
  EXPECT_EQ(rejection["currentVersion"], 1);
  EXPECT_EQ(rejection["reason"],
            "account 'a-2' already exists (version 1); expected version 0 only creates");
  EXPECT_EQ(Stored("a-2")["version"], 1);

  // And a version above 0 for an aggregate that does not exist conflicts.
  json ghost = {{"type", "Post"}, {"account", "a-3"}, {"commandId", "c-3"},
                {"note", "x"}, {"expectedVersion", 4}};
  ASSERT_TRUE(Command(ghost).ok());
  EXPECT_EQ(json::parse(*ctx_->sent.back().value)["currentVersion"], 0);
  const json ghost_stored = Stored("a-3");
  EXPECT_TRUE(ghost_stored.is_null() || ghost_stored["version"] == 0) << ghost_stored.dump();
  EXPECT_EQ(EventsSent(), 1u);
}

// A malformed expectation is the client's mistake, answered with a code of
// its own: a rejection, never a dead letter (the status stays OK).
TEST_F(CommandHandlerTest, AMalformedExpectedVersionIsRejectedNotDeadLettered) {
  Start(0);
  ASSERT_TRUE(Command(Post("p-1")).ok());
  int n = 0;
  for (const json& bad : {json("1"), json(-1), json(1.5), json::array({1}), json(true),
                          json(18446744073709551615ull)}) {
    json command = Post("bad-" + std::to_string(n++));
    command["expectedVersion"] = bad;
    Status s = Command(command);
    ASSERT_TRUE(s.ok()) << bad.dump() << ": " << s.ToString();
    ASSERT_EQ(ctx_->sent.back().topic, "accounts.rejections") << bad.dump();
    const json rejection = json::parse(*ctx_->sent.back().value);
    EXPECT_EQ(rejection["code"], "invalid_expected_version") << bad.dump();
    EXPECT_NE(rejection["reason"].get<std::string>().find(
                  "'expectedVersion' must be a non-negative integer"),
              std::string::npos)
        << rejection.dump();
  }
  EXPECT_EQ(json::parse(*ctx_->sent.back().value)["reason"],
            "'expectedVersion' must be a non-negative integer (the account version the "
            "command was decided on; 0: create only), found 18446744073709551615");
  // A decimal is named as the number it is (it arrives as an exact decimal).
  json decimal_command = Post("bad-decimal");
  decimal_command["expectedVersion"] = 2.5;
  ASSERT_TRUE(Command(decimal_command).ok());
  EXPECT_EQ(json::parse(*ctx_->sent.back().value)["reason"],
            "'expectedVersion' must be a non-negative integer (the account version the "
            "command was decided on; 0: create only), found 2.5");
  EXPECT_EQ(EventsSent(), 1u);
  EXPECT_EQ(Stored("a-1")["version"], 1);
}

// The field is named per aggregate or for the whole application.
TEST(ExpectedVersionFieldTest, NamedPerAggregateOrApplicationWide) {
  auto field = [](const std::string& app_line, const std::string& agg_line) {
    std::string yaml = std::string(kLedger);
    yaml.replace(yaml.find("  id: ledger\n"), 13, "  id: ledger\n" + app_line);
    yaml.replace(yaml.find("    dedup_window: 100\n"), 22, "    dedup_window: 100\n" + agg_line);
    auto options = config::LoadEngineOptionsFromString(yaml, "ledger.yaml", {});
    if (!options.ok()) return "load: " + options.status().ToString();
    auto compiled = CompiledTopology::Compile(*options);
    if (!compiled.ok()) return "compile: " + compiled.status().ToString();
    return (*compiled)->aggregates().front().spec.expected_version_field;
  };
  EXPECT_EQ(field("", ""), "expectedVersion");
  EXPECT_EQ(field("  expected_version_field: ifVersion\n", ""), "ifVersion");
  EXPECT_EQ(field("  expected_version_field: ifVersion\n",
                  "    expected_version_field: revision\n"),
            "revision");
  EXPECT_EQ(field("", "    expected_version_field: revision\n"), "revision");
  const std::string clash = field("", "    expected_version_field: commandId\n");
  EXPECT_NE(clash.find("ledger.yaml:"), std::string::npos) << clash;
  EXPECT_NE(clash.find("aggregates.account: the expected version field 'commandId' is also "
                       "the command's type, id or command id field"),
            std::string::npos)
      << clash;
  const std::string empty = field("", "    expected_version_field: ''\n");
  EXPECT_NE(empty.find("aggregates.account.expected_version_field: expected a command field "
                       "name, found ''"),
            std::string::npos)
      << empty;
}

}  // namespace
}  // namespace kcqrs::engine
