// Property tests: whatever the documents and however an expression is put
// together, compiling and evaluating never crash, never throw and never
// report anything but a clean InvalidArgument that names a part of the
// expression. Seeds are fixed, so a failure reproduces.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "topology/expression.h"

namespace kcqrs::topology {
namespace {

using json = kcqrs::Json;

const std::vector<std::string> kRoots = {"command", "state"};
const char* const kKeys[] = {
    "a", "b", "x", "quantity", "product", "0", "key with space"};

class Random {
 public:
  explicit Random(uint32_t seed) : rng_(seed) {}

  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  bool Chance(int percent) { return Int(1, 100) <= percent; }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[static_cast<size_t>(Int(0, static_cast<int>(N) - 1))];
  }

  std::string String() {
    static const std::string kPieces[] = {
        "a", "B", " ", "0",  "42", "-1.5", "\xC3\xA9", "\xF0\x9F\x98\x80",
        "{", "}", "'", "\"", "\\", "\n",   "\xFF",  // the last is invalid UTF-8
    };
    std::string s;
    int n = Int(0, 5);
    for (int i = 0; i < n; ++i) s += Pick(kPieces);
    return s;
  }

  json Document(int depth) {
    switch (Int(0, depth > 0 ? 9 : 6)) {
      case 0:
        return nullptr;
      case 1:
        return Chance(50);
      case 2: {
        static const int64_t kInts[] = {0,
                                        1,
                                        -1,
                                        3,
                                        7,
                                        1000,
                                        std::numeric_limits<int64_t>::max(),
                                        std::numeric_limits<int64_t>::min()};
        return Pick(kInts);
      }
      case 3: {
        static const uint64_t kUnsigned[] = {
            0, 2, std::numeric_limits<uint64_t>::max()};
        return Pick(kUnsigned);
      }
      case 4: {
        static const double kDoubles[] = {0.0,   -0.0,   0.5,   -2.25,
                                          1e308, -1e308, 5e-324};
        return Pick(kDoubles);
      }
      case 5:
      case 6:
        return String();
      case 7: {
        json a = json::array();
        int n = Int(0, 3);
        for (int i = 0; i < n; ++i) a.push_back(Document(depth - 1));
        return a;
      }
      default: {
        json o = json::object();
        int n = Int(0, 4);
        for (int i = 0; i < n; ++i) o[Pick(kKeys)] = Document(depth - 1);
        return o;
      }
    }
  }

  // A random well-formed expression over the roots.
  std::string Expr(int depth) {
    if (depth <= 0 || Chance(25)) return Leaf();
    switch (Int(0, 5)) {
      case 0: {
        static const char* const kBinary[] = {"+",  "-",  "*",  "/",   "%",
                                              "==", "!=", "<",  "<=",  ">",
                                              ">=", "&&", "||", "and", "or"};
        return "(" + Expr(depth - 1) + " " + Pick(kBinary) + " " +
               Expr(depth - 1) + ")";
      }
      case 1: {
        static const char* const kUnary[] = {"!", "-", "not "};
        return std::string(Pick(kUnary)) + "(" + Expr(depth - 1) + ")";
      }
      case 2: {
        static const char* const kOne[] = {"exists", "len",    "lower", "upper",
                                           "string", "number", "abs"};
        return std::string(Pick(kOne)) + "(" + Expr(depth - 1) + ")";
      }
      case 3: {
        static const char* const kTwo[] = {"contains", "starts_with", "min",
                                           "max", "coalesce"};
        return std::string(Pick(kTwo)) + "(" + Expr(depth - 1) + ", " +
               Expr(depth - 1) + ")";
      }
      case 4:
        return "[" + Expr(depth - 1) + ", " + Expr(depth - 1) + "]";
      default: {
        // A constant index must be a string or an integer (else it is a
        // compile error); a computed one may be anything.
        static const char* const kIndexes[] = {"0", "1", "-1", "'a'", "'x'"};
        std::string index = Chance(50)
                                ? Pick(kIndexes)
                                : "coalesce(state.i, " + Expr(depth - 1) + ")";
        return "(" + Expr(depth - 1) + ")[" + index + "]";
      }
    }
  }

 private:
  std::string Leaf() {
    static const char* const kLeaves[] = {"command",
                                          "state",
                                          "command.a",
                                          "command.b.x",
                                          "state.quantity",
                                          "command['key with space']",
                                          "command.a[0]",
                                          "state.product[1].a",
                                          "0",
                                          "1",
                                          "-1",
                                          "2.5",
                                          "9223372036854775807",
                                          "'x'",
                                          "'B'",
                                          "\"\"",
                                          "true",
                                          "false",
                                          "null",
                                          "now()",
                                          "[]",
                                          "[1, 'a']"};
    return Pick(kLeaves);
  }

