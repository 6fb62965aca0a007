// Issue 11's document-model question, measured on the real records: what
// the command handler does per command, done with each candidate library.
//
//   command:   parse a CreateOrder/AdjustQuantity command (~80 bytes) and
//              read the fields the rules read (type, orderId, commandId,
//              quantity).
//   aggregate: read the stored aggregate document of an order after eight
//              commands (/0: 295 bytes, {"commands": [dedup index],
//              "state": {...}, "version": n}; /1: the same with a full index
//              of 100 outcomes, 2.8 KB, as a hot aggregate holds it), look
//              for the command id in its index, set
//              state.quantity and version, append the new outcome (keeping
//              the last 100), and write it back.
//
// Candidates: nlohmann (parse() and dump()), the engine's codec around
// nlohmann (engine/codec/json_codec.h; what the hot path uses today), the
// engine's AggregateDocument (index kept as text, only the state parsed),
// RapidJSON (DOM in a memory pool, Writer), and simdjson on-demand (a
// reader: the output is written directly, copying untouched parts as
// text). Every candidate's output is checked once against the engine's
// before timing: a candidate that writes something else is void.
//
// Exactness: kcqrs keeps every JSON number's text (decimals are exact).
// nlohmann's parse(), RapidJSON's DOM and simdjson's get_double() read a
// decimal into a double; the engine's codec and simdjson's raw_json_token()
// keep the text. The records here hold only integers, so all of them write
// the same bytes; RapidJSON would need its SAX reader with
// kParseNumbersAsStringsFlag and RawNumber() to keep decimals exact.
#include <benchmark/benchmark.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <simdjson.h>

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "bench/micro/orders_workload.h"
#include "engine/codec/json_codec.h"
#include "engine/processors/aggregate_document.h"
#include "json/document.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs::bench {
namespace {

using json = kcqrs::Json;

constexpr size_t kKeep = 100;  // outcomes kept per aggregate
constexpr char kNewId[] = "c-000042-8";
constexpr int64_t kNewQuantity = 4;

const std::string& CommandText() {
  static const std::string text = OrderCommand(42, 3).value;
  return text;
}

const std::string& AggregateText() { return StoredOrderAggregate(); }

// The same aggregate with a full deduplication index (100 outcomes), as a
// hot aggregate holds it (a wallet, a product's stock): ~3 KB.
const std::string& FullAggregateText() {
  static const std::string text = [] {
    json doc = engine::ParseJson(AggregateText());
    json& commands = doc["commands"];
    for (int i = 0; commands.size() < kKeep; ++i) {
      commands.insert(commands.begin(),
                      json{{"id", "c-older-" + std::to_string(i)}, {"v", 1}});
    }
    return engine::DumpJson(doc);
  }();
  return text;
}

// ------------------------------------------------------------- command

struct CommandFields {
  std::string type, order_id, command_id;
  int64_t quantity = 0;
};

CommandFields CommandNlohmann(const std::string& text, bool engine_codec) {
  json j = engine_codec ? engine::ParseJson(text) : json::parse(text, nullptr, false);
  CommandFields f;
  f.type = j.value("type", "");
  f.order_id = j.value("orderId", "");
  f.command_id = j.value("commandId", "");
  f.quantity = j.value("quantity", int64_t{0});
  return f;
}

// RapidJSON at its best: the document and its parse stack in a memory pool
// over a buffer reused for every record (no malloc per value).
struct RapidArena {
  char value_buffer[1 << 16];
  char stack_buffer[1 << 14];
};

RapidArena& Arena() {
  static thread_local RapidArena arena;
  return arena;
}

using PoolAllocator = rapidjson::MemoryPoolAllocator<>;
using PooledDocument = rapidjson::GenericDocument<rapidjson::UTF8<>, PoolAllocator, PoolAllocator>;

CommandFields CommandRapid(const std::string& text) {
  PoolAllocator values(Arena().value_buffer, sizeof(Arena().value_buffer));
  PoolAllocator stack(Arena().stack_buffer, sizeof(Arena().stack_buffer));
  PooledDocument d(&values, sizeof(Arena().stack_buffer), &stack);
  d.Parse(text.data(), text.size());
  CommandFields f;
  auto str = [&](const char* name) -> std::string {
    auto it = d.FindMember(name);
    return it != d.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
  };
  f.type = str("type");
  f.order_id = str("orderId");
  f.command_id = str("commandId");
  auto q = d.FindMember("quantity");
  if (q != d.MemberEnd() && q->value.IsInt64()) f.quantity = q->value.GetInt64();
  return f;
}

CommandFields CommandSimd(simdjson::ondemand::parser& parser, const simdjson::padded_string& text) {
  CommandFields f;
  auto doc = parser.iterate(text);
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return f;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return f;
    std::string_view s;
    if (key == "type") {
      if (!field.value().get_string().get(s)) f.type = s;
    } else if (key == "orderId") {
      if (!field.value().get_string().get(s)) f.order_id = s;
    } else if (key == "commandId") {
      if (!field.value().get_string().get(s)) f.command_id = s;
    } else if (key == "quantity") {
      int64_t q = 0;
      if (!field.value().get_int64().get(q)) f.quantity = q;
    }
  }
  return f;
}

