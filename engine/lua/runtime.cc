#include "engine/lua/runtime.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <lua.hpp>
#include <string>
#include <utility>

#include "engine/lua/decimal_lua.h"
#include "engine/lua/json_bridge.h"
#include "engine/lua/pattern.h"
#include "json/document.h"

namespace kcqrs::lua {

using json = kcqrs::Json;

namespace internal {

enum class Abort { kNone, kBudget, kMemory };

struct FunctionInfo {
  std::string source;     // as given to Compile()
  std::string short_src;  // as Lua prints it in messages
  int first_line = 1;
  std::vector<std::string> params;
};

// Everything behind a Runtime. The allocator and the hooks find it through
// lua_getallocf, so it must not move: it lives on the heap for the
// lifetime of the lua_State.
struct RuntimeState {
  ~RuntimeState() {
    if (L != nullptr) lua_close(L);
  }

  Limits limits;
  lua_State* L = nullptr;
  std::size_t memory_used = 0;
  std::int64_t instructions_used = 0;
  // While a snippet runs, every byte it allocates is charged to the budget
  // (see kBytesPerInstruction); `allocation_carry` holds the bytes not yet
  // charged.
  bool charge_allocations = false;
  std::size_t allocation_carry = 0;
  int hook_interval = 1000;
  // Set when the budget or the memory cap is hit; cleared when a call
  // starts. While set, the count hook and pcall/xpcall re-raise, so that
  // user code cannot catch its way past the limit.
  Abort abort = Abort::kNone;
  std::int64_t now_ms = 0;
  // "file:line" of the Lua code running when the call failed.
  char where[LUA_IDSIZE + 24] = {};

  int env_ref = LUA_NOREF;        // the scratch environment of calls
  int env_mt_ref = LUA_NOREF;     // its metatable: __index = base env
  int array_mt_ref = LUA_NOREF;   // marks tables that are JSON arrays
  int functions_ref = LUA_NOREF;  // compiled snippets, 1-based
  std::vector<FunctionInfo> functions;
};

}  // namespace internal

namespace {

using internal::Abort;
using internal::FunctionInfo;
using internal::RuntimeState;

// Copying in C that the count hook does not see (s = s .. x in a loop is
// quadratic) makes new objects: charging allocated bytes bounds it. 64 bytes
// cost about what one VM instruction costs to run.
constexpr std::size_t kBytesPerInstruction = 64;
// Instructions between two count-hook calls: small enough that the budget
// is exact to within this many instructions, large enough to cost nothing.
constexpr int kHookInterval = 1000;
constexpr int kMaxFirstLine = 1'000'000;
// The error value raised when a limit is hit. What is raised does not
// matter (RuntimeState::abort says what happened); a light userdata needs
// no allocation, which matters when memory has just run out.
constexpr char kAbortTag = 0;

RuntimeState* StateOf(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<RuntimeState*>(ud);
}

// The allocator of the Lua state: plain realloc, refusing any growth past
// limits.memory_bytes. A refusal is final for the call (see abort), even
// when Lua's emergency collection would have found room: Call() runs a full
// collection first when the state is more than half full, so a call only
// meets the cap when it really holds that much.
void* Allocate(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
  auto* s = static_cast<RuntimeState*>(ud);
  const std::size_t old_size = ptr != nullptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    s->memory_used -= old_size;
    return nullptr;
  }
  if (nsize > old_size) {
    if (nsize - old_size > s->limits.memory_bytes - s->memory_used) {
      s->abort = Abort::kMemory;
      return nullptr;
    }
    if (s->charge_allocations) {
      s->allocation_carry += nsize - old_size;
      s->instructions_used += static_cast<std::int64_t>(
          s->allocation_carry / kBytesPerInstruction);
      s->allocation_carry %= kBytesPerInstruction;
      if (s->instructions_used >= s->limits.instructions) {
        s->abort = Abort::kBudget;  // Lua raises its memory error; we know
        return nullptr;
      }
    }
  }
  void* block = std::realloc(ptr, nsize);
  if (block == nullptr) {
    if (nsize <= old_size) {  // Lua assumes shrinking never fails
      s->memory_used -= old_size - nsize;
      return ptr;
    }
    s->abort = Abort::kMemory;
    return nullptr;
  }
  s->memory_used = s->memory_used - old_size + nsize;
  return block;
}

// Records the position of the innermost running Lua function, once per call.
// Neither lua_getstack nor lua_getinfo("Sl") allocates.
void RecordWhere(lua_State* L, RuntimeState* s) {
  if (s->where[0] != '\0') return;
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar) != 0; ++level) {
    if (lua_getinfo(L, "Sl", &ar) != 0 && ar.currentline > 0) {
      std::snprintf(s->where, sizeof(s->where), "%s:%d", ar.short_src,
                    ar.currentline);
      return;
    }
  }
}

