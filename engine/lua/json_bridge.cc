#include "engine/lua/json_bridge.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <lua.hpp>
#include <string_view>
#include <utility>
#include <vector>

#include "decimal/decimal.h"
#include "engine/lua/decimal_lua.h"
#include "util/utf8.h"

namespace kcqrs::lua::internal {
namespace {

using json = kcqrs::Json;

int ClampToInt(std::size_t n) {
  return static_cast<int>(
      std::min<std::size_t>(n, std::numeric_limits<int>::max()));
}

void CheckDepth(lua_State* L, int depth) {
  if (depth >= kMaxDepth) {
    luaL_error(L, "JSON nests deeper than %d levels", kMaxDepth);
  }
}

bool IsIdentifier(std::string_view key) {
  if (key.empty()) return false;
  auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!alpha(key[0])) return false;
  return std::all_of(key.begin() + 1, key.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9');
  });
}

// One step of a path: .name, ["odd key"] or [3].
std::string KeySegment(std::string_view key) {
  if (IsIdentifier(key)) return "." + std::string(key);
  std::string out = "[\"";
  for (unsigned char c : key) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "\"]";
  return out;
}

std::string IndexSegment(lua_Integer i) {
  return "[" + std::to_string(i) + "]";
}

class ToJsonConverter {
 public:
  ToJsonConverter(lua_State* L, int array_mt) : L_(L), array_mt_(array_mt) {}

  bool Convert(int index, json* out, int depth) {
    switch (lua_type(L_, index)) {
      case LUA_TNONE:
      case LUA_TNIL:
        *out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        *out = lua_toboolean(L_, index) != 0;
        return true;
      case LUA_TNUMBER: {
        if (lua_isinteger(L_, index)) {
          *out = static_cast<std::int64_t>(lua_tointeger(L_, index));
          return true;
        }
        const double d = lua_tonumber(L_, index);
        if (!std::isfinite(d)) {
          return Fail(std::isnan(d)
                          ? "is NaN, which JSON cannot represent"
                          : "is infinite, which JSON cannot represent");
        }
        // A float leaves Lua as the decimal it prints as (its shortest
        // round-trip text), so that documents hold decimals only.
        *out = decimal::FromDouble(d).value();
        return true;
      }
      case LUA_TUSERDATA: {
        std::string_view text;
        if (ToDecimal(L_, index, &text)) {
          *out = decimal::FromText(text);
          return true;
        }
        return Fail("is a userdata, which JSON cannot represent");
      }
      case LUA_TSTRING: {
        std::size_t size = 0;
        // A string value: lua_tolstring neither converts nor allocates.
        const char* data = lua_tolstring(L_, index, &size);
        if (!IsValidUtf8(data, size))
          return Fail("is a string that is not valid UTF-8");
        *out = std::string(data, size);
        return true;
      }
      case LUA_TTABLE:
        return ConvertTable(index, out, depth);
      default:
        return Fail(std::string("is a ") +
                    lua_typename(L_, lua_type(L_, index)) +
                    ", which JSON cannot represent");
    }
  }

  std::string Message() const {
    std::string path = "$";
    for (auto it = path_.rbegin(); it != path_.rend(); ++it) path += *it;
    return path + " " + what_;
  }

 private:
  bool Fail(std::string what) {
    what_ = std::move(what);
    return false;
  }

  bool ConvertTable(int index, json* out, int depth) {
    if (depth >= kMaxDepth) {
      return Fail("nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    const void* self = lua_topointer(L_, index);
    if (std::find(open_.begin(), open_.end(), self) != open_.end()) {
      return Fail("is a table that contains itself (a cycle)");
    }
    if (lua_checkstack(L_, 4) == 0)
      return Fail("nests too deep for the Lua stack");
    bool marked = false;
    if (lua_getmetatable(L_, index) != 0) {
      marked = lua_rawequal(L_, -1, array_mt_) != 0;
      lua_pop(L_, 1);
    }

    // First pass: which keys are there.
    std::size_t positive = 0;  // keys 1, 2, ...
    std::size_t others = 0;    // strings and integers < 1
    lua_Integer max_index = 0;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      const int type = lua_type(L_, -2);
      if (type == LUA_TNUMBER && lua_isinteger(L_, -2)) {
        const lua_Integer k = lua_tointeger(L_, -2);
        if (k >= 1) {
          ++positive;
          max_index = std::max(max_index, k);
        } else {
          ++others;
        }
      } else if (type == LUA_TSTRING) {
        ++others;
      } else {
        std::string what = "has a key of type ";
        what += lua_typename(L_, type);
        if (type == LUA_TNUMBER) {
          char number[40];
          std::snprintf(number, sizeof(number), " (%.17g)",
                        lua_tonumber(L_, -2));
          what += number;
        }
        what +=
            "; JSON keys are strings (integer keys are turned into strings)";
        lua_pop(L_, 2);
        return Fail(std::move(what));
      }
      lua_pop(L_, 1);
    }

    open_.push_back(self);
    bool ok;
    if (others == 0 && positive == 0) {
      *out = marked ? json::array() : json::object();
      ok = true;
    } else if (others == 0 &&
               static_cast<std::uint64_t>(max_index) - positive <=
                   std::max<std::size_t>(positive,
                                         marked ? kMaxArrayHoles : 0)) {
      ok = ConvertArray(index, max_index, out, depth);
    } else {
      ok = ConvertObject(index, out, depth);
    }
    open_.pop_back();
    return ok;
  }

  bool ConvertArray(int index, lua_Integer size, json* out, int depth) {
    json array = json::array();
    auto& items = array.get_ref<json::array_t&>();
    items.reserve(static_cast<std::size_t>(size));
    for (lua_Integer i = 1; i <= size; ++i) {
      lua_rawgeti(L_, index, i);
      items.emplace_back();
      const bool ok = Convert(lua_gettop(L_), &items.back(), depth + 1);
      lua_pop(L_, 1);
      if (!ok) {
        path_.push_back(IndexSegment(i));
        return false;
      }
    }
    *out = std::move(array);
    return true;
  }

  bool ConvertObject(int index, json* out, int depth) {
    json object = json::object();
    auto& fields = object.get_ref<json::object_t&>();
    bool has_integer_key = false;
    lua_pushnil(L_);
    while (lua_next(L_, index) != 0) {
      std::string key;
      if (lua_type(L_, -2) == LUA_TSTRING) {
        std::size_t size = 0;
        const char* data = lua_tolstring(L_, -2, &size);
        if (!IsValidUtf8(data, size)) {
          lua_pop(L_, 2);
          return Fail("has a key that is not valid UTF-8");
        }
        key.assign(data, size);
      } else {
        key = std::to_string(lua_tointeger(L_, -2));
        has_integer_key = true;
      }
      // Members go in in the table's (hash) order and are sorted once at
      // the end (json/document.h).
      json& value = fields.AppendUnsorted(std::move(key), nullptr);
      const bool ok = Convert(lua_gettop(L_), &value, depth + 1);
      lua_pop(L_, 1);  // the value; the key stays for lua_next
      if (!ok) {
        path_.push_back(SegmentOfKeyOnTop());
        lua_pop(L_, 1);
        return false;
      }
    }
    // Lua keys are unique, so a key can repeat only as 1 and "1".
    if (has_integer_key) {
      std::vector<std::string_view> keys;
      keys.reserve(fields.size());
      for (const auto& member : fields) keys.push_back(member.first);
      std::sort(keys.begin(), keys.end());
      if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end()) {
        path_.push_back(KeySegment(*dup));
        return Fail("appears both as an integer key and as a string key");
      }
    }
    fields.SortMembers();
    *out = std::move(object);
    return true;
  }

