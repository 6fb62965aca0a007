// kcqrs::lua::Runtime: runs the Lua 5.4 snippets of a topology (command
// handlers, projections) in a sandbox, with JSON documents in and out.
//
// A snippet is the body of a function. Compile() turns it into a function id
// once; Call() runs it per record. Everything a user can get wrong (syntax,
// runtime errors, the instruction budget, the memory cap, a return value
// that is not JSON) comes back as Status::InvalidArgument whose message
// starts with the place in the user's YAML file ("topology.yaml:42: ...").
//
// The sandbox. A snippet sees only:
//   assert error ipairs pairs next select tonumber tostring type rawequal
//   rawget rawlen rawset setmetatable getmetatable pcall xpcall _VERSION
//   string (no string.dump)  table  math (no math.random/randomseed)  utf8
//   now()            -> the now_ms given to Call(): the record timestamp, so
//                       that a replay decides the same way
//   reject(code, reason)
//                    -> {["$reject"] = {code = code, reason = reason or ""}},
//                       which AsRejection() below recognises
//   array([t])       -> t (or a new table) marked as a JSON array, so that
//                       an empty one converts to [] rather than {}
//   decimal          -> the library of exact decimals (decimal_lua.h)
// There is no io, os, package, require, debug, load, loadstring, dofile,
// loadfile, collectgarbage, coroutine, print or _G. The library tables are
// read-only (an assignment or rawset into them is an error); the string
// metatable is hidden; setmetatable refuses __gc (finalizers would run
// outside any budget). pcall and xpcall cannot catch the budget or memory
// error: once either is hit, every enclosing pcall re-raises it.
//
// Globals. All snippets of a Runtime read through one shared, read-only base
// environment. A global a snippet writes lands in a scratch table that only
// the current call sees: before each call, if the scratch table of the last
// call holds anything, it is replaced by a fresh one (so the common case,
// a snippet that writes no globals, allocates no environment per call).
//
// JSON <-> Lua. Objects become tables with string keys, arrays become
// sequences 1..n (marked, see array() above), null becomes nil, integers
// stay Lua integers, every other number (a decimal, an unsigned integer
// above 2^63-1) becomes an exact `decimal` userdata (decimal_lua.h), strings
// are copied byte for byte. As
// nil cannot be stored in a table, an object member that is null is absent
// in Lua and absent when it comes back, and trailing nulls of an array are
// dropped ([1, null] comes back as [1]); inner nulls survive ([1, null, 3]).
// Back to JSON:
//   nil -> null; booleans; integers -> integers; decimals -> decimals with
//   their text; floats -> the decimal of their shortest round-trip text
//   (1.0 stays 1.0; NaN and infinities are an error); strings must be
//   valid UTF-8;
//   a table whose keys are all positive integers -> an array of length n =
//   the largest key, holes as null, if it has at most as many holes as
//   elements (a marked array may have up to 1000 holes more);
//   an empty table -> {} unless it is marked as an array, then [];
//   any other table -> an object; integer keys become decimal strings;
//   keys of other types, functions, userdata, threads, cycles and nesting
//   deeper than 200 levels are errors naming the path, e.g. "$.events[1].f"
//   (Lua indexing, 1-based).
// Objects are std::map-ordered by key, so the JSON is deterministic even
// though Lua's own table order is not (pairs() order differs between runs;
// a snippet whose output depends on it is not replayable).
//
// Limits. The instruction budget of a call counts, from the snippet's first
// instruction to its return:
//   - Lua VM instructions (the count hook, every 1000);
//   - one per element for the loops in table.concat/insert/move/remove/
//     sort (n log n)/unpack, one per 16 bytes that utf8.len/offset/codepoint
//     and tonumber scan;
//   - the steps of string.find/match/gmatch/gsub, which are our own matcher
//     with Lua 5.4's semantics (engine/lua/pattern.h says what a step is):
//     string.rep('a', 300):find('.-.-.-.-b') ends with the budget error;
//   - one per 64 bytes the snippet allocates, which bounds copying in C that
//     makes new objects (s = s .. x in a loop is quadratic).
// Converting the arguments and the result is not charged. The memory cap
// bounds the whole Lua state; string.rep asks for its whole result at once,
// so a huge one is refused before anything is written.
// Deep recursion ends at the memory cap (the Lua stack) or at Lua's C
// stack limit (200 nested C calls: metamethod loops), both clean errors.
// After a call hit either limit its garbage is collected before Call()
// returns.
//
// Integers never wrap. Stock Lua 5.4 wraps integer arithmetic around
// (9223372036854775800 + 100 == -9223372036854775716). The Lua linked here
// is Debian's lua5.4 source with third_party/lua/checked-integers.patch:
// integer +, -, *, unary minus and mininteger // -1 (every VM form,
// lua_arith, strings coerced to integers) and math.abs(mininteger) raise
// the ordinary runtime error "integer overflow in <a> <op> <b>", which
// Call() returns like any other ("topology.yaml:43: integer overflow in
// 9223372036854775800 + 100"); the compiler does not fold an overflowing
// constant expression, so it raises when it runs. Floats, bitwise
// operators, hexadecimal literals, % and for loops are Lua's own.
//
// Known hole, open:
//   - Instructions whose work grows with a value's size are charged one
//     instruction: == and < on two distinct long strings of equal length
//     (memcmp/strcoll), and vararg copies (f(1, ...)). Each is bounded by
//     the memory cap (at most ~32 MiB compared or ~1M stack slots copied
//     per instruction), not by the budget.
//
// Thread-safety: a Runtime wraps one lua_State and is NOT thread-safe. Each
// stream thread owns its Runtime, compiles the snippets it runs into it and
// calls them from that thread only. Distinct Runtimes share nothing.
#ifndef KCQRS_ENGINE_LUA_RUNTIME_H_
#define KCQRS_ENGINE_LUA_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json/document.h"
#include "kcqrs/status.h"