int RaiseAbort(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kAbortTag));
  return lua_error(L);
}

void CountHook(lua_State* L, lua_Debug* /*ar*/) {
  RuntimeState* s = StateOf(L);
  if (s->abort == Abort::kNone) {
    s->instructions_used += s->hook_interval;
    if (s->instructions_used < s->limits.instructions) return;
    s->abort = Abort::kBudget;
  }
  RecordWhere(L, s);
  RaiseAbort(L);
}

// Charges work done in C, which the count hook does not see, to the budget.
void Charge(lua_State* L, std::uint64_t work) {
  RuntimeState* s = StateOf(L);
  const auto remaining = static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, s->limits.instructions - s->instructions_used));
  if (work < remaining) {
    s->instructions_used += static_cast<std::int64_t>(work);
    return;
  }
  s->instructions_used = s->limits.instructions;
  s->abort = Abort::kBudget;
  RecordWhere(L, s);
  RaiseAbort(L);
}

// The pattern functions' view of the budget (engine/lua/pattern.h).
std::int64_t RemainingSteps(lua_State* L) {
  const RuntimeState* s = StateOf(L);
  return std::max<std::int64_t>(0,
                                s->limits.instructions - s->instructions_used);
}

void ChargeSteps(lua_State* L, std::int64_t steps, bool exhausted) {
  Charge(L, exhausted ? std::numeric_limits<std::uint64_t>::max()
                      : static_cast<std::uint64_t>(steps));
}

constexpr internal::StepBudget kStepBudget{RemainingSteps, ChargeSteps};

// Message handler of the call: notes where the error happened, leaves the
// error value as it is.
int MessageHandler(lua_State* L) {
  RecordWhere(L, StateOf(L));
  return 1;
}

// ---- The sandbox's own functions -----------------------------------------

int FinishPcall(lua_State* L, int status, int extra) {
  if (status != LUA_OK) {
    if (StateOf(L)->abort != Abort::kNone) return RaiseAbort(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - extra;
}

// pcall and xpcall as in lbaselib.c, except that they re-raise the budget
// and memory errors. Snippets cannot yield (there is no coroutine library),
// so no continuation is needed.
int SafePcall(lua_State* L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  const int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
  return FinishPcall(L, status, 0);
}

// The message handler xpcall installs: the user's (upvalue 1), except
// after a limit was hit. The count hook raises from inside the hook, where
// Lua runs the message handler with hooks off: a looping handler would
// never be stopped.
int GuardedHandler(lua_State* L) {
  if (StateOf(L)->abort != Abort::kNone) return 1;  // the error, unchanged
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int SafeXpcall(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, GuardedHandler, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  const int status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
  return FinishPcall(L, status, 2);
}

// rawset, refusing the read-only library tables (upvalue 1: the set of them).
int SafeRawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
    return luaL_error(L, "attempt to modify a read-only library table");
  }
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

// setmetatable, refusing __gc: a finalizer would run whenever the collector
// gets to it, outside any call's budget.
int SafeSetmetatable(lua_State* L) {
  const int type = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, type == LUA_TNIL || type == LUA_TTABLE, 2,
                   "nil or table");
  if (type == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL) {
      return luaL_error(L, "__gc metamethods are not allowed in snippets");
    }
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// __newindex of the read-only library tables (upvalue 1: the library name).
int ReadOnlyNewindex(lua_State* L) {
  return luaL_error(L, "attempt to modify read-only table '%s'",
                    lua_tostring(L, lua_upvalueindex(1)));
}

int Now(lua_State* L) {
  lua_pushinteger(L, StateOf(L)->now_ms);
  return 1;
}

// reject(code, reason) -> {["$reject"] = {code = code, reason = reason}}
int Reject(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_optstring(L, 2, "");
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushliteral(L, "");
  }
  lua_createtable(L, 0, 1);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "code");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "reason");
  lua_setfield(L, -2, kRejectKey.data());
  return 1;
}

