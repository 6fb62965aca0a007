// Evaluating a compiled expression: a recursive walk over Program::nodes.
//
// A Value is either a pointer to a document the caller owns, to a constant
// of the program or to a static true/false/null (most results: paths,
// literals, comparisons), or a value it owns (computed numbers and strings).
// Pointers never point into another Value, so Values can be moved freely;
// when a path starts from a computed value, the element it reaches is copied.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include "decimal/decimal.h"
#include "topology/expression_program.h"

namespace kcqrs::topology::internal {
namespace {

#define NOINLINE __attribute__((noinline))

using json = kcqrs::Json;

const json kNull;
const json kTrue(true);
const json kFalse(false);

const json* Bool(bool b) { return b ? &kTrue : &kFalse; }

class Value {
 public:
  Value() = default;
  Value(Value&& other) noexcept : ref_(other.ref_) {
    if (ref_ == nullptr) own_.emplace(std::move(*other.own_));
  }
  Value& operator=(Value&& other) noexcept {
    ref_ = other.ref_;
    if (ref_ == nullptr) {
      own_.emplace(std::move(*other.own_));
    } else {
      own_.reset();
    }
    return *this;
  }
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;

  const json& get() const { return ref_ != nullptr ? *ref_ : *own_; }
  bool owned() const { return ref_ == nullptr; }
  void SetRef(const json* value) {
    ref_ = value;
    own_.reset();
  }
  void SetOwned(json value) {
    own_.emplace(std::move(value));
    ref_ = nullptr;
  }
  json Take() { return ref_ != nullptr ? *ref_ : std::move(*own_); }

 private:
  const json* ref_ = &kNull;
  // Engaged only when ref_ is null, so that values that are references (the
  // common case) never construct or destroy a json.
  std::optional<json> own_;
};

// A JSON number: an int64 when it is an integer that fits (the fast path),
// else the document itself (a decimal, an integer beyond int64, a float),
// computed exactly by decimal/.
struct Number {
  bool is_int = false;
  int64_t i = 0;
  const json* j = nullptr;

