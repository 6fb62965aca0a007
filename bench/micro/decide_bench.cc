// One decide call of the orders aggregate, as the command handler makes it
// (engine::Decide): declarative require/emit rules (CreateOrder,
// AdjustQuantity) and the Lua snippet of CancelOrder, each accepted and
// rejected. The command is parsed once, outside the loop: decoding is
// measured by json_bench.cc.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "bench/micro/orders_workload.h"
#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "engine/processors/processors.h"
#include "json/document.h"

namespace kcqrs::bench {
namespace {

using json = kcqrs::Json;

struct Compiled {
  std::unique_ptr<engine::CompiledTopology> topology;
  std::unique_ptr<engine::LuaFunctions> lua;
};

Compiled& Orders() {
  static Compiled c = [] {
    Compiled out;
    auto topology = engine::CompiledTopology::Compile(LoadOrdersTopology());
    if (!topology.ok()) {
      std::cerr << topology.status().ToString() << "\n";
      std::abort();
    }
    out.topology = std::move(topology).value();
    auto lua = engine::LuaFunctions::Create(*out.topology, lua::Limits{});
    if (!lua.ok()) {
      std::cerr << lua.status().ToString() << "\n";
      std::abort();
    }
    out.lua = std::move(lua).value();
    return out;
  }();
  return c;
}

// `state_text` is the aggregate's state ("null" for an order never created).
// `rejected` is what the rules must answer; a benchmark of the wrong path
// fails rather than measure it.
void BM_Decide(benchmark::State& st, const char* type, const char* command_text,
               const char* state_text, bool rejected) {
  Compiled& c = Orders();
  const engine::CompiledDecide& decide = c.topology->aggregates().at(0).commands.at(type);
  const json command = json::parse(command_text);
  const json state = json::parse(state_text);
  const json meta = {{"topic", kCommandTopic}, {"partition", 0}, {"offset", 42},
                     {"timestamp", 1764300000000}, {"key", command["orderId"]}};
  const std::string what = std::string("order.") + type;
  for (auto _ : st) {
    engine::Decision decision;
    Status s = engine::Decide(decide, command, state, meta, 1764300000000, what, c.lua.get(),
                              &decision);
    if (!s.ok() || decision.rejection.has_value() != rejected) {
      st.SkipWithError(s.ok() ? "unexpected outcome" : s.ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(decision);
  }
  st.SetItemsProcessed(st.iterations());
}

constexpr char kState[] = R"({"product":"p-598","quantity":5,"status":"CREATED"})";

BENCHMARK_CAPTURE(BM_Decide, declarative_CreateOrder,  "CreateOrder",
                  R"({"type":"CreateOrder","orderId":"o-000042","product":"p-598",)"
                  R"("quantity":5,"commandId":"c-000042-0"})",
                  "null", false);
BENCHMARK_CAPTURE(BM_Decide, declarative_AdjustQuantity, "AdjustQuantity",
                  R"({"type":"AdjustQuantity","orderId":"o-000042","delta":-2,)"
                  R"("commandId":"c-000042-3"})",
                  kState, false);
BENCHMARK_CAPTURE(BM_Decide, declarative_AdjustQuantity_rejected, "AdjustQuantity",
                  R"({"type":"AdjustQuantity","orderId":"o-000042","delta":-2,)"
                  R"("commandId":"c-000042-3"})",
                  "null", true);
BENCHMARK_CAPTURE(BM_Decide, lua_CancelOrder, "CancelOrder",
                  R"({"type":"CancelOrder","orderId":"o-000042","commandId":"c-000042-9"})",
                  kState, false);
BENCHMARK_CAPTURE(BM_Decide, lua_CancelOrder_rejected, "CancelOrder",
                  R"({"type":"CancelOrder","orderId":"o-000042","commandId":"c-000042-9"})",
                  "null", true);

}  // namespace
}  // namespace kcqrs::bench
