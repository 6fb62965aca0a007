#include "engine/lua/runtime.h"

#include "decimal/decimal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "json/document.h"

namespace kcqrs::lua {
namespace {

using json = kcqrs::Json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<Runtime> NewRuntime(const Limits& limits = {}) {
  auto runtime = Runtime::Create(limits);
  EXPECT_TRUE(runtime.ok()) << runtime.status().ToString();
  return runtime.ok() ? std::move(runtime).value() : nullptr;
}

// Compiles `code` as a function of (x) at topology.yaml:10 and calls it.
Result<json> Eval(Runtime& runtime, const std::string& code,
                  const json* x = nullptr, int64_t now_ms = 0) {
  auto function = runtime.Compile(code, {"x"}, "topology.yaml", 10);
  if (!function.ok()) return function.status();
  return runtime.Call(*function, {x}, now_ms);
}

json Echo(Runtime& runtime, const json& value) {
  auto result = Eval(runtime, "return x", &value);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : json("<error>");
}

// The bound on a call that must end rather than hang. The cases it guards
// ran for minutes or hours before their fix; it only has to tell a hang from
// a slow call in a sanitizer build on a loaded machine (ThreadSanitizer took
// 9.6 s for one memory bomb under load). Not a performance measure.
constexpr double kEndsWithinSeconds = 60.0;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

// ---- JSON <-> Lua ----------------------------------------------------------

TEST(LuaRuntimeTest, NestedDocumentsRoundTrip) {
  auto rt = NewRuntime();
  const json doc = json::parse(R"({
    "order": {"id": "o-1", "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
              "tags": ["x", ["y", ["z"]]], "paid": false, "total": 12.5},
    "empty_object": {}, "empty_array": [], "nested_empty": [[], {}]
  })");
  EXPECT_TRUE(decimal::Equal(Echo(*rt, doc), doc));
}

json Dec(std::string_view text) { return decimal::FromText(text); }

TEST(LuaRuntimeTest, IntegersStayIntegersAndDecimalsKeepTheirText) {
  auto rt = NewRuntime();
  const json doc = {{"i", 3},           {"f", Dec("3.0")},  {"neg", -7},
                    {"max", INT64_MAX}, {"min", INT64_MIN}, {"tiny", Dec("1e-300")},
                    {"cents", Dec("12.50")}, {"big", Dec("99999999999999999999")}};
  const json back = Echo(*rt, doc);
  EXPECT_EQ(decimal::Dump(back), decimal::Dump(doc));
  EXPECT_TRUE(back["i"].is_number_integer());
  EXPECT_TRUE(decimal::IsDecimal(back["f"]));
  EXPECT_EQ(back["max"].get<int64_t>(), INT64_MAX);

  // Lua's own arithmetic decides in Lua: // on integers is an integer, / a
  // float, and a float leaves as the decimal it prints as.
  auto result = Eval(
      *rt, "return {a = 7 // 2, b = 7 / 2, c = 2^2, d = math.tointeger(4.0), e = 0.1 + 0.2}");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(decimal::Dump(*result), R"({"a":3,"b":3.5,"c":4.0,"d":4,"e":0.30000000000000004})");
}

TEST(LuaRuntimeTest, UnsignedBeyondInt64IsAnExactDecimal) {
  auto rt = NewRuntime();
  const json big = std::numeric_limits<uint64_t>::max();
  auto result = Eval(*rt, "return {x = x, y = x + 1, t = decimal.isdecimal(x)}", &big);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(decimal::Dump(*result),
            R"({"t":true,"x":18446744073709551615,"y":18446744073709551616})");
}

// The money rules of docs/topology.md ("Numbers in Lua"), as a user writes
// them.
TEST(LuaRuntimeTest, DecimalsComputeExactly) {
  auto rt = NewRuntime();
  const json in = {{"a", Dec("0.1")}, {"b", Dec("0.2")}, {"c", Dec("0.3")},
                   {"amount", Dec("12.50")}, {"big", Dec("99999999999999999999")}};
  auto r = Eval(*rt, R"(
    local zero = x.a + x.b - x.c
    return {
      zero = zero, is_zero = zero == decimal.new(0), cmp = decimal.cmp(zero, 0),
      plain_eq = (zero == 0),  -- Lua: a userdata is never == a number
      sum = x.amount + 1, prod = x.amount * 3, quot = x.amount / 2,
      big = x.big + 100, lt = x.amount < 13, le = 12 <= x.amount,
      text = "balance " .. x.amount, str = tostring(x.amount),
      rounded = decimal.round(decimal.new("2.675"), 2, "half_up"),
      div = decimal.div(100, 3, 2), method = x.amount:round(0),
      fits = decimal.fits(x.amount, 2), nofit = decimal.fits(decimal.new("1.005"), 2),
      notnum = decimal.fits("12.50", 2), int = decimal.tointeger(decimal.new("4.00")),
      noint = decimal.tointeger(x.amount), neg = -x.amount, mod = x.amount % 5,
      same = decimal.new("1.50") == decimal.new("1.5"), new = decimal.new("7"),
    })", &in);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(decimal::Dump(*r),
            R"({"big":100000000000000000099,"cmp":0,"div":33.33,"fits":true,"int":4,)"
            R"("is_zero":true,"le":true,"lt":true,"method":12,"mod":2.50,"neg":-12.50,)"
            R"("new":7,"nofit":false,"notnum":false,"plain_eq":false,"prod":37.50,)"
            R"("quot":6.25,"rounded":2.68,"same":true,"str":"12.50","sum":13.50,)"
            R"("text":"balance 12.50","zero":0.0})");
}

