// Internal to engine/lua: conversion between kcqrs::Json and Lua values,
// with the rules runtime.h documents. Only lua_State is forward-declared
// here, so that the header compiles without Lua's headers.
//
// Thread-safety: stateless functions; the lua_State must be used by one
// thread at a time.
#ifndef KCQRS_ENGINE_LUA_JSON_BRIDGE_H_
#define KCQRS_ENGINE_LUA_JSON_BRIDGE_H_

#include <cstddef>
#include <string>

#include "json/document.h"

struct lua_State;

namespace kcqrs::lua::internal {

// Deepest nesting converted in either direction; deeper input is an error
// rather than a C stack overflow.
inline constexpr int kMaxDepth = 200;
// Holes a marked array (one that came from JSON, or array()) may have
// beyond the "no more holes than elements" rule every table follows.
inline constexpr std::size_t kMaxArrayHoles = 1000;

// Pushes `value` onto the stack of `L`. JSON arrays get the metatable at
// the absolute stack index `array_mt`.
//
// Must run inside a protected call: it raises a Lua error when Lua runs out
// of memory or `value` nests deeper than kMaxDepth. It keeps no C++ object
// with a destructor on its frames, so that the longjmp of a Lua error skips
// nothing.
void PushJson(lua_State* L, const kcqrs::Json& value, int array_mt,
              int depth);

// Converts the value at absolute stack index `index` to JSON, leaving the
// stack as it was. Raises no Lua error (it uses only Lua functions that do
// not allocate) and so may run outside a protected call. On failure returns
// false and sets `*error` to what is wrong and where, e.g.
// "$.events[1].f is a function".
bool ToJson(lua_State* L, int index, int array_mt, kcqrs::Json* out,
            std::string* error);

// True when [data, data + size) is well-formed UTF-8 (no overlong forms,
// surrogates or code points past U+10FFFF).
bool IsValidUtf8(const char* data, std::size_t size);

}  // namespace kcqrs::lua::internal

#endif  // KCQRS_ENGINE_LUA_JSON_BRIDGE_H_
