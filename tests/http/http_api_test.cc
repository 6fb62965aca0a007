// The HTTP API's answers, broker-free: HttpApi over a fake engine (a
// compiled topology, a StoreRegistry of in-memory partitions, a PositionLog
// the test appends to) behind a real http::Server, commands produced to the
// embedded mock cluster. What a client sees for hostile or careless input:
// bytes that are not UTF-8, documents too deep or too large, stored values
// that are not JSON, stores partly hosted elsewhere, Kafka unreachable.
#include "engine/serving/http_api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config_loader.h"
#include "engine/kafka/mock_cluster.h"
#include "json/document.h"
#include "tests/support/http_client.h"
#include "tests/support/map_store.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;
using kcqrs::testing::HttpRequest;
using kcqrs::testing::HttpResult;

using kcqrs::testing::MapStore;

// `ticket` is keyed by the record key (no id_field): the shape of issue 9's
// first crash. `views` is a store of 3 partitions for scans.
constexpr char kTopology[] = R"(application:
  id: http-api-test
kafka:
  bootstrap_servers: embedded
aggregates:
  ticket:
    command_topics: [tickets.commands]
    event_topic: tickets.events
    rejection_topic: tickets.rejections
    store: tickets
    commands:
      Open:
        emit:
          - type: Opened
    events:
      Opened:
        set:
          open: "true"
projections:
  views:
    event_topics: [tickets.events]
    store: views
    events:
      Opened:
        merge:
          n: "1"
)";

class FakeEngine final : public EngineView {
 public:
  FakeEngine() {
    auto options = config::LoadEngineOptionsFromString(kTopology, "t.yaml", {});
    EXPECT_TRUE(options.ok()) << options.status().ToString();
    auto compiled = CompiledTopology::Compile(*options);
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    EXPECT_TRUE((*compiled)->ResolvePartitions({{"tickets.commands", 3}}).ok());
    topology_ = std::shared_ptr<const CompiledTopology>(std::move(compiled).value());
    registry_ = std::make_unique<StoreRegistry>(
        std::map<std::string, int>{{"tickets", 3}, {"views", 3}});
  }
  std::shared_ptr<const CompiledTopology> topology() const override { return topology_; }
  StoreRegistry* registry() const override { return registry_.get(); }
  const PositionLog& positions() const override { return positions_; }
  PositionLog& mutable_positions() { return positions_; }
  bool ready() const override { return ready_; }
  Status health() const override { return Status::OK(); }
  ReadinessReport Readiness() const override { return readiness_; }
  StatsReport Stats() const override { return stats_; }
  bool ready_ = true;
  ReadinessReport readiness_;
  StatsReport stats_;
  metrics::Metrics* metrics() override { return &metrics_; }

 private:
  std::shared_ptr<const CompiledTopology> topology_;
  std::unique_ptr<StoreRegistry> registry_;
  PositionLog positions_;
  metrics::Metrics metrics_;
};

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = kafka::MockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value();
    ASSERT_TRUE(cluster_->CreateTopic("tickets.commands", 3, 1).ok());
    Start(cluster_->bootstrap_servers());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (api_) api_->Stop();
  }

  void Start(const std::string& bootstrap, kafka::Properties properties = {}) {
    HttpApiOptions options;
    options.bootstrap_servers = bootstrap;
    options.kafka_properties = std::move(properties);
    options.application_id = "http-api-test";
    auto api = HttpApi::Create(&engine_, options);
    ASSERT_TRUE(api.ok()) << api.status().ToString();
    api_ = std::move(api).value();
    http::Router router;
    api_->Register(router);
    http::ServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    auto server = http::Server::Start(server_options, std::move(router));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  HttpResult Get(const std::string& target) {
    return HttpRequest(server_->local_address(), "GET", target);
  }
  HttpResult Post(const std::string& target, const std::string& body) {
    return HttpRequest(server_->local_address(), "POST", target, body);
  }
  static std::string ContentType(const HttpResult& r) {
    auto it = r.headers.find("content-type");
    return it == r.headers.end() ? "" : it->second;
  }
  static json Body(const HttpResult& r) { return json::parse(r.body, nullptr, false); }

  // Hosts `partitions` of `store`, each with the given keys and values.
  void Host(const std::string& store,
            std::map<int32_t, std::map<std::string, std::string>> partitions) {
    for (auto& [p, data] : partitions) {
      engine_.registry()->Add(store, p, std::make_shared<MapStore>(std::move(data)));
    }
  }

  FakeEngine engine_;
  std::unique_ptr<kafka::MockCluster> cluster_;
  std::unique_ptr<HttpApi> api_;
  std::unique_ptr<http::Server> server_;
};

