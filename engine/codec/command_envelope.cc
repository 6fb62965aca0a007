#include "engine/codec/command_envelope.h"

#include <limits>
#include <utility>

#include "decimal/decimal.h"
#include "engine/codec/headers.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

const std::string* StringField(const json& obj, const std::string& name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

// An id field's value as text: a string, or an integer's decimal digits.
std::optional<std::string> IdText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  return std::nullopt;
}

}  // namespace

Result<std::string> ReadCommandType(const json& command, const AggregateSpec& spec) {
  const std::string* type = StringField(command, spec.type_field);
  if (type == nullptr) {
    return Status::InvalidArgument("the command has no '" + spec.type_field +
                                   "' field (a string naming the command type)");
  }
  return *type;
}

Status UnknownCommandType(const AggregateSpec& spec, std::string_view type,
                          std::string_view known) {
  return Status::InvalidArgument("unknown command type '" + std::string(type) +
                                 "' for aggregate '" + spec.name + "' (known: " +
                                 std::string(known) + ")");
}

Result<std::string> ReadAggregateId(const json& command, const AggregateSpec& spec,
                                    const std::optional<std::string>& key) {
  std::string id;
  if (spec.id_field.empty()) {
    if (!key || key->empty()) {
      return Status::InvalidArgument(
          "missing aggregate id: the command has no key (aggregate " + spec.name +
          " takes its id from the record key)");
    }
    id = *key;
  } else {
    auto it = command.find(spec.id_field);
    std::optional<std::string> field;
    if (it != command.end()) field = IdText(*it);
    if (!field || field->empty()) {
      return Status::InvalidArgument("missing aggregate id: the command has no '" +
                                     spec.id_field + "' field (a string)");
    }
    if (key && *key != *field) {
      return Status::InvalidArgument(
          "the record key '" + *key + "' is not the aggregate id '" + *field + "' (field " +
          spec.id_field + "): commands of one aggregate must have its id as key, so that "
          "they land in one partition");
    }
    id = std::move(*field);
  }
  if (!util::IsValidUtf8(id)) {
    return Status::InvalidArgument("the aggregate id is not valid UTF-8 (aggregate " +
                                   spec.name + "); ids travel in JSON events and headers");
  }
  return id;
}

std::string ReadCommandId(const json& command, const AggregateSpec& spec) {
  const std::string* id = StringField(command, spec.command_id_field);
  return id != nullptr ? *id : std::string();
}

Result<std::optional<int64_t>> ReadExpectedVersion(const json& command,
                                                   const AggregateSpec& spec) {
  auto it = command.find(spec.expected_version_field);
  if (it == command.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_unsigned()) {
    const uint64_t v = it->get<uint64_t>();
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::optional<int64_t>(static_cast<int64_t>(v));
    }
  } else if (it->is_number_integer()) {
    const int64_t v = it->get<int64_t>();
    if (v >= 0) return std::optional<int64_t>(v);
  }
  // decimal::Dump: a decimal (1.5) shows as its number, not as binary.
  const std::string text = decimal::Dump(*it);
  std::string found = it->is_string() ? "the string " + text : text;
  if (found.size() > 64) found = found.substr(0, 61) + "...";
  return Status::InvalidArgument(
      "'" + spec.expected_version_field + "' must be a non-negative integer (the " +
      spec.name + " version the command was decided on; 0: create only), found " + found);
}

std::vector<Header> CommandOutputHeaders(const AggregateSpec& spec,
                                         const CommandEnvelope& envelope,
                                         const std::string& output_type) {
  std::vector<Header> h;
  h.reserve(6);  // with room for the event version
  h.push_back({headers::kAggregate, spec.name});
  h.push_back({headers::kAggregateId, envelope.aggregate_id});
  h.push_back({headers::kCommandType, envelope.type});
  if (!envelope.command_id.empty()) h.push_back({headers::kCommandId, envelope.command_id});
  h.push_back({headers::kType, output_type});
  return h;
}

}  // namespace kcqrs::engine
