#include "engine/lua/decimal_lua.h"

#include <lua.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>

#include "decimal/decimal.h"

namespace kcqrs::lua::internal {
namespace {

using json = kcqrs::Json;

constexpr char kMetatable[] = "kcqrs.decimal";

// The userdata: the number's JSON text.
struct Stored {
  std::uint32_t size;
  char text[1];  // `size` bytes, allocated with the userdata
};

// What a computation hands back to the Lua side. It has no destructor, so
// that the Lua error raised from it (a longjmp) skips nothing: every C++
// object of a computation lives in a function that has returned by then.
struct Outcome {
  enum Kind { kError, kInteger, kDecimal, kBoolean };
  Kind kind = kError;
  std::int64_t integer = 0;
  bool boolean = false;
  std::size_t size = 0;
  char text[256];  // a decimal result (at most 38 digits) or the error
};

void SetText(Outcome* o, Outcome::Kind kind, std::string_view text) {
  o->kind = kind;
  o->size = std::min(text.size(), sizeof(o->text) - 1);
  std::memcpy(o->text, text.data(), o->size);
  o->text[o->size] = '\0';
}

void SetError(Outcome* o, std::string_view message) { SetText(o, Outcome::kError, message); }

void SetBoolean(Outcome* o, bool b) {
  o->kind = Outcome::kBoolean;
  o->boolean = b;
}

void SetNumber(Outcome* o, const json& r) {
  if (r.is_number_integer() && !r.is_number_unsigned()) {
    o->kind = Outcome::kInteger;
    o->integer = r.get<std::int64_t>();
    return;
  }
  std::string text;
  decimal::AppendText(r, &text);
  if (text.size() >= sizeof(o->text)) return SetError(o, "decimal result too long");
  SetText(o, Outcome::kDecimal, text);
}

int Finish(lua_State* L, const Outcome& o) {
  switch (o.kind) {
    case Outcome::kInteger: lua_pushinteger(L, o.integer); return 1;
    case Outcome::kBoolean: lua_pushboolean(L, o.boolean ? 1 : 0); return 1;
    case Outcome::kDecimal: PushDecimal(L, std::string_view(o.text, o.size)); return 1;
    case Outcome::kError: break;
  }
  return luaL_error(L, "%s", o.text);
}

// decimal/'s messages name the expression functions; in Lua they live in
// the decimal table.
std::string LuaMessage(const std::string& message) {
  std::string out = message;
  if (size_t p = out.find("div(a, b, scale)"); p != std::string::npos) {
    out.insert(p, "decimal.");
  }
  return out;
}

// Reads argument `index` as a number for decimal arithmetic: a decimal or a
// Lua integer. Floats are refused: they are inexact already.
bool ReadNumber(lua_State* L, int index, const char* what, json* out, std::string* error) {
  std::string_view text;
  if (ToDecimal(L, index, &text)) {
    *out = decimal::FromText(text);
    return true;
  }
  if (lua_type(L, index) == LUA_TNUMBER) {
    if (lua_isinteger(L, index)) {
      *out = static_cast<std::int64_t>(lua_tointeger(L, index));
      return true;
    }
    *error = std::string(what) +
             ": a float cannot be mixed with a decimal exactly (0.1 is not 0.1 as a float); "
             "use decimal.new(\"0.1\") or an integer";
    return false;
  }
  *error = std::string(what) + ": expected a decimal or an integer, found " +
           luaL_typename(L, index);
  return false;
}

using BinaryFn = Status (*)(const json&, const json&, json*);

void ComputeBinary(lua_State* L, BinaryFn fn, const char* what, Outcome* o) {
  json a, b, r;
  std::string error;
  if (!ReadNumber(L, 1, what, &a, &error) || !ReadNumber(L, 2, what, &b, &error)) {
    return SetError(o, error);
  }
  if (Status s = fn(a, b, &r); !s.ok()) return SetError(o, std::string(what) + ": " + LuaMessage(s.message()));
  SetNumber(o, r);
}

template <BinaryFn kFn>
int BinaryMethod(lua_State* L, const char* what) {
  Outcome o;
  ComputeBinary(L, kFn, what, &o);
  return Finish(L, o);
}

int Add(lua_State* L) { return BinaryMethod<decimal::Add>(L, "decimal +"); }
int Sub(lua_State* L) { return BinaryMethod<decimal::Subtract>(L, "decimal -"); }
int Mul(lua_State* L) { return BinaryMethod<decimal::Multiply>(L, "decimal *"); }
int Div(lua_State* L) { return BinaryMethod<decimal::Divide>(L, "decimal /"); }
int Mod(lua_State* L) { return BinaryMethod<decimal::Remainder>(L, "decimal %"); }

void ComputeUnary(lua_State* L, Status (*fn)(const json&, json*), Outcome* o) {
  json a, r;
  std::string error;
  if (!ReadNumber(L, 1, "decimal -", &a, &error)) return SetError(o, error);
  if (Status s = fn(a, &r); !s.ok()) return SetError(o, "decimal -: " + s.message());
  SetNumber(o, r);
}

int Unm(lua_State* L) {
  Outcome o;
  ComputeUnary(L, decimal::Negate, &o);
  return Finish(L, o);
}

int IDiv(lua_State* L) {
  return luaL_error(L, "decimal //: use decimal.div(a, b, scale, mode) to divide and round");
}

// -2 when the operands are not two numbers (an error in *o).
int CompareArgs(lua_State* L, const char* what, Outcome* o) {
  json a, b;
  std::string error;
  if (!ReadNumber(L, 1, what, &a, &error) || !ReadNumber(L, 2, what, &b, &error)) {
    SetError(o, error);
    return -2;
  }
  return decimal::Compare(a, b);
}

int Lt(lua_State* L) {
  Outcome o;
  if (int c = CompareArgs(L, "decimal <", &o); c != -2) SetBoolean(&o, c < 0);
  return Finish(L, o);
}

int Le(lua_State* L) {
  Outcome o;
  if (int c = CompareArgs(L, "decimal <=", &o); c != -2) SetBoolean(&o, c <= 0);
  return Finish(L, o);
}

// Lua asks only when both sides are userdata.
int Eq(lua_State* L) {
  std::string_view x, y;
  if (!ToDecimal(L, 1, &x) || !ToDecimal(L, 2, &y)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  Outcome o;
  if (int c = CompareArgs(L, "decimal ==", &o); c != -2) SetBoolean(&o, c == 0);
  return Finish(L, o);
}

int ToString(lua_State* L) {
  std::string_view text;
  ToDecimal(L, 1, &text);
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int Concat(lua_State* L) {
  for (int i = 1; i <= 2; ++i) {
    std::string_view text;
    if (!ToDecimal(L, i, &text) && lua_type(L, i) != LUA_TSTRING &&
        lua_type(L, i) != LUA_TNUMBER) {
      return luaL_error(L, "attempt to concatenate a %s value", luaL_typename(L, i));
    }
  }
  luaL_tolstring(L, 1, nullptr);
  luaL_tolstring(L, 2, nullptr);
  lua_concat(L, 2);
  return 1;
}

// ---- the library ------------------------------------------------------------

int New(lua_State* L) {
  std::string_view text;
  if (ToDecimal(L, 1, &text)) {
    lua_settop(L, 1);
    return 1;
  }
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t size = 0;
    const char* s = lua_tolstring(L, 1, &size);
    if (!decimal::IsJsonNumber(std::string_view(s, size))) {
      return luaL_error(L, "decimal.new: \"%s\" is not a number (write it as JSON does: "
                           "\"12.50\", \"-3\", \"1e6\")", s);
    }
    PushDecimal(L, std::string_view(s, size));
    return 1;
  }
  if (lua_isinteger(L, 1)) {
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), lua_tointeger(L, 1));
    (void)ec;
    PushDecimal(L, std::string_view(buf, static_cast<size_t>(ptr - buf)));
    return 1;
  }
  if (lua_type(L, 1) == LUA_TNUMBER) {
    return luaL_error(L, "decimal.new: a float is inexact already; pass the number as a "
                         "string (decimal.new(\"0.1\"))");
  }
  return luaL_error(L, "decimal.new: expected a string, an integer or a decimal, found %s",
                    luaL_typename(L, 1));
}

// A scale argument, or an error in *o.
bool ReadScale(lua_State* L, int index, const char* what, int* scale, Outcome* o) {
  if (!lua_isinteger(L, index) || lua_tointeger(L, index) < -decimal::kMaxScale ||
      lua_tointeger(L, index) > decimal::kMaxScale) {
    SetError(o, std::string(what) + ": expected a scale (an integer from -" +
                    std::to_string(decimal::kMaxScale) + " to " +
                    std::to_string(decimal::kMaxScale) + ") as argument " +
                    std::to_string(index));
    return false;
  }
  *scale = static_cast<int>(lua_tointeger(L, index));
  return true;
}

bool ReadRounding(lua_State* L, int index, const char* what, decimal::Rounding* rounding,
                  Outcome* o) {
  if (lua_isnoneornil(L, index)) return true;
  std::optional<decimal::Rounding> parsed;
  if (lua_type(L, index) == LUA_TSTRING) parsed = decimal::ParseRounding(lua_tostring(L, index));
  if (!parsed) {
    SetError(o, std::string(what) + ": expected a rounding mode (" +
                    std::string(decimal::RoundingNames()) + ") as argument " +
                    std::to_string(index));
    return false;
  }
  *rounding = *parsed;
  return true;
}

void ComputeRound(lua_State* L, bool is_div, Outcome* o) {
  const char* what = is_div ? "decimal.div" : "decimal.round";
  const int scale_arg = is_div ? 3 : 2;
  json a, b, r;
  std::string error;
  if (!ReadNumber(L, 1, what, &a, &error) || (is_div && !ReadNumber(L, 2, what, &b, &error))) {
    return SetError(o, error);
  }
  int scale = 0;
  decimal::Rounding rounding = decimal::Rounding::kHalfEven;
  if (!ReadScale(L, scale_arg, what, &scale, o) ||
      !ReadRounding(L, scale_arg + 1, what, &rounding, o)) {
    return;
  }
  const Status s = is_div ? decimal::DivideRounded(a, b, scale, rounding, &r)
                          : decimal::Round(a, scale, rounding, &r);
  if (!s.ok()) return SetError(o, std::string(what) + ": " + s.message());
  SetNumber(o, r);
}

int Round(lua_State* L) {
  Outcome o;
  ComputeRound(L, /*is_div=*/false, &o);
  return Finish(L, o);
}

int DivRounded(lua_State* L) {
  Outcome o;
  ComputeRound(L, /*is_div=*/true, &o);
  return Finish(L, o);
}

void ComputeFits(lua_State* L, Outcome* o) {
  json x;
  std::string error;
  int scale = 0;
  if (!ReadScale(L, 2, "decimal.fits", &scale, o)) return;
  if (!ReadNumber(L, 1, "decimal.fits", &x, &error)) {
    // Anything else (a string, nil, a float) simply does not fit.
    return SetBoolean(o, false);
  }
  SetBoolean(o, decimal::FitsScale(x, scale));
}

int Fits(lua_State* L) {
  Outcome o;
  ComputeFits(L, &o);
  return Finish(L, o);
}

int Cmp(lua_State* L) {
  Outcome o;
  const int c = CompareArgs(L, "decimal.cmp", &o);
  if (c == -2) return Finish(L, o);
  lua_pushinteger(L, c);
  return 1;
}

void ComputeToInteger(lua_State* L, Outcome* o) {
  json x;
  std::string error;
  if (!ReadNumber(L, 1, "decimal.tointeger", &x, &error)) return SetError(o, error);
  if (std::optional<int64_t> i = decimal::ToInt64(x)) {
    o->kind = Outcome::kInteger;
    o->integer = *i;
  } else {
    SetBoolean(o, false);  // fail, as math.tointeger
  }
}

int ToInteger(lua_State* L) {
  Outcome o;
  ComputeToInteger(L, &o);
  if (o.kind == Outcome::kBoolean) {
    luaL_pushfail(L);
    return 1;
  }
  return Finish(L, o);
}

int IsDecimal(lua_State* L) {
  std::string_view text;
  lua_pushboolean(L, ToDecimal(L, 1, &text) ? 1 : 0);
  return 1;
}

const luaL_Reg kMetamethods[] = {
    {"__add", Add},  {"__sub", Sub},       {"__mul", Mul}, {"__div", Div},
    {"__mod", Mod},  {"__unm", Unm},       {"__idiv", IDiv}, {"__eq", Eq},
    {"__lt", Lt},    {"__le", Le},         {"__tostring", ToString},
    {"__concat", Concat}, {nullptr, nullptr},
};

const luaL_Reg kLibrary[] = {
    {"new", New},         {"round", Round}, {"div", DivRounded},
    {"fits", Fits},       {"cmp", Cmp},     {"tointeger", ToInteger},
    {"isdecimal", IsDecimal}, {nullptr, nullptr},
};

}  // namespace

void OpenDecimal(lua_State* L) {
  luaL_newmetatable(L, kMetatable);  // sets __name = "kcqrs.decimal"
  luaL_setfuncs(L, kMetamethods, 0);
  lua_pushliteral(L, "decimal");
  lua_setfield(L, -2, "__name");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");  // getmetatable(d) is false
  luaL_newlib(L, kLibrary);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");  // d:round(2)
  lua_remove(L, -2);
}

void PushDecimal(lua_State* L, std::string_view text) {
  auto* d = static_cast<Stored*>(
      lua_newuserdatauv(L, offsetof(Stored, text) + text.size(), 0));
  d->size = static_cast<std::uint32_t>(text.size());
  std::memcpy(d->text, text.data(), text.size());
  luaL_setmetatable(L, kMetatable);
}

bool ToDecimal(lua_State* L, int index, std::string_view* text) {
  auto* d = static_cast<Stored*>(luaL_testudata(L, index, kMetatable));
  if (d == nullptr) return false;
  *text = std::string_view(d->text, d->size);
  return true;
}

}  // namespace kcqrs::lua::internal