// array([t]) marks t (or a new table) as a JSON array (upvalue 1: the mark).
int MarkArray(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  if (lua_getmetatable(L, 1) != 0) {
    if (lua_rawequal(L, -1, lua_upvalueindex(1)) == 0) {
      return luaL_error(L, "array(): the table already has a metatable");
    }
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, 1);
  return 1;
}

// ---- Library functions whose C loops the count hook cannot see ------------
// Each wrapper is a closure over the original (upvalue 1); it charges the
// loop's length to the budget, then calls the original.

int CallOriginal(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

std::uint64_t Span(lua_Integer first, lua_Integer last) {
  if (last < first) return 0;
  return static_cast<std::uint64_t>(last) - static_cast<std::uint64_t>(first) +
         1;
}

// The length table.insert/remove/sort will use. A __len metamethod could
// answer differently to the wrapper and to the original, so it is refused.
lua_Integer RawLengthForLoop(lua_State* L, const char* function) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL) {
    luaL_error(L, "%s: tables with a __len metamethod are not supported",
               function);
  }
  return static_cast<lua_Integer>(lua_rawlen(L, 1));
}

int TableInsert(lua_State* L) {
  Charge(L, Span(1, RawLengthForLoop(L, "table.insert")));
  return CallOriginal(L);
}

int TableRemove(lua_State* L) {
  Charge(L, Span(1, RawLengthForLoop(L, "table.remove")));
  return CallOriginal(L);
}

int TableSort(lua_State* L) {
  const auto n = static_cast<std::uint64_t>(RawLengthForLoop(L, "table.sort"));
  const auto log = static_cast<std::uint64_t>(std::bit_width(n));
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  Charge(L, n > max / (log + 1) ? max : n * (log + 1));
  return CallOriginal(L);
}

int TableMove(lua_State* L) {
  Charge(L, Span(luaL_checkinteger(L, 2), luaL_checkinteger(L, 3)));
  return CallOriginal(L);
}

// table.concat(t, sep, i, j) and table.unpack(t, i, j): the bounds are
// resolved here and passed on explicitly, so that __len runs only once.
int TableConcat(lua_State* L) {
  const lua_Integer first = luaL_optinteger(L, 3, 1);
  const lua_Integer last =
      lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
  Charge(L, Span(first, last));
  lua_settop(L, 2);
  lua_pushinteger(L, first);
  lua_pushinteger(L, last);
  return CallOriginal(L);
}

int TableUnpack(lua_State* L) {
  const lua_Integer first = luaL_optinteger(L, 2, 1);
  const lua_Integer last =
      lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
  Charge(L, Span(first, last));
  lua_settop(L, 1);
  lua_pushinteger(L, first);
  lua_pushinteger(L, last);
  return CallOriginal(L);
}

// Functions that scan their string argument `arg` in C without allocating:
// utf8.len/offset/codepoint, tonumber. Charged one instruction per 16 bytes.
template <int arg>
int ChargeStringScan(lua_State* L) {
  if (lua_type(L, arg) == LUA_TSTRING) {
    Charge(L, static_cast<std::uint64_t>(lua_rawlen(L, arg)) / 16);
  }
  return CallOriginal(L);
}

// string.rep loops n times even when the result is empty, which no memory
// cap bounds; every other case is bounded by the size of its result.
int StringRep(lua_State* L) {
  std::size_t length = 0;
  std::size_t separator = 0;
  luaL_checklstring(L, 1, &length);
  const lua_Integer n = luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &separator);
  if (n > 0 && length == 0 && separator == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return CallOriginal(L);
}

// ---- Setting up the sandbox -----------------------------------------------

void Wrap(lua_State* L, int library, const char* name, lua_CFunction wrapper) {
  lua_getfield(L, library, name);
  lua_pushcclosure(L, wrapper, 1);
  lua_setfield(L, library, name);
}