TEST(LuaRuntimeTest, DecimalErrorsSayWhatAndWhere) {
  auto rt = NewRuntime();
  const json in = {{"amount", Dec("12.50")}, {"n", 100}};
  auto error = [&](const std::string& code) {
    auto r = Eval(*rt, code, &in);
    return r.ok() ? std::string("<no error>") : r.status().message();
  };
  EXPECT_THAT(error("return x.amount + 0.5"),
              HasSubstr("decimal +: a float cannot be mixed with a decimal exactly"));
  EXPECT_THAT(error("return x.amount / 3"),
              HasSubstr("decimal /: the quotient has no exact decimal of at most 38 digits: "
                        "round it with decimal.div(a, b, scale)"));
  EXPECT_THAT(error("return x.amount / 0"), HasSubstr("decimal /: division by zero"));
  EXPECT_THAT(error("return x.amount * decimal.new('1234567890123456789012345678901234567.1')"),
              HasSubstr("decimal *: decimal result needs more than 38 digits"));
  EXPECT_THAT(error("return x.amount + 'x'"),
              HasSubstr("decimal +: expected a decimal or an integer, found string"));
  EXPECT_THAT(error("return x.amount // 2"), HasSubstr("use decimal.div(a, b, scale, mode)"));
  EXPECT_THAT(error("return decimal.new('1.')"),
              HasSubstr("decimal.new: \"1.\" is not a number"));
  EXPECT_THAT(error("return decimal.new(0.1)"), HasSubstr("decimal.new: a float is inexact"));
  EXPECT_THAT(error("return decimal.round(x.amount, 2, 'nearest')"),
              HasSubstr("decimal.round: expected a rounding mode"));
  EXPECT_THAT(error("return decimal.round(x.amount, 99)"),
              HasSubstr("decimal.round: expected a scale (an integer from -38 to 38)"));
  EXPECT_THAT(error("return x.amount .. {}"), HasSubstr("attempt to concatenate a table value"));
  EXPECT_THAT(error("decimal.new = nil"), HasSubstr("decimal"));
  EXPECT_THAT(error("return getmetatable(x.amount)"), HasSubstr("<no error>"));
  // Integer overflow stays an error, decimals or not (issue 12's case).
  EXPECT_THAT(error("return 9223372036854775800 + x.n"),
              HasSubstr("topology.yaml:10: integer overflow in"));
  EXPECT_THAT(error("return decimal.new(9223372036854775800) + 100"), HasSubstr("<no error>"));
}

TEST(LuaRuntimeTest, UnicodeStringsRoundTripByteForByte) {
  auto rt = NewRuntime();
  const json doc = {{"name", "Zoë Ångström — 東京 😀"}, {"ключ", "значение"}};
  EXPECT_EQ(Echo(*rt, doc), doc);
  auto len =
      Eval(*rt, "return {bytes = #x.name, chars = utf8.len(x.name)}", &doc);
  ASSERT_TRUE(len.ok()) << len.status().ToString();
  EXPECT_EQ((*len)["chars"], 19);
  EXPECT_EQ((*len)["bytes"], doc["name"].get<std::string>().size());
}

TEST(LuaRuntimeTest, EmptyTablesAreObjectsUnlessMarkedAsArrays) {
  auto rt = NewRuntime();
  // An empty JSON array keeps its mark through Lua, even when emptied there.
  EXPECT_EQ(Echo(*rt, json::array()), json::array());
  const json three = {1, 2, 3};
  auto emptied =
      Eval(*rt, "while #x > 0 do table.remove(x) end return x", &three);
  ASSERT_TRUE(emptied.ok()) << emptied.status().ToString();
  EXPECT_EQ(*emptied, json::array());

  auto result = Eval(*rt, R"(
    return {plain = {}, marked = array(), marked_table = array({}),
            seq = {1, 2, 3}, mixed = {1, 2, k = "v"}, sparse = {[10] = "a", [20] = "b"}}
  )");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, json::parse(R"({
    "plain": {}, "marked": [], "marked_table": [], "seq": [1, 2, 3],
    "mixed": {"1": 1, "2": 2, "k": "v"}, "sparse": {"10": "a", "20": "b"}})"));
}

TEST(LuaRuntimeTest, NullsInsideArraysSurviveTrailingNullsAndNullMembersDoNot) {
  auto rt = NewRuntime();
  EXPECT_EQ(Echo(*rt, json::parse("[1, null, 3]")),
            json::parse("[1, null, 3]"));
  EXPECT_EQ(Echo(*rt, json::parse("[null, null, 3]")),
            json::parse("[null, null, 3]"));
  // nil cannot sit in a table: documented losses.
  EXPECT_EQ(Echo(*rt, json::parse("[1, null]")), json::parse("[1]"));
  EXPECT_EQ(Echo(*rt, json::parse(R"({"a": null, "b": 1})")),
            json::parse(R"({"b": 1})"));
  // null arguments and a nil return are null.
  EXPECT_EQ(Echo(*rt, json(nullptr)), json(nullptr));
  auto nil = Eval(*rt, "local y = x");
  ASSERT_TRUE(nil.ok());
  EXPECT_TRUE(nil->is_null());
}

TEST(LuaRuntimeTest, ArgumentsAreCopiesTheSnippetCanChange) {
  auto rt = NewRuntime();
  const json state = {{"count", 1}, {"items", {"a"}}};
  auto f = rt->Compile(
      "state.count = state.count + 1\n"
      "state.items[#state.items + 1] = 'b'\nreturn state",
      {"state"}, "topology.yaml", 1);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto result = rt->Call(*f, {&state}, 0);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, json::parse(R"({"count": 2, "items": ["a", "b"]})"));
  EXPECT_EQ(state["count"], 1);  // the caller's document is untouched
}

