// The fast JSON codec must be nlohmann's parse() and dump(), exactly: same
// documents (integer types included), same rejections, same bytes, same
// exceptions; except that a number nlohmann reads as a double is a decimal
// keeping its text (decimal/decimal.h), which must be the text nlohmann read.
// Checked on hand-picked cases and on generated documents in every text form
// nlohmann writes, mutated at random.
#include "engine/codec/json_codec.h"

#include "decimal/decimal.h"
#include "tests/support/json_identical.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

bool Identical(const json& a, const json& b) { return kcqrs::testing::IdenticalJson(a, b); }

json AsNlohmann(const json& doc) {
  bool bad_text = false;
  json out = kcqrs::testing::DecimalsAsDoubles(doc, &bad_text);
  EXPECT_FALSE(bad_text) << DumpJson(doc);
  return out;
}

// kcqrs takes a number nlohmann refuses as beyond a double's range (1e400):
// that, and only that, may make the codec accept what nlohmann rejects.
bool HoldsNumberBeyondDouble(const json& doc) {
  bool beyond = false;
  (void)kcqrs::testing::DecimalsAsDoubles(doc, nullptr, &beyond);
  return beyond;
}

using kcqrs::testing::HasDouble;

void ExpectParsesAsNlohmann(const std::string& text) {
  const json expected = json::parse(text, nullptr, false);
  const json actual = ParseJson(text);
  if (expected.is_discarded() && !actual.is_discarded()) {
    EXPECT_TRUE(HoldsNumberBeyondDouble(actual)) << text;
    return;
  }
  EXPECT_EQ(actual.is_discarded(), expected.is_discarded()) << text;
  if (!expected.is_discarded() && !actual.is_discarded()) {
    EXPECT_FALSE(HasDouble(actual)) << text;
    EXPECT_TRUE(Identical(AsNlohmann(actual), expected))
        << text << "\n  fast: " << DumpJson(actual) << "\n  nlohmann: " << expected.dump();
  }
}

// ParseJson(text, limits) accepts what nlohmann accepts, as the same
// document, when it is within generous limits.
void ExpectLimitedParsesAsNlohmann(const std::string& text) {
  const json expected = json::parse(text, nullptr, false);
  const Result<json> actual = ParseJson(text, JsonLimits{1000, 1 << 30});
  if (expected.is_discarded() && actual.ok()) {
    EXPECT_TRUE(HoldsNumberBeyondDouble(*actual)) << text;
    return;
  }
  EXPECT_EQ(actual.ok(), !expected.is_discarded()) << text;
  if (actual.ok() && !expected.is_discarded()) {
    EXPECT_FALSE(HasDouble(*actual)) << text;
    EXPECT_TRUE(Identical(AsNlohmann(*actual), expected)) << text;
  }
}

void ExpectDumpsAsNlohmann(const json& doc) {
  std::string expected, expected_error, actual, actual_error;
  try {
    expected = doc.dump();
  } catch (const json::exception& e) {
    expected_error = e.what();
  }
  try {
    actual = DumpJson(doc);
  } catch (const json::exception& e) {
    actual_error = e.what();
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(actual_error, expected_error);
}

TEST(JsonCodecTest, ParsesWhatNlohmannParsesAndRejectsWhatItRejects) {
  const std::vector<std::string> cases = {
      R"({"type":"AdjustQuantity","orderId":"o-000042","delta":-2,"commandId":"c-000042-3"})",
      "{}", "[]", " [ 1 , 2 ] ", "\t{\n\"a\" :\r1}\n", "null", "true", "false", "0", "-0",
      "-0.0", "1", "-1", "18446744073709551615", "18446744073709551616",
      "-9223372036854775808", "-9223372036854775809", "9223372036854775807",
      "9223372036854775808", "1.5", "-1.5e10", "1E-7", "1e+2", "0.1", "1e400", "-1e400",
      "1e-400", "4.9e-324", "2.2250738585072014e-308", "123456789012345678901234567890",
      "01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "NaN", "Infinity",
      R"("plain")", R"("a\"b\\c\/d\be\ff\ng\rh\ti")", R"("\u00e9\u20AC\uD83D\uDE00")",
      R"("\u0000")", R"("\uD83D")", R"("\uDE00")", R"("\uD83Dx")", R"("\uD83D\u0041")",
      R"("\u12")", R"("\x")", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
      "\"\xc3\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"",
      "\"tab\there\"", "\"nul\0x\"", "\"unterminated", R"({"a":1,"a":2})",
      R"({"b":1,"a":{"d":[1,{"c":null}],"c":true}})", R"({"a":1,})", R"([1,])",
      R"({"a" 1})", R"({1:2})", R"([1 2])", "[1]x", "{} {}", "", "   ",
      "\xef\xbb\xbf{\"bom\":1}", "/* comment */ 1", "[[[[[[[[[[]]]]]]]]]]",
      std::string(300, '[') + std::string(300, ']'),
  };
  for (const std::string& text : cases) ExpectParsesAsNlohmann(text);
}

