// The one place where librdkafka errors become kcqrs Status codes.
//
// Codes, and what a caller is expected to do with each:
//   TimedOut      a deadline passed (local or broker); the same call may be
//                 retried.
//   Unavailable   a broker, leader or coordinator is unreachable or moving;
//                 transient, the same call may be retried.
//   NotFound      unknown topic, partition or group.
//   AlreadyExists the topic exists.
//   InvalidArgument a bad property, record (e.g. too large) or request.
//   FailedPrecondition the call is not valid in the client's state (no
//                 transaction begun, group.id missing, not authorized).
//   Aborted       the current transaction can only be aborted (or records
//                 were purged by an abort): abort, rewind to committed state.
//   Fenced        another instance owns this work now (producer fenced,
//                 consumer generation gone) or the client hit a fatal error:
//                 stop the work and destroy the client.
//   NotSupported  the broker does not support the request.
//   Corruption    a record could not be decoded.
//   Internal      anything else; the message carries librdkafka's name.
//
// The declarations take the error code as an int so that this header does
// not include librdkafka; the values are rd_kafka_resp_err_t's.
//
// Thread-safety: stateless functions, safe from any thread.
#ifndef KCQRS_ENGINE_KAFKA_ERROR_H_
#define KCQRS_ENGINE_KAFKA_ERROR_H_

#include <string>
#include <string_view>

#include "kcqrs/status.h"

struct rd_kafka_error_s;

namespace kcqrs::kafka {

// Maps a librdkafka response error (rd_kafka_resp_err_t) to a Status whose
// message is "<context>: <librdkafka description> (<ERROR_NAME>)". OK for 0.
// `detail`, when not empty, replaces librdkafka's generic description (use
// it for the errstr librdkafka hands out alongside the code).
Status StatusFromKafkaError(int err, std::string_view context,
                            std::string_view detail = {});

// Maps a librdkafka rd_kafka_error_t (the transactional API's error object)
// and destroys it; OK for nullptr. Fatal errors map to Fenced, errors that
// require an abort to Aborted, retriable ones to TimedOut (when the code is
// a time-out) or Unavailable, everything else as StatusFromKafkaError.
Status StatusFromKafkaErrorObject(rd_kafka_error_s* error,
                                  std::string_view context);

// True for the cluster's refusals (an ACL missing, a failed login): their
// Status says what to grant or fix, and is FailedPrecondition even when
// librdkafka calls the error fatal, since a new client would be refused too
// (an abortable refusal inside a transaction stays Aborted).
bool IsAccessError(int err);

// librdkafka's symbolic name for an error code, e.g. "_TIMED_OUT".
std::string KafkaErrorName(int err);

// "topic[partition]" or "topic[partition]@offset" for error messages.
std::string PartitionContext(std::string_view topic, int partition);
std::string PartitionContext(std::string_view topic, int partition,
                             long long offset);

}  // namespace kcqrs::kafka

#endif  // KCQRS_ENGINE_KAFKA_ERROR_H_
