#include "config/config_loader.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace kcqrs::config {
namespace {

LoadOptions WithEnv(std::map<std::string, std::string> env,
                    std::vector<std::string> overrides = {}) {
  LoadOptions o;
  o.overrides = std::move(overrides);
  o.getenv = [env = std::move(env)](const std::string& name)
      -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return o;
}

std::vector<std::string> Errors(const std::string& yaml,
                                const LoadOptions& o = WithEnv({})) {
  std::vector<ConfigError> errors;
  auto r = LoadEngineOptionsFromString(yaml, "t.yaml", o, &errors);
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.ToString());
  EXPECT_EQ(r.ok(), errors.empty());
  return out;
}

constexpr char kMinimal[] = R"(application:
  id: orders
kafka:
  bootstrap_servers: embedded
)";

TEST(ConfigLoaderTest, MinimalFileGetsDefaults) {
  auto r = LoadEngineOptionsFromString(kMinimal, "t.yaml", WithEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->application.id, "orders");
  EXPECT_EQ(r->application.guarantee, Guarantee::kExactlyOnce);
  EXPECT_EQ(r->application.commit_interval_ms, 100);
  EXPECT_EQ(r->application.state_dir, "/tmp/kcqrs/orders");
  EXPECT_EQ(r->application.cache_max_bytes, int64_t{256} << 20);
  EXPECT_EQ(r->application.rocksdb.block_cache_bytes, int64_t{64} << 20);
  EXPECT_EQ(r->application.rocksdb.memtable_bytes, int64_t{64} << 20);
  EXPECT_EQ(r->application.rocksdb.write_buffer_bytes, int64_t{8} << 20);
  EXPECT_EQ(r->application.rocksdb.max_unflushed_writes, 10'000);
  EXPECT_EQ(r->application.rocksdb.compression, RocksDbOptions::Compression::kNone);
  EXPECT_TRUE(r->kafka.embedded);
  EXPECT_EQ(r->http.listen, "127.0.0.1:8080");
}

TEST(ConfigLoaderTest, ReadsEverySection) {
  auto r = LoadEngineOptionsFromString(R"(application:
  id: bank
  guarantee: at_least_once
  commit_interval_ms: 250
  state_dir: /var/lib/kcqrs
  threads: 3
  cache_max_bytes: 1048576
  rocksdb:
    block_cache_bytes: 16777216
    memtable_bytes: 33554432
    write_buffer_bytes: 1048576
    max_unflushed_writes: 0
    compression: zstd
kafka:
  bootstrap_servers: [k1:9092, k2:9092]
  properties:
    security.protocol: SSL
http:
  listen: 0.0.0.0:9000
topics:
  bank.commands: {partitions: 6}
)", "t.yaml", WithEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->application.guarantee, Guarantee::kAtLeastOnce);
  EXPECT_EQ(r->application.commit_interval_ms, 250);
  EXPECT_EQ(r->application.threads, 3);
  EXPECT_EQ(r->application.cache_max_bytes, 1048576);
  EXPECT_EQ(r->application.rocksdb.block_cache_bytes, 16777216);
  EXPECT_EQ(r->application.rocksdb.memtable_bytes, 33554432);
  EXPECT_EQ(r->application.rocksdb.write_buffer_bytes, 1048576);
  EXPECT_EQ(r->application.rocksdb.max_unflushed_writes, 0);
  EXPECT_EQ(r->application.rocksdb.compression, RocksDbOptions::Compression::kZstd);
  EXPECT_EQ(r->kafka.bootstrap_servers,
            (std::vector<std::string>{"k1:9092", "k2:9092"}));
  EXPECT_FALSE(r->kafka.embedded);
  EXPECT_EQ(r->kafka.properties.at("security.protocol"), "SSL");
  EXPECT_EQ(r->http.listen, "0.0.0.0:9000");
  EXPECT_EQ(r->topics.at("bank.commands"), 6);
}

TEST(ConfigLoaderTest, LimitsHaveDocumentedDefaultsAndAreRead) {
  auto defaults = LoadEngineOptionsFromString(kMinimal, "t.yaml", WithEnv({}));
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->limits.max_json_depth, 64);
  EXPECT_EQ(defaults->limits.max_document_bytes, 1048576);
  auto r = LoadEngineOptionsFromString(std::string(kMinimal) + R"(limits:
  max_json_depth: 20
  max_document_bytes: ${MAX_BYTES:-4096}
)", "t.yaml", WithEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->limits.max_json_depth, 20);
  EXPECT_EQ(r->limits.max_document_bytes, 4096);
}

