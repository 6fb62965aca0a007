#include "topology/expression.h"

#include "decimal/decimal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace kcqrs::topology {
namespace {

using json = kcqrs::Json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::vector<std::string> kRoots = {"command", "state", "meta"};

// The documents of one evaluation: an order command, a fresh aggregate.
struct Docs {
  json command = json::parse(R"({
    "orderId": "o-1", "product": "widget", "quantity": 3, "price": 2.5,
    "tags": ["a", "b"], "flag": true, "none": null, "which": "product",
    "customer": {"name": "Ann", "address": {"city": "Oslo"}},
    "key with space": 7, "big": 18446744073709551615
  })");
  json state;  // null: the aggregate does not exist yet
  json meta = json::object();
  int64_t now_ms = 1700000000000;
};

Result<json> Eval(std::string_view text, const Docs& d = Docs()) {
  Result<Expression> e = Expression::Compile(text, kRoots);
  if (!e.ok()) return e.status();
  const json* roots[] = {&d.command, &d.state, &d.meta};
  return e->Evaluate({roots, 3, d.now_ms});
}

// The value of `text`; fails the test on an error.
json Value(std::string_view text, const Docs& d = Docs()) {
  Result<json> r = Eval(text, d);
  EXPECT_TRUE(r.ok()) << text << " -> " << r.status().ToString();
  return r.ok() ? *r : json("<error>");
}

// The message of the runtime error of `text`; fails the test when it
// compiles with an error or evaluates without one.
std::string RuntimeError(std::string_view text, const Docs& d = Docs()) {
  Result<Expression> e = Expression::Compile(text, kRoots);
  EXPECT_TRUE(e.ok()) << text << " -> " << e.status().ToString();
  if (!e.ok()) return "<compile error>";
  const json* roots[] = {&d.command, &d.state, &d.meta};
  Result<json> r = e->Evaluate({roots, 3, d.now_ms});
  EXPECT_FALSE(r.ok()) << text << " -> " << (r.ok() ? r->dump() : "");
  if (r.ok()) return "<no error>";
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  return r.status().message();
}

// A number's JSON text: a decimal's as it is kept, an integer's as written.
std::string Num(const json& j) {
  if (decimal::IsDecimal(j)) return std::string(decimal::Text(j));
  return j.dump();
}

std::string CompileError(std::string_view text) {
  Result<Expression> e = Expression::Compile(text, kRoots);
  EXPECT_FALSE(e.ok()) << text;
  if (e.ok()) return "<no error>";
  EXPECT_TRUE(e.status().IsInvalidArgument()) << e.status().ToString();
  return e.status().message();
}

// --- Literals ---------------------------------------------------------------

TEST(ExpressionTest, EvaluatesLiterals) {
  EXPECT_EQ(Value("42"), json(42));
  EXPECT_TRUE(Value("42").is_number_integer());
  EXPECT_EQ(Value("-7"), json(-7));
  // Decimals are exact and keep the text they were written with.
  EXPECT_EQ(Num(Value("2.5")), "2.5");
  EXPECT_TRUE(decimal::IsDecimal(Value("2.0")));
  EXPECT_EQ(Num(Value("2.0")), "2.0");
  EXPECT_EQ(Num(Value("-2.50")), "-2.50");
  EXPECT_EQ(Num(Value("1e3")), "1e3");
  EXPECT_EQ(Num(Value("2.5E-1")), "2.5E-1");
  EXPECT_EQ(Value("9223372036854775807"), json(INT64_MAX));
  EXPECT_EQ(Num(Value("99999999999999999999")), "99999999999999999999");
  // Leading zeros, which JSON does not allow, are dropped (found by fuzzing).
  EXPECT_EQ(Num(Value("04.028")), "4.028");
  EXPECT_EQ(Num(Value("00.5e3")), "0.5e3");
  EXPECT_EQ(Num(Value("000099999999999999999999")), "99999999999999999999");
  EXPECT_EQ(Value("007"), json(7));
  EXPECT_EQ(Num(Value("0.1000000000000000000000000000000000000001")),
            "0.1000000000000000000000000000000000000001");
  EXPECT_EQ(Value("'single'"), json("single"));
  EXPECT_EQ(Value("\"double\""), json("double"));
  EXPECT_EQ(Value("true"), json(true));
  EXPECT_EQ(Value("false"), json(false));
  EXPECT_EQ(Value("null"), json(nullptr));
  EXPECT_EQ(Value("[]"), json::array());
  EXPECT_TRUE(decimal::Equal(Value("[1, 'two', [3.5, null]]"),
                             json::parse(R"([1, "two", [3.5, null]])")));
  EXPECT_EQ(Value("string([1, 'two', [3.50, null]])"), json(R"([1,"two",[3.50,null]])"));
  EXPECT_EQ(Value("[command.quantity, command.missing]"),
            json::parse("[3, null]"));
}

TEST(ExpressionTest, DecodesStringEscapes) {
  EXPECT_EQ(Value(R"('a\\b')"), json("a\\b"));
  EXPECT_EQ(Value(R"('it\'s')"), json("it's"));
  EXPECT_EQ(Value(R"("say \"hi\"")"), json("say \"hi\""));
  EXPECT_EQ(Value(R"('say "hi"')"), json("say \"hi\""));
  EXPECT_EQ(Value(R"('line\nnext\tcol')"), json("line\nnext\tcol"));
  EXPECT_EQ(Value(R"('caf\u00e9')"), json("caf\xC3\xA9"));
  EXPECT_EQ(Value(R"('\u20AC')"), json("\xE2\x82\xAC"));
  EXPECT_EQ(Value(R"('\ud83d\ude00')"), json("\xF0\x9F\x98\x80"));  // a pair
  EXPECT_EQ(Value("'raw \xC3\xA9'"), json("raw \xC3\xA9"));
}

// Found by fuzz/expression_fuzzer: a string that is not UTF-8 compiled, and
// its value made the engine's dump() throw (type_error 316) per record.
TEST(ExpressionTest, TextThatIsNotUtf8IsACompileErrorWithItsColumn) {
  EXPECT_EQ(CompileError("'ok' + '\x92'"),
            "at column 9: expected UTF-8 text, found the byte 0x92");
  EXPECT_EQ(CompileError("'caf\xC3'"),
            "at column 5: expected UTF-8 text, found the byte 0xC3");
  EXPECT_EQ(CompileError("'\xED\xA0\x80'"),  // an encoded surrogate
            "at column 2: expected UTF-8 text, found the byte 0xED");
  EXPECT_EQ(CompileError("'\xC0\xAF'"),  // an overlong '/'
            "at column 2: expected UTF-8 text, found the byte 0xC0");
}

// --- Paths and null-safety ---------------------------------------------------