// base[name] = a read-only view of the library at `library`.
void AddReadOnlyLibrary(lua_State* L, int library, const char* name, int frozen,
                        int base) {
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, library);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_pushcclosure(L, ReadOnlyNewindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_pushboolean(L, 1);
  lua_rawset(L, frozen);
  lua_setfield(L, base, name);
}

// Runs in protected mode: any allocation may fail under a small cap.
int SetupSandbox(lua_State* L) {
  auto* s = static_cast<RuntimeState*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  // Only these libraries are ever opened: io, os, package, debug and
  // coroutine do not exist in the state at all.
  luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
  constexpr int kBase = 1, kString = 2, kTable = 3, kMath = 4, kUtf8 = 5;

  // The real library tables are changed, not copies: string methods
  // ("x"):rep() reach the real string table through the string metatable.
  lua_pushnil(L);
  lua_setfield(L, kString, "dump");
  Wrap(L, kString, "rep", StringRep);
  internal::RegisterPatternFunctions(L, kString, &kStepBudget);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");  // getmetatable("") is false
  lua_pop(L, 2);
  lua_pushnil(L);
  lua_setfield(L, kMath, "random");
  lua_pushnil(L);
  lua_setfield(L, kMath, "randomseed");
  Wrap(L, kTable, "concat", TableConcat);
  Wrap(L, kTable, "insert", TableInsert);
  Wrap(L, kTable, "move", TableMove);
  Wrap(L, kTable, "remove", TableRemove);
  Wrap(L, kTable, "sort", TableSort);
  Wrap(L, kTable, "unpack", TableUnpack);
  Wrap(L, kUtf8, "len", ChargeStringScan<1>);
  Wrap(L, kUtf8, "offset", ChargeStringScan<1>);
  Wrap(L, kUtf8, "codepoint", ChargeStringScan<1>);
  Wrap(L, kBase, "tonumber", ChargeStringScan<1>);

  lua_newtable(L);  // the read-only tables, as keys
  const int frozen = lua_gettop(L);
  lua_createtable(L, 0, 1);  // the mark of JSON arrays
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  const int array_mt = lua_gettop(L);

  lua_createtable(L, 0, 32);  // the base environment
  const int base = lua_gettop(L);
  for (const char* name : {"assert", "error", "ipairs", "pairs", "next",
                           "select", "tonumber", "tostring", "type", "rawequal",
                           "rawget", "rawlen", "getmetatable", "_VERSION"}) {
    lua_getfield(L, kBase, name);
    lua_setfield(L, base, name);
  }
  lua_pushvalue(L, frozen);
  lua_pushcclosure(L, SafeRawset, 1);
  lua_setfield(L, base, "rawset");
  lua_pushcfunction(L, SafeSetmetatable);
  lua_setfield(L, base, "setmetatable");
  lua_pushcfunction(L, SafePcall);
  lua_setfield(L, base, "pcall");
  lua_pushcfunction(L, SafeXpcall);
  lua_setfield(L, base, "xpcall");
  lua_pushcfunction(L, Now);
  lua_setfield(L, base, "now");
  lua_pushcfunction(L, Reject);
  lua_setfield(L, base, "reject");
  lua_pushvalue(L, array_mt);
  lua_pushcclosure(L, MarkArray, 1);
  lua_setfield(L, base, "array");
  AddReadOnlyLibrary(L, kString, LUA_STRLIBNAME, frozen, base);
  AddReadOnlyLibrary(L, kTable, LUA_TABLIBNAME, frozen, base);
  AddReadOnlyLibrary(L, kMath, LUA_MATHLIBNAME, frozen, base);
  AddReadOnlyLibrary(L, kUtf8, LUA_UTF8LIBNAME, frozen, base);
  internal::OpenDecimal(L);  // exact decimals (decimal_lua.h)
  AddReadOnlyLibrary(L, lua_gettop(L), "decimal", frozen, base);
  lua_pop(L, 1);

  lua_createtable(L, 0, 2);  // the metatable of environments
  lua_pushvalue(L, base);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  const int env_mt = lua_gettop(L);

  lua_newtable(L);
  lua_pushvalue(L, env_mt);
  lua_setmetatable(L, -2);
  s->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, env_mt);
  s->env_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, array_mt);
  s->array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  s->functions_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

// ---- Compile and Call -------------------------------------------------------