TEST(ConfigLoaderTest, LimitsOutOfRangeAreReportedWithTheirPlace) {
  auto errors = Errors(std::string(kMinimal) + R"(limits:
  max_json_depth: 0
  max_document_bytes: 10
  max_depth: 5
)");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "t.yaml:6:19: limits.max_json_depth: expected 1 to 1000, found 0");
  EXPECT_EQ(errors[1],
            "t.yaml:7:23: limits.max_document_bytes: expected 1024 to 104857600, found 10");
  EXPECT_EQ(errors[2].rfind("t.yaml:8:3: unknown key 'max_depth' in limits", 0), 0u) << errors[2];
}

TEST(ConfigLoaderTest, RocksDbOptionsOutOfRangeAreReportedWithTheirPlace) {
  auto errors = Errors(R"(application:
  id: orders
  rocksdb:
    block_cache_bytes: 1000
    compression: brotli
    memtables: 5
kafka:
  bootstrap_servers: embedded
)");
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].rfind("t.yaml:4:24: application.rocksdb.block_cache_bytes: expected 1048576 to", 0), 0u)
      << errors[0];
  EXPECT_EQ(errors[1], "t.yaml:5:18: application.rocksdb.compression: expected none, snappy, "
                       "lz4 or zstd, found 'brotli'");
  EXPECT_EQ(errors[2].rfind("t.yaml:6:5: unknown key 'memtables' in application.rocksdb", 0), 0u)
      << errors[2];
}

TEST(ConfigLoaderTest, UnknownKeyIsReportedWithPlaceAndSuggestion) {
  auto errors = Errors(R"(application:
  id: orders
  comit_interval_ms: 5
kafka:
  bootstrap_servers: embedded
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "t.yaml:3:3: unknown key 'comit_interval_ms' in application "
            "(did you mean 'commit_interval_ms'?)");
}

TEST(ConfigLoaderTest, ReportsEveryErrorNotJustTheFirst) {
  auto errors = Errors(R"(application:
  id: "bad id"
  threads: many
  guarantee: maybe
kafka:
  bootstrap_servers: [nohost]
http:
  listen: 8080
)");
  ASSERT_EQ(errors.size(), 5u);
  EXPECT_NE(errors[0].find("t.yaml:2:7: application.id"), std::string::npos);
  EXPECT_NE(errors[1].find("t.yaml:3:12: application.threads: expected an "
                           "integer, found 'many'"),
            std::string::npos);
  EXPECT_NE(errors[2].find("t.yaml:4:14: application.guarantee: expected "
                           "exactly_once or at_least_once, found 'maybe'"),
            std::string::npos);
  EXPECT_NE(errors[3].find("t.yaml:6:23: kafka.bootstrap_servers[0]: expected "
                           "host:port"),
            std::string::npos);
  EXPECT_NE(errors[4].find("t.yaml:8:11: http.listen: expected host:port"),
            std::string::npos);
}

TEST(ConfigLoaderTest, AdvertisedUrlIsCheckedAndLosesItsTrailingSlash) {
  auto r = LoadEngineOptionsFromString(R"(application: {id: app}
kafka: {bootstrap_servers: [k:9092]}
http: {advertised_url: "http://orders-1.orders:8080/"}
)",
                                       "t.yaml", WithEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http.advertised_url, "http://orders-1.orders:8080");

  auto errors = Errors("application: {id: app}\nkafka: {bootstrap_servers: [k:9092]}\n"
                       "http:\n  advertised_url: orders-1:8080\n  advertized_url: x\n");
  ASSERT_EQ(errors.size(), 2u);
  const std::string all = errors[0] + "\n" + errors[1];
  EXPECT_NE(all.find("t.yaml:4:19: http.advertised_url: expected http://host:port"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("found 'orders-1:8080'"), std::string::npos) << all;
  EXPECT_NE(all.find("did you mean 'advertised_url'?"), std::string::npos) << all;
}