  std::string SegmentOfKeyOnTop() const {
    if (lua_type(L_, -1) != LUA_TSTRING)
      return IndexSegment(lua_tointeger(L_, -1));
    std::size_t size = 0;
    const char* data = lua_tolstring(L_, -1, &size);
    return KeySegment(std::string_view(data, size));
  }

  lua_State* L_;
  int array_mt_;
  std::vector<const void*> open_;  // tables being converted, outermost first
  std::string what_;
  std::vector<std::string> path_;  // innermost step first
};

}  // namespace

void PushJson(lua_State* L, const json& value, int array_mt, int depth) {
  switch (value.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      lua_pushnil(L);
      return;
    case json::value_t::boolean:
      lua_pushboolean(L, value.get_ref<const json::boolean_t&>() ? 1 : 0);
      return;
    case json::value_t::number_integer:
      lua_pushinteger(L, static_cast<lua_Integer>(
                             value.get_ref<const json::number_integer_t&>()));
      return;
    case json::value_t::number_unsigned: {
      const auto u = value.get_ref<const json::number_unsigned_t&>();
      if (u <= static_cast<json::number_unsigned_t>(LUA_MAXINTEGER)) {
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      } else {
        // Beyond Lua's integers: a decimal, exactly (a float would round).
        char buf[24];
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), u);
        (void)ec;
        PushDecimal(L, std::string_view(buf, static_cast<std::size_t>(ptr - buf)));
      }
      return;
    }
    case json::value_t::number_float:
      lua_pushnumber(L, value.get_ref<const json::number_float_t&>());
      return;
    case json::value_t::string: {
      const auto& s = value.get_ref<const json::string_t&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case json::value_t::binary:
      if (decimal::IsDecimal(value)) {
        PushDecimal(L, decimal::Text(value));
        return;
      }
      luaL_error(L, "binary JSON values have no Lua equivalent");
      return;
    case json::value_t::array: {
      CheckDepth(L, depth);
      luaL_checkstack(L, 3, "JSON nesting");
      const auto& items = value.get_ref<const json::array_t&>();
      lua_createtable(L, ClampToInt(items.size()), 0);
      lua_pushvalue(L, array_mt);
      lua_setmetatable(L, -2);
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].is_null()) continue;
        PushJson(L, items[i], array_mt, depth + 1);
        lua_rawseti(L, -2, static_cast<lua_Integer>(i) + 1);
      }
      return;
    }
    case json::value_t::object: {
      CheckDepth(L, depth);
      luaL_checkstack(L, 3, "JSON nesting");
      const auto& fields = value.get_ref<const json::object_t&>();
      lua_createtable(L, 0, ClampToInt(fields.size()));
      for (auto it = fields.begin(); it != fields.end(); ++it) {
        if (it->second.is_null()) continue;
        lua_pushlstring(L, it->first.data(), it->first.size());
        PushJson(L, it->second, array_mt, depth + 1);
        lua_rawset(L, -3);
      }
      return;
    }
  }
  lua_pushnil(L);
}

bool ToJson(lua_State* L, int index, int array_mt, json* out,
            std::string* error) {
  ToJsonConverter converter(L, array_mt);
  if (converter.Convert(index, out, 0)) return true;
  *error = converter.Message();
  return false;
}

bool IsValidUtf8(const char* data, std::size_t size) {
  return util::IsValidUtf8(std::string_view(data, size));
}

}  // namespace kcqrs::lua::internal
