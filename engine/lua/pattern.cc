#include "engine/lua/pattern.h"

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <lua.hpp>

namespace kcqrs::lua::internal {
namespace {

constexpr char kEscape = '%';
// As Lua's LUA_MAXCAPTURES and lstrlib's MAXCCALLS: the same patterns fail
// with "too many captures" and "pattern too complex" as in Lua.
constexpr int kMaxCaptures = 32;
constexpr int kMaxMatchDepth = 200;
// The length of a capture that is still open, or that is a position ().
constexpr std::ptrdiff_t kUnfinished = -1;
constexpr std::ptrdiff_t kPosition = -2;
// Bulk byte work (memchr, memcmp, scanning a set) costs one step per this
// many bytes: it is an order of magnitude cheaper than a VM instruction.
constexpr std::ptrdiff_t kBytesPerStep = 16;

// The character classes of <ctype.h> in the "C" locale, which is the one
// Lua runs in here; spelled out so that no locale can change a match.
bool IsLower(unsigned c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(unsigned c) { return c >= 'A' && c <= 'Z'; }
bool IsAlpha(unsigned c) { return IsLower(c) || IsUpper(c); }
bool IsDigit(unsigned c) { return c >= '0' && c <= '9'; }
bool IsAlnum(unsigned c) { return IsAlpha(c) || IsDigit(c); }
bool IsGraph(unsigned c) { return c > 0x20 && c < 0x7f; }

// %a, %d, ... against `c`; an upper-case class letter is the complement; any
// other character after % stands for itself.
bool MatchesClass(unsigned c, unsigned cl) {
  bool in;
  switch (IsUpper(cl) ? cl - 'A' + 'a' : cl) {
    case 'a': in = IsAlpha(c); break;
    case 'c': in = c < 0x20 || c == 0x7f; break;
    case 'd': in = IsDigit(c); break;
    case 'g': in = IsGraph(c); break;
    case 'l': in = IsLower(c); break;
    case 'p': in = IsGraph(c) && !IsAlnum(c); break;
    case 's': in = c == ' ' || (c >= '\t' && c <= '\r'); break;
    case 'u': in = IsUpper(c); break;
    case 'w': in = IsAlnum(c); break;
    case 'x':
      in = IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
      break;
    case 'z': in = c == 0; break;  // deprecated in 5.2, still in 5.4
    default: return cl == c;
  }
  return IsUpper(cl) ? !in : in;
}

// What the matcher throws; caught by Run() before control returns to Lua.
struct MatchError {
  bool budget;
  char text[64];
};

struct Capture {
  const char* init;
  std::ptrdiff_t len;  // or kUnfinished, kPosition
};

// One match state: a subject, a pattern (anchor already removed) and the
// steps the call may still take. Recursion mirrors the grammar of §6.4.1:
// a pattern item, then the rest of the pattern. It is trivially
// destructible and lives on the frames of the Lua C functions below, which
// a Lua error may longjmp across.
class Matcher {
 public:
  Matcher(lua_State* L, const StepBudget* budget, const char* subject,
          std::size_t subject_size, const char* pattern,
          std::size_t pattern_size)
      : L_(L),
        budget_(budget),
        src_begin_(subject),
        src_end_(subject + subject_size),
        p_end_(pattern + pattern_size) {
    granted_ = steps_left_ = budget_->remaining(L_);
  }

  const char* src_begin() const { return src_begin_; }
  const char* src_end() const { return src_end_; }
  int level() const { return level_; }
  const Capture& capture(int i) const { return captures_[i]; }

  // Matches the pattern starting at `p` against the subject at `s`: the end
  // of the match, or nullptr.
  const char* Attempt(const char* s, const char* p) {
    level_ = 0;
    depth_ = kMaxMatchDepth;
    return Match(s, p);
  }

  // The first occurrence of [p, p + lp) in [s, s + ls), or nullptr.
  const char* PlainFind(const char* s, std::size_t ls, const char* p,
                        std::size_t lp) {
    Step(1);
    if (lp == 0) return s;
    if (lp > ls) return nullptr;
    const char* const last = s + (ls - lp);  // the last possible start
    const std::ptrdiff_t compare = 1 + static_cast<std::ptrdiff_t>(lp - 1) /
                                           kBytesPerStep;
    while (s <= last) {
      const std::size_t span = static_cast<std::size_t>(last - s) + 1;
      const auto* hit =
          static_cast<const char*>(std::memchr(s, *p, span));
      const std::ptrdiff_t scanned =
          hit != nullptr ? hit - s + 1 : static_cast<std::ptrdiff_t>(span);
      Step(1 + scanned / kBytesPerStep);
      if (hit == nullptr) return nullptr;
      Step(compare);
      if (std::memcmp(hit + 1, p + 1, lp - 1) == 0) return hit;
      s = hit + 1;
    }
    return nullptr;
  }

  // Takes `steps` without throwing; false when the budget is exhausted.
  bool TryStep(std::ptrdiff_t steps) {
    steps_left_ -= steps;
    return steps_left_ >= 0;
  }

  // Charges the steps taken so far to the call, and takes a fresh grant (the
  // call may have spent budget in between, in a gsub callback). When
  // `exhausted`, raises the budget error instead.
  void Settle(bool exhausted) {
    const std::int64_t used =
        granted_ - (steps_left_ > 0 ? steps_left_ : std::int64_t{0});
    budget_->charge(L_, used, exhausted);
    granted_ = steps_left_ = budget_->remaining(L_);
  }

 private:
  [[noreturn]] static void Fail(const char* text) {
    MatchError error{false, {}};
    std::snprintf(error.text, sizeof(error.text), "%s", text);
    throw error;
  }

  void Step(std::ptrdiff_t steps = 1) {
    steps_left_ -= steps;
    if (steps_left_ < 0) throw MatchError{true, "instruction budget"};
  }

  char At(const char* p) const { return p < p_end_ ? *p : '\0'; }

  const char* Leave(const char* s) {
    ++depth_;
    return s;
  }

  const char* Match(const char* s, const char* p) {
    if (depth_-- == 0) Fail("pattern too complex");
    Step();
    while (p != p_end_) {
      switch (*p) {
        case '(':
          return Leave(At(p + 1) == ')' ? StartCapture(s, p + 2, kPosition)
                                        : StartCapture(s, p + 1, kUnfinished));
        case ')':
          return Leave(EndCapture(s, p + 1));
        case '$':
          if (p + 1 == p_end_) return Leave(s == src_end_ ? s : nullptr);
          break;  // a '$' elsewhere is an ordinary character
        case kEscape: {
          const char next = At(p + 1);
          if (next == 'b') {
            s = MatchBalance(s, p + 2);
            if (s == nullptr) return Leave(nullptr);
            p += 4;
            continue;
          }
          if (next == 'f') {
            p += 2;
            if (At(p) != '[') Fail("missing '[' after '%f' in pattern");
            const char* ep = ClassEnd(p);
            const auto previous = static_cast<unsigned char>(
                s == src_begin_ ? '\0' : s[-1]);
            const auto current =
                static_cast<unsigned char>(s < src_end_ ? *s : '\0');
            if (!MatchesSet(previous, p, ep - 1) &&
                MatchesSet(current, p, ep - 1)) {
              p = ep;
              continue;
            }
            return Leave(nullptr);
          }
          if (IsDigit(static_cast<unsigned char>(next))) {
            s = MatchBackReference(s, next);
            if (s == nullptr) return Leave(nullptr);
            p += 2;
            continue;
          }
          break;  // a class such as %a
        }
        default:
          break;
      }
      // A single character class, maybe with a quantifier.
      const char* ep = ClassEnd(p);
      const char quantifier = At(ep);
      if (!SingleMatch(s, p, ep)) {
        if (quantifier == '*' || quantifier == '?' || quantifier == '-') {
          p = ep + 1;  // zero repetitions are fine
          continue;
        }
        return Leave(nullptr);
      }
      switch (quantifier) {
        case '?': {
          const char* res = Match(s + 1, ep + 1);
          if (res != nullptr) return Leave(res);
          p = ep + 1;
          continue;
        }
        case '+':
          return Leave(MaxExpand(s + 1, p, ep));
        case '*':
          return Leave(MaxExpand(s, p, ep));
        case '-':
          return Leave(MinExpand(s, p, ep));
        default:
          ++s;
          p = ep;
          continue;
      }
    }
    return Leave(s);
  }

  // The end of the single character class at `p`.
  const char* ClassEnd(const char* p) {
    const char* const start = p;
    const char c = *p++;
    if (c == kEscape) {
      if (p == p_end_) Fail("malformed pattern (ends with '%')");
      return p + 1;
    }
    if (c == '[') {
      if (At(p) == '^') ++p;
      do {  // the first character is part of the set, even a ']'
        if (p == p_end_) Fail("malformed pattern (missing ']')");
        if (*p++ == kEscape && p < p_end_) ++p;
      } while (At(p) != ']');
      Step((p - start) / kBytesPerStep);
      return p + 1;
    }
    return p;
  }

  // Whether `c` is in the set [p, ec], where *p is '[' and *ec is ']'.
  static bool MatchesSet(unsigned char c, const char* p, const char* ec) {
    bool in = true;
    if (p[1] == '^') {
      in = false;
      ++p;
    }
    while (++p < ec) {
      if (*p == kEscape) {
        ++p;
        if (MatchesClass(c, static_cast<unsigned char>(*p))) return in;
      } else if (p[1] == '-' && p + 2 < ec) {
        p += 2;
        if (static_cast<unsigned char>(p[-2]) <= c &&
            c <= static_cast<unsigned char>(*p)) {
          return in;
        }
      } else if (static_cast<unsigned char>(*p) == c) {
        return in;
      }
    }
    return !in;
  }

  bool SingleMatch(const char* s, const char* p, const char* ep) {
    if (*p == '[') {
      Step(1 + (ep - p) / kBytesPerStep);
    } else {
      Step();
    }
    if (s >= src_end_) return false;
    const auto c = static_cast<unsigned char>(*s);
    switch (*p) {
      case '.':
        return true;
      case kEscape:
        return MatchesClass(c, static_cast<unsigned char>(p[1]));
      case '[':
        return MatchesSet(c, p, ep - 1);
      default:
        return static_cast<unsigned char>(*p) == c;
    }
  }

  // Greedy: as many as match, then back off one at a time.
  const char* MaxExpand(const char* s, const char* p, const char* ep) {
    std::ptrdiff_t i = 0;
    while (SingleMatch(s + i, p, ep)) ++i;
    for (; i >= 0; --i) {
      const char* res = Match(s + i, ep + 1);
      if (res != nullptr) return res;
    }
    return nullptr;
  }

  // Lazy: as few as let the rest match.
  const char* MinExpand(const char* s, const char* p, const char* ep) {
    for (;;) {
      const char* res = Match(s, ep + 1);
      if (res != nullptr) return res;
      if (!SingleMatch(s, p, ep)) return nullptr;
      ++s;
    }
  }

  const char* StartCapture(const char* s, const char* p, std::ptrdiff_t what) {
    if (level_ >= kMaxCaptures) Fail("too many captures");
    captures_[level_] = Capture{s, what};
    ++level_;
    const char* res = Match(s, p);
    if (res == nullptr) --level_;
    return res;
  }

  const char* EndCapture(const char* s, const char* p) {
    int l = level_ - 1;
    while (l >= 0 && captures_[l].len != kUnfinished) --l;
    if (l < 0) Fail("invalid pattern capture");
    captures_[l].len = s - captures_[l].init;
    const char* res = Match(s, p);
    if (res == nullptr) captures_[l].len = kUnfinished;
    return res;
  }

  // %bxy: a balanced run from x to the matching y.
  const char* MatchBalance(const char* s, const char* p) {
    if (p_end_ - p < 2) Fail("malformed pattern (missing arguments to '%b')");
    if (s >= src_end_ || *s != *p) return nullptr;
    const char open = p[0];
    const char close = p[1];
    long depth = 1;
    while (++s < src_end_) {
      Step();
      if (*s == close) {
        if (--depth == 0) return s + 1;
      } else if (*s == open) {
        ++depth;
      }
    }
    return nullptr;
  }

  // %1 .. %9: the text of a closed capture again.
  const char* MatchBackReference(const char* s, char digit) {
    const int l = digit - '1';
    if (l < 0 || l >= level_ || captures_[l].len == kUnfinished) {
      MatchError error{false, {}};
      std::snprintf(error.text, sizeof(error.text),
                    "invalid capture index %%%d", l + 1);
      throw error;
    }
    const std::ptrdiff_t len = captures_[l].len;
    if (len == kPosition) return nullptr;
    Step(1 + len / kBytesPerStep);
    if (src_end_ - s >= len &&
        std::memcmp(captures_[l].init, s, static_cast<std::size_t>(len)) ==
            0) {
      return s + len;
    }
    return nullptr;
  }

  lua_State* L_;
  const StepBudget* budget_;
  const char* src_begin_;
  const char* src_end_;
  const char* p_end_;
  std::int64_t granted_ = 0;
  std::int64_t steps_left_ = 0;
  int level_ = 0;
  int depth_ = kMaxMatchDepth;
  Capture captures_[kMaxCaptures] = {};
};

// Runs `f` (a call of the matcher) and turns what it throws into the Lua
// error: the budget error, or the pattern's own ("malformed pattern ...").
template <typename F>
const char* Run(lua_State* L, Matcher& m, F&& f) {
  MatchError error{false, {}};
  bool failed = false;
  const char* end = nullptr;
  try {
    end = f();
  } catch (const MatchError& e) {
    error = e;
    failed = true;
  }
  if (failed) {
    if (error.budget) m.Settle(true);
    luaL_error(L, "%s", error.text);
  }
  return end;
}

const StepBudget* BudgetOf(lua_State* L) {
  return static_cast<const StepBudget*>(
      lua_touserdata(L, lua_upvalueindex(1)));
}

// A 1-based, possibly negative, start position as a 1-based index (may be
// past the end).
std::size_t StartIndex(lua_Integer pos, std::size_t len) {
  if (pos > 0) return static_cast<std::size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len - static_cast<std::size_t>(-pos) + 1;
}

bool HasNoSpecials(const char* p, std::size_t lp) {
  for (std::size_t i = 0; i < lp; ++i) {
    switch (p[i]) {
      case '^': case '$': case '*': case '+': case '?': case '.': case '(':
      case '[': case '%': case '-':
        return false;
      default:
        break;
    }
  }
  return true;
}

// Capture i of the last match, where s..e is the whole match (the value of
// capture 0 when the pattern has none). A position capture is pushed and
// kPosition returned; otherwise *start is set and the length returned.
std::ptrdiff_t GetCapture(lua_State* L, const Matcher& m, int i,
                          const char* s, const char* e, const char** start) {
  if (i >= m.level()) {
    if (i != 0) luaL_error(L, "invalid capture index %%%d", i + 1);
    *start = s;
    return e - s;
  }
  const Capture& c = m.capture(i);
  *start = c.init;
  if (c.len == kUnfinished) luaL_error(L, "unfinished capture");
  if (c.len == kPosition) lua_pushinteger(L, (c.init - m.src_begin()) + 1);
  return c.len;
}

void PushCapture(lua_State* L, const Matcher& m, int i, const char* s,
                 const char* e) {
  const char* start = nullptr;
  const std::ptrdiff_t len = GetCapture(L, m, i, s, e, &start);
  if (len != kPosition)
    lua_pushlstring(L, start, static_cast<std::size_t>(len));
}

// With s == nullptr (string.find), a pattern without captures pushes none.
int PushCaptures(lua_State* L, const Matcher& m, const char* s,
                 const char* e) {
  const int n = (m.level() == 0 && s != nullptr) ? 1 : m.level();
  luaL_checkstack(L, n, "too many captures");
  for (int i = 0; i < n; ++i) PushCapture(L, m, i, s, e);
  return n;
}

int FindOrMatch(lua_State* L, bool find) {
  std::size_t ls = 0;
  std::size_t lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const std::size_t init = StartIndex(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) != 0 || HasNoSpecials(p, lp))) {
    Matcher m(L, BudgetOf(L), s, ls, p, lp);
    const char* hit =
        Run(L, m, [&] { return m.PlainFind(s + init, ls - init, p, lp); });
    m.Settle(false);
    if (hit != nullptr) {
      lua_pushinteger(L, (hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>((hit - s) + lp));
      return 2;
    }
  } else {
    const bool anchor = lp > 0 && *p == '^';
    if (anchor) {
      ++p;
      --lp;
    }
    Matcher m(L, BudgetOf(L), s, ls, p, lp);
    const char* s1 = s + init;
    do {
      const char* e = Run(L, m, [&] { return m.Attempt(s1, p); });
      if (e != nullptr) {
        m.Settle(false);
        if (find) {
          lua_pushinteger(L, (s1 - s) + 1);
          lua_pushinteger(L, e - s);
          return PushCaptures(L, m, nullptr, nullptr) + 2;
        }
        return PushCaptures(L, m, s1, e);
      }
    } while (s1++ < m.src_end() && !anchor);
    m.Settle(false);
  }
  luaL_pushfail(L);
  return 1;
}

int Find(lua_State* L) { return FindOrMatch(L, true); }
int MatchFunction(lua_State* L) { return FindOrMatch(L, false); }

// Where a gmatch iterator stands, as offsets into its subject.
struct GmatchState {
  std::size_t next;       // where the next search starts
  std::size_t lastmatch;  // the end of the last match, if has_last
  bool has_last;
};

// The iterator gmatch returns; upvalues: budget, subject, pattern, state.
int GmatchStep(lua_State* L) {
  std::size_t ls = 0;
  std::size_t lp = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(2), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(3), &lp);
  auto* state =
      static_cast<GmatchState*>(lua_touserdata(L, lua_upvalueindex(4)));
  Matcher m(L, BudgetOf(L), s, ls, p, lp);
  for (std::size_t at = state->next; at <= ls; ++at) {
    const char* src = s + at;
    const char* e = Run(L, m, [&] { return m.Attempt(src, p); });
    // An empty match right where the last one ended would loop forever.
    if (e != nullptr &&
        !(state->has_last && e == s + state->lastmatch)) {
      state->next = state->lastmatch = static_cast<std::size_t>(e - s);
      state->has_last = true;
      m.Settle(false);
      return PushCaptures(L, m, src, e);
    }
  }
  m.Settle(false);
  return 0;
}

// '^' is not an anchor in gmatch (it would stop the iteration): it matches
// itself, as in Lua.
int Gmatch(lua_State* L) {
  std::size_t ls = 0;
  luaL_checklstring(L, 1, &ls);
  luaL_checkstring(L, 2);
  std::size_t init = StartIndex(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) init = ls + 1;  // nothing to find
  lua_settop(L, 2);
  auto* state = static_cast<GmatchState*>(
      lua_newuserdatauv(L, sizeof(GmatchState), 0));
  *state = GmatchState{init, 0, false};
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_pushcclosure(L, GmatchStep, 4);
  return 1;
}

// gsub with a string (or number) replacement: %0-%9 and %%.
void AddReplacement(lua_State* L, Matcher& m, luaL_Buffer* b, const char* s,
                    const char* e) {
  std::size_t l = 0;
  const char* news = lua_tolstring(L, 3, &l);
  // Scanning the replacement is work even when it adds nothing (an empty
  // capture), so it is charged per match.
  if (!m.TryStep(1 + static_cast<std::ptrdiff_t>(l) / kBytesPerStep)) {
    m.Settle(true);
  }
  const char* p;
  while ((p = static_cast<const char*>(std::memchr(news, kEscape, l))) !=
         nullptr) {
    luaL_addlstring(b, news, static_cast<std::size_t>(p - news));
    ++p;  // Lua strings end with a '\0', which a trailing '%' then sees
    if (*p == kEscape) {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    } else if (IsDigit(static_cast<unsigned char>(*p))) {
      const char* start = nullptr;
      const std::ptrdiff_t len = GetCapture(L, m, *p - '1', s, e, &start);
      if (len == kPosition) {
        luaL_addvalue(b);
      } else {
        luaL_addlstring(b, start, static_cast<std::size_t>(len));
      }
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", kEscape);
    }
    l -= static_cast<std::size_t>(p + 1 - news);
    news = p + 1;
  }
  luaL_addlstring(b, news, l);
}

// Adds the replacement of the match s..e; false when the match is kept.
bool AddValue(lua_State* L, Matcher& m, luaL_Buffer* b, const char* s,
              const char* e, int type) {
  switch (type) {
    case LUA_TFUNCTION: {
      m.Settle(false);  // the callback spends the same budget
      lua_pushvalue(L, 3);
      const int n = PushCaptures(L, m, s, e);
      lua_call(L, n, 1);
      m.Settle(false);
      break;
    }
    case LUA_TTABLE:
      m.Settle(false);  // __index may run a function
      PushCapture(L, m, 0, s, e);
      lua_gettable(L, 3);
      m.Settle(false);
      break;
    default:
      AddReplacement(L, m, b, s, e);
      return true;
  }
  if (lua_toboolean(L, -1) == 0) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    return false;
  }
  if (lua_isstring(L, -1) == 0) {
    return luaL_error(L, "invalid replacement value (a %s)",
                      luaL_typename(L, -1)) != 0;
  }
  luaL_addvalue(b);
  return true;
}