TEST(JsonCodecTest, DumpsWhatNlohmannDumps) {
  std::vector<json> cases = {
      nullptr, true, false, 0, -1, int64_t{std::numeric_limits<int64_t>::min()},
      uint64_t{std::numeric_limits<uint64_t>::max()}, 1.0, -0.0, 0.1, 1e300, 5e-324,
      std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
      "plain", "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f", std::string("nul\0x", 5),
      "caf\xc3\xa9 \xf0\x9f\x98\x80", json::object(), json::array(),
      json::parse(R"({"z":[1,2.5,{"y":null,"x":"\u00e9"}],"a":{"":true}})"),
      json::binary({1, 2, 3}),
      // Not UTF-8: both throw the same error.
      "bad \xff byte", json{{"bad \xc3", 1}},
  };
  for (const json& doc : cases) ExpectDumpsAsNlohmann(doc);
}

// AppendJson adds to what the string holds, whatever its length and spare
// capacity, and leaves nothing past what it wrote; strings long enough to
// make the writer grow several times come out whole.
TEST(JsonCodecTest, AppendJsonAddsToWhatIsThere) {
  const json doc = json::parse(R"({"a":"\u0001x","b":[1,-2,"c"],"d":{"e":null}})");
  const std::string one = doc.dump();
  std::string out(100'000, '.');
  out.reserve(1'000'000);
  std::string expected = out;
  for (int i = 0; i < 1000; ++i) {
    AppendJson(doc, &out);
    expected += one;
  }
  EXPECT_EQ(out, expected);

  const json big = json{{"s", std::string(5'000, 'x') + "\"" + std::string(70, 'y')}};
  std::string tail = "[";
  AppendJson(big, &tail);
  EXPECT_EQ(tail, "[" + big.dump());
  EXPECT_EQ(DumpJson(big), big.dump());
}

TEST(JsonCodecTest, DecimalsKeepTheirTextFromParseToDump) {
  for (const std::string text :
       {"1.50", "-0.0", "1e5", "1E+300", "2.5E-1", "-1e-400", "1e-99999999999999999999",
        "18446744073709551616",
        "-9223372036854775809", "123456789012345678901234567890.000000000000000000001",
        "0.30000000000000000000000000000000000000000000001"}) {
    const json doc = ParseJson(text);
    ASSERT_TRUE(decimal::IsDecimal(doc)) << text;
    EXPECT_EQ(decimal::Text(doc), text);
    EXPECT_EQ(DumpJson(doc), text);
    const std::string wrapped = R"({"amount":)" + text + R"(,"n":[)" + text + "]}";
    EXPECT_EQ(DumpJson(ParseJson(wrapped)), wrapped);
    EXPECT_EQ(DumpJson(*ParseJson(wrapped, JsonLimits{})), wrapped);
  }
  // Integers within 64 bits stay nlohmann's integers.
  EXPECT_TRUE(ParseJson("18446744073709551615").is_number_unsigned());
  EXPECT_TRUE(ParseJson("-9223372036854775808").is_number_integer());
  // The slow path (a byte order mark) keeps decimals too.
  const json bom = ParseJson("\xef\xbb\xbf{\"a\":1.50,\"b\":[1e-400]}");
  ASSERT_TRUE(bom.is_object());
  EXPECT_EQ(DumpJson(bom), R"({"a":1.50,"b":[1e-400]})");
  // Beyond a double's range, which nlohmann refuses: kept too, so that a
  // result such as 1e308 * 10 in stored state reads back.
  EXPECT_EQ(DumpJson(ParseJson("[1e400,-1.0E+309]")), "[1e400,-1.0E+309]");
  EXPECT_EQ(DumpJson(*ParseJson("1e400", JsonLimits{})), "1e400");
  const json deep = ParseJson(std::string(300, '[') + "0.10" + std::string(300, ']'));
  ASSERT_TRUE(deep.is_array());
  EXPECT_NE(DumpJson(deep).find("[0.10]"), std::string::npos);
}

TEST(JsonCodecTest, SkipCanonicalAcceptsDumpOutputAndRejectsOtherForms) {
  const std::vector<std::string> canonical = {
      R"({"a":[1,-2,3.5,"x",null,true,false,{}],"b":{"c":"\"\\\b\f\n\r\t\u0001\u001f"}})",
      "0", "-7", "123456789012345678", "1.0", "1e+300", R"("caf)" "\xc3\xa9" R"(")", "[]",
      // Decimals are kept as they came, so any form of a number is canonical.
      "1.50", "1e5", "1E+300", "1234567890123456789", "99999999999999999999", "1e400"};
  for (const std::string& text : canonical) {
    size_t pos = 0;
    EXPECT_TRUE(SkipCanonical(text, &pos)) << text;
    EXPECT_EQ(pos, text.size()) << text;
    EXPECT_EQ(DumpJson(ParseJson(text)), text) << "the test case itself is canonical";
  }
  const std::vector<std::string> other = {
      " 1", "[1, 2]", "{\"a\": 1}", R"({"b":1,"a":2})", R"({"a":1,"a":1})", "-0", "01",
      "1.", ".5", "1e", R"("\/")", R"("\u00e9")", R"("\u000a")", R"("\u001F")",
      R"("\u0041")", "\"\xff\"", "\"tab\there\"", R"({"\u0061":1})",
      "nul", "[1,]", "{", ""};
  for (const std::string& text : other) {
    size_t pos = 0;
    const bool accepted = SkipCanonical(text, &pos) && pos == text.size();
    EXPECT_FALSE(accepted) << text;
  }
  size_t pos = 0;
  std::string_view content;
  EXPECT_TRUE(SkipCanonicalPlainString(R"("o-000042",)", &pos, &content));
  EXPECT_EQ(content, "o-000042");
  EXPECT_EQ(pos, 10u);
  pos = 0;
  EXPECT_FALSE(SkipCanonicalPlainString(R"("a\"b")", &pos, &content));
}

// Random documents with the shapes that matter: every number kind, strings
// with escapes, control characters and multi-byte UTF-8, nesting, keys
// that sort in interesting ways.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  json Document(int depth = 0) {
    const int kind = Pick(depth > 3 ? 7 : 9);
    switch (kind) {
      case 0: return nullptr;
      case 1: return Pick(2) == 0;
      case 2: return static_cast<int64_t>(rng_()) - static_cast<int64_t>(rng_());
      case 3: return static_cast<uint64_t>(rng_()) << Pick(33);
      case 4: return std::ldexp(static_cast<double>(rng_()) - 2e9, Pick(80) - 40);
      case 5:
      case 6: return String();
      case 7: {
        json o = json::object();
        for (int i = Pick(5); i > 0; --i) o[String()] = Document(depth + 1);
        return o;
      }
      default: {
        json a = json::array();
        for (int i = Pick(5); i > 0; --i) a.push_back(Document(depth + 1));
        return a;
      }
    }
  }

  std::string String() {
    static const std::vector<std::string> pieces = {
        "a", "B", "id", "type", "o-000042", " ", "\"", "\\", "/", "\n", "\t", "\x01",
        "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "", "0"};
    std::string s;
    for (int i = Pick(6); i > 0; --i) s += pieces[static_cast<size_t>(Pick(pieces.size()))];
    return s;
  }

  // A text form nlohmann writes, possibly damaged.
  std::string Text(const json& doc) {
    std::string t;
    switch (Pick(4)) {
      case 0: t = doc.dump(); break;
      case 1: t = doc.dump(2); break;
      case 2: t = doc.dump(-1, ' ', /*ensure_ascii=*/true); break;
      default: t = doc.dump(1, '\t', true); break;
    }
    if (Pick(3) == 0 && !t.empty()) {
      const size_t at = static_cast<size_t>(Pick(t.size()));
      switch (Pick(4)) {
        case 0: t[at] = static_cast<char>(rng_()); break;
        case 1: t.erase(at, 1); break;
        case 2: {
          static const std::string kInserted = "{}[],:\"\\ 0-e.u";
          t.insert(at, 1, kInserted[static_cast<size_t>(Pick(kInserted.size()))]);
          break;
        }
        default: t.resize(at); break;
      }
    }
    return t;
  }

  int Pick(size_t n) { return static_cast<int>(rng_() % n); }

 private:
  std::mt19937 rng_;
};

TEST(JsonCodecTest, AgreesWithNlohmannOnGeneratedDocuments) {
  Generator gen(20261128);
  int canonical_accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const json doc = gen.Document();
    ExpectDumpsAsNlohmann(doc);
    const std::string text = gen.Text(doc);
    ExpectParsesAsNlohmann(text);
    ExpectLimitedParsesAsNlohmann(text);
    // Whatever SkipCanonical accepts comes back byte for byte.
    size_t pos = 0;
    if (SkipCanonical(text, &pos) && pos == text.size()) {
      const json parsed = ParseJson(text);
      ASSERT_FALSE(parsed.is_discarded()) << text;
      EXPECT_EQ(DumpJson(parsed), text);
      ++canonical_accepted;
    }
    if (HasFailure()) break;
  }
  EXPECT_GT(canonical_accepted, 1000) << "the generator should produce canonical text often";
}

