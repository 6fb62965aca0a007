// The configuration of every Kafka client a stream thread makes: kcqrs'
// defaults give way to the user's kafka.properties, and the user's
// properties give way to what exactly-once depends on, with a warning
// naming each.
#include "engine/runtime/client_configs.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace kcqrs::engine {
namespace {

EngineOptions Options(Guarantee guarantee, std::map<std::string, std::string> properties = {}) {
  EngineOptions o;
  o.application.id = "shop";
  o.application.guarantee = guarantee;
  o.kafka.properties = std::move(properties);
  return o;
}

const StreamThreadIdentity kWho{"b1:9092,b2:9092", 1, "shop-abc-1"};

bool Names(const ClientConfig& c, const std::string& key) {
  return std::any_of(c.overridden.begin(), c.overridden.end(),
                     [&](const std::string& o) { return o.rfind(key + "=", 0) == 0; });
}

TEST(ClientConfigsTest, ExactlyOnceMakesTheProducerTransactionalUnderTheMemberId) {
  const ClientConfig p = ProducerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(p.properties.at("transactional.id"), "shop-abc-1");
  EXPECT_EQ(p.properties.at("enable.idempotence"), "true");
  EXPECT_EQ(p.properties.at("transaction.timeout.ms"), "10000");
  EXPECT_EQ(p.properties.at("bootstrap.servers"), "b1:9092,b2:9092");
  EXPECT_EQ(p.properties.at("client.id"), "shop-stream-1");
  EXPECT_TRUE(p.overridden.empty());
}

TEST(ClientConfigsTest, AtLeastOnceHasNoTransactions) {
  const ClientConfig p = ProducerConfig(Options(Guarantee::kAtLeastOnce), kWho);
  EXPECT_EQ(p.properties.count("transactional.id"), 0u);
  EXPECT_EQ(p.properties.count("transaction.timeout.ms"), 0u);
}

TEST(ClientConfigsTest, TheUsersPropertiesOverrideKcqrsDefaults) {
  const auto o = Options(Guarantee::kExactlyOnce, {{"linger.ms", "20"},
                                                   {"transaction.timeout.ms", "60000"},
                                                   {"session.timeout.ms", "45000"},
                                                   {"security.protocol", "SASL_SSL"}});
  const ClientConfig p = ProducerConfig(o, kWho);
  EXPECT_EQ(p.properties.at("linger.ms"), "20");
  EXPECT_EQ(p.properties.at("transaction.timeout.ms"), "60000");
  EXPECT_EQ(p.properties.at("security.protocol"), "SASL_SSL");
  const ClientConfig c = MainConsumerConfig(o, kWho);
  EXPECT_EQ(c.properties.at("session.timeout.ms"), "45000");
  EXPECT_EQ(c.properties.at("security.protocol"), "SASL_SSL");
  EXPECT_TRUE(p.overridden.empty());
  EXPECT_TRUE(c.overridden.empty());
}

TEST(ClientConfigsTest, WhatExactlyOnceDependsOnOverridesTheUserAndSaysSo) {
  const auto o = Options(Guarantee::kExactlyOnce, {{"enable.auto.commit", "true"},
                                                   {"isolation.level", "read_uncommitted"},
                                                   {"enable.idempotence", "false"},
                                                   {"partition.assignment.strategy",
                                                    "cooperative-sticky"}});
  const ClientConfig c = MainConsumerConfig(o, kWho);
  EXPECT_EQ(c.properties.at("enable.auto.commit"), "false");
  EXPECT_EQ(c.properties.at("isolation.level"), "read_committed");
  EXPECT_EQ(c.properties.at("partition.assignment.strategy"), "range");
  EXPECT_TRUE(Names(c, "enable.auto.commit"));
  EXPECT_TRUE(Names(c, "isolation.level"));
  EXPECT_TRUE(Names(c, "partition.assignment.strategy"));
  const ClientConfig p = ProducerConfig(o, kWho);
  EXPECT_EQ(p.properties.at("enable.idempotence"), "true");
  ASSERT_EQ(p.overridden.size(), 1u);
  EXPECT_NE(p.overridden[0].find("enable.idempotence=false (kcqrs needs true"),
            std::string::npos)
      << p.overridden[0];
}

TEST(ClientConfigsTest, TheMainConsumerIsAStaticMemberOfTheApplicationsGroup) {
  const ClientConfig c = MainConsumerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(c.properties.at("group.id"), "shop");
  EXPECT_EQ(c.properties.at("group.instance.id"), "shop-abc-1");
  EXPECT_EQ(c.properties.at("auto.offset.reset"), "earliest");
  EXPECT_EQ(c.properties.at("enable.auto.offset.store"), "false");
}

// librdkafka 2.0.2 bounds the whole consumer queue, not each partition
// (client_configs.cc): under a preloaded backlog the main consumer holds at
// most 350,000 records or 64 MB of values, whatever its partition count,
// instead of the 1,000,000 small records (about 270 MB of RSS for 100-byte
// values) it held before.
TEST(ClientConfigsTest, TheMainConsumersPrefetchIsBoundedForTheWholeQueue) {
  const ClientConfig c = MainConsumerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(c.properties.at("queued.min.messages"), "350000");
  EXPECT_EQ(c.properties.at("queued.max.messages.kbytes"), "65536");
  // The restore consumer drains changelogs and reads no backlog meanwhile.
  const ClientConfig r = RestoreConsumerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(r.properties.at("queued.min.messages"), "1000000");
  EXPECT_EQ(r.properties.at("queued.max.messages.kbytes"), "65536");
  // An operator who wants a tighter bound gets it, without a warning.
  const auto tight = Options(Guarantee::kExactlyOnce, {{"queued.min.messages", "50000"},
                                                       {"queued.max.messages.kbytes", "16384"}});
  const ClientConfig t = MainConsumerConfig(tight, kWho);
  EXPECT_EQ(t.properties.at("queued.min.messages"), "50000");
  EXPECT_EQ(t.properties.at("queued.max.messages.kbytes"), "16384");
  EXPECT_TRUE(t.overridden.empty());
}

// A stream thread reads what it wrote a moment ago: with librdkafka's
// fetch.min.bytes of 1 it fetched once per produce batch. It now waits for
// 64 KB or 10 ms; an operator can choose otherwise, without a warning.
TEST(ClientConfigsTest, TheMainConsumerFetchesFullerBatches) {
  const ClientConfig c = MainConsumerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(c.properties.at("fetch.min.bytes"), "65536");
  EXPECT_EQ(c.properties.at("fetch.wait.max.ms"), "10");
  // Restore drains to the end and stops: no minimum to wait for.
  const ClientConfig r = RestoreConsumerConfig(Options(Guarantee::kExactlyOnce), kWho);
  EXPECT_EQ(r.properties.count("fetch.min.bytes"), 0u);
  EXPECT_EQ(r.properties.at("fetch.wait.max.ms"), "10");
  const ClientConfig u = MainConsumerConfig(
      Options(Guarantee::kAtLeastOnce, {{"fetch.min.bytes", "1"}, {"fetch.wait.max.ms", "500"}}),
      kWho);
  EXPECT_EQ(u.properties.at("fetch.min.bytes"), "1");
  EXPECT_EQ(u.properties.at("fetch.wait.max.ms"), "500");
  EXPECT_TRUE(u.overridden.empty());
}

TEST(ClientConfigsTest, TheRestoreConsumerNeverJoinsTheGroup) {
  const auto o = Options(Guarantee::kExactlyOnce, {{"group.instance.id", "mine"}});
  const ClientConfig r = RestoreConsumerConfig(o, kWho);
  EXPECT_EQ(r.properties.count("group.instance.id"), 0u);
  EXPECT_EQ(r.properties.at("group.id"), "shop-restore");
  EXPECT_EQ(r.properties.at("client.id"), "shop-stream-1-restore");
  EXPECT_EQ(r.properties.at("isolation.level"), "read_committed");
  EXPECT_EQ(r.properties.at("enable.partition.eof"), "true");
}

TEST(ClientConfigsTest, TheAdminClientCarriesTheUsersSecuritySettings) {
  const ClientConfig a = AdminConfig(
      Options(Guarantee::kExactlyOnce, {{"security.protocol", "SSL"}}), "b1:9092");
  EXPECT_EQ(a.properties.at("security.protocol"), "SSL");
  EXPECT_EQ(a.properties.at("client.id"), "shop-admin");
  EXPECT_EQ(a.properties.at("bootstrap.servers"), "b1:9092");
}

}  // namespace
}  // namespace kcqrs::engine
