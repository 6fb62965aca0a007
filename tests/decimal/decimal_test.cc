// decimal/: the behaviours a rule relies on, named. decimal_oracle.py checks
// the arithmetic itself against Python's decimal on generated cases.
#include "decimal/decimal.h"

#include <gtest/gtest.h>

#include <string>

namespace kcqrs::decimal {
namespace {

using json = kcqrs::Json;

json D(std::string_view text) { return FromString(text).value(); }

std::string T(const json& j) {
  std::string out;
  AppendText(j, &out);
  return out;
}

std::string Sum(std::string_view a, std::string_view b) {
  json r;
  Status s = Add(D(a), D(b), &r);
  return s.ok() ? T(r) : "error: " + s.message();
}

TEST(DecimalTest, ADecimalIsItsTextAndAnIntegerStaysAnInteger) {
  EXPECT_TRUE(IsDecimal(D("1.50")));
  EXPECT_EQ(Text(D("1.50")), "1.50");
  EXPECT_TRUE(D("42").is_number_unsigned());
  EXPECT_TRUE(D("-42").is_number_integer());
  EXPECT_TRUE(IsDecimal(D("18446744073709551616")));
  EXPECT_TRUE(IsNumber(D("1e3")));
  EXPECT_FALSE(IsNumber(json("1")));
  EXPECT_FALSE(IsDecimal(json::binary({1, 2})));
  EXPECT_FALSE(FromString("1.").ok());
  EXPECT_FALSE(FromString(" 1").ok());
  EXPECT_FALSE(FromString("NaN").ok());
  EXPECT_FALSE(FromString("0x10").ok());
  EXPECT_EQ(T(FromDouble(0.1).value()), "0.1");
  EXPECT_EQ(T(FromDouble(1.0).value()), "1.0");
  EXPECT_EQ(T(FromDouble(1e20).value()), "1e+20");
  EXPECT_FALSE(FromDouble(1.0 / 0.0).ok());
}

TEST(DecimalTest, MoneyAddsUpExactly) {
  EXPECT_EQ(Sum("0.1", "0.2"), "0.3");
  EXPECT_EQ(Sum("1.50", "1"), "2.50");
  EXPECT_EQ(Sum("99999999999999999999", "100"), "100000000000000000099");
  EXPECT_EQ(Sum("9223372036854775807", "1"), "9223372036854775808");
  EXPECT_EQ(Sum("1e38", "1"), "error: decimal result needs more than 38 digits");
  json r;
  ASSERT_TRUE(Subtract(D("0.3"), D("0.3"), &r).ok());
  EXPECT_EQ(T(r), "0.0");
  EXPECT_EQ(Compare(r, json(0)), 0);
  ASSERT_TRUE(Multiply(D("19.99"), json(3), &r).ok());
  EXPECT_EQ(T(r), "59.97");
}

TEST(DecimalTest, DivisionIsExactOrRoundedOnRequest) {
  json r;
  ASSERT_TRUE(Divide(D("7.0"), json(2), &r).ok());
  EXPECT_EQ(T(r), "3.5");
  Status s = Divide(json(1), D("3.0"), &r);
  EXPECT_EQ(s.message(),
            "the quotient has no exact decimal of at most 38 digits: round it with "
            "div(a, b, scale)");
  EXPECT_EQ(Divide(json(1), D("0.0"), &r).message(), "division by zero");
  ASSERT_TRUE(DivideRounded(json(10), json(3), 2, Rounding::kHalfEven, &r).ok());
  EXPECT_EQ(T(r), "3.33");
  ASSERT_TRUE(DivideRounded(json(-10), json(3), 2, Rounding::kFloor, &r).ok());
  EXPECT_EQ(T(r), "-3.34");
  ASSERT_TRUE(Round(D("2.345"), 2, Rounding::kHalfUp, &r).ok());
  EXPECT_EQ(T(r), "2.35");
  ASSERT_TRUE(Round(D("2.345"), 2, Rounding::kHalfEven, &r).ok());
  EXPECT_EQ(T(r), "2.34");
  EXPECT_FALSE(Round(D("1e40"), 2, Rounding::kHalfEven, &r).ok());
  EXPECT_FALSE(Round(json(1), 39, Rounding::kHalfEven, &r).ok());
}

TEST(DecimalTest, EqualityAndOrderAreByValue) {
  EXPECT_TRUE(Equal(D("1.50"), D("1.5")));
  EXPECT_TRUE(Equal(json(1), D("1.0")));
  EXPECT_TRUE(Equal(json::parse(R"({"a":[1,2.0]})"), json{{"a", {D("1.00"), json(2)}}}));
  EXPECT_FALSE(Equal(json::parse(R"({"a":[1,2.0]})"), json{{"a", {D("1.01"), json(2)}}}));
  EXPECT_FALSE(Equal(json("1"), json(1)));
  EXPECT_FALSE(Equal(json{{"a", 1}}, json{{"b", 1}}));
  EXPECT_LT(Compare(D("9007199254740992.0"), D("9007199254740993")), 0);  // past doubles
  EXPECT_GT(Compare(D("1e6145"), D("1e6144")), 0);
  // Exponents past libmpdec's: a zero or an infinity, never a wrong number.
  EXPECT_EQ(Compare(D("1e-99999999999999999999"), json(0)), 0);
  EXPECT_GT(Compare(D("1e99999999999999999999"), D("1e6144")), 0);
  EXPECT_LT(Compare(D("-1e99999999999999999999"), json(0)), 0);
  json r;
  EXPECT_EQ(Add(D("1e99999999999999999999"), json(1), &r).message(),
            "decimal result out of range (exponent beyond +-6144)");
  EXPECT_FALSE(FitsScale(D("1e99999999999999999999"), 2));
}

TEST(DecimalTest, ScaleAndWholeness) {
  EXPECT_TRUE(FitsScale(D("10.50"), 2));
  EXPECT_TRUE(FitsScale(D("10.500"), 2));
  EXPECT_FALSE(FitsScale(D("10.505"), 2));
  EXPECT_TRUE(FitsScale(json(10), 0));
  EXPECT_TRUE(FitsScale(D("0.000"), 0));
  EXPECT_TRUE(IsWhole(D("3.00")));
  EXPECT_FALSE(IsWhole(D("3.01")));
  EXPECT_EQ(ToInt64(D("2.0")), 2);
  EXPECT_EQ(ToInt64(D("1e3")), 1000);
  EXPECT_EQ(ToInt64(D("2.5")), std::nullopt);
  EXPECT_EQ(ToInt64(D("9223372036854775808")), std::nullopt);
  EXPECT_EQ(ParseRounding("half_up"), Rounding::kHalfUp);
  EXPECT_EQ(ParseRounding("HALF_UP"), std::nullopt);
}

}  // namespace
}  // namespace kcqrs::decimal