  // The number as a document: *j, or the integer in *scratch.
  const json& Doc(json* scratch) const {
    if (!is_int) return *j;
    *scratch = i;
    return *scratch;
  }
};

bool ToNumber(const json& j, Number* n) {
  switch (j.type()) {
    case json::value_t::number_integer:
      n->is_int = true;
      n->i = *j.get_ptr<const json::number_integer_t*>();
      return true;
    case json::value_t::number_unsigned: {
      uint64_t u = *j.get_ptr<const json::number_unsigned_t*>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        n->is_int = true;
        n->i = static_cast<int64_t>(u);
      } else {
        n->is_int = false;
        n->j = &j;
      }
      return true;
    }
    case json::value_t::number_float:
      n->is_int = false;
      n->j = &j;
      return true;
    case json::value_t::binary:
      if (!decimal::IsDecimal(j)) return false;
      n->is_int = false;
      n->j = &j;
      return true;
    default:
      return false;
  }
}

// <0, 0, >0 for two numbers, exactly.
int CompareNumbers(const Number& a, const Number& b) {
  if (a.is_int && b.is_int) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  json sa, sb;
  return decimal::Compare(a.Doc(&sa), b.Doc(&sb));
}

const std::string* StringOf(const json& j) {
  return j.get_ptr<const json::string_t*>();
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string_view OperatorName(Op op) {
  switch (op) {
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kMod:
      return "%";
    default:
      return "?";
  }
}

std::string_view FunctionName(Fn fn) {
  switch (fn) {
    case Fn::kNone:
      return "?";
    case Fn::kExists:
      return "exists";
    case Fn::kCoalesce:
      return "coalesce";
    case Fn::kLen:
      return "len";
    case Fn::kLower:
      return "lower";
    case Fn::kUpper:
      return "upper";
    case Fn::kString:
      return "string";
    case Fn::kNumber:
      return "number";
    case Fn::kContains:
      return "contains";
    case Fn::kStartsWith:
      return "starts_with";
    case Fn::kAbs:
      return "abs";
    case Fn::kMin:
      return "min";
    case Fn::kMax:
      return "max";
    case Fn::kNow:
      return "now";
    case Fn::kIsNumber:
      return "is_number";
    case Fn::kIsInteger:
      return "is_integer";
    case Fn::kIsDecimal:
      return "is_decimal";
    case Fn::kIsString:
      return "is_string";
    case Fn::kIsBoolean:
      return "is_boolean";
    case Fn::kIsArray:
      return "is_array";
    case Fn::kIsObject:
      return "is_object";
    case Fn::kType:
      return "type";
    case Fn::kBetween:
      return "between";
    case Fn::kRound:
      return "round";
    case Fn::kDiv:
      return "div";
  }
  return "?";
}

class Evaluator {
 public:
  Evaluator(const Program& program, const Expression::Context& ctx)
      : p_(program), ctx_(ctx) {}

  Status TakeError() { return std::move(error_); }

  // Evaluates node `index` into `out`; false (with error_ set) on error.
  bool Eval(uint32_t index, Value* out) {
    const Node& n = p_.nodes[index];
    switch (n.op) {
      case Op::kConst:
        out->SetRef(&p_.constants[n.a]);
        return true;
      case Op::kPath:
        return EvalPath(n, out);
      case Op::kIndex:
        return EvalIndex(n, out);
      case Op::kArray:
        return EvalArray(n, out);
      case Op::kNot: {
        bool b = false;
        if (!EvalBool(n.a, &b)) return false;
        out->SetRef(Bool(!b));
        return true;
      }
      case Op::kNeg:
        return EvalNeg(n, out);
      case Op::kAnd:
      case Op::kOr: {
        bool b = false;
        if (!EvalBool(n.a, &b)) return false;
        // Short-circuit: false && x, true || x do not evaluate x.
        if (b == (n.op == Op::kOr)) {
          out->SetRef(Bool(b));
          return true;
        }
        if (!EvalBool(n.b, &b)) return false;
        out->SetRef(Bool(b));
        return true;
      }
      case Op::kEq:
      case Op::kNe:
        return EvalEquality(n, out);
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe:
        return EvalCompare(n, index, out);
      case Op::kAdd:
      case Op::kSub:
      case Op::kMul:
      case Op::kDiv:
      case Op::kMod:
        return EvalArithmetic(n, index, out);
      case Op::kCall:
        return EvalCall(n, index, out);
    }
    return Fail(index, "unknown operation");
  }

  bool EvalBool(uint32_t index, bool* out) {
    Value v;
    if (!Eval(index, &v)) return false;
    const bool* b = v.get().get_ptr<const json::boolean_t*>();
    if (b == nullptr) {
      return Fail(
          index, "expected a boolean, found " + std::string(TypeName(v.get())));
    }
    *out = *b;
    return true;
  }

 private:
  // Sets the error "<what> (<text of node>)". Returns false.
  bool Fail(uint32_t node, std::string_view what) {
    return FailText(p_.NodeText(node), what);
  }

  bool FailText(std::string_view subject, std::string_view what) {
    std::string msg(what);
    msg += " (";
    msg += subject;
    msg += ")";
    error_ = Status::InvalidArgument(std::move(msg));
    return false;
  }

  // One static step from `current`. `subject` names `current` in errors.
  bool Step(const json& current, const Segment& seg, std::string_view subject,
            const json** next) {
    switch (current.type()) {
      case json::value_t::null:
        *next = &kNull;  // a field of null is null
        return true;
      case json::value_t::object:
        if (!seg.is_index) {
          const json::object_t& obj = *current.get_ptr<const json::object_t*>();
          auto it = obj.find(seg.name);
          *next = it == obj.end() ? &kNull : &it->second;
          return true;
        }
        return FailText(subject, "cannot take element [" +
                                     std::to_string(seg.index) +
                                     "] of an object");
      case json::value_t::array:
        if (seg.is_index) {
          const json::array_t& arr = *current.get_ptr<const json::array_t*>();
          *next =
              seg.index >= 0 && static_cast<uint64_t>(seg.index) < arr.size()
                  ? &arr[static_cast<size_t>(seg.index)]
                  : &kNull;
          return true;
        }
        return FailText(subject,
                        "cannot access field '" + seg.name + "' of an array");
      default:
        if (seg.is_index) {
          return FailText(subject, "cannot take element [" +
                                       std::to_string(seg.index) + "] of " +
                                       std::string(TypeName(current)));
        }
        return FailText(subject, "cannot access field '" + seg.name + "' of " +
                                     std::string(TypeName(current)));
    }
  }

  // The cases of Eval() live in functions of their own, kept out of line so
  // that Eval() itself, which recurses, stays a small frame and dispatch.
  NOINLINE bool EvalArray(const Node& n, Value* out) {
    json array = json::array();
    array.get_ptr<json::array_t*>()->reserve(n.b);
    for (uint32_t i = 0; i < n.b; ++i) {
      Value v;
      if (!Eval(p_.args[n.a + i], &v)) return false;
      array.push_back(v.Take());
    }
    out->SetOwned(std::move(array));
    return true;
  }

  NOINLINE bool EvalEquality(const Node& n, Value* out) {
    Value l, r;
    if (!Eval(n.a, &l) || !Eval(n.b, &r)) return false;
    // Deep, and numbers by value: 1 == 1.0, [1] == [1.0].
    bool eq = decimal::Equal(l.get(), r.get());
    out->SetRef(Bool(n.op == Op::kEq ? eq : !eq));
    return true;
  }

  NOINLINE bool EvalPath(const Node& n, Value* out) {
    const Path& path = p_.paths[n.a];
    std::string_view text = p_.text;
    const json* cur = nullptr;
    Value base;
    if (path.from_root) {
      if (ctx_.roots == nullptr || path.base >= ctx_.num_roots) {
        return FailText(text.substr(n.begin, path.base_end - n.begin),
                        "the evaluation context supplies " +
                            std::to_string(ctx_.num_roots) +
                            " root values, not this one");
      }
      cur = ctx_.roots[path.base];
      if (cur == nullptr) cur = &kNull;
    } else {
      if (!Eval(path.base, &base)) return false;
      cur = &base.get();
    }
    uint32_t prev_end = path.base_end;
    for (const Segment& seg : path.segments) {
      if (!Step(*cur, seg, text.substr(n.begin, prev_end - n.begin), &cur)) {
        return false;
      }
      prev_end = seg.end;
    }
    if (base.owned() && !path.from_root) {
      json copy = *cur;  // `cur` points into `base`, which dies here
      out->SetOwned(std::move(copy));
    } else {
      out->SetRef(cur);
    }
    return true;
  }

  NOINLINE bool EvalIndex(const Node& n, Value* out) {
    Value base, key;
    if (!Eval(n.a, &base) || !Eval(n.b, &key)) return false;
    Segment seg;
    const json& k = key.get();
    if (const std::string* s = StringOf(k)) {
      seg.name = *s;
    } else if (Number num; ToNumber(k, &num) && num.is_int) {
      seg.is_index = true;
      seg.index = num.i;
    } else if (k.is_null()) {
      out->SetRef(&kNull);
      return true;
    } else {
      return Fail(n.b,
                  "expected a field name (a string) or an array index "
                  "(an integer), found " +
                      std::string(TypeName(k)));
    }
    const json* cur = nullptr;
    if (!Step(base.get(), seg, p_.NodeText(n.a), &cur)) return false;
    if (base.owned()) {
      json copy = *cur;
      out->SetOwned(std::move(copy));
    } else {
      out->SetRef(cur);
    }
    return true;
  }

  NOINLINE bool EvalNeg(const Node& n, Value* out) {
    Value v;
    if (!Eval(n.a, &v)) return false;
    Number x;
    if (!ToNumber(v.get(), &x)) {
      return Fail(
          n.a, "'-' expects a number, found " + std::string(TypeName(v.get())));
    }
    if (x.is_int) {
      if (x.i == std::numeric_limits<int64_t>::min()) {
        return FailText(p_.text.substr(n.begin, n.end - n.begin),
                        "integer overflow");
      }
      out->SetOwned(json(-x.i));
      return true;
    }
    json result;
    if (Status st = decimal::Negate(*x.j, &result); !st.ok()) {
      return FailText(p_.text.substr(n.begin, n.end - n.begin), st.message());
    }
    out->SetOwned(std::move(result));
    return true;
  }

  NOINLINE bool EvalCompare(const Node& n, uint32_t index, Value* out) {
    Value l, r;
    if (!Eval(n.a, &l) || !Eval(n.b, &r)) return false;
    const json& a = l.get();
    const json& b = r.get();
    // An ordering with a missing value is false, so that a rule such as
    // "state.balance < 0" does not hold for a fresh aggregate.
    if (a.is_null() || b.is_null()) {
      out->SetRef(&kFalse);
      return true;
    }
    int c = 0;
    Number x, y;
    const std::string* sa = nullptr;
    const std::string* sb = nullptr;
    if (ToNumber(a, &x) && ToNumber(b, &y)) {
      c = CompareNumbers(x, y);
    } else if ((sa = StringOf(a)) != nullptr && (sb = StringOf(b)) != nullptr) {
      c = sa->compare(*sb);  // bytewise: memcmp order
    } else {
      return Fail(index, "'" + std::string(OperatorName(n.op)) +
                             "' expects two numbers or two strings, found " +
                             std::string(TypeName(a)) + " and " +
                             std::string(TypeName(b)));
    }
    bool result = false;
    switch (n.op) {
      case Op::kLt:
        result = c < 0;
        break;
      case Op::kLe:
        result = c <= 0;
        break;
      case Op::kGt:
        result = c > 0;
        break;
      default:
        result = c >= 0;
        break;
    }
    out->SetRef(Bool(result));
    return true;
  }

  NOINLINE bool EvalArithmetic(const Node& n, uint32_t index, Value* out) {
    Value l, r;
    if (!Eval(n.a, &l) || !Eval(n.b, &r)) return false;
    const json& a = l.get();
    const json& b = r.get();
    Number x, y;
    if (ToNumber(a, &x) && ToNumber(b, &y)) {
      if (x.is_int && y.is_int) {
        int64_t result = 0;
        bool overflow = false;
        switch (n.op) {
          case Op::kAdd:
            overflow = __builtin_add_overflow(x.i, y.i, &result);
            break;
          case Op::kSub:
            overflow = __builtin_sub_overflow(x.i, y.i, &result);
            break;
          case Op::kMul:
            overflow = __builtin_mul_overflow(x.i, y.i, &result);
            break;
          case Op::kDiv:
            if (y.i == 0) return Fail(index, "division by zero");
            overflow = x.i == std::numeric_limits<int64_t>::min() && y.i == -1;
            if (!overflow) result = x.i / y.i;
            break;
          default:  // kMod
            if (y.i == 0) return Fail(index, "division by zero");
            result = y.i == -1 ? 0 : x.i % y.i;  // INT64_MIN % -1 is UB in C++
            break;
        }
        if (overflow) return Fail(index, "integer overflow");
        out->SetOwned(json(result));
        return true;
      }
      json sa, sb, result;
      const json& p = x.Doc(&sa);
      const json& q = y.Doc(&sb);
      Status st;
      switch (n.op) {
        case Op::kAdd:
          st = decimal::Add(p, q, &result);
          break;
        case Op::kSub:
          st = decimal::Subtract(p, q, &result);
          break;
        case Op::kMul:
          st = decimal::Multiply(p, q, &result);
          break;
        case Op::kDiv:
          st = decimal::Divide(p, q, &result);
          break;
        default:
          st = decimal::Remainder(p, q, &result);
          break;
      }
      if (!st.ok()) return Fail(index, st.message());
      out->SetOwned(std::move(result));
      return true;
    }
    if (n.op == Op::kAdd) {
      const std::string* sa = StringOf(a);
      const std::string* sb = StringOf(b);
      if (sa != nullptr && sb != nullptr) {
        std::string s;
        s.reserve(sa->size() + sb->size());
        s += *sa;
        s += *sb;
        out->SetOwned(json(std::move(s)));
        return true;
      }
      return Fail(index, "'+' expects two numbers or two strings, found " +
                             std::string(TypeName(a)) + " and " +
                             std::string(TypeName(b)));
    }
    return Fail(index, "'" + std::string(OperatorName(n.op)) +
                           "' expects two numbers, found " +
                           std::string(TypeName(a)) + " and " +
                           std::string(TypeName(b)));
  }

  // "<fn>() expects <what>, found <type>" about argument node `arg`.
  bool FailArgument(Fn fn, uint32_t arg, std::string_view what,
                    const json& found) {
    return Fail(arg, std::string(FunctionName(fn)) + "() expects " +
                         std::string(what) + ", found " +
                         std::string(TypeName(found)));
  }

  NOINLINE bool EvalCall(const Node& n, uint32_t index, Value* out) {
    const uint32_t* args = p_.args.data() + n.a;
    switch (n.fn) {
      case Fn::kExists: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        out->SetRef(Bool(!v.get().is_null()));
        return true;
      }
      case Fn::kCoalesce:
        for (uint32_t i = 0; i < n.b; ++i) {
          Value v;
          if (!Eval(args[i], &v)) return false;
          if (!v.get().is_null()) {
            *out = std::move(v);
            return true;
          }
        }
        out->SetRef(&kNull);
        return true;
      case Fn::kLen: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        const json& j = v.get();
        if (const std::string* s = StringOf(j)) {
          out->SetOwned(json(static_cast<int64_t>(CodePoints(*s))));
        } else if (j.is_array() || j.is_object()) {
          out->SetOwned(json(static_cast<int64_t>(j.size())));
        } else {
          return FailArgument(n.fn, args[0], "a string, an array or an object",
                              j);
        }
        return true;
      }
      case Fn::kLower:
      case Fn::kUpper: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        const std::string* s = StringOf(v.get());
        if (s == nullptr)
          return FailArgument(n.fn, args[0], "a string", v.get());
        std::string r = *s;
        for (char& c : r) {
          if (n.fn == Fn::kLower && c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
          if (n.fn == Fn::kUpper && c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        }
        out->SetOwned(json(std::move(r)));
        return true;
      }
      case Fn::kString: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        if (v.get().is_string()) {
          *out = std::move(v);
          return true;
        }
        std::string s;
        AppendCompactJson(v.get(), &s);
        out->SetOwned(json(std::move(s)));
        return true;
      }
      case Fn::kNumber:
        return EvalNumberFunction(args[0], out);
      case Fn::kContains:
        return EvalContains(n, args, out);
      case Fn::kStartsWith: {
        Value s, prefix;
        if (!Eval(args[0], &s) || !Eval(args[1], &prefix)) return false;
        const std::string* a = StringOf(s.get());
        if (a == nullptr)
          return FailArgument(n.fn, args[0], "a string", s.get());
        const std::string* b = StringOf(prefix.get());
        if (b == nullptr) {
          return FailArgument(n.fn, args[1], "a string", prefix.get());
        }
        out->SetRef(Bool(a->starts_with(*b)));
        return true;
      }
      case Fn::kAbs: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        Number x;
        if (!ToNumber(v.get(), &x))
          return FailArgument(n.fn, args[0], "a number", v.get());
        if (x.is_int) {
          if (x.i == std::numeric_limits<int64_t>::min()) {
            return Fail(index, "integer overflow");
          }
          out->SetOwned(json(x.i < 0 ? -x.i : x.i));
          return true;
        }
        json result;
        if (Status st = decimal::Abs(*x.j, &result); !st.ok()) return Fail(index, st.message());
        out->SetOwned(std::move(result));
        return true;
      }
      case Fn::kMin:
      case Fn::kMax: {
        Value a, b;
        if (!Eval(args[0], &a) || !Eval(args[1], &b)) return false;
        int c = 0;
        Number x, y;
        const std::string* sa = nullptr;
        const std::string* sb = nullptr;
        if (ToNumber(a.get(), &x) && ToNumber(b.get(), &y)) {
          c = CompareNumbers(x, y);
        } else if ((sa = StringOf(a.get())) != nullptr &&
                   (sb = StringOf(b.get())) != nullptr) {
          c = sa->compare(*sb);
        } else {
          return Fail(index, std::string(FunctionName(n.fn)) +
                                 "() expects two numbers or two strings, "
                                 "found " +
                                 std::string(TypeName(a.get())) + " and " +
                                 std::string(TypeName(b.get())));
        }
        // On a tie the first argument wins, keeping its representation.
        bool take_first = n.fn == Fn::kMin ? c <= 0 : c >= 0;
        *out = take_first ? std::move(a) : std::move(b);
        return true;
      }
      case Fn::kNow:
        out->SetOwned(json(ctx_.now_ms));
        return true;
      case Fn::kIsNumber:
      case Fn::kIsInteger:
      case Fn::kIsString:
      case Fn::kIsBoolean:
      case Fn::kIsArray:
      case Fn::kIsObject: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        out->SetRef(Bool(IsOfType(n.fn, v.get())));
        return true;
      }
      case Fn::kType: {
        Value v;
        if (!Eval(args[0], &v)) return false;
        static const json kNames[] = {json("null"),   json("boolean"), json("number"),
                                      json("string"), json("array"),   json("object")};
        const json& j = v.get();
        const int i = j.is_null()              ? 0
                      : j.is_boolean()         ? 1
                      : decimal::IsNumber(j)   ? 2
                      : j.is_string()          ? 3
                      : j.is_array()           ? 4
                                               : 5;
        out->SetRef(&kNames[i]);
        return true;
      }
      case Fn::kIsDecimal: {
        Value v;
        int scale = 0;
        if (!Eval(args[0], &v) || !EvalScale(n.fn, args[1], &scale)) return false;
        out->SetRef(Bool(decimal::IsNumber(v.get()) && decimal::FitsScale(v.get(), scale)));
        return true;
      }
      case Fn::kBetween:
        return EvalBetween(n, index, args, out);
      case Fn::kRound:
      case Fn::kDiv:
        return EvalRounding(n, index, args, out);
      case Fn::kNone:
        break;
    }
    return Fail(index, "unknown function");
  }

  bool EvalNumberFunction(uint32_t arg, Value* out) {
    Value v;
    if (!Eval(arg, &v)) return false;
    const json& j = v.get();
    if (decimal::IsNumber(j)) {
      *out = std::move(v);
      return true;
    }
    const std::string* s = StringOf(j);
    if (s == nullptr) {
      return FailArgument(Fn::kNumber, arg, "a string or a number", j);
    }
    if (Result<json> number = decimal::FromString(*s); number.ok()) {
      out->SetOwned(std::move(number.value()));
      return true;
    }
    std::string shown;
    AppendCompactJson(json(s->size() > 40 ? s->substr(0, 40) + "..." : *s),
                      &shown);
    return Fail(arg, "number() cannot convert " + shown + " to a number");
  }

  static bool IsOfType(Fn fn, const json& j) {
    switch (fn) {
      case Fn::kIsNumber: return decimal::IsNumber(j);
      case Fn::kIsInteger: return decimal::IsNumber(j) && decimal::IsWhole(j);
      case Fn::kIsString: return j.is_string();
      case Fn::kIsBoolean: return j.is_boolean();
      case Fn::kIsArray: return j.is_array();
      default: return j.is_object();
    }
  }

  // A scale argument: an integer from -kMaxScale to kMaxScale.
  bool EvalScale(Fn fn, uint32_t arg, int* scale) {
    Value v;
    if (!Eval(arg, &v)) return false;
    Number x;
    if (!ToNumber(v.get(), &x) || !x.is_int || x.i < -decimal::kMaxScale ||
        x.i > decimal::kMaxScale) {
      return FailArgument(fn, arg,
                          "a scale (an integer from -" + std::to_string(decimal::kMaxScale) +
                              " to " + std::to_string(decimal::kMaxScale) + ")",
                          v.get());
    }
    *scale = static_cast<int>(x.i);
    return true;
  }

  // between(x, lo, hi): lo <= x <= hi for numbers, or for strings; false
  // when x is of another type (null included), so that one call checks the
  // type and the range of an input.
  bool EvalBetween(const Node& n, uint32_t index, const uint32_t* args, Value* out) {
    Value x, lo, hi;
    if (!Eval(args[0], &x) || !Eval(args[1], &lo) || !Eval(args[2], &hi)) return false;
    Number nx, nlo, nhi;
    if (ToNumber(lo.get(), &nlo) && ToNumber(hi.get(), &nhi)) {
      out->SetRef(Bool(ToNumber(x.get(), &nx) && CompareNumbers(nlo, nx) <= 0 &&
                       CompareNumbers(nx, nhi) <= 0));
      return true;
    }
    const std::string* slo = StringOf(lo.get());
    const std::string* shi = StringOf(hi.get());
    if (slo != nullptr && shi != nullptr) {
      const std::string* sx = StringOf(x.get());
      out->SetRef(Bool(sx != nullptr && *slo <= *sx && *sx <= *shi));
      return true;
    }
    return Fail(index, std::string(FunctionName(n.fn)) +
                           "() expects bounds that are two numbers or two strings, found " +
                           std::string(TypeName(lo.get())) + " and " +
                           std::string(TypeName(hi.get())));
  }

  // round(x, scale[, mode]) and div(a, b, scale[, mode]).
  bool EvalRounding(const Node& n, uint32_t index, const uint32_t* args, Value* out) {
    const bool is_div = n.fn == Fn::kDiv;
    const uint32_t scale_arg = is_div ? 2 : 1;
    Value a, b;
    if (!Eval(args[0], &a)) return false;
    if (!decimal::IsNumber(a.get())) return FailArgument(n.fn, args[0], "a number", a.get());
    if (is_div) {
      if (!Eval(args[1], &b)) return false;
      if (!decimal::IsNumber(b.get())) return FailArgument(n.fn, args[1], "a number", b.get());
    }
    int scale = 0;
    if (!EvalScale(n.fn, args[scale_arg], &scale)) return false;
    decimal::Rounding rounding = decimal::Rounding::kHalfEven;
    if (n.b > scale_arg + 1) {
      Value mode;
      if (!Eval(args[scale_arg + 1], &mode)) return false;
      const std::string* name = StringOf(mode.get());
      std::optional<decimal::Rounding> parsed;
      if (name != nullptr) parsed = decimal::ParseRounding(*name);
      if (!parsed) {
        return FailArgument(n.fn, args[scale_arg + 1],
                            "a rounding mode (" + std::string(decimal::RoundingNames()) + ")",
                            mode.get());
      }
      rounding = *parsed;
    }
    json result;
    const Status st = is_div ? decimal::DivideRounded(a.get(), b.get(), scale, rounding, &result)
                             : decimal::Round(a.get(), scale, rounding, &result);
    if (!st.ok()) return Fail(index, st.message());
    out->SetOwned(std::move(result));
    return true;
  }

  bool EvalContains(const Node& n, const uint32_t* args, Value* out) {
    Value haystack, needle;
    if (!Eval(args[0], &haystack) || !Eval(args[1], &needle)) return false;
    const json& h = haystack.get();
    const json& x = needle.get();
    if (const json::array_t* arr = h.get_ptr<const json::array_t*>()) {
      bool found = false;
      for (const json& e : *arr) {
        if (decimal::Equal(e, x)) {
          found = true;
          break;
        }
      }
      out->SetRef(Bool(found));
      return true;
    }
    if (h.is_string() || h.is_object()) {
      const std::string* s = StringOf(x);
      if (s == nullptr) {
        return FailArgument(n.fn, args[1],
                            h.is_string() ? "a string to look for in a string"
                                          : "a field name (a string) to look "
                                            "for in an object",
                            x);
      }
      if (h.is_string()) {
        out->SetRef(Bool(StringOf(h)->find(*s) != std::string::npos));
      } else {
        out->SetRef(Bool(h.contains(*s)));
      }
      return true;
    }
    return FailArgument(n.fn, args[0], "an array, a string or an object", h);
  }

  const Program& p_;
  const Expression::Context& ctx_;
  Status error_;
};

