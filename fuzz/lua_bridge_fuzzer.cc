// The Lua bridge (engine/lua/json_bridge.h) through a Runtime: JSON -> Lua
// -> JSON, with a snippet that returns its argument unchanged.
//
// Input: any bytes; those that kcqrs's codec parses as JSON (decimals kept
// as their text, as records reach Lua) are round-tripped.
// What must hold: nothing crashes or throws; the call fails only for
// documents nested deeper than the bridge's limit; and what comes back is
// the document as runtime.h says the round trip changes it (null members
// and trailing null elements dropped, unsigned integers above 2^63-1 as
// decimals of their digits, arrays with too many holes as objects),
// computed independently here by Expected(), compared with number types
// and decimals text for text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "json/document.h"

#include "decimal/decimal.h"
#include "engine/codec/json_codec.h"
#include "engine/lua/json_bridge.h"
#include "engine/lua/runtime.h"
#include "tests/support/json_identical.h"

namespace {

using json = kcqrs::Json;

[[noreturn]] void Fail(const std::string& what, const json& doc) {
  std::fprintf(stderr, "lua_bridge_fuzzer: %s\n  document: %s\n", what.c_str(),
               kcqrs::decimal::Dump(doc).substr(0, 2000).c_str());
  std::abort();
}

int Depth(const json& doc) {
  int deepest = 0;
  if (doc.is_structured()) {
    for (const auto& child : doc) deepest = std::max(deepest, Depth(child));
    return deepest + 1;
  }
  return 0;
}

// The round trip as runtime.h documents it.
json Expected(const json& doc) {
  switch (doc.type()) {
    case json::value_t::object: {
      json out = json::object();
      for (auto it = doc.begin(); it != doc.end(); ++it) {
        if (!it.value().is_null()) out[it.key()] = Expected(it.value());
      }
      return out;
    }
    case json::value_t::array: {
      size_t n = doc.size();
      while (n > 0 && doc[n - 1].is_null()) --n;
      size_t elements = 0;
      for (size_t i = 0; i < n; ++i) elements += doc[i].is_null() ? 0 : 1;
      const size_t holes = n - elements;
      if (holes > elements + kcqrs::lua::internal::kMaxArrayHoles) {
        json out = json::object();
        for (size_t i = 0; i < n; ++i) {
          if (!doc[i].is_null()) out[std::to_string(i + 1)] = Expected(doc[i]);
        }
        return out;
      }
      json out = json::array();
      for (size_t i = 0; i < n; ++i) out.push_back(Expected(doc[i]));
      return out;
    }
    case json::value_t::number_unsigned: {
      const uint64_t u = doc.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return kcqrs::decimal::FromText(std::to_string(u));
      }
      return json(static_cast<int64_t>(u));
    }
    default:
      return doc;
  }
}

bool Same(const json& a, const json& b) {
  return kcqrs::testing::IdenticalJson(a, b, {.any_integer_kind = true});
}

struct Fixture {
  std::unique_ptr<kcqrs::lua::Runtime> runtime;
  int identity = 0;
};

Fixture& GetFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    auto runtime = kcqrs::lua::Runtime::Create(kcqrs::lua::Limits{});
    if (!runtime.ok()) Fail("Runtime::Create: " + runtime.status().ToString(), nullptr);
    f->runtime = std::move(*runtime);
    auto id = f->runtime->Compile("return doc", {"doc"}, "fuzz.yaml", 1);
    if (!id.ok()) Fail("Compile: " + id.status().ToString(), nullptr);
    f->identity = *id;
    return f;
  }();
  return *fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json doc = kcqrs::engine::ParseJson(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (doc.is_discarded()) return 0;
  Fixture& f = GetFixture();
  auto result = f.runtime->Call(f.identity, {&doc}, 0);
  const int depth = Depth(doc);
  if (!result.ok()) {
    // Allow a little slack around the limit: whether the top level counts
    // as 0 or 1 is the bridge's business.
    if (depth < kcqrs::lua::internal::kMaxDepth - 1) {
      Fail("round trip failed: " + result.status().ToString(), doc);
    }
    return 0;
  }
  if (depth > kcqrs::lua::internal::kMaxDepth + 1) {
    Fail("a document deeper than the limit came back", doc);
  }
  const json expected = Expected(doc);
  // A top-level null is nil, and nil comes back as null.
  if (!Same(*result, expected)) {
    Fail("round trip changed the document: got " +
             kcqrs::decimal::Dump(*result).substr(0, 2000),
         doc);
  }
  return 0;
}