TEST(LuaRuntimeTest, ValuesThatAreNotJsonFailNamingThePath) {
  auto rt = NewRuntime();
  auto function =
      Eval(*rt, "return {events = {{type = 'A', f = function() end}}}");
  ASSERT_FALSE(function.ok());
  EXPECT_TRUE(function.status().IsInvalidArgument());
  EXPECT_EQ(function.status().message(),
            "topology.yaml:10: the return value is not JSON: "
            "$.events[1].f is a function, which JSON cannot represent");

  auto cycle = Eval(*rt, "local t = {a = {}} t.a.back = t return t");
  ASSERT_FALSE(cycle.ok());
  EXPECT_THAT(cycle.status().message(),
              HasSubstr("$.a.back is a table that contains itself"));

  auto nan = Eval(*rt, "return {v = 0/0}");
  ASSERT_FALSE(nan.ok());
  EXPECT_THAT(nan.status().message(), HasSubstr("$.v is NaN"));

  auto bad_utf8 = Eval(*rt, R"(return {["odd key"] = {"\xff"}})");
  ASSERT_FALSE(bad_utf8.ok());
  EXPECT_THAT(
      bad_utf8.status().message(),
      HasSubstr(R"($["odd key"][1] is a string that is not valid UTF-8)"));

  auto float_key = Eval(*rt, "return {[1.5] = true}");
  ASSERT_FALSE(float_key.ok());
  EXPECT_THAT(float_key.status().message(),
              HasSubstr("has a key of type number (1.5)"));

  // 1 and "1" are two Lua keys but one JSON member name.
  auto both = Eval(*rt, "return {x = {[1] = 'a', ['1'] = 'b', y = true}}");
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("$.x"));
  EXPECT_THAT(both.status().message(),
              HasSubstr("appears both as an integer key and as a string key"));

  auto deep = Eval(*rt, "local t = {} for i = 1, 300 do t = {t} end return t");
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep.status().message(),
              HasSubstr("nests deeper than 200 levels"));
}

TEST(LuaRuntimeTest, DeeplyNestedArgumentIsAnErrorNamingTheArgument) {
  auto rt = NewRuntime();
  json deep = json::array();
  for (int i = 0; i < 300; ++i) deep = json::array({deep});
  auto f = rt->Compile("return 1", {"state", "command"}, "topology.yaml", 7);
  ASSERT_TRUE(f.ok());
  auto result = rt->Call(*f, {nullptr, &deep}, 0);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "topology.yaml:7: argument 2 (command): JSON nests deeper than 200 "
            "levels");
  EXPECT_TRUE(rt->Call(*f, {nullptr, nullptr}, 0).ok());
}

// The bridge stops at 200 levels by itself, whatever limit the JSON parser
// had: 100,000 levels of arrays or objects neither overflow the C stack nor
// the Lua stack.
TEST(LuaRuntimeTest, VeryDeepDocumentsAreAClearErrorNotACrash) {
  auto rt = NewRuntime();
  auto f = rt->Compile("return 1", {"state"}, "topology.yaml", 3);
  ASSERT_TRUE(f.ok());
  for (const bool objects : {false, true}) {
    json deep = 1;
    for (int i = 0; i < 100'000; ++i) {  // moves only: no recursive copy
      json outer = objects ? json::object() : json::array();
      if (objects) {
        outer["a"] = std::move(deep);
      } else {
        outer.push_back(std::move(deep));
      }
      deep = std::move(outer);
    }
    const auto start = std::chrono::steady_clock::now();
    auto result = rt->Call(*f, {&deep}, 0);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().message(),
              "topology.yaml:3: argument 1 (state): JSON nests deeper than "
              "200 levels");
    json shallow = {{"a", {{"b", 1}}}};
    EXPECT_TRUE(rt->Call(*f, {&shallow}, 0).ok());
  }
  // Lua -> JSON: a table nested 100,000 deep.
  auto back = Eval(*rt,
                   "local t = {} for i = 1, 1e5 do t = {t} end return t");
  ASSERT_FALSE(back.ok());
  EXPECT_THAT(back.status().message(), HasSubstr("nests deeper than 200"));
}

// ---- Snippets as the engine uses them --------------------------------------

TEST(LuaRuntimeTest, DecideEmitsEventsOrRejects) {
  auto rt = NewRuntime();
  auto decide = rt->Compile(R"(
    if state == nil then
      return {{type = "OrderCreated", id = command.id, items = command.items, at = now()}}
    end
    return reject("already_exists", "order " .. command.id .. " exists")
  )",
                            {"state", "command"}, "topology.yaml", 42);
  ASSERT_TRUE(decide.ok()) << decide.status().ToString();
  const json command = {{"id", "o-1"}, {"items", {{{"sku", "a"}, {"qty", 2}}}}};

  auto created = rt->Call(*decide, {nullptr, &command}, 1700000000123);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(*created, json::parse(R"([{"type": "OrderCreated", "id": "o-1",
      "items": [{"sku": "a", "qty": 2}], "at": 1700000000123}])"));
  EXPECT_FALSE(AsRejection(*created).has_value());

  const json state = {{"id", "o-1"}};
  auto rejected = rt->Call(*decide, {&state, &command}, 1700000000456);
  ASSERT_TRUE(rejected.ok()) << rejected.status().ToString();
  EXPECT_EQ(
      *rejected,
      json::parse(
          R"({"$reject": {"code": "already_exists", "reason": "order o-1 exists"}})"));
  auto rejection = AsRejection(*rejected);
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->code, "already_exists");
  EXPECT_EQ(rejection->reason, "order o-1 exists");
}

TEST(LuaRuntimeTest, AsRejectionWantsExactlyTheRejectShape) {
  EXPECT_FALSE(
      AsRejection(json::parse(R"({"$reject": {"code": "c"}})")).has_value());
  EXPECT_FALSE(
      AsRejection(
          json::parse(R"({"$reject": {"code": "c", "reason": "r"}, "x": 1})"))
          .has_value());
  EXPECT_FALSE(
      AsRejection(json::parse(R"([{"$reject": {"code": "c", "reason": "r"}}])"))
          .has_value());
  auto rt = NewRuntime();
  auto no_reason = Eval(*rt, "return reject('gone')");
  ASSERT_TRUE(no_reason.ok());
  auto rejection = AsRejection(*no_reason);
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->code, "gone");
  EXPECT_EQ(rejection->reason, "");
}