enum class Lib { kNlohmann, kEngineCodec, kAggregateDocument, kRapidJson, kSimdjson };

void BM_Command(benchmark::State& state, Lib lib) {
  const std::string& text = CommandText();
  const simdjson::padded_string padded(text);
  simdjson::ondemand::parser parser;
  for (auto _ : state) {
    CommandFields f;
    switch (lib) {
      case Lib::kNlohmann: f = CommandNlohmann(text, false); break;
      case Lib::kEngineCodec:
      case Lib::kAggregateDocument: f = CommandNlohmann(text, true); break;
      case Lib::kRapidJson: f = CommandRapid(text); break;
      case Lib::kSimdjson: f = CommandSimd(parser, padded); break;
    }
    if (f.order_id.empty()) {
      state.SkipWithError("no orderId read");
      break;
    }
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(state.iterations());
}

// ----------------------------------------------------------- aggregate

json NewOutcome() { return json{{"id", kNewId}, {"v", 9}}; }

std::string AggregateNlohmann(const std::string& stored, bool engine_codec) {
  json doc = engine_codec ? engine::ParseJson(stored) : json::parse(stored, nullptr, false);
  json& commands = doc["commands"];
  for (const json& c : commands) {
    if (c.value("id", "") == kNewId) return {};
  }
  doc["state"]["quantity"] = kNewQuantity;
  doc["version"] = doc.value("version", int64_t{0}) + 1;
  commands.push_back(NewOutcome());
  if (commands.size() > kKeep) commands.erase(commands.begin());
  return engine_codec ? engine::DumpJson(doc) : doc.dump();
}

std::string AggregateDocumentPath(const std::string& stored) {
  auto doc = engine::AggregateDocument::FromStored(stored);
  if (!doc || doc->HasOutcome(kNewId)) return {};
  doc->state()["quantity"] = kNewQuantity;
  doc->set_version(doc->version() + 1);
  doc->AppendOutcome(NewOutcome(), kKeep);
  return doc->Serialize();
}

std::string AggregateRapid(const std::string& stored) {
  PoolAllocator values(Arena().value_buffer, sizeof(Arena().value_buffer));
  PoolAllocator stack(Arena().stack_buffer, sizeof(Arena().stack_buffer));
  PooledDocument d(&values, sizeof(Arena().stack_buffer), &stack);
  d.Parse(stored.data(), stored.size());
  if (d.HasParseError() || !d.IsObject()) return {};
  auto& alloc = d.GetAllocator();
  rapidjson::Value& commands = d["commands"];
  for (const auto& c : commands.GetArray()) {
    auto id = c.FindMember("id");
    if (id != c.MemberEnd() && id->value.IsString() &&
        std::string_view(id->value.GetString(), id->value.GetStringLength()) == kNewId) {
      return {};
    }
  }
  d["state"]["quantity"].SetInt64(kNewQuantity);
  d["version"].SetInt64(d["version"].GetInt64() + 1);
  rapidjson::Value outcome(rapidjson::kObjectType);
  outcome.AddMember("id", rapidjson::StringRef(kNewId), alloc);
  outcome.AddMember("v", 9, alloc);
  commands.PushBack(outcome, alloc);
  if (commands.Size() > kKeep) commands.Erase(commands.Begin());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  d.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// simdjson reads; the output is written here: the untouched outcomes and
// state fields are copied as their raw text, as AggregateDocument does with
// its own scanner. Assumes the canonical layout kcqrs writes (sorted keys,
// no whitespace), which the check against the engine's output confirms.
std::string AggregateSimd(simdjson::ondemand::parser& parser, const simdjson::padded_string& text) {
  auto doc = parser.iterate(text);
  simdjson::ondemand::object top;
  if (doc.get_object().get(top)) return {};
  std::vector<std::string_view> outcomes;
  std::string out;
  out.reserve(text.size() + 32);
  int64_t version = 0;
  std::string state;
  for (auto field : top) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return {};
    if (key == "commands") {
      simdjson::ondemand::array commands;
      if (field.value().get_array().get(commands)) return {};
      // Each outcome's raw text; canonical keys are sorted, so "id" is
      // first: {"id":"<id>",...}.
      const std::string id_prefix = std::string("{\"id\":\"") + kNewId + "\"";
      for (auto c : commands) {
        simdjson::ondemand::object o;
        if (c.get_object().get(o)) return {};
        std::string_view raw;
        if (o.raw_json().get(raw)) return {};
        if (raw.substr(0, id_prefix.size()) == id_prefix) return {};
        outcomes.push_back(raw);
      }
    } else if (key == "state") {
      simdjson::ondemand::object s;
      if (field.value().get_object().get(s)) return {};
      state = "{";
      bool seen = false;
      for (auto sf : s) {
        std::string_view k;
        if (sf.unescaped_key().get(k)) return {};
        if (state.size() > 1) state += ',';
        state += '"';
        state += k;  // the orders' keys need no escaping
        state += "\":";
        if (k == "quantity") {
          seen = true;
          char buf[24];
          state.append(buf, std::to_chars(buf, buf + sizeof(buf), kNewQuantity).ptr);
          continue;
        }
        simdjson::ondemand::value v = sf.value();
        std::string_view raw;
        switch (v.type()) {
          case simdjson::ondemand::json_type::object: {
            simdjson::ondemand::object o;
            if (v.get_object().get(o) || o.raw_json().get(raw)) return {};
            break;
          }
          case simdjson::ondemand::json_type::array: {
            simdjson::ondemand::array a;
            if (v.get_array().get(a) || a.raw_json().get(raw)) return {};
            break;
          }
          default:
            raw = v.raw_json_token();
            while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n')) raw.remove_suffix(1);
        }
        state += raw;
      }
      if (!seen) return {};
      state += '}';
    } else if (key == "version") {
      if (field.value().get_int64().get(version)) return {};
    }
  }
  out += "{\"commands\":[";
  const size_t first = outcomes.size() + 1 > kKeep ? outcomes.size() + 1 - kKeep : 0;
  for (size_t i = first; i < outcomes.size(); ++i) {
    out += outcomes[i];
    out += ',';
  }
  out += "{\"id\":\"";
  out += kNewId;
  out += "\",\"v\":9}],\"state\":";
  out += state;
  out += ",\"version\":";
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), version + 1).ptr);
  out += '}';
  return out;
}

