// Internal to engine/lua: string.find, string.match, string.gmatch and
// string.gsub with Lua 5.4's pattern semantics (reference manual §6.4.1),
// implemented here so that every step of a match is charged to the budget
// of the running call. Lua's own lstrlib matcher runs in C where the count
// hook never looks: string.rep('a', 300):find('.-.-.-.-b') would run for
// hours, and a trim idiom on a 1 MB field for minutes.
//
// The functions behave as Lua 5.4's, results and error messages alike
// (tests/lua/pattern_test.cc holds them to it on 20,000 generated cases),
// except that each call is charged steps and ends with the budget error
// when the call's budget runs out. A step is: an attempt at a position, a
// recursive match, a single-character class tried against a character, a
// character %b scans; a set [...] costs one more step per 16 bytes of its
// text each time it is read, and bulk byte work costs one step per 16 bytes:
// a back-reference's comparison, a plain find's scan and comparisons
// (string.find with plain = true, or a pattern without special characters),
// a gsub replacement string's scan per match.
// Matching recursion is bounded as in Lua (200 levels: "pattern too
// complex"), and so is the number of captures (32: "too many captures").
//
// Thread-safety: stateless; the lua_State must be used by one thread at a
// time.
#ifndef KCQRS_ENGINE_LUA_PATTERN_H_
#define KCQRS_ENGINE_LUA_PATTERN_H_

#include <cstdint>

struct lua_State;

namespace kcqrs::lua::internal {

// How the pattern functions reach the budget of the running call.
struct StepBudget {
  // Steps the running call may still take; never negative.
  std::int64_t (*remaining)(lua_State* L);
  // Charges `steps` to the running call. When `exhausted`, the call has
  // run out of steps: raises the budget error and does not return.
  void (*charge)(lua_State* L, std::int64_t steps, bool exhausted);
};

// Sets find, match, gmatch and gsub of the table at absolute stack index
// `table` to the budgeted functions. `budget` must outlive the lua_State.
// Must run inside a protected call (it allocates).
void RegisterPatternFunctions(lua_State* L, int table,
                              const StepBudget* budget);

}  // namespace kcqrs::lua::internal

#endif  // KCQRS_ENGINE_LUA_PATTERN_H_