TEST(LuaRuntimeTest, NowReturnsTheTimestampOfTheCall) {
  auto rt = NewRuntime();
  auto f =
      rt->Compile("return {now(), math.type(now())}", {}, "topology.yaml", 1);
  ASSERT_TRUE(f.ok());
  auto first = rt->Call(*f, {}, 1234567890123);
  auto second = rt->Call(*f, {}, 42);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, json::parse(R"([1234567890123, "integer"])"));
  EXPECT_EQ(*second, json::parse(R"([42, "integer"])"));
}

// ---- The sandbox
// -------------------------------------------------------------

TEST(LuaRuntimeTest, ForbiddenGlobalsAreAbsent) {
  auto rt = NewRuntime();
  for (const char* expr : {"io",
                           "os",
                           "package",
                           "require",
                           "debug",
                           "load",
                           "loadstring",
                           "dofile",
                           "loadfile",
                           "collectgarbage",
                           "coroutine",
                           "print",
                           "_G",
                           "string.dump",
                           "('').dump",
                           "math.random",
                           "math.randomseed",
                           "unpack",
                           "module",
                           "warn"}) {
    auto result = Eval(*rt, std::string("return type(") + expr + ")");
    ASSERT_TRUE(result.ok()) << expr << ": " << result.status().ToString();
    EXPECT_EQ(*result, "nil") << expr;
  }
  // What is allowed is there.
  auto allowed = Eval(*rt, R"(
    return {type(table.unpack), type(string.format), type(math.floor), type(utf8.char),
            type(pcall), type(setmetatable), type(now), type(reject), type(array)})");
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_EQ(*allowed, json(std::vector<std::string>(9, "function")));
}

TEST(LuaRuntimeTest, LibraryTablesAndTheStringMetatableAreReadOnly) {
  auto rt = NewRuntime();
  for (const char* code :
       {"string.upper = nil", "rawset(string, 'upper', print)", "math.pi = 3",
        "table.insert(table, 1)", "setmetatable(string, {})"}) {
    auto result = Eval(*rt, code);
    EXPECT_FALSE(result.ok()) << code;
  }
  auto hidden = Eval(*rt, "return getmetatable('')");
  ASSERT_TRUE(hidden.ok());
  EXPECT_EQ(*hidden, false);
  auto still =
      Eval(*rt, "return {string.upper('a'), ('b'):upper(), math.pi > 3}");
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_EQ(*still, json::parse(R"(["A", "B", true])"));
}

TEST(LuaRuntimeTest, GcMetamethodsAreRefused) {
  auto rt = NewRuntime();
  auto result =
      Eval(*rt, "setmetatable({}, {__gc = function() while true do end end})");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.status().message(),
              HasSubstr("__gc metamethods are not allowed"));
}

TEST(LuaRuntimeTest, GlobalsDoNotLeakAcrossCallsOrSnippets) {
  auto rt = NewRuntime();
  auto writer =
      rt->Compile("counter = (counter or 0) + 1\nstring = nil\nreturn counter",
                  {}, "topology.yaml", 1);
  auto reader =
      rt->Compile("return {counter = counter, up = string.upper('x')}", {},
                  "topology.yaml", 5);
  auto env_swap = rt->Compile("_ENV = {}", {}, "topology.yaml", 9);
  ASSERT_TRUE(writer.ok() && reader.ok() && env_swap.ok());
  for (int i = 0; i < 3; ++i) {
    auto counted = rt->Call(*writer, {}, 0);
    ASSERT_TRUE(counted.ok()) << counted.status().ToString();
    EXPECT_EQ(*counted, 1) << "call " << i;
    auto read = rt->Call(*reader, {}, 0);
    ASSERT_TRUE(read.ok()) << read.status().ToString();
    EXPECT_EQ(*read, json::parse(R"({"up": "X"})"));
  }
  ASSERT_TRUE(rt->Call(*env_swap, {}, 0).ok());
  ASSERT_TRUE(rt->Call(*writer, {}, 0).ok());
  // A global written by a call that then failed does not leak either.
  auto failing = rt->Compile("leak = 1\nerror('no')", {}, "topology.yaml", 1);
  ASSERT_TRUE(failing.ok());
  EXPECT_FALSE(rt->Call(*failing, {}, 0).ok());
  auto leak = Eval(*rt, "return leak");
  ASSERT_TRUE(leak.ok());
  EXPECT_TRUE(leak->is_null());
}

TEST(LuaRuntimeTest, PcallStillCatchesOrdinaryErrors) {
  auto rt = NewRuntime();
  auto result = Eval(*rt, R"(
    local ok, err = pcall(error, "boom", 0)
    local ok2, err2 = xpcall(function() error({code = 7}) end, function(e) return e.code end)
    return {ok = ok, err = err, ok2 = ok2, err2 = err2, sum = select(2, pcall(function(a, b) return a + b end, 1, 2))})");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(
      *result,
      json::parse(
          R"({"ok": false, "err": "boom", "ok2": false, "err2": 7, "sum": 3})"));
}

// ---- Limits
// --------------------------------------------------------------------

TEST(LuaRuntimeTest, RunawayLoopHitsTheBudgetAndTheNextCallWorks) {
  auto rt = NewRuntime();
  const auto start = std::chrono::steady_clock::now();
  auto loop = Eval(*rt, "local n = 0\nwhile true do n = n + 1 end");
  EXPECT_LT(Seconds(start), kEndsWithinSeconds);
  ASSERT_FALSE(loop.ok());
  EXPECT_TRUE(loop.status().IsInvalidArgument());
  EXPECT_EQ(
      loop.status().message(),
      "topology.yaml:11: instruction budget of 1000000 instructions exceeded");
  auto next = Eval(*rt, "return 1 + 1");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(*next, 2);
}

