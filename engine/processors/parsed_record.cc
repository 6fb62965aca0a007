#include "engine/processors/parsed_record.h"

#include <charconv>

#include "decimal/decimal.h"
#include "engine/codec/headers.h"

namespace kcqrs::engine {

using json = kcqrs::Json;

std::string_view TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::binary:
      return decimal::IsDecimal(j) ? "a number" : "an unsupported value";
    default: return "an unsupported value";
  }
}

Result<json> ParseObject(const Record& r, std::string_view what, const JsonLimits& limits) {
  if (!r.value) {
    return Status::InvalidArgument(std::string(what) + " has no value (a tombstone)");
  }
  Result<json> j = ParseJson(*r.value, limits);
  if (!j.ok()) {
    const std::string why = j.status().message();
    // "the command is not valid JSON: parse error at ...", "the command:
    // nesting deeper than 64 levels at byte 1234 (limits.max_json_depth)".
    if (why.rfind("not valid JSON", 0) == 0) {
      return Status::InvalidArgument(std::string(what) + " is " + why);
    }
    return Status::InvalidArgument(std::string(what) + ": " + why);
  }
  if (!j->is_object()) {
    return Status::InvalidArgument(std::string(what) + ": expected a JSON object, found " +
                                   std::string(TypeName(*j)));
  }
  return j;
}

json Meta(const Record& r) {
  json m = json::object();
  m["topic"] = r.topic;
  m["partition"] = r.partition;
  m["offset"] = r.offset;
  m["timestamp"] = r.timestamp_ms;
  m["key"] = r.key ? json(*r.key) : json(nullptr);
  // An event's aggregate version (kcqrs.version, written by the command
  // handler), so that a projection can carry it into a view and a client
  // reading the view knows which version to expect; null on other records.
  m["version"] = nullptr;
  for (const Header& h : r.headers) {
    if (h.key != headers::kVersion || !h.value) continue;
    int64_t v = 0;
    const char* end = h.value->data() + h.value->size();
    auto [ptr, ec] = std::from_chars(h.value->data(), end, v);
    if (ec == std::errc() && ptr == end) m["version"] = v;
  }
  return m;
}

const std::string* StringField(const json& obj, const std::string& name) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

Result<TypedEvent> ParseEvent(const Record& r, const std::string& type_field,
                              ParsedRecord* parsed) {
  const Result<json>& doc = parsed->Get(r, "the event");
  if (!doc.ok()) return doc.status();
  const std::string* type = StringField(*doc, type_field);
  if (type == nullptr) {
    return Status::InvalidArgument("the event has no '" + type_field +
                                   "' field (a string naming the event type)");
  }
  return TypedEvent{&*doc, type};
}

std::optional<std::string> KeyString(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  return std::nullopt;
}

const Result<json>& ParsedRecord::Get(const Record& r, std::string_view what) {
  if (record_ != &r || what_ != what || !value_) {
    value_ = ParseObject(r, what, limits_);
    record_ = &r;
    what_ = what;
  }
  return *value_;
}

}  // namespace kcqrs::engine