// /readyz as orchestrators and the page read it, byte for byte: the engine
// hands over data, serving alone decides the JSON.
TEST_F(HttpApiTest, ReadyzSaysWhyNotReadyAndListsTheTasks) {
  engine_.ready_ = false;
  engine_.readiness_.not_ready_reason = "restoring state";
  engine_.readiness_.tasks = {{"0_0", "RUNNING", 0, 0}, {"0_1", "RESTORING", 7, 5}};
  HttpResult r = Get("/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(ContentType(r), "application/json");
  EXPECT_EQ(r.body,
            R"({"reason":"restoring state","status":"NOT_READY","tasks":[)"
            R"({"remaining":0,"restored":0,"state":"RUNNING","task":"0_0"},)"
            R"({"remaining":5,"restored":7,"state":"RESTORING","task":"0_1"}]})");

  engine_.ready_ = true;
  engine_.readiness_.not_ready_reason.clear();
  engine_.readiness_.tasks = {{"0_1", "RUNNING", 12, 0}};
  HttpResult ready = Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body,
            R"({"status":"READY","tasks":[)"
            R"({"remaining":0,"restored":12,"state":"RUNNING","task":"0_1"}]})");
}

// /metrics says what /readyz says, as kcqrs_ready, at every scrape (the
// KcqrsNotReady alert reads it).
TEST_F(HttpApiTest, MetricsCarryReadinessAtEachScrape) {
  engine_.ready_ = false;
  HttpResult r = Get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\nkcqrs_ready 0\n"), std::string::npos) << r.body;
  engine_.ready_ = true;
  r = Get("/metrics");
  EXPECT_NE(r.body.find("\nkcqrs_ready 1\n"), std::string::npos) << r.body;
}

// /stats, byte for byte (the page's graph, rates and lag read it): the
// engine's counters, and the stores as the registry hosts them now.
TEST_F(HttpApiTest, StatsJoinsTheEnginesCountersWithTheHostedStores) {
  StatsReport& s = engine_.stats_;
  s.application = "http-api-test";
  s.ready = true;
  s.totals.records_processed = 5;
  s.totals.dead_letters = 3;
  s.totals.commits = 2;
  s.totals.aborts = 1;
  s.totals.restored_records = 6;
  s.totals.rebalances = 4;
  s.totals.records_redelivered = 7;
  s.totals.running_tasks = 9;  // not part of /stats
  s.thread_states = {"RUNNING", "STARTING"};
  s.processed_by_node = {{"ticket", 9}, {"views", 11}};
  s.lag = {{"tickets.commands", {{0, 4}, {1, StatsReport::kLagUnknown}, {2, 0}}}};
  Host("tickets", {{0, {{"t-1", "{}"}, {"t-2", "{}"}}}, {2, {{"t-3", "{}"}}}});
  HttpResult r = Get("/stats");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(ContentType(r), "application/json");
  EXPECT_EQ(r.body,
            R"({"application":"http-api-test",)"
            R"("lag":{"tickets.commands":{"0":4,"1":null,"2":0}},)"
            R"("nodes":{"ticket":{"processed":9},"views":{"processed":11}},)"
            R"("ready":true,)"
            R"("stores":[{"hosted":[0,2],"keys":3,"keys_exact":true,"name":"tickets","partitions":3},)"
            R"({"hosted":[],"keys":0,"keys_exact":true,"name":"views","partitions":3}],)"
            R"("threads":[{"index":0,"state":"RUNNING"},{"index":1,"state":"STARTING"}],)"
            R"("totals":{"aborts":1,"commits":2,"dead_letters":3,"rebalances":4,)"
            R"("records_processed":5,"records_redelivered":7,"restored_records":6}})");
}