struct CompileContext {
  RuntimeState* state;
  const std::string* chunk;
  const char* chunk_name;
  int id;
  char short_src[LUA_IDSIZE];
};

int CompileTrampoline(lua_State* L) {
  auto* ctx = static_cast<CompileContext*>(lua_touserdata(L, 1));
  RuntimeState* s = ctx->state;
  // "t": text only; precompiled bytecode can crash the VM.
  if (luaL_loadbufferx(L, ctx->chunk->data(), ctx->chunk->size(),
                       ctx->chunk_name, "t") != LUA_OK) {
    return lua_error(L);
  }
  const int function = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  lua_setupvalue(L, function, 1);  // never the real globals, even by mistake
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->functions_ref);
  lua_pushvalue(L, function);
  lua_rawseti(L, -2, ctx->id + 1);
  lua_pop(L, 1);
  lua_Debug ar;
  lua_pushvalue(L, function);
  lua_getinfo(L, ">S", &ar);
  std::memcpy(ctx->short_src, ar.short_src, sizeof(ctx->short_src));
  return 0;
}

struct CallContext {
  RuntimeState* state;
  int function;
  const std::vector<const json*>* args;
  int arg = -1;  // the argument being converted, or -1
};

// Runs in protected mode, with no C++ object that has a destructor on its
// frame (a Lua error longjmps out of it).
int CallTrampoline(lua_State* L) {
  auto* ctx = static_cast<CallContext*>(lua_touserdata(L, 1));
  RuntimeState* s = ctx->state;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
  const int array_mt = lua_gettop(L);
  // The scratch environment: reused unless the last call wrote a global.
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  lua_pushnil(L);
  if (lua_next(L, -2) != 0) {
    lua_pop(L, 3);
    lua_newtable(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_mt_ref);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->env_ref);
  }
  const int env = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->functions_ref);
  lua_rawgeti(L, -1, ctx->function + 1);
  lua_remove(L, -2);
  const int function = lua_gettop(L);
  // Also undoes an `_ENV = x` of the last call.
  lua_pushvalue(L, env);
  lua_setupvalue(L, function, 1);

  const auto& args = *ctx->args;
  luaL_checkstack(
      L, static_cast<int>(std::min<std::size_t>(args.size(), 1'000'000)) + 1,
      "too many arguments");
  for (std::size_t i = 0; i < args.size(); ++i) {
    ctx->arg = static_cast<int>(i);
    if (args[i] == nullptr) {
      lua_pushnil(L);
    } else {
      internal::PushJson(L, *args[i], array_mt, 0);
    }
  }
  ctx->arg = -1;
  s->charge_allocations = true;
  s->allocation_carry = 0;
  lua_call(L, static_cast<int>(args.size()), 1);
  s->charge_allocations = false;
  return 1;
}

bool IsLuaIdentifier(const std::string& name) {
  static constexpr std::array<const char*, 22> kReserved = {
      "and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
      "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
      "repeat",   "return", "then", "true", "until",  "while"};
  if (name.empty()) return false;
  auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!alpha(name[0])) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return std::none_of(kReserved.begin(), kReserved.end(),
                      [&](const char* word) { return name == word; });
}

// The text of the error value at `index`, without calling into Lua (a
// __tostring could run user code outside the call; converting a number
// with lua_tolstring could allocate outside a protected call).
std::string ErrorText(lua_State* L, int index) {
  switch (lua_type(L, index)) {
    case LUA_TSTRING: {
      std::size_t size = 0;
      const char* data = lua_tolstring(L, index, &size);
      return std::string(data, size);
    }
    case LUA_TNUMBER: {
      if (lua_isinteger(L, index))
        return std::to_string(lua_tointeger(L, index));
      char number[40];
      std::snprintf(number, sizeof(number), "%.14g", lua_tonumber(L, index));
      return number;
    }
    default:
      return std::string("error object is a ") + luaL_typename(L, index) +
             " value";
  }
}

std::string Location(const FunctionInfo& f) {
  return f.source + ":" + std::to_string(f.first_line);
}

}  // namespace

