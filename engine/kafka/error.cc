#include "engine/kafka/error.h"

#include <librdkafka/rdkafka.h>

#include <string>
#include <utility>

namespace kcqrs::kafka {
namespace {

// Which Status code a response error belongs to. Broker errors come from
// the Kafka protocol (positive codes), local ones from librdkafka itself
// (negative codes with a leading underscore in their names).
Status::Code CodeFor(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return Status::Code::kOk;

    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return Status::Code::kTimedOut;

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR__ISR_INSUFF:
    case RD_KAFKA_RESP_ERR__NODE_UPDATE:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__PREV_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR__RETRY:
    case RD_KAFKA_RESP_ERR__WAIT_CACHE:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND:
    case RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
      return Status::Code::kUnavailable;

    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_GROUP:
    case RD_KAFKA_RESP_ERR__NOENT:
    case RD_KAFKA_RESP_ERR__UNKNOWN_BROKER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
      return Status::Code::kNotFound;

    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return Status::Code::kAlreadyExists;

    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
    case RD_KAFKA_RESP_ERR__CONFLICT:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
    case RD_KAFKA_RESP_ERR_INVALID_SESSION_TIMEOUT:
    case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
      return Status::Code::kInvalidArgument;

    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__NOT_CONFIGURED:
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR__EXISTING_SUBSCRIPTION:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
      return Status::Code::kFailedPrecondition;

    // The work belongs to someone else now: a newer producer epoch, or a
    // consumer generation the group has moved past. Also librdkafka's
    // fatal error: the client is unusable and must be recreated.
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
      return Status::Code::kFenced;

    // Records purged by an abort (or by a destroy) were never written.
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
      return Status::Code::kAborted;

    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PROTOCOL:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return Status::Code::kNotSupported;

    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
    case RD_KAFKA_RESP_ERR__KEY_DESERIALIZATION:
    case RD_KAFKA_RESP_ERR__VALUE_DESERIALIZATION:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
      return Status::Code::kCorruption;

    case RD_KAFKA_RESP_ERR__FS:
      return Status::Code::kIoError;

    default:
      return Status::Code::kInternal;
  }
}

Status Make(Status::Code code, std::string message) {
  switch (code) {
    case Status::Code::kOk:
      return Status::OK();
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument(std::move(message));
    case Status::Code::kNotFound:
      return Status::NotFound(std::move(message));
    case Status::Code::kAlreadyExists:
      return Status::AlreadyExists(std::move(message));
    case Status::Code::kFailedPrecondition:
      return Status::FailedPrecondition(std::move(message));
    case Status::Code::kUnavailable:
      return Status::Unavailable(std::move(message));
    case Status::Code::kTimedOut:
      return Status::TimedOut(std::move(message));
    case Status::Code::kAborted:
      return Status::Aborted(std::move(message));
    case Status::Code::kFenced:
      return Status::Fenced(std::move(message));
    case Status::Code::kCorruption:
      return Status::Corruption(std::move(message));
    case Status::Code::kIoError:
      return Status::IoError(std::move(message));
    case Status::Code::kNotSupported:
      return Status::NotSupported(std::move(message));
    case Status::Code::kInternal:
      return Status::Internal(std::move(message));
  }
  return Status::Internal(std::move(message));
}

// What to grant or fix when the cluster refuses access: the broker's answer
// names the kind of resource, not the ACL an operator must add. nullptr for
// every other error.
const char* AccessHint(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      return "not authorized: the principal needs Read, Write, Create, Describe and "
             "DescribeConfigs on the application's topics (docs/operations.md)";
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
      return "not authorized: the principal needs Read and Describe on the groups "
             "prefixed with the application id (docs/operations.md)";
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return "not authorized: the principal needs Write and Describe on the transactional "
             "ids prefixed with the application id (docs/operations.md)";
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return "not authorized: the principal lacks an ACL on the cluster resource "
             "(docs/operations.md)";
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
      return "check sasl.username, sasl.password and sasl.mechanism in kafka.properties "
             "(librdkafka before 2.6.1 cannot log in to Kafka 4 with SCRAM: "
             "docs/operations.md)";
    default:
      return nullptr;
  }
}

std::string Describe(rd_kafka_resp_err_t err, std::string_view context,
                     std::string_view detail) {
  std::string msg(context);
  if (!msg.empty()) msg += ": ";
  if (detail.empty()) {
    msg += rd_kafka_err2str(err);
  } else {
    msg += detail;
  }
  msg += " (";
  msg += rd_kafka_err2name(err);
  msg += ")";
  const char* hint = AccessHint(err);
  if (hint != nullptr) {
    msg += "; ";
    msg += hint;
  }
  return msg;
}

}  // namespace

Status StatusFromKafkaError(int err, std::string_view context,
                            std::string_view detail) {
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::OK();
  return Make(CodeFor(code), Describe(code, context, detail));
}

Status StatusFromKafkaErrorObject(rd_kafka_error_s* error,
                                  std::string_view context) {
  if (error == nullptr) return Status::OK();
  rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  std::string msg = Describe(code, context, rd_kafka_error_string(error));
  Status status;
  // The order matters: librdkafka may flag an error both retriable and
  // abortable, and then only an abort gets the producer going again. A
  // fatal refusal by the cluster's ACLs (init transactions without the
  // transactional-id ACL) is no fenced producer to replace: a new one would
  // be refused the same way. An abortable one (a topic refused inside a
  // transaction) stays Aborted: the producer is usable after the abort.
  if (rd_kafka_error_is_fatal(error) && AccessHint(code) != nullptr) {
    status = Status::FailedPrecondition(std::move(msg));
  } else if (rd_kafka_error_is_fatal(error)) {
    status = Status::Fenced(msg + "; the producer is unusable, destroy it");
  } else if (rd_kafka_error_txn_requires_abort(error)) {
    status = Status::Aborted(msg + "; abort the transaction");
  } else if (rd_kafka_error_is_retriable(error)) {
    status = CodeFor(code) == Status::Code::kTimedOut
                 ? Status::TimedOut(msg + "; the call may be retried")
                 : Status::Unavailable(msg + "; the call may be retried");
  } else {
    status = Make(CodeFor(code), std::move(msg));
  }
  rd_kafka_error_destroy(error);
  return status;
}

bool IsAccessError(int err) {
  return AccessHint(static_cast<rd_kafka_resp_err_t>(err)) != nullptr;
}

std::string KafkaErrorName(int err) {
  return rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err));
}

std::string PartitionContext(std::string_view topic, int partition) {
  std::string s(topic);
  s += "[";
  s += std::to_string(partition);
  s += "]";
  return s;
}

std::string PartitionContext(std::string_view topic, int partition,
                             long long offset) {
  return PartitionContext(topic, partition) + "@" + std::to_string(offset);
}

}  // namespace kcqrs::kafka