std::string Nested(int depth, std::string_view inner = "1") {
  return std::string(static_cast<size_t>(depth), '[') + std::string(inner) +
         std::string(static_cast<size_t>(depth), ']');
}

std::string ErrorOf(std::string_view text, JsonLimits limits = {}) {
  Result<json> r = ParseJson(text, limits);
  return r.ok() ? "accepted" : r.status().message();
}

TEST(JsonCodecLimitsTest, NestingAtTheLimitIsAcceptedOneDeeperIsRefusedSayingWhere) {
  EXPECT_EQ(ErrorOf(Nested(64)), "accepted");
  EXPECT_EQ(ErrorOf(Nested(65)),
            "nesting deeper than 64 levels at byte 64 (limits.max_json_depth)");
  EXPECT_EQ(ErrorOf(R"({"a":{"b":[1]}})", JsonLimits{2, 1 << 20}),
            "nesting deeper than 2 levels at byte 10 (limits.max_json_depth)");
  // Brackets inside strings are text, not nesting.
  EXPECT_EQ(ErrorOf(R"({"a":"[[[[{{{{"})", JsonLimits{1, 1 << 20}), "accepted");
}

// The HTTP body that crashed the process: 200 KB of arrays nested 100,000
// deep in an extra field. Refused before anything that deep is built, on
// the fast path and on the path through nlohmann (a byte order mark sends
// text there), so no copy, compare or dump ever recurses through it.
TEST(JsonCodecLimitsTest, HundredThousandLevelsAreRefusedWithoutRecursing) {
  const std::string bomb =
      R"({"type":"CreateOrder","orderId":"o-1","extra":)" + Nested(100000) + "}";
  EXPECT_EQ(ErrorOf(bomb), "nesting deeper than 64 levels at byte 109 (limits.max_json_depth)");
  EXPECT_EQ(ErrorOf("\xEF\xBB\xBF" + bomb),
            "nesting deeper than 64 levels at byte 112 (limits.max_json_depth)");
  // Unterminated, and invalid after the brackets: still the depth, first.
  EXPECT_EQ(ErrorOf(std::string(100000, '[')),
            "nesting deeper than 64 levels at byte 64 (limits.max_json_depth)");
}

// Limits past the fast parser's own bound (256) hold through nlohmann.
TEST(JsonCodecLimitsTest, LimitsDeeperThanTheFastParserHoldToo) {
  const JsonLimits deep{300, 1 << 20};
  Result<json> ok = ParseJson(Nested(300), deep);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(DumpJson(*ok), Nested(300));
  EXPECT_EQ(ErrorOf(Nested(301), deep),
            "nesting deeper than 300 levels at byte 300 (limits.max_json_depth)");
}

TEST(JsonCodecLimitsTest, SizeIsCheckedBeforeParsing) {
  const std::string text = "\"" + std::string(2000, 'a') + "\"";
  EXPECT_EQ(ErrorOf(text, JsonLimits{64, 2002}), "accepted");
  EXPECT_EQ(ErrorOf(text, JsonLimits{64, 2001}),
            "2002 bytes, more than the limit of 2001 bytes (limits.max_document_bytes)");
}

TEST(JsonCodecLimitsTest, InvalidTextSaysWhereInNlohmannsWords) {
  EXPECT_EQ(ErrorOf("{\"a\":tru}").rfind("not valid JSON: parse error at line 1, column ", 0), 0u)
      << ErrorOf("{\"a\":tru}");
  EXPECT_NE(ErrorOf("\"\xff\"").find("invalid"), std::string::npos) << ErrorOf("\"\xff\"");
}

}  // namespace
}  // namespace kcqrs::engine