std::optional<Rejection> AsRejection(const json& result) {
  if (!result.is_object() || result.size() != 1) return std::nullopt;
  const auto it = result.find(std::string(kRejectKey));
  if (it == result.end() || !it->is_object()) return std::nullopt;
  const auto code = it->find("code");
  const auto reason = it->find("reason");
  if (code == it->end() || !code->is_string() || reason == it->end() ||
      !reason->is_string()) {
    return std::nullopt;
  }
  return Rejection{code->get<std::string>(), reason->get<std::string>()};
}

Runtime::Runtime(std::unique_ptr<internal::RuntimeState> state)
    : state_(std::move(state)) {}

Runtime::~Runtime() = default;

const Limits& Runtime::limits() const { return state_->limits; }

std::size_t Runtime::memory_used() const { return state_->memory_used; }

Result<std::unique_ptr<Runtime>> Runtime::Create(const Limits& limits) {
  if (limits.instructions <= 0) {
    return Status::InvalidArgument(
        "lua: limits.instructions must be positive, got " +
        std::to_string(limits.instructions));
  }
  if (limits.memory_bytes == 0) {
    return Status::InvalidArgument(
        "lua: limits.memory_bytes must be positive, got 0");
  }
  try {
    auto state = std::make_unique<internal::RuntimeState>();
    state->limits = limits;
    state->hook_interval = static_cast<int>(
        std::min<std::int64_t>(limits.instructions, kHookInterval));
    const std::string too_small =
        "lua: limits.memory_bytes = " + std::to_string(limits.memory_bytes) +
        " is too small to hold the Lua sandbox";
    state->L = lua_newstate(Allocate, state.get());
    if (state->L == nullptr) return Status::InvalidArgument(too_small);
    lua_State* L = state->L;
    lua_pushcfunction(L, SetupSandbox);
    lua_pushlightuserdata(L, state.get());
    const int status = lua_pcall(L, 1, 0, 0);
    if (status != LUA_OK) {
      if (state->abort == Abort::kMemory)
        return Status::InvalidArgument(too_small);
      return Status::Internal("lua: setting up the sandbox failed: " +
                              ErrorText(L, -1));
    }
    lua_settop(L, 0);
    return std::unique_ptr<Runtime>(new Runtime(std::move(state)));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("lua: creating the runtime failed: ") +
                            e.what());
  }
}

Result<int> Runtime::Compile(std::string_view code,
                             const std::vector<std::string>& params,
                             std::string_view source, int first_line) {
  RuntimeState& s = *state_;
  const std::string where =
      std::string(source) + ":" + std::to_string(first_line);
  if (source.empty())
    return Status::InvalidArgument("lua: a snippet needs a source name");
  if (first_line < 1 || first_line > kMaxFirstLine) {
    return Status::InvalidArgument(where + ": first_line must be in [1, " +
                                   std::to_string(kMaxFirstLine) + "]");
  }
  for (const std::string& param : params) {
    if (!IsLuaIdentifier(param)) {
      return Status::InvalidArgument(where + ": parameter name '" + param +
                                     "' is not a Lua identifier");
    }
  }
  try {
    // The body becomes the whole chunk, with the parameters taken from the
    // chunk's varargs on the snippet's first line, so that the chunk is the
    // function and its line numbers are the file's:
    //   <first_line - 1 newlines>local state, command = ...; <code>
    std::string chunk(static_cast<std::size_t>(first_line - 1), '\n');
    if (!params.empty()) {
      chunk += "local ";
      for (std::size_t i = 0; i < params.size(); ++i) {
        if (i > 0) chunk += ", ";
        chunk += params[i];
      }
      chunk += " = ...; ";
    }
    chunk.append(code);
    const std::string chunk_name = "@" + std::string(source);

    CompileContext ctx{&s,
                       &chunk,
                       chunk_name.c_str(),
                       static_cast<int>(s.functions.size()),
                       {}};
    lua_State* L = s.L;
    lua_settop(L, 0);
    // As in Call(): garbage of earlier calls must not fail the compilation.
    if (s.memory_used > s.limits.memory_bytes / 2) lua_gc(L, LUA_GCCOLLECT);
    s.abort = Abort::kNone;
    s.where[0] = '\0';
    lua_pushcfunction(L, CompileTrampoline);
    lua_pushlightuserdata(L, &ctx);
    const int status = lua_pcall(L, 1, 0, 0);
    if (s.abort == Abort::kMemory) {
      lua_settop(L, 0);
      return Status::InvalidArgument(where + ": memory limit of " +
                                     std::to_string(s.limits.memory_bytes) +
                                     " bytes exceeded while compiling");
    }
    if (status != LUA_OK) {
      std::string message = ErrorText(L, -1);
      lua_settop(L, 0);
      return Status::InvalidArgument(std::move(message));
    }
    s.functions.push_back(
        FunctionInfo{std::string(source), ctx.short_src, first_line, params});
    return ctx.id;
  } catch (const std::exception& e) {
    lua_settop(s.L, 0);
    return Status::Internal(where + ": compiling failed: " + e.what());
  }
}

