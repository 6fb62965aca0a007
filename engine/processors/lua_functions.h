// LuaFunctions: a stream thread's compiled Lua snippets.
//
// A Lua state is single-threaded, so each stream thread (and each test
// driver) owns one lua::Runtime and compiles every snippet of the topology
// into it, in CompiledTopology::lua_snippets() order. Processors call a
// snippet by that index.
//
// Thread-safety: none; owned and used by one stream thread.
#ifndef KCQRS_ENGINE_PROCESSORS_LUA_FUNCTIONS_H_
#define KCQRS_ENGINE_PROCESSORS_LUA_FUNCTIONS_H_

#include "json/document.h"

#include <memory>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/lua/runtime.h"
#include "kcqrs/status.h"

namespace kcqrs::engine {

class LuaFunctions {
 public:
  // Compiles every snippet; the error names the snippet's file:line.
  static Result<std::unique_ptr<LuaFunctions>> Create(const CompiledTopology& topology,
                                                      const lua::Limits& limits);

  Result<kcqrs::Json> Call(int snippet, const std::vector<const kcqrs::Json*>& args,
                           int64_t now_ms) {
    return runtime_->Call(ids_[static_cast<size_t>(snippet)], args, now_ms);
  }

 private:
  LuaFunctions() = default;
  std::unique_ptr<lua::Runtime> runtime_;
  std::vector<int> ids_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_PROCESSORS_LUA_FUNCTIONS_H_