#undef NOINLINE

}  // namespace

std::string_view TypeName(const kcqrs::Json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::binary:
      return decimal::IsDecimal(value) ? "a number" : "binary data";
    case json::value_t::discarded:
      return "a discarded value";
  }
  return "an unknown value";
}

void AppendCompactJson(const kcqrs::Json& value, std::string* out) {
  decimal::AppendJson(value, out);
}

Status EvaluateToJson(const Program& program, const Expression::Context& ctx,
                      kcqrs::Json* out) {
  try {
    Evaluator e(program, ctx);
    Value v;
    if (!e.Eval(program.root, &v)) return e.TakeError();
    *out = v.Take();
    return Status::OK();
  } catch (const std::exception& ex) {
    return Status::Internal("evaluating '" + program.text + "': " + ex.what());
  }
}

Status EvaluateToBool(const Program& program, const Expression::Context& ctx,
                      bool* out) {
  try {
    Evaluator e(program, ctx);
    if (!e.EvalBool(program.root, out)) return e.TakeError();
    return Status::OK();
  } catch (const std::exception& ex) {
    return Status::Internal("evaluating '" + program.text + "': " + ex.what());
  }
}

Status EvaluateAppend(const Program& program, const Expression::Context& ctx,
                      std::string* out) {
  try {
    Evaluator e(program, ctx);
    Value v;
    if (!e.Eval(program.root, &v)) return e.TakeError();
    if (const std::string* s = StringOf(v.get())) {
      *out += *s;
    } else {
      AppendCompactJson(v.get(), out);
    }
    return Status::OK();
  } catch (const std::exception& ex) {
    return Status::Internal("evaluating '" + program.text + "': " + ex.what());
  }
}

}  // namespace kcqrs::topology::internal