TEST(ConfigLoaderTest, HttpTlsAndQueryToken) {
  auto r = LoadEngineOptionsFromString(R"(application: {id: app}
kafka: {bootstrap_servers: [k:9092]}
http:
  query_token: ${Q}
  command_token: c
  tls: {cert_file: /t/a.crt, key_file: /t/a.key, ca_file: /t/ca.crt, client_auth: required}
)",
                                       "t.yaml", WithEnv({{"Q", "q-secret"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http.query_token, "q-secret");
  EXPECT_EQ(r->http.command_token, "c");
  EXPECT_TRUE(r->http.tls.enabled());
  EXPECT_EQ(r->http.tls.cert_file, "/t/a.crt");
  EXPECT_EQ(r->http.tls.key_file, "/t/a.key");
  EXPECT_EQ(r->http.tls.ca_file, "/t/ca.crt");
  EXPECT_EQ(r->http.tls.client_auth, HttpTlsOptions::ClientAuth::kRequired);

  auto plain = LoadEngineOptionsFromString(
      "application: {id: app}\nkafka: {bootstrap_servers: [k:9092]}\n", "t.yaml", WithEnv({}));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->http.tls.enabled());
  EXPECT_EQ(plain->http.tls.client_auth, HttpTlsOptions::ClientAuth::kNone);

  auto errors = Errors(R"(application: {id: app}
kafka: {bootstrap_servers: [k:9092]}
http:
  advertised_url: http://a:1
  tls:
    cert_file: a.crt
    client_auth: yes
    keyfile: a.key
)");
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("t.yaml:7:18: http.tls.client_auth: expected none, optional or required, "
                     "found 'yes'"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("did you mean 'key_file'?"), std::string::npos) << all;
  EXPECT_NE(all.find("http.tls: key_file is missing"), std::string::npos) << all;
  EXPECT_NE(all.find("t.yaml:4:19: http.advertised_url: http.tls is set, so other instances "
                     "reach this one over https://"),
            std::string::npos)
      << all;

  auto no_ca = Errors("application: {id: app}\nkafka: {bootstrap_servers: [k:9092]}\n"
                      "http: {tls: {cert_file: a, key_file: b, client_auth: optional}}\n");
  ASSERT_EQ(no_ca.size(), 1u);
  EXPECT_NE(no_ca[0].find("http.tls.client_auth: optional needs ca_file"), std::string::npos)
      << no_ca[0];
}

TEST(ConfigLoaderTest, MissingSectionsAreNamed) {
  auto errors = Errors("http:\n  listen: 127.0.0.1:1\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("'application' is required"), std::string::npos);
  EXPECT_NE(errors[1].find("'kafka' is required"), std::string::npos);
}

TEST(ConfigLoaderTest, SyntaxErrorHasAPosition) {
  auto errors = Errors("application:\n  id: [unclosed\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("t.yaml:", 0), 0u);
  EXPECT_NE(errors[0].find("not valid YAML"), std::string::npos);
}

TEST(ConfigLoaderTest, InterpolatesEnvironmentWithDefaults) {
  auto r = LoadEngineOptionsFromString(R"(application:
  id: ${APP_ID}
  state_dir: ${STATE:-/data}/x
kafka:
  bootstrap_servers: ${BROKERS:-embedded}
http:
  listen: "127.0.0.1:$${literal}"
)", "t.yaml", WithEnv({{"APP_ID", "orders"}, {"BROKERS", "k:9092"}}));
  // The $$ escape keeps a literal '$', which is not a valid port: the error
  // proves the escape produced "${literal}" rather than a lookup.
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("found '127.0.0.1:${literal}'"),
            std::string::npos)
      << r.status().message();

  auto ok = LoadEngineOptionsFromString(R"(application:
  id: ${APP_ID}
  state_dir: ${STATE:-/data}/x
kafka:
  bootstrap_servers: ${BROKERS:-embedded}
)", "t.yaml", WithEnv({{"APP_ID", "orders"}, {"BROKERS", "k:9092"}}));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->application.id, "orders");
  EXPECT_EQ(ok->application.state_dir, "/data/x");
  EXPECT_EQ(ok->kafka.bootstrap_servers, std::vector<std::string>{"k:9092"});
}

TEST(ConfigLoaderTest, UnsetVariableWithoutDefaultIsAnError) {
  auto errors = Errors("application:\n  id: ${NOPE}\nkafka:\n  bootstrap_servers: embedded\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("t.yaml:2:7: application.id: environment variable "
                           "NOPE is not set"),
            std::string::npos);
}

TEST(ConfigLoaderTest, SetOverridesWinOverTheFile) {
  auto r = LoadEngineOptionsFromString(
      kMinimal, "t.yaml",
      WithEnv({}, {"http.listen=0.0.0.0:9999",
                   "kafka.bootstrap_servers=[a:1, b:2]",
                   "application.threads=4"}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http.listen, "0.0.0.0:9999");
  EXPECT_EQ(r->kafka.bootstrap_servers, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_FALSE(r->kafka.embedded);
  EXPECT_EQ(r->application.threads, 4);
}

TEST(ConfigLoaderTest, BadOverrideNamesTheOverride) {
  auto errors = Errors(kMinimal, WithEnv({}, {"application.id.x=1", "nonsense"}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0], "--set application.id.x=1: 'id' is a scalar, so it has "
                       "no key 'x'");
  EXPECT_EQ(errors[1], "--set nonsense: expected path.to.key=value");
}

// Issue 12: an error in an override's value pointed at t.yaml:1:1 (the
// value was parsed on its own). It names the override now, and only it;
// the file's own errors keep their places.
TEST(ConfigLoaderTest, ErrorsInAnOverridesValueNameTheOverride) {
  auto errors = Errors(std::string(kMinimal) + "  embedded_brokers: 0\n",
                       WithEnv({}, {"application.threads=many", "application.treads=4",
                                    "topics={t1: {partitions: zero}}",
                                    "http={listen: nowhere, threads: 2}"}));
  ASSERT_EQ(errors.size(), 5u) << ::testing::PrintToString(errors);
  // In the order they are read (unknown keys first), the file's after.
  EXPECT_EQ(errors[0], "--set application.treads=4: unknown key 'treads' in application "
                       "(did you mean 'threads'?)");
  EXPECT_EQ(errors[1], "--set application.threads=many: application.threads: expected an "
                       "integer, found 'many'");
  EXPECT_EQ(errors[2], "--set http={listen: nowhere, threads: 2}: http.listen: expected "
                       "host:port (e.g. 127.0.0.1:8080), found 'nowhere'");
  EXPECT_EQ(errors[3], "--set topics={t1: {partitions: zero}}: topics.t1.partitions: expected "
                       "an integer, found 'zero'");
  EXPECT_EQ(errors[4], "t.yaml:5:21: kafka.embedded_brokers: expected 1 to 9, found 0");
  for (const std::string& e : errors) EXPECT_EQ(e.find("t.yaml:1:1"), std::string::npos) << e;
}

// Issue 12: `bootstrap_servers: ""` passed validate and stopped run.
TEST(ConfigLoaderTest, EmptyBootstrapServersAreRefusedWhereTheFileSaysSo) {
  for (const char* value : {"\"\"", "[]", "\" \""}) {
    auto errors = Errors(std::string("application:\n  id: x\nkafka:\n  bootstrap_servers: ") +
                         value + "\n");
    ASSERT_EQ(errors.size(), 1u) << value << ": " << ::testing::PrintToString(errors);
    EXPECT_EQ(errors[0].rfind("t.yaml:4:22: kafka.bootstrap_servers: expected host:port, a "
                              "list of them, or 'embedded'", 0),
              0u)
        << errors[0];
  }
  auto set = Errors(kMinimal, WithEnv({}, {"kafka.bootstrap_servers="}));
  ASSERT_EQ(set.size(), 1u) << ::testing::PrintToString(set);
  EXPECT_EQ(set[0].find("t.yaml"), std::string::npos) << set[0];
}

// Issue 12: a { ... } map splits an expression at its commas; the error
// says so and shows the expression quoted whole.
TEST(ConfigLoaderTest, AnExpressionCutAtACommaInAFlowMapGetsTheQuotedFix) {
  auto errors = Errors(std::string(kMinimal) + R"y(projections:
  totals:
    event_topics: [e]
    store: totals
    events:
      Deposited:
        merge: { total: coalesce(view.total, 0) + event.amount, n: coalesce(view.n, 0) + 1 }
      Noted:
        merge: { note: "concat(view.note, ', ', event.note)", seen: "true" }
)y");
  ASSERT_EQ(errors.size(), 2u) << ::testing::PrintToString(errors);
  EXPECT_EQ(errors[0],
            "t.yaml:11:25: projections.totals.events.Deposited.merge.total: the expression "
            "'coalesce(view.total' is cut at a comma: in a { ... } map YAML ends a value at "
            "every comma; quote the expression (total: \"coalesce(view.total, 0) + "
            "event.amount\") or write the map as a block, one field per line");
  EXPECT_NE(errors[1].find("merge.n: the expression 'coalesce(view.n' is cut at a comma"),
            std::string::npos)
      << errors[1];
  // Quoted, or in a block map, the same expressions are read whole.
  auto r = LoadEngineOptionsFromString(std::string(kMinimal) + R"y(projections:
  totals:
    event_topics: [e]
    store: totals
    events:
      Deposited:
        merge: { total: "coalesce(view.total, 0) + event.amount" }
)y", "t.yaml", WithEnv({}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->topology.projections[0].events[0].second.fields[0].second.text,
            "coalesce(view.total, 0) + event.amount");
}

TEST(ConfigLoaderTest, PropertiesThatKcqrsOwnsAreRefused) {
  auto errors = Errors(std::string(kMinimal) +
                       "  properties:\n    transactional.id: mine\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("'transactional.id' is set by kcqrs"),
            std::string::npos);
}

TEST(ConfigLoaderTest, MissingFileIsNotFound) {
  auto r = LoadEngineOptionsFromFile("/nonexistent/topology.yaml", WithEnv({}));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().message().find("/nonexistent/topology.yaml"),
            std::string::npos);
}

}  // namespace
}  // namespace kcqrs::config
