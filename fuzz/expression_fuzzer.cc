// The expression language (topology/expression.h): compile and evaluate
// arbitrary text, as an expression and as a template.
//
// Input: the first line is the expression; the rest, when it is a JSON
// object, supplies the root documents ("command", "state", "event", "view",
// "meta"), else fixed ones are used. What must hold: nothing throws, crashes
// or reads out of bounds; every error is InvalidArgument, a compile error
// says "at column N: " with N inside the text; and a value computed from
// valid UTF-8 documents is itself valid JSON (it can be written out with
// DumpJson, as the engine does with emitted fields and rejection reasons).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "json/document.h"

#include "engine/codec/json_codec.h"
#include "topology/expression.h"

namespace {

using json = kcqrs::Json;
using kcqrs::topology::Expression;
using kcqrs::topology::Template;

[[noreturn]] void Fail(const std::string& what, std::string_view expr) {
  std::fprintf(stderr, "expression_fuzzer: %s\n  expression: %.*s\n", what.c_str(),
               static_cast<int>(expr.size()), expr.data());
  std::abort();
}

const std::vector<std::string>& Roots() {
  static const std::vector<std::string> roots = {"command", "state", "event", "view", "meta"};
  return roots;
}

const json& DefaultDocuments() {
  static const json docs = json::parse(R"({
    "command": {"type": "PlaceOrder", "orderId": "o-1", "quantity": 3, "price": 2.5,
                "items": [{"sku": "a", "n": 1}, {"sku": "\u00e9t\u00e9", "n": 2}],
                "big": 9223372036854775807, "neg": -9223372036854775807, "u": 18446744073709551615,
                "text": "a\u0000b", "emoji": "\ud83d\ude00", "flag": true, "none": null},
    "state": {"total": 10, "status": "OPEN", "tags": ["x", "y"], "nested": {"a": {"b": [1, [2]]}}},
    "event": {"product": "p", "delta": -2},
    "view": {"orders": 1, "sum": 0.1},
    "meta": {"topic": "orders-commands", "partition": 0, "offset": 42}
  })");
  return docs;
}

void CheckCompileError(const kcqrs::Status& status, std::string_view text) {
  if (status.code() != kcqrs::Status::Code::kInvalidArgument) {
    Fail("compile error is not InvalidArgument: " + status.ToString(), text);
  }
  const std::string& message = status.message();
  constexpr std::string_view kPrefix = "at column ";
  if (message.compare(0, kPrefix.size(), kPrefix) != 0) {
    Fail("compile error without a column: " + message, text);
  }
  const long column = std::strtol(message.c_str() + kPrefix.size(), nullptr, 10);
  // The end of the text is column size + 1.
  if (column < 1 || static_cast<size_t>(column) > text.size() + 1) {
    Fail("compile error column out of the text: " + message, text);
  }
}

void CheckRuntimeError(const kcqrs::Status& status, std::string_view text) {
  if (status.code() != kcqrs::Status::Code::kInvalidArgument) {
    Fail("evaluation error is not InvalidArgument: " + status.ToString(), text);
  }
}

// The engine writes results with DumpJson; an invalid UTF-8 string would
// throw there (type_error 316), far from the expression that made it. A
// decimal must come out as a JSON number.
void CheckDumpable(const json& value, std::string_view text) {
  try {
    const std::string written = kcqrs::engine::DumpJson(value);
    if (kcqrs::engine::ParseJson(written).is_discarded()) {
      Fail("result written as text that is not JSON: " + written, text);
    }
  } catch (const json::exception& e) {
    Fail(std::string("result cannot be written as JSON: ") + e.what(), text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view text = input.substr(0, newline);

  json custom;
  if (newline != std::string_view::npos) {
    // As the engine reads records: numbers other than integers are decimals.
    custom = kcqrs::engine::ParseJson(input.substr(newline + 1));
  }
  const json& docs = custom.is_object() ? custom : DefaultDocuments();
  std::vector<const json*> roots;
  for (const std::string& name : Roots()) {
    auto it = docs.find(name);
    roots.push_back(it == docs.end() ? nullptr : &*it);
  }
  Expression::Context ctx;
  ctx.roots = roots.data();
  ctx.num_roots = roots.size();
  ctx.now_ms = 1700000000000;

  auto expression = Expression::Compile(text, Roots());
  if (!expression.ok()) {
    CheckCompileError(expression.status(), text);
  } else {
    if (expression->text() != text) Fail("text() differs from the source", text);
    (void)expression->SinglePath();
    (void)expression->UsesNow();
    for (size_t i = 0; i < Roots().size(); ++i) (void)expression->UsesRoot(i);
    auto value = expression->Evaluate(ctx);
    if (value.ok()) {
      CheckDumpable(*value, text);
    } else {
      CheckRuntimeError(value.status(), text);
    }
    auto condition = expression->EvaluateBool(ctx);
    if (!condition.ok()) CheckRuntimeError(condition.status(), text);
    if (value.ok() && value->is_boolean() && (!condition.ok() || *condition != value->get<bool>())) {
      Fail("EvaluateBool differs from Evaluate", text);
    }
  }

  auto tmpl = Template::Compile(text, Roots());
  if (!tmpl.ok()) {
    CheckCompileError(tmpl.status(), text);
  } else {
    auto rendered = tmpl->Render(ctx);
    if (rendered.ok()) {
      CheckDumpable(json(*rendered), text);
    } else {
      CheckRuntimeError(rendered.status(), text);
    }
  }
  return 0;
}