// Issue 9, seen 1: ?key=%FF went to Kafka as the key and crashed the engine
// when it wrote the rejection. Refused at the edge, naming the parameter.
TEST_F(HttpApiTest, KeyThatIsNotUtf8Is400NamingTheParameter) {
  HttpResult r = Post("/commands/ticket?key=%FF&wait=true", R"({"type":"Open"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ContentType(r), "application/problem+json");
  EXPECT_EQ(Body(r).value("detail", ""),
            "key: not valid UTF-8 (byte 0 is 0xff); the aggregate id (the command's Kafka key) "
            "must be UTF-8 text");
  HttpResult mid = Post("/commands/ticket?key=ab%C3%28", R"({"type":"Open"})");
  EXPECT_EQ(mid.status, 400) << mid.body;
  EXPECT_NE(Body(mid).value("detail", "").find("byte 2 is 0xc3"), std::string::npos) << mid.body;
  // UTF-8 keys pass.
  HttpResult ok = Post("/commands/ticket?key=%C3%A9t%C3%A9", R"({"type":"Open"})");
  EXPECT_EQ(ok.status, 202) << ok.body;
}

// Issue 9, seen 2: 200 KB of arrays nested 100,000 deep in an extra field
// overflowed the stack. 400 saying where; the server goes on.
TEST_F(HttpApiTest, DeepBodyIs400SayingWhere) {
  const std::string bomb = R"({"type":"Open","extra":)" + std::string(100000, '[') +
                           std::string(100000, ']') + "}";
  HttpResult r = Post("/commands/ticket?key=t-1", bomb);
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
  EXPECT_EQ(Body(r).value("detail", ""),
            "the body: nesting deeper than 64 levels at byte 86 (limits.max_json_depth)");
  HttpResult ok = Post("/commands/ticket?key=t-1", R"({"type":"Open","extra":[[1]]})");
  EXPECT_EQ(ok.status, 202) << ok.body;
}

TEST_F(HttpApiTest, BodyOverTheDocumentLimitIs413AndInvalidJsonSaysWhere) {
  const std::string big = R"({"type":"Open","pad":")" + std::string(1 << 20, 'x') + "\"}";
  HttpResult r = Post("/commands/ticket?key=t-1", big);
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 300);
  EXPECT_EQ(ContentType(r), "application/problem+json");
  HttpResult bad = Post("/commands/ticket?key=t-1", "{\"type\":\"Open\",\"x\":\"\xff\"}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Body(bad).value("detail", "").rfind(
                "the body must be a JSON object (the command); it is not valid JSON: "
                "parse error at line 1",
                0),
            0u)
      << bad.body;
}