TEST(ExpressionTest, ReadsFieldsIndexesAndQuotedNames) {
  EXPECT_EQ(Value("command.orderId"), json("o-1"));
  EXPECT_EQ(Value("command.customer.address.city"), json("Oslo"));
  EXPECT_EQ(Value("command['key with space']"), json(7));
  EXPECT_EQ(Value("command[\"customer\"].name"), json("Ann"));
  EXPECT_EQ(Value("command.tags[0]"), json("a"));
  EXPECT_EQ(Value("command.tags[1]"), json("b"));
  EXPECT_EQ(Value("command"), Docs().command);
  EXPECT_EQ(Value("(command.customer).address.city"), json("Oslo"));
}

TEST(ExpressionTest, ComputedIndexesAndPathsOfComputedValues) {
  EXPECT_EQ(Value("command.tags[command.quantity - 2]"), json("b"));
  EXPECT_EQ(Value("command[command.which]"), json("widget"));
  EXPECT_EQ(Value("command[command.missing]"), json(nullptr));
  EXPECT_EQ(Value("coalesce(state, command).customer.name"), json("Ann"));
  EXPECT_EQ(Value("[10, 20, 30][1]"), json(20));
  EXPECT_EQ(Value("[command.tags, 1][0][1]"), json("b"));
  EXPECT_EQ(Value("[[command.quantity]][0][0]"), json(3));
  EXPECT_EQ(RuntimeError("command.tags[command.flag]"),
            "expected a field name (a string) or an array index (an "
            "integer), found a boolean (command.flag)");
}

TEST(ExpressionTest, MissingFieldsAndFieldsOfNullAreNull) {
  EXPECT_EQ(Value("command.missing"), json(nullptr));
  EXPECT_EQ(Value("command.missing.deeper[3].still"), json(nullptr));
  EXPECT_EQ(Value("command.none.x"), json(nullptr));
  EXPECT_EQ(Value("command.tags[2]"), json(nullptr));
  EXPECT_EQ(Value("command.tags[-1]"), json(nullptr));
  EXPECT_EQ(Value("state"), json(nullptr));
  EXPECT_EQ(Value("state.product"), json(nullptr));
  EXPECT_EQ(Value("state == null"), json(true));
  EXPECT_EQ(Value("command == null"), json(false));
  EXPECT_EQ(Value("meta.partition"), json(nullptr));
}

TEST(ExpressionTest, NullRootPointerIsNull) {
  Result<Expression> e =
      Expression::Compile("state == null && meta.x == null", kRoots);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const json command = json::object();
  const json* roots[] = {&command, nullptr, nullptr};
  Result<bool> r = e->EvaluateBool({roots, 3, 0});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(*r);
}

TEST(ExpressionTest, FieldOfAScalarIsAnErrorNamingThePath) {
  EXPECT_EQ(RuntimeError("command.quantity.x"),
            "cannot access field 'x' of a number (command.quantity)");
  EXPECT_EQ(RuntimeError("command.customer.name.first"),
            "cannot access field 'first' of a string (command.customer.name)");
  EXPECT_EQ(RuntimeError("command.flag.x"),
            "cannot access field 'x' of a boolean (command.flag)");
  EXPECT_EQ(RuntimeError("command.orderId[0]"),
            "cannot take element [0] of a string (command.orderId)");
  EXPECT_EQ(RuntimeError("command.tags.first"),
            "cannot access field 'first' of an array (command.tags)");
  EXPECT_EQ(RuntimeError("command[0]"),
            "cannot take element [0] of an object (command)");
  EXPECT_EQ(RuntimeError("command['customer'].name.x"),
            "cannot access field 'x' of a string (command['customer'].name)");
}