Result<json> Runtime::Call(int function, const std::vector<const json*>& args,
                           std::int64_t now_ms) {
  RuntimeState& s = *state_;
  if (function < 0 ||
      static_cast<std::size_t>(function) >= s.functions.size()) {
    return Status::InvalidArgument("lua: no compiled function with id " +
                                   std::to_string(function));
  }
  const FunctionInfo& info = s.functions[static_cast<std::size_t>(function)];
  lua_State* L = s.L;
  lua_settop(L, 0);

  // A full collection now, rather than a memory error in the middle of a
  // call that the garbage of earlier calls pushed over the cap.
  if (s.memory_used > s.limits.memory_bytes / 2) lua_gc(L, LUA_GCCOLLECT);
  s.abort = Abort::kNone;
  s.where[0] = '\0';
  s.instructions_used = 0;
  s.now_ms = now_ms;
  // Also restarts the hook's countdown.
  lua_sethook(L, CountHook, LUA_MASKCOUNT, s.hook_interval);

  CallContext ctx{&s, function, &args};
  lua_pushcfunction(L, MessageHandler);
  lua_pushcfunction(L, CallTrampoline);
  lua_pushlightuserdata(L, &ctx);
  const int status = lua_pcall(L, 1, 1, 1);
  s.charge_allocations = false;  // also after an error

  try {
    if (s.abort != Abort::kNone) {
      lua_settop(L, 0);
      // What the call piled up is garbage now: free it at once, so that the
      // next Compile() or Call() does not meet the cap because of it.
      lua_gc(L, LUA_GCCOLLECT);
      const std::string where = s.where[0] != '\0' ? s.where : Location(info);
      if (s.abort == Abort::kBudget) {
        return Status::InvalidArgument(where + ": instruction budget of " +
                                       std::to_string(s.limits.instructions) +
                                       " instructions exceeded");
      }
      return Status::InvalidArgument(where + ": memory limit of " +
                                     std::to_string(s.limits.memory_bytes) +
                                     " bytes exceeded");
    }
    if (status != LUA_OK) {
      std::string message = ErrorText(L, -1);
      lua_settop(L, 0);
      if (ctx.arg >= 0) {
        const auto i = static_cast<std::size_t>(ctx.arg);
        std::string name = "argument " + std::to_string(i + 1);
        if (i < info.params.size()) name += " (" + info.params[i] + ")";
        return Status::InvalidArgument(Location(info) + ": " + name + ": " +
                                       message);
      }
      // Lua puts "file:line:" in front of most messages, not of error(x, 0)
      // or of error objects that are not strings.
      const std::string prefix = std::string(info.short_src) + ":";
      if (message.compare(0, prefix.size(), prefix) != 0) {
        message =
            (s.where[0] != '\0' ? s.where : Location(info)) + ": " + message;
      }
      return Status::InvalidArgument(std::move(message));
    }

    // The result is at 2, above the message handler.
    if (lua_checkstack(L, 1) == 0) {
      lua_settop(L, 0);
      return Status::Internal(Location(info) +
                              ": no Lua stack left for the result");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s.array_mt_ref);
    json result;
    std::string error;
    const bool ok = internal::ToJson(L, 2, 3, &result, &error);
    lua_settop(L, 0);
    if (!ok) {
      return Status::InvalidArgument(
          Location(info) + ": the return value is not JSON: " + error);
    }
    return result;
  } catch (const std::exception& e) {
    lua_settop(L, 0);
    return Status::Internal(Location(info) + ": " + e.what());
  }
}

}  // namespace kcqrs::lua