std::string Aggregate(Lib lib, const std::string& stored, simdjson::ondemand::parser& parser,
                      const simdjson::padded_string& padded) {
  switch (lib) {
    case Lib::kNlohmann: return AggregateNlohmann(stored, false);
    case Lib::kEngineCodec: return AggregateNlohmann(stored, true);
    case Lib::kAggregateDocument: return AggregateDocumentPath(stored);
    case Lib::kRapidJson: return AggregateRapid(stored);
    case Lib::kSimdjson: return AggregateSimd(parser, padded);
  }
  return {};
}

void BM_Aggregate(benchmark::State& state, Lib lib) {
  const std::string& stored = state.range(0) == 0 ? AggregateText() : FullAggregateText();
  const simdjson::padded_string padded(stored);
  simdjson::ondemand::parser parser;
  // Same bytes as the engine writes, or the candidate is void.
  const std::string want = AggregateDocumentPath(stored);
  const std::string got = Aggregate(lib, stored, parser, padded);
  if (got != want) {
    state.SkipWithError(("wrote something else: " + got.substr(0, 200)).c_str());
    return;
  }
  for (auto _ : state) {
    std::string out = Aggregate(lib, stored, parser, padded);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["doc_bytes"] = static_cast<double>(stored.size());
}

BENCHMARK_CAPTURE(BM_Command, nlohmann, Lib::kNlohmann);
BENCHMARK_CAPTURE(BM_Command, engine_codec, Lib::kEngineCodec);
BENCHMARK_CAPTURE(BM_Command, rapidjson, Lib::kRapidJson);
BENCHMARK_CAPTURE(BM_Command, simdjson_ondemand, Lib::kSimdjson);
BENCHMARK_CAPTURE(BM_Aggregate, nlohmann, Lib::kNlohmann)->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Aggregate, engine_codec, Lib::kEngineCodec)->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Aggregate, aggregate_document, Lib::kAggregateDocument)->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Aggregate, rapidjson, Lib::kRapidJson)->Arg(0)->Arg(1);
BENCHMARK_CAPTURE(BM_Aggregate, simdjson_ondemand, Lib::kSimdjson)->Arg(0)->Arg(1);

}  // namespace
}  // namespace kcqrs::bench
