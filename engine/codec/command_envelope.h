// The command envelope: what every reader of a command takes from it before
// looking at its body (the command type, the aggregate id, the command id),
// and the headers every output of a command carries. One place, so that the
// command handler and POST /commands read a command the same way and say
// the same thing when it is wrong.
//
// Thread-safety: pure functions.
#ifndef KCQRS_ENGINE_CODEC_COMMAND_ENVELOPE_H_
#define KCQRS_ENGINE_CODEC_COMMAND_ENVELOPE_H_

#include "json/document.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kcqrs/record.h"
#include "kcqrs/status.h"
#include "kcqrs/topology_spec.h"

namespace kcqrs::engine {

struct CommandEnvelope {
  // The command type (`type_field`), a string.
  std::string type;
  // The aggregate id: the `id_field` (a string, or an integer as its
  // decimal text), or the record key when the aggregate has no id field.
  // Valid UTF-8, never empty.
  std::string aggregate_id;
  // The command id (`command_id_field`); empty when absent or not a string
  // (such a command is never deduplicated).
  std::string command_id;
};

// The parts of the envelope, read in this order by every reader so that a
// command with several faults is refused for the same one everywhere: the
// type, then whether the aggregate knows it (the caller's map), then the
// aggregate id, then the command id. `command` is a JSON object.

// The command type (`type_field`); fails when it is absent or not a string.
Result<std::string> ReadCommandType(const kcqrs::Json& command, const AggregateSpec& spec);

// The error for a command type the aggregate does not know; `known` lists
// the ones it does ("CreateOrder, CancelOrder").
Status UnknownCommandType(const AggregateSpec& spec, std::string_view type,
                          std::string_view known);

// The aggregate id. `key` is the command's record key (nullopt: none).
// Fails, saying what is missing or wrong, when the id is missing, empty or
// not UTF-8, or when the key is present and is not the id (the aggregate's
// commands would then land in different partitions).
Result<std::string> ReadAggregateId(const kcqrs::Json& command, const AggregateSpec& spec,
                                    const std::optional<std::string>& key);

// The command id; empty when absent or not a string.
std::string ReadCommandId(const kcqrs::Json& command, const AggregateSpec& spec);

// The aggregate version the command was decided on (the aggregate's
// `expected_version_field`, resolved by CompiledTopology): nullopt when the
// field is absent or null (no expectation); fails, naming the field and
// what it holds, when it is anything but a non-negative JSON integer. Read
// after the command id, so that a retry is recognised before it is judged.
Result<std::optional<int64_t>> ReadExpectedVersion(const kcqrs::Json& command,
                                                   const AggregateSpec& spec);

// The headers of every output of a decided command, its type (`kcqrs.type`)
// last: the aggregate, its id, the command type and id (when it has one).
// The caller appends the event version to events.
std::vector<Header> CommandOutputHeaders(const AggregateSpec& spec,
                                         const CommandEnvelope& envelope,
                                         const std::string& output_type);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_CODEC_COMMAND_ENVELOPE_H_
