#include "engine/processors/repartition.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/processors/parsed_record.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

class Repartition final : public Processor {
 public:
  Repartition(const CompiledProjection& projection, const CompiledTopology& topology,
              ParsedRecord* parsed)
      : proj_(projection),
        parsed_(parsed),
        key_uses_meta_(projection.key->UsesRoot(1)),
        keep_headers_(ProjectionSeesMeta(projection, topology)) {
    for (const auto& [type, update] : projection.events) {
      std::set<std::string> fields = {projection.spec.type_field};
      read_fields_.emplace(type, UpdateEventFields(update, topology, &fields)
                                     ? EventFieldSelector(fields)
                                     : EventFieldSelector());
    }
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto parsed = ParseEvent(r, proj_.spec.type_field, parsed_);
    if (!parsed.ok()) return parsed.status();
    const json& event = *parsed->value;
    const std::string* type = parsed->type;
    // Only the events the view folds travel through the repartition topic.
    auto fields = read_fields_.find(*type);
    if (fields == read_fields_.end()) return Status::OK();
    LazyMeta meta(r);
    const json* roots[] = {&event, &meta.Get(key_uses_meta_)};
    auto key = proj_.key->Evaluate(topology::Expression::Context{roots, 2, r.timestamp_ms});
    if (!key.ok()) return key.status().WithContext(proj_.spec.name + ".key");
    std::optional<std::string> k = KeyString(*key);
    if (!k) {
      return Status::InvalidArgument(proj_.spec.name + ".key: '" + proj_.key->text() +
                                     "' is " + std::string(TypeName(*key)) + " for event " +
                                     *type + "; a view key must be a string or an integer");
    }
    // The headers (some 140 bytes of kcqrs.* on an event) go along only
    // for rules that read them through `meta`, and of the value only the
    // fields the view's rules for this type read: the topic is the view's
    // alone, so what no rule reads would only load the broker and the
    // parse on the other side.
    return ctx.Send(proj_.repartition_topic, *k, fields->second.Select(event, *r.value),
                    keep_headers_ ? r.headers : std::vector<Header>());
  }

 private:
  const CompiledProjection& proj_;
  ParsedRecord* parsed_;
  const bool key_uses_meta_;
  const bool keep_headers_;
  // Per event type the view folds (no other): what its rules read.
  std::map<std::string, EventFieldSelector, std::less<>> read_fields_;
};


}  // namespace

std::unique_ptr<Processor> MakeRepartition(const CompiledProjection& projection,
                                           const CompiledTopology& topology,
                                           ParsedRecord* parsed) {
  return std::make_unique<Repartition>(projection, topology, parsed);
}

}  // namespace kcqrs::engine
