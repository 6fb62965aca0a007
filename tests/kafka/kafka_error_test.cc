#include <gtest/gtest.h>

#include "engine/kafka/error.h"
#include "engine/kafka/mock_cluster.h"

namespace kcqrs::kafka {
namespace {

// librdkafka's local error codes (rd_kafka_resp_err_t); this test does not
// include librdkafka, as no code outside engine/kafka/*.cc may.
constexpr int kLocalTimedOut = -185;
constexpr int kLocalAllBrokersDown = -187;
constexpr int kLocalState = -172;
constexpr int kLocalFatal = -150;
constexpr int kLocalPurgeQueue = -152;
constexpr int kLocalUnknownTopic = -188;

int Code(BrokerError e) { return static_cast<int>(e); }

TEST(KafkaErrorTest, NoErrorIsOk) {
  EXPECT_TRUE(StatusFromKafkaError(0, "anything").ok());
  EXPECT_TRUE(StatusFromKafkaErrorObject(nullptr, "anything").ok());
}

TEST(KafkaErrorTest, TransientErrorsAreRetriableCodes) {
  EXPECT_TRUE(StatusFromKafkaError(kLocalTimedOut, "x").IsTimedOut());
  EXPECT_TRUE(StatusFromKafkaError(Code(BrokerError::kRequestTimedOut), "x")
                  .IsTimedOut());
  EXPECT_TRUE(StatusFromKafkaError(kLocalAllBrokersDown, "x").IsUnavailable());
  EXPECT_TRUE(
      StatusFromKafkaError(Code(BrokerError::kNotLeaderForPartition), "x")
          .IsUnavailable());
  EXPECT_TRUE(
      StatusFromKafkaError(Code(BrokerError::kCoordinatorNotAvailable), "x")
          .IsUnavailable());
}

TEST(KafkaErrorTest, OwnershipLossIsFenced) {
  EXPECT_TRUE(
      StatusFromKafkaError(Code(BrokerError::kProducerFenced), "x").IsFenced());
  EXPECT_TRUE(
      StatusFromKafkaError(Code(BrokerError::kInvalidProducerEpoch), "x")
          .IsFenced());
  EXPECT_TRUE(StatusFromKafkaError(Code(BrokerError::kIllegalGeneration), "x")
                  .IsFenced());
  EXPECT_TRUE(StatusFromKafkaError(kLocalFatal, "x").IsFenced());
}

TEST(KafkaErrorTest, OtherCodesKeepTheirMeaning) {
  EXPECT_EQ(StatusFromKafkaError(kLocalState, "x").code(),
            Status::Code::kFailedPrecondition);
  EXPECT_TRUE(StatusFromKafkaError(kLocalPurgeQueue, "x").IsAborted());
  EXPECT_TRUE(StatusFromKafkaError(kLocalUnknownTopic, "x").IsNotFound());
  EXPECT_TRUE(StatusFromKafkaError(Code(BrokerError::kMessageTooLarge), "x")
                  .IsInvalidArgument());
  EXPECT_EQ(
      StatusFromKafkaError(Code(BrokerError::kTopicAuthorizationFailed), "x")
          .code(),
      Status::Code::kFailedPrecondition);
  EXPECT_EQ(StatusFromKafkaError(36, "x").code(), Status::Code::kAlreadyExists);
}

TEST(KafkaErrorTest, MessageCarriesContextDescriptionAndName) {
  Status s = StatusFromKafkaError(Code(BrokerError::kNotLeaderForPartition),
                                  PartitionContext("orders", 3, 42));
  EXPECT_EQ(s.message().rfind("orders[3]@42: ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("NOT_LEADER_FOR_PARTITION"), std::string::npos)
      << s.message();

  Status detailed = StatusFromKafkaError(kLocalTimedOut, "flush", "3 left");
  EXPECT_EQ(detailed.message(), "flush: 3 left (_TIMED_OUT)");
  EXPECT_EQ(KafkaErrorName(kLocalTimedOut), "_TIMED_OUT");
}

// A refusal by the cluster's ACLs says which ACL is missing, and is no
// reason to make a new client: it would be refused too.
TEST(KafkaErrorTest, AccessErrorsNameWhatToGrant) {
  constexpr int kTransactionalIdAuthorizationFailed = 53;
  constexpr int kSaslAuthenticationFailed = 58;
  Status s = StatusFromKafkaError(kTransactionalIdAuthorizationFailed, "init transactions");
  EXPECT_EQ(s.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("TRANSACTIONAL_ID_AUTHORIZATION_FAILED); not authorized: the "
                             "principal needs Write and Describe on the transactional ids"),
            std::string::npos)
      << s.message();
  EXPECT_TRUE(IsAccessError(kTransactionalIdAuthorizationFailed));
  EXPECT_TRUE(IsAccessError(Code(BrokerError::kTopicAuthorizationFailed)));
  EXPECT_TRUE(IsAccessError(kSaslAuthenticationFailed));
  EXPECT_NE(StatusFromKafkaError(kSaslAuthenticationFailed, "x").message().find("sasl.password"),
            std::string::npos);
  EXPECT_FALSE(IsAccessError(kLocalFatal));
  EXPECT_FALSE(IsAccessError(Code(BrokerError::kProducerFenced)));
  EXPECT_EQ(StatusFromKafkaError(kLocalTimedOut, "x").message().find("not authorized"),
            std::string::npos);
}

}  // namespace
}  // namespace kcqrs::kafka
