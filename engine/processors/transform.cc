#include "engine/processors/transform.h"

#include "engine/processors/parsed_record.h"
#include "engine/processors/update_rules.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// Stateless filter and reshape of JSON records.
class Transform final : public Processor {
 public:
  Transform(const CompiledTransform& transform, const JsonLimits& limits)
      : tr_(transform), limits_(limits) {
    auto uses_meta = [](const topology::Expression& e) { return e.UsesRoot(1); };
    needs_meta_ = (tr_.filter && uses_meta(*tr_.filter)) || (tr_.key && uses_meta(*tr_.key));
    for (const auto& field : tr_.value) needs_meta_ = needs_meta_ || uses_meta(field.second);
  }

  Status Process(const Record& r, ProcessorContext& ctx) override {
    auto parsed = ParseObject(r, "the record", limits_);
    if (!parsed.ok()) return parsed.status();
    const json& record = *parsed;
    // `meta` is built only when an expression reads it: it is most of the
    // per-record cost of a simple filter otherwise.
    json meta = needs_meta_ ? Meta(r) : json(nullptr);
    const json* roots[] = {&record, &meta};
    const topology::Expression::Context ectx{roots, 2, r.timestamp_ms};
    if (tr_.filter) {
      auto pass = tr_.filter->EvaluateBool(ectx);
      if (!pass.ok()) return pass.status().WithContext(tr_.spec.name + ".filter");
      if (!*pass) return Status::OK();
    }
    std::optional<std::string> key = r.key;
    if (tr_.key) {
      auto k = tr_.key->Evaluate(ectx);
      if (!k.ok()) return k.status().WithContext(tr_.spec.name + ".key");
      key = KeyString(*k);
      if (!key) {
        return Status::InvalidArgument(tr_.spec.name + ".key: '" + tr_.key->text() + "' is " +
                                       std::string(TypeName(*k)) +
                                       "; a key must be a string or an integer");
      }
    }
    if (tr_.value.empty()) return ctx.Send(tr_.spec.to, std::move(key), r.value, r.headers);
    json out = json::object();
    KCQRS_RETURN_IF_ERROR(EvaluateFields(tr_.value, ectx, tr_.spec.name + ".value", &out));
    return ctx.Send(tr_.spec.to, std::move(key), DumpJson(out), r.headers);
  }

 private:
  const CompiledTransform& tr_;
  const JsonLimits limits_;
  bool needs_meta_ = false;
};

}  // namespace

std::unique_ptr<Processor> MakeTransform(const CompiledTransform& transform,
                                         const JsonLimits& limits) {
  return std::make_unique<Transform>(transform, limits);
}

}  // namespace kcqrs::engine
