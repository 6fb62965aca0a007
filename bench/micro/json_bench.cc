// JSON decode and encode of what the hot path parses and writes per command:
// the command itself, and the aggregate document the command handler reads
// from its store and writes back ({commands, state, version}). Each with
// nlohmann's own parse()/dump() and with the engine's codec
// (engine/codec/json_codec.h), which the hot path uses; and the command handler's
// whole per-command work on the aggregate document (engine/processors/aggregate_document.h).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "bench/micro/orders_workload.h"
#include "engine/processors/aggregate_document.h"
#include "engine/codec/json_codec.h"
#include "json/document.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs::bench {
namespace {

using json = kcqrs::Json;

// A typical command (about 80 bytes).
const std::string& CommandText() {
  static const std::string text = OrderCommand(42, 3).value;
  return text;
}

const std::string& AggregateText() { return StoredOrderAggregate(); }

enum class Codec { kNlohmann, kEngine };

void Decode(benchmark::State& state, const std::string& text, Codec codec) {
  for (auto _ : state) {
    json j = codec == Codec::kEngine ? engine::ParseJson(text)
                                     : json::parse(text, nullptr, /*allow_exceptions=*/false);
    benchmark::DoNotOptimize(j);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["doc_bytes"] = static_cast<double>(text.size());
}

void Encode(benchmark::State& state, const std::string& text, Codec codec) {
  const json doc = json::parse(text);
  for (auto _ : state) {
    std::string out = codec == Codec::kEngine ? engine::DumpJson(doc) : doc.dump();
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
  state.counters["doc_bytes"] = static_cast<double>(text.size());
}

void BM_JsonDecodeCommand(benchmark::State& state, Codec codec) {
  Decode(state, CommandText(), codec);
}
void BM_JsonEncodeCommand(benchmark::State& state, Codec codec) {
  Encode(state, CommandText(), codec);
}
void BM_JsonDecodeAggregate(benchmark::State& state, Codec codec) {
  Decode(state, AggregateText(), codec);
}
void BM_JsonEncodeAggregate(benchmark::State& state, Codec codec) {
  Encode(state, AggregateText(), codec);
}

// What the command handler does to the stored aggregate per command: read
// it, look for the command id, change the state and version, append the
// outcome, write it back.
void BM_AggregateDocumentUpdate(benchmark::State& state) {
  const std::string& stored = AggregateText();
  const json outcome = {{"events", json::array({{{"type", "QuantityAdjusted"},
                                                 {"orderId", "o-000042"},
                                                 {"product", "p-598"},
                                                 {"delta", 1},
                                                 {"quantity", 4}}})},
                        {"id", "c-000042-8"}};
  for (auto _ : state) {
    auto doc = engine::AggregateDocument::FromStored(stored);
    if (!doc || doc->HasOutcome("c-000042-8")) {
      state.SkipWithError("unexpected aggregate");
      break;
    }
    doc->state()["quantity"] = 4;
    doc->set_version(doc->version() + 1);
    doc->AppendOutcome(outcome, 100);
    std::string out = doc->Serialize();
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_JsonDecodeCommand, nlohmann, Codec::kNlohmann);
BENCHMARK_CAPTURE(BM_JsonDecodeCommand, engine, Codec::kEngine);
BENCHMARK_CAPTURE(BM_JsonEncodeCommand, nlohmann, Codec::kNlohmann);
BENCHMARK_CAPTURE(BM_JsonEncodeCommand, engine, Codec::kEngine);
BENCHMARK_CAPTURE(BM_JsonDecodeAggregate, nlohmann, Codec::kNlohmann);
BENCHMARK_CAPTURE(BM_JsonDecodeAggregate, engine, Codec::kEngine);
BENCHMARK_CAPTURE(BM_JsonEncodeAggregate, nlohmann, Codec::kNlohmann);
BENCHMARK_CAPTURE(BM_JsonEncodeAggregate, engine, Codec::kEngine);
BENCHMARK(BM_AggregateDocumentUpdate);

}  // namespace
}  // namespace kcqrs::bench