int Gsub(lua_State* L) {
  std::size_t srcl = 0;
  std::size_t lp = 0;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  const char* lastmatch = nullptr;
  const int type = lua_type(L, 3);
  const lua_Integer max_n =
      luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  const bool anchor = lp > 0 && *p == '^';
  lua_Integer n = 0;
  bool changed = false;
  luaL_argexpected(L,
                   type == LUA_TNUMBER || type == LUA_TSTRING ||
                       type == LUA_TFUNCTION || type == LUA_TTABLE,
                   3, "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor) {
    ++p;
    --lp;
  }
  Matcher m(L, BudgetOf(L), src, srcl, p, lp);
  while (n < max_n) {
    const char* e = Run(L, m, [&] { return m.Attempt(src, p); });
    if (e != nullptr && e != lastmatch) {
      ++n;
      changed = AddValue(L, m, &b, src, e, type) || changed;
      src = lastmatch = e;
    } else if (src < m.src_end()) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  m.Settle(false);
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, static_cast<std::size_t>(m.src_end() - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void RegisterPatternFunctions(lua_State* L, int table,
                              const StepBudget* budget) {
  static constexpr struct {
    const char* name;
    lua_CFunction function;
  } kFunctions[] = {{"find", Find},
                    {"match", MatchFunction},
                    {"gmatch", Gmatch},
                    {"gsub", Gsub}};
  for (const auto& f : kFunctions) {
    lua_pushlightuserdata(L, const_cast<StepBudget*>(budget));
    lua_pushcclosure(L, f.function, 1);
    lua_setfield(L, table, f.name);
  }
}

}  // namespace kcqrs::lua::internal