namespace kcqrs::lua {

struct Limits {
  // Lua VM instructions one Call() may execute (plus the library loop work
  // described above). A runaway loop ends with an "instruction budget" error.
  // Must be positive. Default: 1,000,000.
  int64_t instructions = 1'000'000;
  // Bytes the whole Lua state may hold: libraries, compiled snippets and
  // whatever a call allocates (as Lua counts it, without malloc overhead).
  // An allocation past it fails the call with a "memory limit" error.
  // Default: 32 MiB.
  size_t memory_bytes = size_t{32} << 20;
};

// The key of the object reject() returns.
inline constexpr std::string_view kRejectKey = "$reject";

struct Rejection {
  std::string code;
  std::string reason;
};

// The rejection `result` carries when a snippet returned reject(code,
// reason): exactly {"$reject": {"code": <string>, "reason": <string>}}.
// nullopt for anything else.
std::optional<Rejection> AsRejection(const kcqrs::Json& result);

namespace internal {
struct RuntimeState;
}

class Runtime {
 public:
  // InvalidArgument when the limits are not positive or memory_bytes is too
  // small to hold the sandbox itself (about 30 KiB).
  static Result<std::unique_ptr<Runtime>> Create(const Limits& limits);

  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Compiles `code` as the body of a function of `params`, which must be
  // Lua identifiers: {"state", "command"} makes
  // `function(state, command) <code> end`. `source` and `first_line` are
  // where the code sits in the user's file, so that errors read
  // "topology.yaml:42: ...". Returns the id to pass to Call().
  // InvalidArgument on a syntax error or a bad parameter name.
  Result<int> Compile(std::string_view code,
                      const std::vector<std::string>& params,
                      std::string_view source, int first_line);

  // Calls a compiled function with `args` (a null pointer passes nil) and
  // returns its first return value as JSON. `now_ms` is what now() returns.
  // After any error, including the budget and the memory limit, the Runtime
  // stays usable.
  Result<kcqrs::Json> Call(int function, const std::vector<const kcqrs::Json*>& args,
                           int64_t now_ms);

  const Limits& limits() const;
  // Bytes the Lua state holds now, garbage included.
  size_t memory_used() const;

 private:
  explicit Runtime(std::unique_ptr<internal::RuntimeState> state);

  std::unique_ptr<internal::RuntimeState> state_;
};

}  // namespace kcqrs::lua

#endif  // KCQRS_ENGINE_LUA_RUNTIME_H_