TEST(LuaRuntimeTest, BudgetIsPerCall) {
  Limits limits;
  limits.instructions = 100'000;
  auto rt = NewRuntime(limits);
  // About 40% of the budget per call: fine every time, not cumulative.
  auto f = rt->Compile("local s = 0 for i = 1, 10000 do s = s + i end return s",
                       {}, "topology.yaml", 1);
  ASSERT_TRUE(f.ok());
  for (int i = 0; i < 5; ++i) {
    auto r = rt->Call(*f, {}, 0);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, 50005000);
  }
  auto over =
      rt->Compile("local s = 0 for i = 1, 100000 do s = s + i end return s", {},
                  "topology.yaml", 1);
  ASSERT_TRUE(over.ok());
  auto r = rt->Call(*over, {}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("instruction budget of 100000"));
}

TEST(LuaRuntimeTest, PcallCannotSwallowTheBudget) {
  auto rt = NewRuntime();
  for (const char* code :
       {"while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) "
        "return e end) end",
        "while true do pcall(pcall, function() while true do end end) end",
        "while true do xpcall(function() while true do end end,\n"
        "                     function() while true do end end) end",
        "local t = setmetatable({}, {__index = function() while true do end "
        "end})\n"
        "while true do pcall(function() return t.x end) end"}) {
    const auto start = std::chrono::steady_clock::now();
    auto result = Eval(*rt, code);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds) << code;
    ASSERT_FALSE(result.ok()) << code;
    EXPECT_THAT(result.status().message(),
                HasSubstr("instruction budget of 1000000"))
        << code;
    EXPECT_THAT(result.status().message(), StartsWith("topology.yaml:1"))
        << code;
  }
  EXPECT_TRUE(Eval(*rt, "return 1").ok());
}

TEST(LuaRuntimeTest, LibraryLoopsAreChargedToTheBudget) {
  auto rt = NewRuntime();
  for (const char* code :
       {"table.move({}, 1, 1e15, 2)",
        // 42 elements, but a border (#t) of 2^40: the shifting loop of
        // table.insert would run 2^40 times in C.
        "local t = {} for k = 0, 40 do t[2^k] = 1 end t[5] = 1 t[9] = 1\n"
        "assert(#t == 2^40) table.insert(t, 1, 'x')",
        "table.concat(setmetatable({}, {__index = rawlen}), '', 1, 1e15)",
        "table.unpack({}, 1, 1e8)"}) {
    const auto start = std::chrono::steady_clock::now();
    auto result = Eval(*rt, code);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds) << code;
    ASSERT_FALSE(result.ok()) << code;
    EXPECT_THAT(result.status().message(), HasSubstr("instruction budget"))
        << code;
  }
  auto len = Eval(*rt,
                  "table.insert(setmetatable({}, {__len = function() return "
                  "1e15 end}), 1, 'x')");
  ASSERT_FALSE(len.ok());
  EXPECT_THAT(len.status().message(),
              HasSubstr("__len metamethod are not supported"));
  auto empty =
      Eval(*rt, "return string.rep('', 1e15) .. string.rep('', 1e15, '')");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(*empty, "");
  auto normal = Eval(*rt, R"(
    local t = {5, 3, 1, 4, 2}
    table.sort(t) table.insert(t, 6) table.remove(t, 1)
    return {table.concat(t, ","), select('#', table.unpack(t)), table.move(t, 1, 2, 1, {})})");
  ASSERT_TRUE(normal.ok()) << normal.status().ToString();
  EXPECT_EQ(*normal, json::parse(R"(["2,3,4,5,6", 5, [2, 3]])"));
}

// Pattern matching runs in C: a backtracking pattern is charged step by
// step, so that it ends with the budget error instead of holding the stream
// thread for hours.
TEST(LuaRuntimeTest, PathologicalPatternsHitTheBudget) {
  auto rt = NewRuntime();
  // A 1 MB field with a run of spaces inside: the trim idiom backtracks
  // over the run from every position of it.
  const json field = "x" + std::string(1 << 20, ' ') + "x";
  for (const char* code : {
           "return x:match('^%s*(.-)%s*$')",
           "return (x:gsub('^%s*(.-)%s*$', '%1'))",
           "return string.match(x, '^%s*(.-)%s*$')",
           "return (x .. 'x'):find('%s*%s*%s*y')",
           "return string.rep('a', 300):find('.-.-.-.-b')",
           "return string.rep('a', 300):match('(.-)(.-)(.-)(.-)b')",
           "for a in string.rep('a', 300):gmatch('.-.-.-.-b') do end",
           "return (string.rep('a', 300):gsub('.-.-.-.-b', 'x'))",
           "local n = 0 for i = 1, 1e9 do n = n + #x:gsub(' ', '') end",
           "local s = string.rep('a', 1e6) return s:find(string.rep('a', 1e5) .. 'b', 1, true)",
       }) {
    const auto start = std::chrono::steady_clock::now();
    auto result = Eval(*rt, code, &field);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds) << code;
    EXPECT_FALSE(result.ok()) << code;
    if (result.ok()) continue;
    EXPECT_TRUE(result.status().IsInvalidArgument()) << code;
    EXPECT_THAT(result.status().message(),
                HasSubstr("instruction budget of 1000000 instructions exceeded"))
        << code;
    EXPECT_THAT(result.status().message(), StartsWith("topology.yaml:1"))
        << code;
    auto next = Eval(*rt, "return ('  a b  '):match('^%s*(.-)%s*$')");
    ASSERT_TRUE(next.ok()) << code << " then: " << next.status().ToString();
    EXPECT_EQ(*next, "a b");
  }
}

// pcall does not catch the budget error of a pattern either, and a pattern
// run inside a gsub callback shares the call's budget.
TEST(LuaRuntimeTest, PcallCannotSwallowAPatternsBudget) {
  auto rt = NewRuntime();
  for (const char* code : {
           "while true do pcall(string.find, string.rep('a', 300), "
           "'.-.-.-.-b') end",
           "return (('x'):rep(100):gsub('x', function(c)\n"
           "  return tostring(string.rep('a', 300):find('.-.-.-b'))\n"
           "end))"}) {
    const auto start = std::chrono::steady_clock::now();
    auto result = Eval(*rt, code);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds) << code;
    ASSERT_FALSE(result.ok()) << code;
    EXPECT_THAT(result.status().message(), HasSubstr("instruction budget"))
        << code;
  }
}