TEST(ExpressionTest, TooFewRootValuesIsAnError) {
  Result<Expression> e = Expression::Compile("meta.x", kRoots);
  ASSERT_TRUE(e.ok());
  const json command = json::object();
  const json* roots[] = {&command};
  Result<json> r = e->Evaluate({roots, 1, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(
      r.status().message(),
      "the evaluation context supplies 1 root values, not this one (meta)");
}

// --- Operators
// ----------------------------------------------------------------

TEST(ExpressionTest, PrecedenceAndAssociativity) {
  EXPECT_EQ(Value("1 + 2 * 3"), json(7));
  EXPECT_EQ(Value("(1 + 2) * 3"), json(9));
  EXPECT_EQ(Value("10 - 4 - 3"), json(3));  // left to right
  EXPECT_EQ(Value("100 / 10 / 5"), json(2));
  EXPECT_EQ(Value("2 * 3 % 4"), json(2));  // (2 * 3) % 4
  EXPECT_EQ(Value("-2 * 3"), json(-6));
  EXPECT_EQ(Value("- command.quantity * 2"), json(-6));
  EXPECT_EQ(Value("--3"), json(3));
  EXPECT_EQ(Value("1 + 2 < 4"), json(true));       // arithmetic before <
  EXPECT_EQ(Value("1 < 2 == 2 < 3"), json(true));  // < before ==
  EXPECT_EQ(Value("true || false && false"), json(true));  // && before ||
  EXPECT_EQ(Value("(true || false) && false"), json(false));
  EXPECT_EQ(Value("!false && false"), json(false));  // ! before &&
  EXPECT_EQ(Value("!(false && false)"), json(true));
  EXPECT_EQ(Value("!!true"), json(true));
  EXPECT_EQ(Value("not true or true"), json(true));
  EXPECT_EQ(Value("1 < 2 and 2 < 3"), json(true));
  EXPECT_EQ(Value("false or not false"), json(true));
}

TEST(ExpressionTest, LogicalOperatorsShortCircuit) {
  EXPECT_EQ(Value("false && 1 / 0 == 1"), json(false));
  EXPECT_EQ(Value("true || 1 / 0 == 1"), json(true));
  EXPECT_EQ(Value("state != null && state.quantity.x > 1"), json(false));
  EXPECT_EQ(RuntimeError("true && 1 / 0 == 1"), "division by zero (1 / 0)");
  EXPECT_EQ(RuntimeError("false || 1 / 0 == 1"), "division by zero (1 / 0)");
}

TEST(ExpressionTest, LogicalOperatorsRequireBooleans) {
  EXPECT_EQ(RuntimeError("command.quantity && true"),
            "expected a boolean, found a number (command.quantity)");
  EXPECT_EQ(RuntimeError("true && command.orderId"),
            "expected a boolean, found a string (command.orderId)");
  EXPECT_EQ(RuntimeError("false || command.missing"),
            "expected a boolean, found null (command.missing)");
  EXPECT_EQ(RuntimeError("!command.tags"),
            "expected a boolean, found an array (command.tags)");
  EXPECT_EQ(RuntimeError("not (command.quantity + 1)"),
            "expected a boolean, found a number (command.quantity + 1)");
}

TEST(ExpressionTest, EqualityIsDeepAndNumeric) {
  EXPECT_EQ(Value("1 == 1.0"), json(true));
  EXPECT_EQ(Value("command.quantity == 3.0"), json(true));
  EXPECT_EQ(Value("command.quantity != 3"), json(false));
  EXPECT_EQ(Value("'a' == 'a'"), json(true));
  EXPECT_EQ(Value("'1' == 1"), json(false));
  EXPECT_EQ(Value("true == 1"), json(false));
  EXPECT_EQ(Value("null == null"), json(true));
  EXPECT_EQ(Value("null == false"), json(false));
  EXPECT_EQ(Value("command.none == null"), json(true));
  EXPECT_EQ(Value("command.missing == command.none"), json(true));
  EXPECT_EQ(Value("command.tags == ['a', 'b']"), json(true));
  EXPECT_EQ(Value("command.tags == ['b', 'a']"), json(false));
  EXPECT_EQ(Value("[1, [2, 3]] == [1.0, [2.0, 3]]"), json(true));
  EXPECT_EQ(Value("command.customer == command.customer"), json(true));
  Docs d;
  d.state = json::parse(
      R"({"customer": {"address": {"city": "Oslo"}, "name": "Ann"}})");
  EXPECT_EQ(Value("state.customer == command.customer", d), json(true));
  d.state["customer"]["address"]["city"] = "Bergen";
  EXPECT_EQ(Value("state.customer != command.customer", d), json(true));
}

TEST(ExpressionTest, OrderingComparesNumbersAndStrings) {
  EXPECT_EQ(Value("1 < 2"), json(true));
  EXPECT_EQ(Value("2 <= 2"), json(true));
  EXPECT_EQ(Value("3 > 2.5"), json(true));
  EXPECT_EQ(Value("2.5 >= 3"), json(false));
  EXPECT_EQ(Value("9223372036854775807 > 9223372036854775806"), json(true));
  EXPECT_EQ(Value("'abc' < 'abd'"), json(true));
  EXPECT_EQ(Value("'B' < 'a'"), json(true));  // bytewise, not by locale
  EXPECT_EQ(Value("'z' < '\\u00e9'"), json(true));
  EXPECT_EQ(Value("'' < 'a'"), json(true));
  EXPECT_EQ(Value("command.big > 1"), json(true));  // an unsigned above INT64
}

TEST(ExpressionTest, OrderingWithNullIsFalse) {
  EXPECT_EQ(Value("null < 1"), json(false));
  EXPECT_EQ(Value("null >= 1"), json(false));
  EXPECT_EQ(Value("1 > null"), json(false));
  EXPECT_EQ(Value("null <= null"), json(false));
  EXPECT_EQ(Value("state.balance < 0"), json(false));
  EXPECT_EQ(Value("state.balance >= 0"), json(false));
  EXPECT_EQ(Value("'a' > command.missing"), json(false));
}

TEST(ExpressionTest, OrderingOtherMixesIsAnError) {
  EXPECT_EQ(RuntimeError("'a' < 1"),
            "'<' expects two numbers or two strings, found a string and a "
            "number ('a' < 1)");
  EXPECT_EQ(RuntimeError("true >= false"),
            "'>=' expects two numbers or two strings, found a boolean and a "
            "boolean (true >= false)");
  EXPECT_EQ(RuntimeError("command.tags > 1"),
            "'>' expects two numbers or two strings, found an array and a "
            "number (command.tags > 1)");
}

TEST(ExpressionTest, IntegerArithmeticStaysInteger) {
  EXPECT_EQ(Value("1 + 2"), json(3));
  EXPECT_TRUE(Value("1 + 2").is_number_integer());
  EXPECT_TRUE(Value("command.quantity + 1").is_number_integer());
  EXPECT_EQ(Value("command.quantity + 1"), json(4));
  EXPECT_EQ(Value("7 - 10"), json(-3));
  EXPECT_EQ(Value("6 * 7"), json(42));
  EXPECT_EQ(Value("7 / 2"), json(3));    // truncates
  EXPECT_EQ(Value("-7 / 2"), json(-3));  // toward zero
  EXPECT_EQ(Value("7 % 3"), json(1));
  EXPECT_EQ(Value("-7 % 3"), json(-1));  // sign of the dividend
  EXPECT_EQ(Value("(-9223372036854775807 - 1) % -1"), json(0));
  EXPECT_EQ(Value("-9223372036854775807 - 1"), json(INT64_MIN));
}

TEST(ExpressionTest, DecimalArithmeticIsExact) {
  EXPECT_EQ(Num(Value("1 + 2.0")), "3.0");
  EXPECT_TRUE(decimal::IsDecimal(Value("1 + 2.0")));
  EXPECT_EQ(Num(Value("7.0 / 2")), "3.5");
  EXPECT_EQ(Num(Value("10.00 / 4")), "2.50");
  EXPECT_EQ(Num(Value("command.price * command.quantity")), "7.5");
  EXPECT_EQ(Num(Value("7 % 2.5")), "2.0");
  EXPECT_EQ(Num(Value("-7.5 % 2")), "-1.5");
  EXPECT_EQ(Num(Value("-command.price")), "-2.5");
  EXPECT_EQ(Num(Value("- -2.5")), "2.5");
  EXPECT_EQ(Num(Value("command.big + 1")), "18446744073709551616");
  // The cases of issue 12: a balance that can be closed, nothing vanishes.
  EXPECT_EQ(Num(Value("0.1 + 0.2 - 0.3")), "0.0");
  EXPECT_EQ(Value("0.1 + 0.2 - 0.3 == 0"), json(true));
  EXPECT_EQ(Value("0.1 + 0.2 == 0.3"), json(true));
  EXPECT_EQ(Num(Value("99999999999999999999 + 100")), "100000000000000000099");
  EXPECT_EQ(Num(Value("1.10 + 2.205")), "3.305");
  EXPECT_EQ(Num(Value("19.99 * 3")), "59.97");
  EXPECT_EQ(Num(Value("0.5 + 0.5")), "1.0");
  EXPECT_EQ(Value("0.5 + 0.5 == 1"), json(true));
  EXPECT_EQ(RuntimeError("1 / 3.0"),
            "the quotient has no exact decimal of at most 38 digits: round it with "
            "div(a, b, scale) (1 / 3.0)");
  EXPECT_EQ(RuntimeError("1e37 * 10 + 1"),
            "decimal result needs more than 38 digits (1e37 * 10 + 1)");
  EXPECT_EQ(RuntimeError("1e6144 * 10"),
            "decimal result out of range (exponent beyond +-6144) (1e6144 * 10)");
}

TEST(ExpressionTest, ComparisonsAcrossIntegersAndDecimalsAreExact) {
  EXPECT_EQ(Value("1 == 1.0"), json(true));
  EXPECT_EQ(Value("1.50 == 1.5"), json(true));
  EXPECT_EQ(Value("[1, [2.0]] == [1.0, [2]]"), json(true));
  EXPECT_EQ(Value("[1, [2.0]] == [1.0, [2.5]]"), json(false));
  EXPECT_EQ(Value("9007199254740993 > 9007199254740992.0"), json(true));  // past doubles
  EXPECT_EQ(Value("99999999999999999999 > 99999999999999999998"), json(true));
  EXPECT_EQ(Value("0.1 < 0.10000000000000000001"), json(true));
  EXPECT_EQ(Num(Value("min(2.50, 3)")), "2.50");
  EXPECT_EQ(Value("contains([1.5, 2], 1.50)"), json(true));
}

TEST(ExpressionTest, IntegerOverflowIsAnError) {
  EXPECT_EQ(RuntimeError("9223372036854775807 + 1"),
            "integer overflow (9223372036854775807 + 1)");
  EXPECT_EQ(RuntimeError("-9223372036854775807 - 2"),
            "integer overflow (-9223372036854775807 - 2)");
  EXPECT_EQ(RuntimeError("4611686018427387904 * 2"),
            "integer overflow (4611686018427387904 * 2)");
  EXPECT_EQ(RuntimeError("(-9223372036854775807 - 1) / -1"),
            "integer overflow ((-9223372036854775807 - 1) / -1)");
  EXPECT_EQ(RuntimeError("-(-9223372036854775807 - 1)"),
            "integer overflow (-(-9223372036854775807 - 1))");
  EXPECT_EQ(RuntimeError("abs(-9223372036854775807 - 1)"),
            "integer overflow (abs(-9223372036854775807 - 1))");
  EXPECT_EQ(RuntimeError("9223372036854775807 * 2"),
            "integer overflow (9223372036854775807 * 2)");
}

TEST(ExpressionTest, DivisionByZeroIsAnError) {
  EXPECT_EQ(RuntimeError("1 / 0"), "division by zero (1 / 0)");
  EXPECT_EQ(RuntimeError("1 % 0"), "division by zero (1 % 0)");
  EXPECT_EQ(RuntimeError("1.5 / 0"), "division by zero (1.5 / 0)");
  EXPECT_EQ(RuntimeError("1 / 0.0"), "division by zero (1 / 0.0)");
  EXPECT_EQ(RuntimeError("1.5 % 0.0"), "division by zero (1.5 % 0.0)");
  EXPECT_EQ(RuntimeError("10 + command.quantity / (command.quantity - 3)"),
            "division by zero (command.quantity / (command.quantity - 3))");
}

TEST(ExpressionTest, PlusConcatenatesStrings) {
  EXPECT_EQ(Value("'a' + 'b'"), json("ab"));
  EXPECT_EQ(Value("command.orderId + '-' + command.product"),
            json("o-1-widget"));
  EXPECT_EQ(Value("'' + ''"), json(""));
  EXPECT_EQ(RuntimeError("'a' + 1"),
            "'+' expects two numbers or two strings, found a string and a "
            "number ('a' + 1)");
  EXPECT_EQ(RuntimeError("command.missing + 1"),
            "'+' expects two numbers or two strings, found null and a number "
            "(command.missing + 1)");
  EXPECT_EQ(RuntimeError("'a' - 'b'"),
            "'-' expects two numbers, found a string and a string ('a' - 'b')");
  EXPECT_EQ(RuntimeError("[1] * 2"),
            "'*' expects two numbers, found an array and a number ([1] * 2)");
  EXPECT_EQ(RuntimeError("-command.orderId"),
            "'-' expects a number, found a string (command.orderId)");
}

// --- Functions
// ----------------------------------------------------------------

TEST(ExpressionTest, ExistsAndCoalesce) {
  EXPECT_EQ(Value("exists(command.orderId)"), json(true));
  EXPECT_EQ(Value("exists(command.none)"), json(false));
  EXPECT_EQ(Value("exists(command.missing)"), json(false));
  EXPECT_EQ(Value("exists(false)"), json(true));
  EXPECT_EQ(Value("coalesce(state.orders, 0) + 1"), json(1));
  EXPECT_EQ(Value("coalesce(command.missing, command.none, 'x', 'y')"),
            json("x"));
  EXPECT_EQ(Value("coalesce(command.quantity, 0)"), json(3));
  EXPECT_EQ(Value("coalesce(command.missing)"), json(nullptr));
  EXPECT_EQ(Value("coalesce(1, 1 / 0)"), json(1));  // lazy
  EXPECT_EQ(Value("coalesce(state, command).orderId"), json("o-1"));
}

TEST(ExpressionTest, LenCountsCodePointsAndElements) {
  EXPECT_EQ(Value("len('')"), json(0));
  EXPECT_EQ(Value("len('abc')"), json(3));
  EXPECT_EQ(Value("len('h\\u00e9llo')"), json(5));
  EXPECT_EQ(Value("len('\\ud83d\\ude00!')"), json(2));
  EXPECT_EQ(Value("len(command.tags)"), json(2));
  EXPECT_EQ(Value("len(command.customer)"), json(2));
  EXPECT_EQ(Value("len([])"), json(0));
  EXPECT_EQ(RuntimeError("len(command.quantity)"),
            "len() expects a string, an array or an object, found a number "
            "(command.quantity)");
  EXPECT_EQ(RuntimeError("len(command.missing)"),
            "len() expects a string, an array or an object, found null "
            "(command.missing)");
}

TEST(ExpressionTest, LowerAndUpperChangeAsciiLetters) {
  EXPECT_EQ(Value("lower('MiXeD 123')"), json("mixed 123"));
  EXPECT_EQ(Value("upper(command.product)"), json("WIDGET"));
  EXPECT_EQ(Value("upper('caf\\u00e9')"), json("CAF\xC3\xA9"));
  EXPECT_EQ(RuntimeError("lower(1)"),
            "lower() expects a string, found a number (1)");
  EXPECT_EQ(RuntimeError("upper(null)"),
            "upper() expects a string, found null (null)");
}

TEST(ExpressionTest, StringRendersCompactJson) {
  EXPECT_EQ(Value("string('as is')"), json("as is"));
  EXPECT_EQ(Value("string(3)"), json("3"));
  EXPECT_EQ(Value("string(2.5)"), json("2.5"));
  EXPECT_EQ(Value("string(true)"), json("true"));
  EXPECT_EQ(Value("string(null)"), json("null"));
  EXPECT_EQ(Value("string(command.tags)"), json(R"(["a","b"])"));
  EXPECT_EQ(Value("string(command.customer.address)"),
            json(R"({"city":"Oslo"})"));
  EXPECT_EQ(Value("'#' + string(command.quantity)"), json("#3"));
}

TEST(ExpressionTest, NumberParsesStringsAndKeepsNumbers) {
  EXPECT_EQ(Value("number('42')"), json(42));
  EXPECT_TRUE(Value("number('42')").is_number_integer());
  EXPECT_EQ(Value("number('-7')"), json(-7));
  EXPECT_EQ(Num(Value("number('2.5')")), "2.5");
  EXPECT_EQ(Num(Value("number('1e3')")), "1e3");
  EXPECT_EQ(Value("number(command.quantity)"), json(3));
  EXPECT_EQ(Num(Value("number(2.50)")), "2.50");
  EXPECT_EQ(Num(Value("number('99999999999999999999')")), "99999999999999999999");
  EXPECT_EQ(Value("number('18446744073709551615')"), json(UINT64_MAX));
  EXPECT_EQ(RuntimeError("number('1.')"),
            "number() cannot convert \"1.\" to a number ('1.')");
  EXPECT_EQ(RuntimeError("number('+1')"),
            "number() cannot convert \"+1\" to a number ('+1')");
  EXPECT_EQ(RuntimeError("number('abc')"),
            "number() cannot convert \"abc\" to a number ('abc')");
  EXPECT_EQ(RuntimeError("number('')"),
            "number() cannot convert \"\" to a number ('')");
  EXPECT_EQ(RuntimeError("number(' 1')"),
            "number() cannot convert \" 1\" to a number (' 1')");
  EXPECT_EQ(RuntimeError("number('12abc')"),
            "number() cannot convert \"12abc\" to a number ('12abc')");
  EXPECT_EQ(RuntimeError("number('inf')"),
            "number() cannot convert \"inf\" to a number ('inf')");
  EXPECT_EQ(RuntimeError("number(true)"),
            "number() expects a string or a number, found a boolean (true)");
  EXPECT_EQ(
      RuntimeError("number(command.missing)"),
      "number() expects a string or a number, found null (command.missing)");
}

TEST(ExpressionTest, ContainsLooksInArraysStringsAndObjects) {
  EXPECT_EQ(Value("contains(command.tags, 'a')"), json(true));
  EXPECT_EQ(Value("contains(command.tags, 'c')"), json(false));
  EXPECT_EQ(Value("contains([1, 2], 2.0)"), json(true));
  EXPECT_EQ(Value("contains([[1], null], [1])"), json(true));
  EXPECT_EQ(Value("contains(['NEW', 'PAID'], 'PAID')"), json(true));
  EXPECT_EQ(Value("contains(command.orderId, '-')"), json(true));
  EXPECT_EQ(Value("contains('abc', '')"), json(true));
  EXPECT_EQ(Value("contains('abc', 'x')"), json(false));
  EXPECT_EQ(Value("contains(command.customer, 'name')"), json(true));
  EXPECT_EQ(Value("contains(command.customer, 'age')"), json(false));
  EXPECT_EQ(RuntimeError("contains(command.quantity, 3)"),
            "contains() expects an array, a string or an object, found a "
            "number (command.quantity)");
  EXPECT_EQ(RuntimeError("contains('abc', 1)"),
            "contains() expects a string to look for in a string, found a "
            "number (1)");
  EXPECT_EQ(RuntimeError("contains(state.tags, 'a')"),
            "contains() expects an array, a string or an object, found null "
            "(state.tags)");
}

TEST(ExpressionTest, StartsWith) {
  EXPECT_EQ(Value("starts_with(command.orderId, 'o-')"), json(true));
  EXPECT_EQ(Value("starts_with(command.orderId, 'x')"), json(false));
  EXPECT_EQ(Value("starts_with('a', '')"), json(true));
  EXPECT_EQ(Value("starts_with('a', 'ab')"), json(false));
  EXPECT_EQ(RuntimeError("starts_with(1, 'a')"),
            "starts_with() expects a string, found a number (1)");
  EXPECT_EQ(RuntimeError("starts_with('a', command.missing)"),
            "starts_with() expects a string, found null (command.missing)");
}

TEST(ExpressionTest, AbsMinMax) {
  EXPECT_EQ(Value("abs(-3)"), json(3));
  EXPECT_EQ(Value("abs(3)"), json(3));
  EXPECT_EQ(Num(Value("abs(-2.50)")), "2.50");
  EXPECT_EQ(RuntimeError("abs('x')"),
            "abs() expects a number, found a string ('x')");
  EXPECT_EQ(Num(Value("min(3, 2.5)")), "2.5");
  EXPECT_EQ(Value("max(3, 2.5)"), json(3));
  EXPECT_EQ(Value("min(command.quantity, 10)"), json(3));
  EXPECT_EQ(Value("max('apple', 'pear')"), json("pear"));
  EXPECT_EQ(Value("min(-1, -1.0)"), json(-1));
  EXPECT_TRUE(Value("min(1, 1.0)").is_number_integer());  // ties keep the first
  EXPECT_EQ(RuntimeError("min(1, 'a')"),
            "min() expects two numbers or two strings, found a number and a "
            "string (min(1, 'a'))");
  EXPECT_EQ(RuntimeError("max(state.total, 1)"),
            "max() expects two numbers or two strings, found null and a number "
            "(max(state.total, 1))");
}

TEST(ExpressionTest, TypeChecks) {
  EXPECT_EQ(Value("is_number(command.quantity)"), json(true));
  EXPECT_EQ(Value("is_number(command.price)"), json(true));
  EXPECT_EQ(Value("is_number(1.5)"), json(true));
  EXPECT_EQ(Value("is_number('1')"), json(false));
  EXPECT_EQ(Value("is_number(command.missing)"), json(false));
  EXPECT_EQ(Value("is_integer(3)"), json(true));
  EXPECT_EQ(Value("is_integer(3.0)"), json(true));
  EXPECT_EQ(Value("is_integer(1e3)"), json(true));
  EXPECT_EQ(Value("is_integer(3.5)"), json(false));
  EXPECT_EQ(Value("is_integer(99999999999999999999)"), json(true));
  EXPECT_EQ(Value("is_integer('3')"), json(false));
  EXPECT_EQ(Value("is_decimal(10, 2)"), json(true));
  EXPECT_EQ(Value("is_decimal(10.5, 2)"), json(true));
  EXPECT_EQ(Value("is_decimal(10.50, 2)"), json(true));
  EXPECT_EQ(Value("is_decimal(10.500, 2)"), json(true));  // by value: 10.5
  EXPECT_EQ(Value("is_decimal(10.505, 2)"), json(false));
  EXPECT_EQ(Value("is_decimal(1e-3, 2)"), json(false));
  EXPECT_EQ(Value("is_decimal(1200, -2)"), json(true));
  EXPECT_EQ(Value("is_decimal(1250, -2)"), json(false));
  EXPECT_EQ(Value("is_decimal('10.50', 2)"), json(false));
  EXPECT_EQ(Value("is_decimal(command.missing, 2)"), json(false));
  EXPECT_EQ(Value("is_string(command.orderId)"), json(true));
  EXPECT_EQ(Value("is_string(3)"), json(false));
  EXPECT_EQ(Value("is_boolean(command.flag)"), json(true));
  EXPECT_EQ(Value("is_array(command.tags)"), json(true));
  EXPECT_EQ(Value("is_object(command.customer)"), json(true));
  EXPECT_EQ(Value("is_object(command.tags)"), json(false));
  EXPECT_EQ(Value("type(command.quantity)"), json("number"));
  EXPECT_EQ(Value("type(command.price)"), json("number"));
  EXPECT_EQ(Value("type(2.50)"), json("number"));
  EXPECT_EQ(Value("type('5')"), json("string"));
  EXPECT_EQ(Value("type(command.missing)"), json("null"));
  EXPECT_EQ(Value("type(command.flag)"), json("boolean"));
  EXPECT_EQ(Value("type(command.tags)"), json("array"));
  EXPECT_EQ(Value("type(command.customer)"), json("object"));
  EXPECT_EQ(RuntimeError("is_decimal(1, 2.5)"),
            "is_decimal() expects a scale (an integer from -38 to 38), found a number (2.5)");
  EXPECT_EQ(RuntimeError("is_decimal(1, command.quantity * 100)"),
            "is_decimal() expects a scale (an integer from -38 to 38), found a number "
            "(command.quantity * 100)");
}

TEST(ExpressionTest, BetweenChecksTypeAndRange) {
  EXPECT_EQ(Value("between(5, 1, 10)"), json(true));
  EXPECT_EQ(Value("between(1, 1, 10)"), json(true));
  EXPECT_EQ(Value("between(10, 1, 10)"), json(true));
  EXPECT_EQ(Value("between(10.01, 1, 10)"), json(false));
  EXPECT_EQ(Value("between(0.01, 0.01, 1000000)"), json(true));
  EXPECT_EQ(Value("between(0.009, 0.01, 1000000)"), json(false));
  EXPECT_EQ(Value("between('5', 1, 10)"), json(false));  // a string is not in range
  EXPECT_EQ(Value("between(command.missing, 1, 10)"), json(false));
  EXPECT_EQ(Value("between('m', 'a', 'z')"), json(true));
  EXPECT_EQ(Value("between(5, 'a', 'z')"), json(false));
  EXPECT_EQ(RuntimeError("between(5, 1, 'z')"),
            "between() expects bounds that are two numbers or two strings, found a number "
            "and a string (between(5, 1, 'z'))");
}

TEST(ExpressionTest, RoundAndDivRoundExplicitly) {
  EXPECT_EQ(Num(Value("round(2.675, 2)")), "2.68");
  EXPECT_EQ(Num(Value("round(2.665, 2)")), "2.66");  // half_even by default
  EXPECT_EQ(Num(Value("round(2.665, 2, 'half_up')")), "2.67");
  EXPECT_EQ(Num(Value("round(2.665, 2, 'half_down')")), "2.66");
  EXPECT_EQ(Num(Value("round(2.661, 2, 'up')")), "2.67");
  EXPECT_EQ(Num(Value("round(2.669, 2, 'down')")), "2.66");
  EXPECT_EQ(Num(Value("round(-2.661, 2, 'ceiling')")), "-2.66");
  EXPECT_EQ(Num(Value("round(-2.661, 2, 'floor')")), "-2.67");
  EXPECT_EQ(Num(Value("round(2, 2)")), "2.00");
  EXPECT_EQ(Num(Value("round(1234, -2)")), "1.2E+3");
  EXPECT_EQ(Value("round(2.5, 0)"), json(2));
  EXPECT_TRUE(Value("round(2.5, 0)").is_number_integer());
  EXPECT_EQ(Num(Value("div(1, 3, 4)")), "0.3333");
  EXPECT_EQ(Num(Value("div(2, 3, 2)")), "0.67");
  EXPECT_EQ(Num(Value("div(2, 3, 2, 'down')")), "0.66");
  EXPECT_EQ(Num(Value("div(100.00, 3, 2, 'floor')")), "33.33");
  EXPECT_EQ(Num(Value("div(-100, 3, 2, 'floor')")), "-33.34");
  EXPECT_EQ(Num(Value("div(1, 8, 2)")), "0.12");        // 0.125, half_even
  EXPECT_EQ(Num(Value("div(1, 8, 2, 'half_up')")), "0.13");
  // Rounded once, from the exact quotient: 2.4999... must not become 2.5
  // and then 3.
  EXPECT_EQ(Num(Value("div(24999999999999999999, 10000000000000000000, 0, 'half_up')")),
            "2");
  EXPECT_EQ(Num(Value("div(1, 1e-30, 2)")), "1000000000000000000000000000000.00");
  EXPECT_EQ(RuntimeError("div(1, 0, 2)"), "division by zero (div(1, 0, 2))");
  EXPECT_EQ(RuntimeError("div(1e30, 1e-30, 2)"),
            "decimal result needs more than 38 digits (div(1e30, 1e-30, 2))");
  EXPECT_EQ(RuntimeError("round(command.orderId, 2)"),
            "round() expects a number, found a string (command.orderId)");
  EXPECT_EQ(RuntimeError("round(1.5, 2, command.orderId)"),
            "round() expects a rounding mode ('half_even', 'half_up', 'half_down', 'up', "
            "'down', 'ceiling', 'floor'), found a string (command.orderId)");
  EXPECT_EQ(CompileError("round(1.5, 2, 'nearest')"),
            "at column 15: round() takes a rounding mode, one of 'half_even', 'half_up', "
            "'half_down', 'up', 'down', 'ceiling', 'floor'; found 'nearest'");
  EXPECT_EQ(CompileError("div(1, 3, 40)"),
            "at column 11: div() takes a scale (digits after the point) from -38 to 38, "
            "found 40");
  EXPECT_EQ(CompileError("round(1.5)"), "at column 1: round() takes 2 or 3 arguments, found 1");
}

TEST(ExpressionTest, NowIsTheContextTimestamp) {
  Docs d;
  d.now_ms = 1234;
  EXPECT_EQ(Value("now()", d), json(1234));
  EXPECT_EQ(Value("now() - 1000", d), json(234));
  Result<Expression> e = Expression::Compile("now() > 0", kRoots);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->UsesNow());
  EXPECT_FALSE(Expression::Compile("1", kRoots)->UsesNow());
}

// --- Compile errors
// -------------------------------------------------------------

TEST(ExpressionTest, UnknownNameSuggestsTheClosestRoot) {
  EXPECT_EQ(CompileError("comand.orderId"),
            "at column 1: unknown name 'comand' (did you mean 'command'?); "
            "names here: command, state, meta");
  EXPECT_EQ(CompileError("command.quantity > 0 && stat == null"),
            "at column 25: unknown name 'stat' (did you mean 'state'?); names "
            "here: command, state, meta");
  EXPECT_EQ(CompileError("Null"),
            "at column 1: unknown name 'Null' (did you mean 'null'?); names "
            "here: command, state, meta");
  EXPECT_EQ(CompileError("  event.product"),
            "at column 3: unknown name 'event'; names here: command, state, "
            "meta");
  EXPECT_EQ(CompileError("len"),
            "at column 1: 'len' is a function: call it as len(...)");
  Result<Expression> none = Expression::Compile("x", {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(),
            "at column 1: unknown name 'x'; names here: none");
}

TEST(ExpressionTest, UnknownFunctionAndWrongArity) {
  EXPECT_EQ(CompileError("lenght(command.tags)"),
            "at column 1: unknown function 'lenght' (did you mean 'len'?); "
            "functions: exists, coalesce, len, lower, upper, string, number, "
            "contains, starts_with, abs, min, max, now, is_number, is_integer, "
            "is_decimal, is_string, is_boolean, is_array, is_object, type, between, round, div");
  EXPECT_THAT(CompileError("1 + startswith('a', 'b')"),
              StartsWith("at column 5: unknown function 'startswith' (did you "
                         "mean 'starts_with'?)"));
  EXPECT_EQ(CompileError("len(1, 2)"),
            "at column 1: len() takes 1 argument, found 2");
  EXPECT_EQ(CompileError("1 + len()"),
            "at column 5: len() takes 1 argument, found 0");
  EXPECT_EQ(CompileError("coalesce()"),
            "at column 1: coalesce() takes at least 1 argument, found 0");
  EXPECT_EQ(CompileError("now(1)"),
            "at column 1: now() takes 0 arguments, found 1");
  EXPECT_EQ(CompileError("min(1)"),
            "at column 1: min() takes 2 arguments, found 1");
  EXPECT_EQ(CompileError("len(1 2)"),
            "at column 7: expected ',' or ')' in the call of len() at column "
            "1, found '2'");
}

TEST(ExpressionTest, SyntaxErrorsSayWhatWasExpectedAndWhere) {
  EXPECT_EQ(CompileError(""),
            "at column 1: expected an expression, found the end of the text");
  EXPECT_EQ(CompileError("1 +"),
            "at column 4: expected an expression, found the end of the text");
  EXPECT_EQ(CompileError("(1 + 2"),
            "at column 7: expected ')' to close the '(' at column 1, found "
            "the end of the text");
  EXPECT_EQ(CompileError("command.tags[0"),
            "at column 15: expected ']' to close the '[' at column 13, found "
            "the end of the text");
  EXPECT_EQ(CompileError("[1, 2"),
            "at column 6: expected ',' or ']' in the array opened at column "
            "1, found the end of the text");
  EXPECT_EQ(CompileError("1 2"),
            "at column 3: expected an operator or the end of the expression, "
            "found '2'");
  EXPECT_EQ(CompileError("command.quantity = 1"),
            "at column 18: expected an operator, found '=' (did you mean "
            "'=='?)");
  EXPECT_EQ(
      CompileError("true & false"),
      "at column 6: expected an operator, found '&' (did you mean '&&'?)");
  EXPECT_EQ(
      CompileError("true | false"),
      "at column 6: expected an operator, found '|' (did you mean '||'?)");
  EXPECT_EQ(CompileError("1 # 2"), "at column 3: unexpected character '#'");
  EXPECT_EQ(CompileError("1 \xE2\x82\xAC 2"),
            "at column 3: unexpected character '\xE2\x82\xAC'");
  EXPECT_EQ(CompileError("1 \x01"),
            "at column 3: unexpected character '\\x01'");
  EXPECT_EQ(CompileError("1 \xFF"),
            "at column 3: expected UTF-8 text, found the byte 0xFF");
  EXPECT_EQ(CompileError("command."),
            "at column 9: expected a field name after '.' (write [\"...\"] "
            "for a name that is not an identifier), found the end of the text");
  EXPECT_EQ(CompileError("command.tags.0"),
            "at column 14: expected a field name after '.' (write [0] for an "
            "array element), found '0'");
  EXPECT_EQ(CompileError("command[1.5]"),
            "at column 9: expected a field name (a string) or an array index "
            "(an integer) between [ and ], found a number");
  EXPECT_EQ(CompileError("1 && and"),
            "at column 6: expected an expression, found 'and'");
  EXPECT_EQ(CompileError("{1}"),
            "at column 1: expected an expression, found '{'");
}

TEST(ExpressionTest, ComparisonsDoNotChain) {
  EXPECT_EQ(CompileError("1 < 2 < 3"),
            "at column 7: expected an operator other than '<': comparisons do "
            "not chain; write 'a < b && b < c'");
  EXPECT_EQ(CompileError("1 == 1 == true"),
            "at column 8: expected an operator other than '==': equality "
            "comparisons do not chain; use parentheses or &&");
  EXPECT_EQ(Value("(1 == 1) == true"), json(true));
}

TEST(ExpressionTest, LiteralErrors) {
  EXPECT_EQ(CompileError("1 + 12abc"),
            "at column 7: expected an operator after the number 12, found 'a'");
  EXPECT_EQ(CompileError("1e"),
            "at column 3: expected the digits of an exponent, found the end "
            "of the text");
  EXPECT_EQ(CompileError("'abc"),
            "at column 1: unterminated string: expected a closing ' before "
            "the end of the text");
  EXPECT_EQ(CompileError("1 == \"abc\\\""),
            "at column 6: unterminated string: expected a closing \" before "
            "the end of the text");
  EXPECT_THAT(CompileError("'a\\qb'"),
              StartsWith("at column 3: unknown escape '\\q'"));
  EXPECT_EQ(CompileError("'\\u12G4'"),
            "at column 6: expected 4 hex digits after \\u, found 'G'");
  EXPECT_THAT(CompileError("'\\ud800'"),
              StartsWith("at column 2: a \\u escape of a high surrogate"));
  EXPECT_THAT(CompileError("'\\udc00'"),
              StartsWith("at column 2: a \\u escape of a low surrogate"));
}

TEST(ExpressionTest, RejectsExcessiveNesting) {
  std::string parens = std::string(100, '(') + "1" + std::string(100, ')');
  EXPECT_THAT(CompileError(parens), HasSubstr("nested too deeply"));
  std::string chain = "1";
  for (int i = 0; i < 300; ++i) chain += " + 1";
  EXPECT_THAT(CompileError(chain), HasSubstr("nested too deeply"));
  std::string bangs = std::string(100, '!') + "true";
  EXPECT_THAT(CompileError(bangs), HasSubstr("nested too deeply"));
  // Realistic depths are fine.
  std::string ok = std::string(30, '(') + "1" + std::string(30, ')');
  EXPECT_EQ(Value(ok), json(1));
}

TEST(ExpressionTest, RejectsRootNamesThatAreNotIdentifiers) {
  Result<Expression> e = Expression::Compile("1", {"ok", "not-ok"});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "root name 'not-ok' is not an identifier");
}

// --- Runtime errors name the sub-expression
// ------------------------------------

TEST(ExpressionTest, RuntimeErrorsNameTheFailingSubExpression) {
  EXPECT_EQ(
      RuntimeError(
          "command.quantity > 0 && command.quantity + command.orderId > 0"),
      "'+' expects two numbers or two strings, found a number and a "
      "string (command.quantity + command.orderId)");
  EXPECT_EQ(RuntimeError("((command.orderId * 2)) > 1"),
            "'*' expects two numbers, found a string and a number "
            "(command.orderId * 2)");
  EXPECT_EQ(RuntimeError("len(-(5))"),
            "len() expects a string, an array or an object, found a number "
            "(-(5))");
  EXPECT_EQ(RuntimeError("coalesce(state.x, len(  command.quantity  ))"),
            "len() expects a string, an array or an object, found a number "
            "(command.quantity)");
}

TEST(ExpressionTest, EvaluateBoolRequiresABoolean) {
  Result<Expression> e = Expression::Compile("command.quantity", kRoots);
  ASSERT_TRUE(e.ok());
  Docs d;
  const json* roots[] = {&d.command, &d.state, &d.meta};
  Result<bool> r = e->EvaluateBool({roots, 3, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().message(),
            "expected a boolean, found a number (command.quantity)");

  Result<Expression> cond = Expression::Compile(
      "command.quantity > 0 && exists(command.product)", kRoots);
  ASSERT_TRUE(cond.ok());
  Result<bool> yes = cond->EvaluateBool({roots, 3, 0});
  ASSERT_TRUE(yes.ok());
  EXPECT_TRUE(*yes);
  d.command["quantity"] = 0;
  Result<bool> no = cond->EvaluateBool({roots, 3, 0});
  ASSERT_TRUE(no.ok());
  EXPECT_FALSE(*no);
}

// --- Introspection and value semantics
// -----------------------------------------

TEST(ExpressionTest, SinglePathIsCanonical) {
  auto path = [](std::string_view text) {
    Result<Expression> e = Expression::Compile(text, kRoots);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? e->SinglePath() : std::nullopt;
  };
  EXPECT_EQ(path("command.product"), "command.product");
  EXPECT_EQ(path(" command [ 'product' ] "), "command.product");
  EXPECT_EQ(path("command['order id'][0].x"), "command[\"order id\"][0].x");
  EXPECT_EQ(path("state"), "state");
  EXPECT_EQ(path("(meta.key)"), "meta.key");
  EXPECT_EQ(path("command.x + 1"), std::nullopt);
  EXPECT_EQ(path("coalesce(state, command).x"), std::nullopt);
  EXPECT_EQ(path("'literal'"), std::nullopt);
}

TEST(ExpressionTest, ReportsWhichRootsItUses) {
  Result<Expression> e =
      Expression::Compile("state == null && meta.x == 1", kRoots);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->UsesRoot(0));
  EXPECT_TRUE(e->UsesRoot(1));
  EXPECT_TRUE(e->UsesRoot(2));
  EXPECT_FALSE(e->UsesRoot(3));
  EXPECT_EQ(e->text(), "state == null && meta.x == 1");
}

// What a repartition topic keeps of an event: the fields its view's rules
// read, or the whole event when a rule may read more than named fields.
TEST(ExpressionTest, ReportsWhichTopLevelFieldsOfARootItReads) {
  auto fields = [](const std::string& text, size_t root) -> std::optional<std::set<std::string>> {
    Result<Expression> e = Expression::Compile(text, kRoots);
    EXPECT_TRUE(e.ok()) << text;
    std::set<std::string> out;
    if (!e.ok() || !e->RootFields(root, &out)) return std::nullopt;
    return out;
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(fields("command.a + command.b.c[0] - state.z", 0), (Set{"a", "b"}));
  EXPECT_EQ(fields("command['not an id'].x", 0), (Set{"not an id"}));
  EXPECT_EQ(fields("coalesce(command.items[command.i], 0)", 0), (Set{"i", "items"}));
  EXPECT_EQ(fields("state.x", 0), Set{});  // root 0 is not read at all
  EXPECT_EQ(fields("coalesce(state, command).x", 0), std::nullopt);  // command as a whole
  EXPECT_EQ(fields("exists(command)", 0), std::nullopt);
  EXPECT_EQ(fields("command[0]", 0), std::nullopt);
  EXPECT_EQ(fields("command[state.field]", 0), std::nullopt);
  EXPECT_EQ(fields("command.a == 1 && len(command) > 2", 0), std::nullopt);
}

TEST(ExpressionTest, DefaultIsNullAndCopiesShareTheProgram) {
  Expression empty;
  EXPECT_EQ(empty.text(), "null");
  Result<json> r = empty.Evaluate({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, json(nullptr));

  Result<Expression> e = Expression::Compile("command.quantity * 2", kRoots);
  ASSERT_TRUE(e.ok());
  Expression copy = *e;
  Expression moved = std::move(copy);
  Docs d;
  const json* roots[] = {&d.command, &d.state, &d.meta};
  EXPECT_EQ(*moved.Evaluate({roots, 3, 0}), json(6));
  EXPECT_EQ(*e->Evaluate({roots, 3, 0}), json(6));
}

TEST(ExpressionTest, EvaluationDoesNotChangeTheDocuments) {
  Docs d;
  const json before = d.command;
  Result<Expression> e = Expression::Compile(
      "coalesce(command.missing, command.customer).address.city + "
      "string(command.tags)",
      kRoots);
  ASSERT_TRUE(e.ok());
  const json* roots[] = {&d.command, &d.state, &d.meta};
  EXPECT_EQ(*e->Evaluate({roots, 3, 0}), json(R"(Oslo["a","b"])"));
  EXPECT_EQ(d.command, before);
}

TEST(ExpressionTest, OneExpressionEvaluatesFromFourThreads) {
  Result<Expression> e = Expression::Compile(
      "coalesce(state.orders, 0) + command.quantity * 2 + len(command.name)",
      kRoots);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  const Expression& expr = *e;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&expr, &failures, t] {
      for (int i = 0; i < 20000; ++i) {
        json command = {{"quantity", i}, {"name", std::string(t, 'x')}};
        json state = i % 2 == 0 ? json(nullptr) : json{{"orders", t}};
        const json meta;
        const json* roots[] = {&command, &state, &meta};
        Result<json> r = expr.Evaluate({roots, 3, 0});
        int64_t expected = (i % 2 == 0 ? 0 : t) + int64_t{i} * 2 + t;
        if (!r.ok() || *r != json(expected)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace kcqrs::topology