// Issue 9, seen 6: a value a C++ processor stored as bytes answered 500.
TEST_F(HttpApiTest, ValuesThatAreNotJsonAreServedAsBytes) {
  const std::string bytes("\xff\x00\x01 not json", 12);
  // "\x80\x81" is the only key of its partition, so a scan shows it.
  Host("views", {{0, {{"doc", R"({"n":1})"}, {"raw", bytes}, {"text", "hello"}}},
                 {1, {{std::string("k\x80\x81"), R"( {"spaced" : true} )"}}},
                 {2, {}}});
  HttpResult doc = Get("/stores/views/keys/doc");
  EXPECT_EQ(doc.status, 200);
  EXPECT_EQ(ContentType(doc), "application/json");
  EXPECT_EQ(doc.body, R"({"n":1})");

  HttpResult raw = Get("/stores/views/keys/raw");
  EXPECT_EQ(raw.status, 200) << raw.body;
  EXPECT_EQ(ContentType(raw), "application/octet-stream");
  EXPECT_EQ(raw.body, bytes);

  HttpResult text = Get("/stores/views/keys/text");
  EXPECT_EQ(text.status, 200);
  EXPECT_EQ(ContentType(text), "application/octet-stream");
  EXPECT_EQ(text.body, "hello");

  HttpResult scan = Get("/stores/views/keys");
  ASSERT_EQ(scan.status, 200) << scan.body;
  json items = Body(scan)["items"];
  ASSERT_EQ(items.size(), 4u) << scan.body;
  EXPECT_EQ(items[0], (json{{"key", "doc"}, {"value", {{"n", 1}}}}));
  // Not UTF-8: the key's bytes in base64; JSON that is not canonical is
  // rewritten; bytes in base64.
  EXPECT_EQ(items[1], (json{{"key_base64", "a4CB"}, {"value", {{"spaced", true}}}}));
  EXPECT_EQ(items[2], (json{{"key", "raw"}, {"value_base64", "/wABIG5vdCBqc29u"}}));
  EXPECT_EQ(items[3], (json{{"key", "text"}, {"value_base64", "aGVsbG8="}}));
}

// Issue 9: scans answered 200 with what they could see. Now 503 naming the
// partitions, unless the client asks for a partial answer.
TEST_F(HttpApiTest, ScanMissingPartitionsIs503UnlessPartialIsAskedFor) {
  Host("views", {{0, {{"a", "1"}}}, {2, {{"c", "3"}}}});
  HttpResult r = Get("/stores/views/keys");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(ContentType(r), "application/problem+json");
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(Body(r)["missing_partitions"], json::array({1}));
  EXPECT_NE(Body(r).value("detail", "").find("partition(s) 1 of store 'views'"),
            std::string::npos)
      << r.body;

  HttpResult partial = Get("/stores/views/keys?partial=true");
  ASSERT_EQ(partial.status, 200) << partial.body;
  EXPECT_EQ(Body(partial)["partial"], true);
  EXPECT_EQ(Body(partial)["missing_partitions"], json::array({1}));
  EXPECT_EQ(Body(partial)["items"].size(), 2u);

  EXPECT_EQ(Get("/stores/views/keys?partial=maybe").status, 400);

  // Nothing missing: a whole answer, and partial=true says so.
  Host("views", {{1, {{"b", "2"}}}});
  HttpResult whole = Get("/stores/views/keys?partial=true");
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(Body(whole)["partial"], false);
  EXPECT_EQ(Body(whole)["items"].size(), 3u);
  EXPECT_EQ(Get("/stores/views/keys").status, 200);
}

// A key whose partition is not hosted here: 503 naming the partition, not
// a 404 that would claim the key does not exist.
TEST_F(HttpApiTest, GetOfKeyInPartitionNotHostedIs503NamingIt) {
  Host("views", {{0, {}}, {1, {}}, {2, {}}});
  engine_.registry()->Remove("views", 1);
  int found = 0;
  for (char c = 'a'; c <= 'z'; ++c) {
    HttpResult r = Get(std::string("/stores/views/keys/") + c);
    if (r.status == 503) {
      ++found;
      EXPECT_NE(Body(r).value("detail", "").find("partition 1 of store views is not hosted"),
                std::string::npos)
          << r.body;
    } else {
      EXPECT_EQ(r.status, 404) << r.body;
    }
  }
  EXPECT_GT(found, 0) << "some of a..z hash to partition 1";
}

// Issue 9: 503 answers did not carry the generated commandId, so a client
// could not retry without risking a second decision.
TEST_F(HttpApiTest, NotDecidedInTimeCarriesTheCommandId) {
  HttpResult r = Post("/commands/ticket?key=t-1&wait=true&timeout_ms=200", R"({"type":"Open"})");
  EXPECT_EQ(r.status, 503) << r.body;
  json body = Body(r);
  EXPECT_EQ(body.value("commandId", "").size(), 32u) << r.body;
  EXPECT_FALSE(body.value("position", "").empty());
  HttpResult given = Post("/commands/ticket?key=t-1&wait=true&timeout_ms=100",
                          R"({"type":"Open","commandId":"c-7"})");
  EXPECT_EQ(Body(given)["commandId"], "c-7") << given.body;
}