// The replacement matcher behaves as Lua's own on the idioms snippets use.
TEST(LuaRuntimeTest, PatternFunctionsWorkAsInLua) {
  auto rt = NewRuntime();
  auto result = Eval(*rt, R"lua(
    local words = {}
    for w in ("one two  three"):gmatch("%a+") do words[#words + 1] = w end
    local k, v = string.match("key = value", "(%w+)%s*=%s*(%w+)")
    local s, e = ("hello world"):find("o w")
    local p1, p2 = ("hello"):find("l+")
    return {
      words = words, k = k, v = v, s = s, e = e, p = {p1, p2},
      plain = {("a.b"):find(".", 1, true)},
      gsub = {("hello world"):gsub("o", "0")},
      fn = (("abc"):gsub("%w", function(c) return c:upper() .. "." end)),
      tbl = (("$a $b"):gsub("%$(%w+)", {a = "1", b = false})),
      pos = {("abc"):match("()b()")},
      bal = ("f(a(b)c) d"):match("%b()"),
      frontier = (("THE (quick) fox"):gsub("%f[%a]%a+", "W")),
      backref = ('say "hi" now'):match("([\"'])(.-)%1"),
      anchored = ("aaa"):gsub("^a", "b"),
      none = ("abc"):find("x"),
    })lua");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(*result, json::parse(R"json({
    "words": ["one", "two", "three"], "k": "key", "v": "value", "s": 5,
    "e": 7, "p": [3, 4], "plain": [2, 2], "gsub": ["hell0 w0rld", 2],
    "fn": "A.B.C.", "tbl": "1 $b", "pos": [2, 3], "bal": "(a(b)c)",
    "frontier": "W (W) W", "backref": "\"", "anchored": "baa"})json"));
  auto bad = Eval(*rt, "return ('x'):find('%')");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "topology.yaml:10: malformed pattern (ends with '%')");
}

TEST(LuaRuntimeTest, MemoryBombHitsTheCapAndTheNextCallWorks) {
  Limits limits;
  limits.instructions = 100'000'000;
  auto rt = NewRuntime(limits);
  for (const char* code : {"return string.rep('x', 1e9)",
                           "local ok = pcall(string.rep, 'x', 1e9) return ok",
                           "local ok = pcall(table.concat, {string.rep('x', "
                           "1e6), string.rep('y', 1e6)}, '', 1, 2)"
                           " return ok and string.rep('z', 4e7)",
                           "local t = {} for i = 1, 1e8 do t[i] = i end",
                           "local s = 'x' while true do s = s .. s end",
                           "local t = {} while true do pcall(function() t[#t + "
                           "1] = {} end) end"}) {
    auto result = Eval(*rt, code);
    ASSERT_FALSE(result.ok()) << code;
    EXPECT_TRUE(result.status().IsInvalidArgument());
    EXPECT_THAT(result.status().message(),
                HasSubstr("memory limit of 33554432 bytes exceeded"))
        << code;
    EXPECT_THAT(result.status().message(), StartsWith("topology.yaml:1"))
        << code;
    EXPECT_LE(rt->memory_used(), limits.memory_bytes);

    auto next =
        Eval(*rt, "local t = {} for i = 1, 1000 do t[i] = i end return #t");
    ASSERT_TRUE(next.ok()) << code << " then: " << next.status().ToString();
    EXPECT_EQ(*next, 1000);
  }
}

// Every way a snippet can try to eat memory or the C stack ends quickly with
// a clear error, and the next call works.
TEST(LuaRuntimeTest, MoreMemoryBombsEndCleanly) {
  Limits limits;
  limits.instructions = 10'000'000;
  auto rt = NewRuntime(limits);
  struct Bomb {
    const char* code;
    const char* error;
  };
  for (const auto& [code, error] : std::vector<Bomb>{
           {"return string.rep('x', 1e9, ',')", "memory limit"},
           {"return string.rep('abc', 2^31 // 3 - 1)", "memory limit"},
           {"local s = ('x'):rep(1e6) local t = {}\n"
            "while true do t[#t + 1] = s:rep(2) end",
            "memory limit"},
           {"local t = {} while true do t[#t + 1] = 'x' end", "memory limit"},
           {"local t = {} while true do t[#t + 1] = {} end", "memory limit"},
           {"local s = ('x'):rep(1e5) local t = {}\n"
            "for i = 1, 400 do t[i] = s end return #table.concat(t)",
            "memory limit"},
           // Quadratic copying in C, which allocates.
           {"local s = '' for i = 1, 1e7 do s = s .. 'xxxxxxxxxxxxxxxx' end",
            "instruction budget"},
           {"local s = ('x'):rep(1e6) for i = 1, 1e7 do local t = s:upper() "
            "end",
            "instruction budget"},
           // Linear scans in C that allocate nothing.
           {"local s = ('x'):rep(1e7) for i = 1, 1e7 do utf8.len(s) end",
            "instruction budget"},
           {"local s = (' '):rep(1e7) for i = 1, 1e7 do tonumber(s) end",
            "instruction budget"},
           {"local s = ('x'):rep(1e6) while true do s = s .. s end",
            "memory limit"},
           {"return (('x'):rep(1e6):gsub('x', ('y'):rep(40)))",
            "memory limit"},
           {"return string.format('%s%s', ('x'):rep(2e7), ('y'):rep(2e7))",
            "memory limit"},
           {"local t = {} for i = 1, 1e6 do t[i] = i end\n"
            "return table.unpack(t)",
            "too many results to unpack"},
           // The Lua stack of 1,000,000 slots would outgrow the cap first.
           {"local function f(n) return f(n + 1) + 1 end return f(1)",
            "memory limit"},
           {"local function f(...) return 1 + f(1, 2, 3) end return f()",
            "memory limit"},
           {"local t = setmetatable({}, {}) getmetatable(t).__index = t\n"
            "return t.x",
            "'__index' chain too long"},
           {"local t = setmetatable({}, {__index = function(t, k) return t[k] "
            "end})\nreturn t.x",
            "stack overflow"},
           {"local mt = {} mt.__concat = function(a, b) return a .. b end\n"
            "return setmetatable({}, mt) .. 'x'",
            "stack overflow"},
           {"local t = setmetatable({}, {__tostring = function(t) return "
            "tostring(t) end})\nreturn tostring(t)",
            "stack overflow"},
           {"return string.format('%99999999d', 1)", "invalid conversion"},
           {"return string.format('%.99999f', 1)", "invalid conversion"},
       }) {
    const auto start = std::chrono::steady_clock::now();
    auto result = Eval(*rt, code);
    EXPECT_LT(Seconds(start), kEndsWithinSeconds) << code;
    EXPECT_FALSE(result.ok()) << code;
    if (result.ok()) continue;
    EXPECT_TRUE(result.status().IsInvalidArgument()) << code;
    EXPECT_THAT(result.status().message(), HasSubstr(error)) << code;
    EXPECT_THAT(result.status().message(), StartsWith("topology.yaml:1"))
        << code;
    EXPECT_LE(rt->memory_used(), limits.memory_bytes);
    auto next =
        Eval(*rt, "local t = {} for i = 1, 1000 do t[i] = i end return #t");
    ASSERT_TRUE(next.ok()) << code << " then: " << next.status().ToString();
    EXPECT_EQ(*next, 1000);
  }
}

