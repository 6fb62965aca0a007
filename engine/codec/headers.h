// Names of the Kafka record headers kcqrs writes (docs/topology.md, "Records").
#ifndef KCQRS_ENGINE_CODEC_HEADERS_H_
#define KCQRS_ENGINE_CODEC_HEADERS_H_

namespace kcqrs::engine::headers {

// On events and rejections.
inline constexpr char kType[] = "kcqrs.type";                // event type, or "Rejected"
inline constexpr char kAggregate[] = "kcqrs.aggregate";      // aggregate name
inline constexpr char kAggregateId[] = "kcqrs.aggregate.id";
inline constexpr char kVersion[] = "kcqrs.version";          // events: the aggregate version it made
inline constexpr char kCommandId[] = "kcqrs.command.id";
inline constexpr char kCommandType[] = "kcqrs.command.type";
// On commands a process manager sends, and copied by the aggregate onto the
// events and rejection it decides for them, so that the process manager
// finds the instance an answer belongs to (its rejections carry no
// business fields).
inline constexpr char kProcess[] = "kcqrs.process";        // the process manager
inline constexpr char kProcessId[] = "kcqrs.process.id";   // its instance id
// On dead letters.
inline constexpr char kError[] = "kcqrs.error";
inline constexpr char kProcessor[] = "kcqrs.processor";
inline constexpr char kSourceTopic[] = "kcqrs.source.topic";
inline constexpr char kSourcePartition[] = "kcqrs.source.partition";
inline constexpr char kSourceOffset[] = "kcqrs.source.offset";
// On a dead letter whose value was left out because it would not fit.
inline constexpr char kValueDropped[] = "kcqrs.value.dropped";
// On a command forwarded to the partition its aggregate id hashes to: the
// partition and offset it was first written to.
inline constexpr char kForwardedFrom[] = "kcqrs.forwarded.from";

}  // namespace kcqrs::engine::headers

#endif  // KCQRS_ENGINE_CODEC_HEADERS_H_
