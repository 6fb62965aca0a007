// A record's value as the built-in processors read it: parsed once per
// record within the topology's JSON limits, its errors worded the same way
// by every processor (the record goes to the dead-letter topic with them),
// and the `meta` document of expressions and Lua snippets built only when
// something reads it.
#ifndef KCQRS_ENGINE_PROCESSORS_PARSED_RECORD_H_
#define KCQRS_ENGINE_PROCESSORS_PARSED_RECORD_H_

#include "json/document.h"

#include <optional>
#include <string>
#include <string_view>

#include "engine/codec/json_codec.h"
#include "kcqrs/record.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

// The value of the record a task is processing, parsed once for all the
// built-in processors of the task that read it (a projection and the
// repartition of another projection read the same event topic). Owned by
// the task, which calls Reset() before each record. Thread-safety: none.
class ParsedRecord {
 public:
  // `limits`: the topology's (CompiledTopology::json_limits()).
  explicit ParsedRecord(JsonLimits limits = {}) : limits_(limits) {}

  void Reset() { record_ = nullptr; }

  // The value of `r` as a JSON object, or why it is not one (`what`, e.g.
  // "the event", names it in the error). Parsed on the first call per record.
  const Result<kcqrs::Json>& Get(const Record& r, std::string_view what);

 private:
  const JsonLimits limits_;
  const Record* record_ = nullptr;
  std::string what_;
  std::optional<Result<kcqrs::Json>> value_;
};

// "an object", "a list", ...: a JSON value's type, for errors.
std::string_view TypeName(const kcqrs::Json& j);

// Parses a record value as a JSON object within `limits` (a value over
// them is refused before anything deep is built); the error says what was
// wrong (`what`: "the command") and where.
Result<kcqrs::Json> ParseObject(const Record& r, std::string_view what,
                                const JsonLimits& limits);

// A string field, or null when absent or not a string.
const std::string* StringField(const kcqrs::Json& obj, const std::string& name);

// A key computed by an expression as text: a string, or an integer's
// digits; nullopt for anything else.
std::optional<std::string> KeyString(const kcqrs::Json& v);

// An event: a JSON object with a string type field, both held by the
// task's ParsedRecord.
struct TypedEvent {
  const kcqrs::Json* value;
  const std::string* type;
};

Result<TypedEvent> ParseEvent(const Record& r, const std::string& type_field,
                              ParsedRecord* parsed);

// The `meta` root of expressions and the third argument of Lua snippets:
// the record's topic, partition, offset, timestamp and key, and the
// aggregate version of an event (its kcqrs.version header; null without).
kcqrs::Json Meta(const Record& r);

// The record's meta document, built on first use only.
class LazyMeta {
 public:
  explicit LazyMeta(const Record& r) : r_(r) {}
  const kcqrs::Json& Get(bool needed) {
    if (!needed) return null_;
    if (!built_) {
      meta_ = Meta(r_);
      built_ = true;
    }
    return meta_;
  }

 private:
  const Record& r_;
  const kcqrs::Json null_;
  kcqrs::Json meta_;
  bool built_ = false;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_PARSED_RECORD_H_