TEST_F(HttpApiTest, KafkaUnavailableCarriesTheCommandId) {
  server_->Stop();
  api_->Stop();
  server_.reset();
  api_.reset();
  Start("127.0.0.1:1", {{"message.timeout.ms", "300"}});
  HttpResult r = Post("/commands/ticket?key=t-1", R"({"type":"Open","commandId":"c-9"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(ContentType(r), "application/problem+json");
  EXPECT_EQ(Body(r)["commandId"], "c-9") << r.body;
  HttpResult generated = Post("/commands/ticket?key=t-1", R"({"type":"Open"})");
  EXPECT_EQ(generated.status, 503);
  EXPECT_EQ(Body(generated).value("commandId", "").size(), 32u) << generated.body;
}

// An idempotent producer that librdkafka ends for good (here: the broker
// says the producer's sequence is out of order, which it cannot recover
// from) is replaced: the command that met it is answered 503 with its
// commandId, and the next commands are written again.
TEST_F(HttpApiTest, ACommandProducerThatFailsForGoodIsReplaced) {
  cluster_->PushRequestErrors(kafka::ApiKey::kProduce,
                              {kafka::BrokerError::kOutOfOrderSequenceNumber,
                               kafka::BrokerError::kOutOfOrderSequenceNumber,
                               kafka::BrokerError::kOutOfOrderSequenceNumber});
  HttpResult failed = Post("/commands/ticket?key=t-1", R"({"type":"Open","commandId":"c-1"})");
  EXPECT_EQ(failed.status, 503) << failed.body;
  EXPECT_EQ(Body(failed)["commandId"], "c-1") << failed.body;
  cluster_->ClearRequestErrors(kafka::ApiKey::kProduce);
  int written = 0;
  for (int i = 0; i < 3; ++i) {
    HttpResult r = Post("/commands/ticket?key=t-2", R"({"type":"Open"})");
    if (r.status == 202) ++written;
  }
  EXPECT_GE(written, 2) << "the command producer was not replaced";
}

// A waiting request whose answer throws (here: an aggregate document of a
// shape kcqrs never writes) is answered 500, and the process goes on. The
// answer is built on the producer's poll thread, inside librdkafka: before,
// the exception ended the process.
TEST_F(HttpApiTest, WaitingRequestThatThrowsIs500AndTheServerGoesOn) {
  const std::string bad_doc = R"({"commands":[{"id":5}],"state":{}})";
  Host("tickets", {{0, {{"t-1", bad_doc}}}, {1, {{"t-1", bad_doc}}}, {2, {{"t-1", bad_doc}}}});
  // Every command is decided, as far as the log knows.
  PositionLog::Entry entry;
  for (int32_t p = 0; p < 3; ++p) entry.consumed_next[{"tickets.commands", p}] = int64_t{1} << 40;
  engine_.mutable_positions().Append(entry);
  HttpResult r = Post("/commands/ticket?key=t-1&wait=true", R"({"type":"Open"})");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(ContentType(r), "application/problem+json");
  HttpResult next = Post("/commands/ticket?key=t-2", R"({"type":"Open"})");
  EXPECT_EQ(next.status, 202) << next.body;
}

// A command written and decided whose aggregate's partition has left this
// instance (a rebalance) before its outcome was read: the 503 says it was
// written and carries what a retry needs, as the other 503s of a written
// command do (ScaleOutTest met it while an instance stopped).
TEST_F(HttpApiTest, DecidedWhileItsPartitionMovedAwayCarriesTheCommandId) {
  PositionLog::Entry entry;
  for (int32_t p = 0; p < 3; ++p) entry.consumed_next[{"tickets.commands", p}] = int64_t{1} << 40;
  engine_.mutable_positions().Append(entry);  // decided, as far as the log knows
  HttpResult r = Post("/commands/ticket?key=t-1&wait=true", R"({"type":"Open","commandId":"c-5"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(ContentType(r), "application/problem+json");
  const json body = Body(r);
  EXPECT_EQ(body.value("type", ""), "urn:kcqrs:problem:store-unavailable") << r.body;
  EXPECT_EQ(body.value("commandId", ""), "c-5") << r.body;
  EXPECT_FALSE(body.value("position", "").empty()) << r.body;
  EXPECT_NE(body.value("detail", "").find("written and decided"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers.count("retry-after"), 1u) << r.body;
}

// Optimistic concurrency over HTTP (issue 12). A GET of an aggregate's own
// store carries its version as a strong ETag; a read model's does not.
TEST_F(HttpApiTest, AnAggregateKeyIsServedWithItsVersionAsETag) {
  Host("views", {{0, {{"t-1", R"({"n":1,"version":4})"}}}, {1, {{"t-1", R"({"n":1,"version":4})"}}},
                 {2, {{"t-1", R"({"n":1,"version":4})"}}}});
  // Canonical text (read from its end), an inner "version" that is not the
  // aggregate's, and text kcqrs did not write (parsed).
  for (const auto& [doc, tag] : std::vector<std::pair<std::string, std::string>>{
           {R"({"commands":[],"state":{"open":true},"version":7})", "\"7\""},
           {R"({"commands":[{"id":"x","v":12}],"state":{"version":3},"version":12})", "\"12\""},
           {R"( {"version": 5, "state": null} )", "\"5\""}}) {
    Host("tickets", {{0, {{"t-1", doc}}}, {1, {{"t-1", doc}}}, {2, {{"t-1", doc}}}});
    HttpResult got = Get("/stores/tickets/keys/t-1");
    ASSERT_EQ(got.status, 200) << got.body;
    EXPECT_EQ(got.headers["etag"], tag) << doc;
    for (int32_t p = 0; p < 3; ++p) engine_.registry()->Remove("tickets", p);
  }
  HttpResult view = Get("/stores/views/keys/t-1");
  ASSERT_EQ(view.status, 200) << view.body;
  EXPECT_EQ(view.headers.count("etag"), 0u) << "a read model has no version of its own";
}

// If-Match and If-None-Match become the command's expected version; what
// cannot say one version is a 400 at once, not a rejection later.
TEST_F(HttpApiTest, PreconditionsThatCannotSayOneVersionAre400) {
  auto post = [this](const std::string& body, std::map<std::string, std::string> headers) {
    return HttpRequest(server_->local_address(), "POST", "/commands/ticket?key=t-1", body,
                       headers);
  };
  struct Case {
    std::string body;
    std::map<std::string, std::string> headers;
    std::string detail;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"type":"Open","expectedVersion":4})", {{"If-Match", "\"3\""}},
            "the precondition header expects version 3 but the command's 'expectedVersion' "
            "is 4"},
           {R"({"type":"Open"})", {{"If-Match", "W/\"3\""}},
            "If-Match: expected one strong ETag of the aggregate"},
           {R"({"type":"Open"})", {{"If-Match", "*"}}, "found '*'"},
           {R"({"type":"Open"})", {{"If-Match", "\"3\", \"4\""}}, "If-Match: expected one"},
           {R"({"type":"Open"})", {{"If-Match", "3"}}, "(e.g. \"7\"), found '3'"},
           {R"({"type":"Open"})", {{"If-None-Match", "\"3\""}}, "If-None-Match: only * is taken"},
           {R"({"type":"Open"})", {{"If-Match", "\"3\""}, {"If-None-Match", "*"}},
            "If-Match and If-None-Match together"},
           {R"({"type":"Open","expectedVersion":"3"})", {},
            "'expectedVersion' must be a non-negative integer"},
           {R"({"type":"Open","expectedVersion":-1})", {},
            "'expectedVersion' must be a non-negative integer"}}) {
    HttpResult r = post(c.body, c.headers);
    EXPECT_EQ(r.status, 400) << c.body << " " << r.body;
    EXPECT_EQ(ContentType(r), "application/problem+json");
    EXPECT_NE(Body(r).value("detail", "").find(c.detail), std::string::npos)
        << "expected '" << c.detail << "' in " << r.body;
  }
  // The same version in both is fine, and so is either alone.
  EXPECT_EQ(post(R"({"type":"Open","expectedVersion":3})", {{"If-Match", "\"3\""}}).status, 202);
  EXPECT_EQ(post(R"({"type":"Open"})", {{"If-Match", " \"3\" "}}).status, 202);
  EXPECT_EQ(post(R"({"type":"Open"})", {{"If-None-Match", "*"}}).status, 202);
  EXPECT_EQ(post(R"({"type":"Open","expectedVersion":null})", {}).status, 202);
}

