#include "engine/processors/projection.h"

#include "engine/codec/json_codec.h"
#include "engine/processors/parsed_record.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

class Projection final : public Processor {
 public:
  Projection(const CompiledProjection& projection, const CompiledTopology& topology,
             LuaFunctions* lua, ParsedRecord* parsed)
      : proj_(projection),
        lua_(lua),
        parsed_(parsed),
        rules_(MakeUpdateRules(projection.events, projection.spec.name, topology)) {}

  Status Init(ProcessorContext& ctx) override {
    store_ = ctx.GetStateStore(proj_.spec.store);
    if (store_ == nullptr) {
      return Status::Internal("store " + proj_.spec.store + " is not connected");
    }
    return Status::OK();
  }

  Status Process(const Record& r, ProcessorContext&) override {
    auto parsed = ParseEvent(r, proj_.spec.type_field, parsed_);
    if (!parsed.ok()) return parsed.status();
    const json& event = *parsed->value;
    const std::string* type = parsed->type;
    auto handler = rules_.find(*type);
    if (handler == rules_.end()) return Status::OK();  // not this view's concern
    if (!r.key) {
      return Status::InvalidArgument("the event has no key: projection " + proj_.spec.name +
                                     " keys its view by the event key");
    }
    auto stored = store_->Get(*r.key);
    if (!stored.ok()) return stored.status();
    json view;  // null when absent
    if (stored->has_value()) {
      view = ParseJson(**stored);
      if (view.is_discarded()) {
        return Status::Corruption("the stored view " + proj_.spec.store + " '" + *r.key +
                                  "' is not valid JSON");
      }
    }
    LazyMeta meta(r);
    const UpdateRules& u = handler->second;
    auto next = ApplyUpdate(*u.update, std::move(view), event, meta.Get(u.uses_meta),
                            r.timestamp_ms, lua_, u.what);
    if (!next.ok()) return next.status();
    if (next->is_null()) return store_->Delete(*r.key);
    return store_->Put(*r.key, DumpJson(*next));
  }

 private:
  const CompiledProjection& proj_;
  LuaFunctions* lua_;
  ParsedRecord* parsed_;
  const std::map<std::string, UpdateRules, std::less<>> rules_;
  KeyValueStore* store_ = nullptr;
};

}  // namespace

std::unique_ptr<Processor> MakeProjection(const CompiledProjection& projection,
                                          const CompiledTopology& topology, LuaFunctions* lua,
                                          ParsedRecord* parsed) {
  return std::make_unique<Projection>(projection, topology, lua, parsed);
}

}  // namespace kcqrs::engine