TEST(LuaRuntimeTest, StringsPastLuasOwnMaximumAreAnOrdinaryError) {
  auto rt = NewRuntime();
  // Lua refuses strings over 2^31 bytes before allocating anything.
  auto result = Eval(*rt, "return string.rep('x', 1e10)");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "topology.yaml:10: resulting string too large");
  EXPECT_TRUE(Eval(*rt, "return 1").ok());
}

TEST(LuaRuntimeTest, LimitsAreValidated) {
  Limits no_budget;
  no_budget.instructions = 0;
  EXPECT_TRUE(Runtime::Create(no_budget).status().IsInvalidArgument());
  Limits tiny;
  tiny.memory_bytes = 4096;
  auto r = Runtime::Create(tiny);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("too small"));
}

// ---- Errors point at the YAML ----------------------------------------------

TEST(LuaRuntimeTest, SyntaxErrorReportsTheYamlLine) {
  auto rt = NewRuntime();
  auto f = rt->Compile("local a = 1\nlocal b = = 2\nreturn b", {"state"},
                       "topology.yaml", 42);
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(f.status().IsInvalidArgument());
  EXPECT_EQ(f.status().message(),
            "topology.yaml:43: unexpected symbol near '='");
  // A leading operator is not glued to the parameter line.
  auto glued = rt->Compile("+ 1", {"state"}, "topology.yaml", 3);
  ASSERT_FALSE(glued.ok());
  EXPECT_THAT(glued.status().message(), StartsWith("topology.yaml:3:"));
}

TEST(LuaRuntimeTest, RuntimeErrorReportsTheYamlLine) {
  auto rt = NewRuntime();
  auto f = rt->Compile("local y = 1\nreturn state.missing.field", {"state"},
                       "topology.yaml", 42);
  ASSERT_TRUE(f.ok());
  const json state = json::object();
  auto r = rt->Call(*f, {&state}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().message(),
            "topology.yaml:43: attempt to index a nil value (field 'missing')");

  auto local = Eval(*rt, "local v\nreturn v.x");
  ASSERT_FALSE(local.ok());
  EXPECT_EQ(local.status().message(),
            "topology.yaml:11: attempt to index a nil value (local 'v')");

  // Errors without a position get the one of the code that raised them.
  auto bare = Eval(*rt, "\n\nerror('plain', 0)");
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.status().message(), "topology.yaml:12: plain");
  auto object = Eval(*rt, "error({code = 1})");
  ASSERT_FALSE(object.ok());
  EXPECT_EQ(object.status().message(),
            "topology.yaml:10: error object is a table value");
  auto library = Eval(*rt, "\nreturn string.rep()");
  ASSERT_FALSE(library.ok());
  EXPECT_THAT(library.status().message(),
              StartsWith("topology.yaml:11: bad argument #1 to 'rep'"));
}

// ---- Integer arithmetic ----------------------------------------------------