// A conflict under ?wait=true is 412 Precondition Failed with the current
// version (body and ETag); an accepted command's answer carries its new
// version as ETag; any other rejection stays 409.
TEST_F(HttpApiTest, AConflictIs412WithTheCurrentVersion) {
  Host("tickets", {{0, {}}, {1, {}}, {2, {}}});
  PositionLog::Entry entry;
  for (int32_t p = 0; p < 3; ++p) entry.consumed_next[{"tickets.commands", p}] = int64_t{1} << 40;
  CommandOutcome conflict;
  conflict.rejected = true;
  conflict.code = "conflict";
  conflict.reason = "ticket 't-1' is at version 5, not the expected version 3";
  conflict.version = 5;
  CommandOutcome accepted;
  accepted.events = R"([{"type":"Opened"}])";
  accepted.version = 6;
  CommandOutcome refused;
  refused.rejected = true;
  refused.code = "closed";
  refused.reason = "closed";
  refused.version = 6;
  entry.outcomes = {{"c-1", conflict}, {"c-2", accepted}, {"c-3", refused}};
  engine_.mutable_positions().Append(entry);

  HttpResult lost = HttpRequest(server_->local_address(), "POST",
                                "/commands/ticket?key=t-1&wait=true",
                                R"({"type":"Open","commandId":"c-1"})", {{"If-Match", "\"3\""}});
  EXPECT_EQ(lost.status, 412) << lost.body;
  EXPECT_EQ(ContentType(lost), "application/problem+json");
  EXPECT_EQ(Body(lost)["code"], "conflict") << lost.body;
  EXPECT_EQ(Body(lost)["currentVersion"], 5) << lost.body;
  EXPECT_EQ(Body(lost)["detail"], conflict.reason);
  EXPECT_EQ(lost.headers["etag"], "\"5\"");

  HttpResult won = Post("/commands/ticket?key=t-1&wait=true", R"({"type":"Open","commandId":"c-2"})");
  EXPECT_EQ(won.status, 200) << won.body;
  EXPECT_EQ(Body(won)["version"], 6);
  EXPECT_EQ(won.headers["etag"], "\"6\"");

  HttpResult other = Post("/commands/ticket?key=t-1&wait=true", R"({"type":"Open","commandId":"c-3"})");
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(Body(other)["code"], "closed");

  // Decided by an earlier run: the aggregate keeps only the code, and its
  // version now is the one to read again.
  for (int32_t p = 0; p < 3; ++p) engine_.registry()->Remove("tickets", p);
  const std::string doc = R"({"commands":[{"id":"c-4","rejected":"conflict"}],"state":{},"version":9})";
  Host("tickets", {{0, {{"t-1", doc}}}, {1, {{"t-1", doc}}}, {2, {{"t-1", doc}}}});
  HttpResult remembered = Post("/commands/ticket?key=t-1&wait=true",
                               R"({"type":"Open","commandId":"c-4","expectedVersion":2})");
  EXPECT_EQ(remembered.status, 412) << remembered.body;
  EXPECT_EQ(Body(remembered)["currentVersion"], 9) << remembered.body;
}

}  // namespace
}  // namespace kcqrs::engine
