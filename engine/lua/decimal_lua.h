// Internal to engine/lua: exact decimals in Lua (decimal/decimal.h).
//
// A JSON decimal (a number with a fraction or an exponent, or an integer
// beyond 64 bits) reaches a snippet as a `decimal` userdata that keeps the
// number's text, so nothing is lost on the way in or out. Its operators
// compute exactly with kcqrs's decimal arithmetic:
//   + - * % and unary -   a decimal with a decimal or a Lua integer; exact,
//                         or an error past 38 digits (never rounded)
//   /                     the exact quotient, or an error saying to use
//                         decimal.div
//   < <= > >=             with decimals and integers, exactly
//   ==                    between two decimals, by value (Lua compares a
//                         userdata with a number as unequal without asking:
//                         write d == decimal.new(0) or decimal.cmp(d, 0) == 0)
//   ..  tostring()        the number's text
// Mixing a decimal with a Lua float is an error: the float is already
// inexact (0.1 is not 0.1); write decimal.new("0.1").
// The library table `decimal` (read-only, also the methods of a decimal):
//   decimal.new(x)                a decimal from a string (a JSON number), an
//                                 integer or a decimal
//   decimal.round(x, scale [, mode])       as round() in expressions
//   decimal.div(a, b, scale [, mode])      as div() in expressions
//   decimal.fits(x, scale)        whether x has at most `scale` digits after
//                                 the point (is_decimal() in expressions)
//   decimal.cmp(a, b)             -1, 0 or 1
//   decimal.tointeger(x)          a Lua integer when x is whole and fits,
//                                 else fail (nil), as math.tointeger
//   decimal.isdecimal(x)          whether x is a decimal
// A result that is a whole number written without a point (decimal.new("2")
// + 3, decimal.round(x, 0)) is a Lua integer.
#ifndef KCQRS_ENGINE_LUA_DECIMAL_LUA_H_
#define KCQRS_ENGINE_LUA_DECIMAL_LUA_H_

#include <cstddef>
#include <string_view>

struct lua_State;

namespace kcqrs::lua::internal {

// Creates the decimal metatable (in the registry) and pushes the library
// table. Runs in protected mode (it allocates).
void OpenDecimal(lua_State* L);

// Pushes a decimal with this JSON number text. May raise a memory error.
void PushDecimal(lua_State* L, std::string_view text);

// When the value at `index` is a decimal, sets *text to its text (valid
// while the value is) and returns true. Raises no error.
bool ToDecimal(lua_State* L, int index, std::string_view* text);

}  // namespace kcqrs::lua::internal

#endif  // KCQRS_ENGINE_LUA_DECIMAL_LUA_H_