  std::mt19937 rng_;
};

// A runtime error is clean when it is InvalidArgument and ends with a
// parenthesised part of the expression's text.
void ExpectCleanError(const Status& s, const std::string& text) {
  ASSERT_TRUE(s.IsInvalidArgument()) << text << " -> " << s.ToString();
  const std::string& m = s.message();
  ASSERT_FALSE(m.empty());
  ASSERT_EQ(m.back(), ')') << text << " -> " << m;
  size_t open = m.rfind(" (");
  ASSERT_NE(open, std::string::npos) << m;
  // The subject may itself contain " (", so look for any suffix that is a
  // substring of the text.
  bool named = false;
  for (size_t p = m.find(" ("); p != std::string::npos;
       p = m.find(" (", p + 1)) {
    std::string subject = m.substr(p + 2, m.size() - p - 3);
    if (!subject.empty() && text.find(subject) != std::string::npos)
      named = true;
  }
  EXPECT_TRUE(named) << text << " -> " << m;
}

TEST(ExpressionPropertyTest, FixedExpressionsOverRandomDocuments) {
  const char* const kTexts[] = {
      "state == null",
      "command.quantity > 0 && exists(command.product)",
      "coalesce(state.quantity, 0) + 1",
      "command.a + command.b",
      "command.a - command.b * 2",
      "command.a / command.b",
      "command.a % command.b",
      "-command.a",
      "command.a < command.b || command.a >= command.b",
      "command.a == state.a",
      "command.a.b.x",
      "command.a[0][1]",
      "command['key with space'].x",
      "command[command.x]",
      "!command.a",
      "len(command.a)",
      "lower(command.product) + upper(command.product)",
      "string(command) + string(state)",
      "number(command.a)",
      "contains(command.a, command.b)",
      "starts_with(command.a, command.b)",
      "abs(command.quantity)",
      "min(command.a, command.b)",
      "max(command.a, state.a)",
      "coalesce(command.x, state.x, command)",
      "[command.a, state.b][0]",
      "now() - command.quantity",
  };
  std::vector<Expression> exprs;
  for (const char* t : kTexts) {
    Result<Expression> e = Expression::Compile(t, kRoots);
    ASSERT_TRUE(e.ok()) << t << " -> " << e.status().ToString();
    exprs.push_back(*e);
  }
  Result<Template> tmpl = Template::Compile(
      "{command.a} and {state} ({len(string(command))})", kRoots);
  ASSERT_TRUE(tmpl.ok());

  Random rnd(20240601);
  size_t values = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    json command = rnd.Document(3);
    json state = rnd.Chance(30) ? json(nullptr) : rnd.Document(3);
    const json* roots[] = {&command, &state};
    const Expression::Context ctx{roots, 2, 1700000000000};
    for (const Expression& e : exprs) {
      Result<json> r = e.Evaluate(ctx);
      if (r.ok()) {
        ++values;
        Result<json> again = e.Evaluate(ctx);
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(*again, *r) << e.text() << " is not deterministic";
      } else {
        ++errors;
        ExpectCleanError(r.status(), e.text());
      }
    }
    Result<std::string> rendered = tmpl->Render(ctx);
    if (!rendered.ok()) ExpectCleanError(rendered.status(), tmpl->text());
  }
  // Both outcomes must actually occur, or the documents are too tame.
  EXPECT_GT(values, 1000u);
  EXPECT_GT(errors, 1000u);
}

TEST(ExpressionPropertyTest, RandomExpressionsCompileAndEvaluateCleanly) {
  Random rnd(7);
  size_t values = 0, errors = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = rnd.Expr(4);
    Result<Expression> e = Expression::Compile(text, kRoots);
    ASSERT_TRUE(e.ok()) << text << " -> " << e.status().ToString();
    for (int j = 0; j < 5; ++j) {
      json command = rnd.Document(2);
      json state = rnd.Document(2);
      const json* roots[] = {&command, &state};
      Result<json> r = e->Evaluate({roots, 2, 42});
      if (r.ok()) {
        ++values;
      } else {
        ++errors;
        ExpectCleanError(r.status(), text);
      }
      Result<bool> b = e->EvaluateBool({roots, 2, 42});
      if (!b.ok()) ExpectCleanError(b.status(), text);
    }
  }
  EXPECT_GT(values, 1000u);
  EXPECT_GT(errors, 1000u);
}

TEST(ExpressionPropertyTest, ArbitraryTextNeverCrashesTheCompiler) {
  static const char* const kPieces[] = {
      "command", "state",    ".",
      "a",       "[",        "]",
      "(",       ")",        "0",
      "1.5",     "'s'",      "\"",
      "'",       "\\",       "\\u",
      "+",       "-",        "*",
      "/",       "%",        "==",
      "=",       "!",        "<",
      ">=",      "&&",       "||",
      "and",     "not",      ",",
      "len",     "coalesce", "{",
      "}",       " ",        "e",
      "\xC3",    "\xFF",     "9999999999999999999999"};
  Random rnd(99);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    int n = rnd.Int(0, 12);
    for (int k = 0; k < n; ++k) text += rnd.Pick(kPieces);
    Result<Expression> e = Expression::Compile(text, kRoots);
    if (!e.ok()) {
      const Status s = e.status();
      ASSERT_TRUE(s.IsInvalidArgument()) << s.ToString();
      const std::string& m = s.message();
      ASSERT_EQ(m.rfind("at column ", 0), 0u) << text << " -> " << m;
      size_t column = std::stoul(m.substr(10));
      EXPECT_GE(column, 1u) << m;
      EXPECT_LE(column, text.size() + 1) << text << " -> " << m;
    } else {
      json command = rnd.Document(2);
      const json* roots[] = {&command, nullptr};
      Result<json> r = e->Evaluate({roots, 2, 0});
      if (!r.ok()) ExpectCleanError(r.status(), text);
    }
    Result<Template> t = Template::Compile(text, kRoots);
    if (!t.ok()) {
      const Status s = t.status();
      ASSERT_EQ(s.message().rfind("at column ", 0), 0u) << s.message();
    }
  }
}

}  // namespace
}  // namespace kcqrs::topology
