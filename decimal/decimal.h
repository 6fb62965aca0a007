// Exact decimal numbers in JSON documents.
//
// A JSON number that is not a 64-bit integer (it has a fraction or an
// exponent, or it is an integer beyond int64/uint64) is kept as the text it
// came in as: `1.50` stays `1.50`, `99999999999999999999` stays itself, and
// arithmetic on it is exact. Such a number lives in the document
// (kcqrs::Json) as a binary value with subtype kJsonSubtype whose bytes
// are its JSON text; engine::DumpJson writes those bytes back as the number.
// Integers that fit stay nlohmann's number_integer / number_unsigned, so the
// common case costs what it did.
//
// Arithmetic follows the General Decimal Arithmetic specification (the
// semantics of Python's `decimal`), computed by libmpdec
// (third_party/mpdecimal), with one difference: a result is exact or it is
// an error, never rounded behind the caller's back. So:
//   - `+ - *` are exact up to kMaxDigits significant digits, an error past
//     them; the result keeps its scale (1.50 + 1 is 2.50);
//   - `/` (Div) is exact or an error saying to round explicitly;
//     DivRound and Round round to a stated scale with a stated Rounding;
//   - comparisons are exact, across integers and decimals (1 == 1.0);
//   - an exponent beyond +-kMaxExponent is an error.
// Operands are any JSON numbers (number_integer, number_unsigned,
// number_float, decimal); a float is taken at its shortest round-trip text
// (0.1 is 0.1). The result is an integer value when it is a whole number
// written without a point or exponent that fits int64 (round(2.5, 0) is 2),
// else a decimal.
//
// Errors are InvalidArgument with a message meant to be followed by the
// caller's "(the expression)": "decimal result needs more than 38 digits".
//
// Thread-safety: free functions without shared state.
#ifndef KCQRS_DECIMAL_DECIMAL_H_
#define KCQRS_DECIMAL_DECIMAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "json/document.h"
#include "kcqrs/status.h"

namespace kcqrs::decimal {

// The binary subtype that marks a decimal (an arbitrary tag that no binary
// format kcqrs reads produces: kcqrs documents come from JSON text, which has
// no binary values).
inline constexpr std::uint64_t kJsonSubtype = 0xdec0;

// Significant digits an arithmetic result may have (as SQL's DECIMAL(38)).
inline constexpr int kMaxDigits = 38;
// Largest exponent of a result (that of IEEE 754 decimal128).
inline constexpr int kMaxExponent = 6144;

enum class Rounding { kHalfEven, kHalfUp, kHalfDown, kUp, kDown, kCeiling, kFloor };

// "half_even", "half_up", "half_down", "up", "down", "ceiling", "floor";
// nullopt for anything else.
std::optional<Rounding> ParseRounding(std::string_view name);
// The names ParseRounding takes, quoted, for messages: "'half_even', ...".
std::string_view RoundingNames();

inline bool IsDecimal(const kcqrs::Json& j) {
  return j.is_binary() && j.get_binary().has_subtype() &&
         j.get_binary().subtype() == kJsonSubtype;
}

// Any JSON number: an integer, a float or a decimal.
inline bool IsNumber(const kcqrs::Json& j) { return j.is_number() || IsDecimal(j); }

// The JSON text of a decimal. Requires IsDecimal(j).
inline std::string_view Text(const kcqrs::Json& j) {
  const auto& bytes = j.get_binary();
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A decimal with this text, which must be a JSON number (IsJsonNumber).
kcqrs::Json FromText(std::string_view json_number);

// Whether `text` is exactly one JSON number (RFC 8259: `-?(0|[1-9][0-9]*)
// (\.[0-9]+)?([eE][+-]?[0-9]+)?`, nothing around it).
bool IsJsonNumber(std::string_view text);

// The number `text` spells (IsJsonNumber): an integer value when it is a
// plain integer within int64/uint64 (as a JSON parser gives it), else a
// decimal. InvalidArgument when it is not a JSON number.
Result<kcqrs::Json> FromString(std::string_view text);

// A double as a decimal: its shortest round-trip text (0.1 is 0.1, 1e+20),
// with ".0" when that has neither a point nor an exponent (1.0 stays 1.0).
// InvalidArgument for an infinity or NaN.
Result<kcqrs::Json> FromDouble(double value);

// Appends the JSON text of a number (integer, float or decimal).
void AppendText(const kcqrs::Json& number, std::string* out);

// Appends compact JSON text of a document, decimals as their text, strings
// that are not UTF-8 with U+FFFD (nlohmann's error_handler_t::replace):
// for messages and tests. The per-record path uses engine::DumpJson.
void AppendJson(const kcqrs::Json& doc, std::string* out);
std::string Dump(const kcqrs::Json& doc);

// Arithmetic; a and b are numbers (IsNumber).
Status Add(const kcqrs::Json& a, const kcqrs::Json& b, kcqrs::Json* out);
Status Subtract(const kcqrs::Json& a, const kcqrs::Json& b, kcqrs::Json* out);
Status Multiply(const kcqrs::Json& a, const kcqrs::Json& b, kcqrs::Json* out);
// The exact quotient (7.0 / 2 is 3.5), or an error when it has no exact
// decimal of kMaxDigits digits (1 / 3): "... use div(a, b, scale)".
Status Divide(const kcqrs::Json& a, const kcqrs::Json& b, kcqrs::Json* out);
// The remainder of truncating division, with the sign of a (-7.5 % 2 is -1.5).
Status Remainder(const kcqrs::Json& a, const kcqrs::Json& b, kcqrs::Json* out);
// a / b rounded once, correctly, to `scale` digits after the point.
Status DivideRounded(const kcqrs::Json& a, const kcqrs::Json& b, int scale,
                     Rounding rounding, kcqrs::Json* out);
// x rounded to `scale` digits after the point (a negative scale rounds to
// tens, hundreds, ...): round(2.675, 2, half_up) is 2.68; round(2, 2) is 2.00.
Status Round(const kcqrs::Json& x, int scale, Rounding rounding, kcqrs::Json* out);
Status Negate(const kcqrs::Json& x, kcqrs::Json* out);
Status Abs(const kcqrs::Json& x, kcqrs::Json* out);

// -1, 0 or 1 as a < b, a == b, a > b, by value (1 == 1.0 == 1e0).
int Compare(const kcqrs::Json& a, const kcqrs::Json& b);

// Deep equality of two documents with numbers compared by value: 1 == 1.0,
// [1.50] == [1.5], {"a": 1} == {"a": 1e0}. Everything else as nlohmann's ==.
bool Equal(const kcqrs::Json& a, const kcqrs::Json& b);

// Whether x has no fractional part (1, 1.0, 1e3, not 1.5).
bool IsWhole(const kcqrs::Json& x);
// Whether x needs at most `scale` digits after the point (10, 10.5 and
// 10.50 for scale 2; not 10.505).
bool FitsScale(const kcqrs::Json& x, int scale);

// x as an int64 when it is whole and within range (2.0 is 2).
std::optional<int64_t> ToInt64(const kcqrs::Json& x);

// The bounds that Round, DivideRounded and FitsScale take for `scale`.
inline constexpr int kMaxScale = kMaxDigits;

}  // namespace kcqrs::decimal

#endif  // KCQRS_DECIMAL_DECIMAL_H_