// Issue 9: Lua 5.4 wraps integer arithmetic around, so a balance near 2^63
// plus an amount became a large negative number and was emitted. kcqrs'
// Lua (third_party/lua/checked-integers.patch) raises instead.
TEST(LuaRuntimeTest, IntegerOverflowIsAnErrorNamingTheSnippetLine) {
  auto rt = NewRuntime();
  const json args = {{"balance", INT64_MAX - 7},
                     {"amount", 100},
                     {"low", INT64_MIN},
                     {"two32", int64_t{1} << 32},
                     {"one", 1}};
  struct Case {
    const char* code;  // the overflow is on the second line: topology.yaml:11
    const char* operation;
  };
  const Case cases[] = {
      // From the JSON arguments, register operands.
      {"local b = x.balance\nreturn b + x.amount",
       "9223372036854775800 + 100"},
      {"local l = x.low\nreturn l - x.one", "-9223372036854775808 - 1"},
      {"local t = x.two32\nreturn t * t", "4294967296 * 4294967296"},
      {"local l = x.low\nreturn -l", "-(-9223372036854775808)"},
      {"local l = x.low\nreturn l // -x.one", "-9223372036854775808 // -1"},
      // With a constant operand (the VM's immediate and K instructions);
      // x - 1 runs as x + -1.
      {"local b = x.balance\nreturn b + 100", "9223372036854775800 + 100"},
      {"local b = x.balance\nreturn b + 1000", "9223372036854775800 + 1000"},
      {"local l = x.low\nreturn l - 1", "-9223372036854775808 + -1"},
      {"local l = x.low\nreturn l - 1000", "-9223372036854775808 - 1000"},
      {"local b = x.balance\nreturn b * 2", "9223372036854775800 * 2"},
      // Literals only: the compiler does not fold an overflow away, it
      // raises when the line runs.
      {"local y = 1\nreturn 9223372036854775800 + 100",
       "100 + 9223372036854775800"},
      {"local y = 1\nreturn math.maxinteger + 1", "9223372036854775807 + 1"},
      {"local y = 1\nreturn 4294967296 * 4294967296",
       "4294967296 * 4294967296"},
      {"local y = 1\nreturn -(-9223372036854775807 - 1)",
       "-(-9223372036854775808)"},
      {"local y = 1\nreturn (-9223372036854775807 - 1) // -1",
       "-9223372036854775808 // -1"},
      // Strings that convert to integers, and the library.
      {"local s = '9223372036854775807'\nreturn s + 1",
       "9223372036854775807 + 1"},
      {"local y = 1\nreturn math.abs(math.mininteger)",
       "math.abs(-9223372036854775808)"},
  };
  for (const Case& c : cases) {
    auto r = Eval(*rt, c.code, &args);
    ASSERT_FALSE(r.ok()) << c.code << " returned " << r->dump();
    EXPECT_TRUE(r.status().IsInvalidArgument()) << c.code;
    EXPECT_EQ(r.status().message(),
              std::string("topology.yaml:11: integer overflow in ") +
                  c.operation)
        << c.code;
  }
  // pcall catches it like any other error; the runtime stays usable.
  auto caught = Eval(*rt,
                     "local ok, err = pcall(function() return x.balance + "
                     "x.amount end)\nreturn {ok = ok, err = err}",
                     &args);
  ASSERT_TRUE(caught.ok()) << caught.status().ToString();
  EXPECT_EQ((*caught)["ok"], false);
  EXPECT_THAT((*caught)["err"].get<std::string>(),
              HasSubstr("integer overflow in 9223372036854775800 + 100"));
}

TEST(LuaRuntimeTest, ArithmeticThatFitsIsUnchanged) {
  auto rt = NewRuntime();
  const json args = {{"balance", INT64_MAX - 100}, {"low", INT64_MIN + 1}};
  auto r = Eval(*rt, R"lua(
    local b, l = x.balance, x.low
    local n, sum = 0, 0
    for i = math.maxinteger - 2, math.maxinteger do n = n + 1 end
    for i = math.mininteger, math.mininteger + 2 do n = n + 1 end
    for i = 10, 1, -3 do sum = sum + i end
    for i = 1, 3, math.maxinteger do n = n + 1 end
    return array({
      b + 100, l - 1, -l, math.maxinteger - 1 + 1, 3 - 5, -7 // 2, -7 % 3,
      math.mininteger % -1, math.mininteger // 1, 6 * -7, (1 << 62) - 1 + (1 << 62),
      n, sum, math.abs(-5), math.abs(math.mininteger + 1),
      math.maxinteger + 1.0, 0.5 * 3, -(0.0) == 0,
      '10' + 1, '2.5' * 2, 0xffffffffffffffff, math.maxinteger << 1,
      string.format('%d', math.mininteger), tostring(math.maxinteger),
      string.format('%5.1f|%x', 2.25, 255), math.tointeger(2^53),
      math.ult(1, -1), math.fmod(math.mininteger, -1)})
  )lua",
                &args);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(decimal::Dump(*r),
            "[9223372036854775807,-9223372036854775808,9223372036854775807,"
            "9223372036854775807,-2,-4,2,0,-9223372036854775808,-42,"
            "9223372036854775807,7,22,5,9223372036854775807,"
            "9223372036854775808.0,1.5,true,11,5.0,-1,-2,"
            "\"-9223372036854775808\",\"9223372036854775807\","
            "\"  2.2|ff\",9007199254740992,true,0]");
}

TEST(LuaRuntimeTest, CompileRejectsBadParametersAndCallRejectsUnknownIds) {
  auto rt = NewRuntime();
  for (const char* name : {"end", "1x", "a-b", "", "local"}) {
    auto f = rt->Compile("return 1", {name}, "topology.yaml", 1);
    ASSERT_FALSE(f.ok()) << name;
    EXPECT_THAT(f.status().message(), HasSubstr("is not a Lua identifier"))
        << name;
  }
  EXPECT_FALSE(rt->Compile("return 1", {}, "topology.yaml", 0).ok());
  EXPECT_TRUE(rt->Call(0, {}, 0).status().IsInvalidArgument());
  auto f = rt->Compile("return 1", {}, "topology.yaml", 1);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(rt->Call(*f + 1, {}, 0).status().IsInvalidArgument());
  EXPECT_TRUE(rt->Call(-1, {}, 0).status().IsInvalidArgument());
}

TEST(LuaRuntimeTest, ManySnippetsKeepTheirOwnIdsAndArguments) {
  auto rt = NewRuntime();
  std::vector<int> ids;
  for (int i = 0; i < 50; ++i) {
    auto f = rt->Compile("return {n = " + std::to_string(i) + ", a = a, b = b}",
                         {"a", "b"}, "topology.yaml", i + 1);
    ASSERT_TRUE(f.ok());
    ids.push_back(*f);
  }
  const json a = "A";
  const json b = {1, 2};
  for (int i = 0; i < 50; ++i) {
    auto r = rt->Call(ids[i], {&a, &b}, 0);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, (json{{"n", i}, {"a", "A"}, {"b", {1, 2}}}));
  }
}

}  // namespace
}  // namespace kcqrs::lua
