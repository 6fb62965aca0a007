#include "engine/processors/lua_functions.h"

namespace kcqrs::engine {

Result<std::unique_ptr<LuaFunctions>> LuaFunctions::Create(const CompiledTopology& topology,
                                                           const lua::Limits& limits) {
  std::unique_ptr<LuaFunctions> f(new LuaFunctions());
  auto runtime = lua::Runtime::Create(limits);
  if (!runtime.ok()) return runtime.status();
  f->runtime_ = std::move(runtime).value();
  std::string errors;
  for (const LuaSnippet& s : topology.lua_snippets()) {
    auto id = f->runtime_->Compile(s.spec.code, s.params, s.spec.where.file, s.spec.where.line);
    if (!id.ok()) {
      errors += (errors.empty() ? "" : "\n") + id.status().message();
      f->ids_.push_back(-1);
      continue;
    }
    f->ids_.push_back(*id);
  }
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return f;
}

}  // namespace kcqrs::engine
