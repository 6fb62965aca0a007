// What serving keeps per command on the stream thread: the decided outcome
// remembered by PositionLog for `POST /commands?wait=true` and retries.
#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/serving/position_log.h"

namespace kcqrs::engine {
namespace {

// One commit's outcomes per Append, as a stream thread hands them over: 64
// commands with fresh ids and an accepted outcome of the orders workload's
// size, into the default window (20,000 outcomes, full after the first
// few hundred commits). Per outcome.
void BM_PositionLogOutcomes(benchmark::State& state) {
  PositionLog log;
  CommandOutcome accepted;
  accepted.events =
      R"([{"type":"QuantityAdjusted","orderId":"o-004217","delta":3,"quantity":7}])";
  accepted.version = 4;
  int64_t next = 0;
  for (auto _ : state) {
    PositionLog::Entry entry;
    entry.consumed_next[{"orders.commands", 0}] = next;
    entry.outcomes.reserve(64);
    for (int i = 0; i < 64; ++i) {
      entry.outcomes.emplace_back("c-" + std::to_string(next++) + "-7", accepted);
    }
    log.Append(std::move(entry));
  }
  benchmark::DoNotOptimize(log.DecidedOutcome("c-1-7"));
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_PositionLogOutcomes);

}  // namespace
}  // namespace kcqrs::engine
