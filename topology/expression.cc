// Compiling expressions and templates: a hand-written lexer and a
// precedence-climbing recursive-descent parser that produce an
// internal::Program. Everything that can be decided from the text alone
// (names, functions, arity, literals, nesting) is decided here, so that
// evaluation only looks at values.
#include "topology/expression.h"

#include "util/edit_distance.h"

#include <algorithm>
#include <charconv>
#include <exception>
#include <limits>
#include <span>
#include <utility>

#include "decimal/decimal.h"
#include "topology/expression_program.h"
#include "util/utf8.h"

namespace kcqrs::topology {
namespace {

using internal::Fn;
using internal::Node;
using internal::Op;
using internal::Program;
using json = kcqrs::Json;

// Deep trees would make evaluation recurse deeply; real rules are a handful
// of levels. Both limits are far above anything a person writes.
constexpr size_t kMaxTreeDepth = 200;
constexpr size_t kMaxNesting = 64;
constexpr size_t kMaxTextBytes = size_t{1} << 20;

struct FunctionInfo {
  std::string_view name;
  Fn fn;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: any number
};

constexpr FunctionInfo kFunctions[] = {
    {"exists", Fn::kExists, 1, 1},
    {"coalesce", Fn::kCoalesce, 1, SIZE_MAX},
    {"len", Fn::kLen, 1, 1},
    {"lower", Fn::kLower, 1, 1},
    {"upper", Fn::kUpper, 1, 1},
    {"string", Fn::kString, 1, 1},
    {"number", Fn::kNumber, 1, 1},
    {"contains", Fn::kContains, 2, 2},
    {"starts_with", Fn::kStartsWith, 2, 2},
    {"abs", Fn::kAbs, 1, 1},
    {"min", Fn::kMin, 2, 2},
    {"max", Fn::kMax, 2, 2},
    {"now", Fn::kNow, 0, 0},
    {"is_number", Fn::kIsNumber, 1, 1},
    {"is_integer", Fn::kIsInteger, 1, 1},
    {"is_decimal", Fn::kIsDecimal, 2, 2},
    {"is_string", Fn::kIsString, 1, 1},
    {"is_boolean", Fn::kIsBoolean, 1, 1},
    {"is_array", Fn::kIsArray, 1, 1},
    {"is_object", Fn::kIsObject, 1, 1},
    {"type", Fn::kType, 1, 1},
    {"between", Fn::kBetween, 3, 3},
    {"round", Fn::kRound, 2, 3},
    {"div", Fn::kDiv, 3, 4},
};

const FunctionInfo* FindFunction(std::string_view name) {
  for (const FunctionInfo& f : kFunctions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

using util::EditDistance;

// The closest candidate if it is near enough to be a likely typo, else "".
// Same rule as config/'s: a third of the word catches transpositions and
// dropped letters without suggesting unrelated names.
std::string DidYouMean(std::string_view word,
                       const std::vector<std::string_view>& candidates) {
  std::string_view best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view c : candidates) {
    size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  size_t limit = std::max<size_t>(2, word.size() / 3);
  if (best_distance <= limit) return std::string(best);
  // A misspelt longer form of a short name: "lenght" for "len".
  for (std::string_view c : candidates) {
    if (c.size() >= 3 && word.size() > c.size() &&
        word.substr(0, c.size()) == c) {
      return std::string(c);
    }
  }
  return std::string();
}

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !IsIdentStart(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), IsIdentChar);
}

using util::AppendUtf8;

enum class Tok {
  kEnd,
  kInt,
  kDecimal,  // str: the literal's text
  kString,
  kIdent,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kRBrace,
  kComma,
  kDot,
  kBang,
  kAndAnd,
  kOrOr,
  kEqEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
};

struct Token {
  Tok kind = Tok::kEnd;
  uint32_t begin = 0;
  uint32_t end = 0;
  int64_t int_value = 0;
  std::string str;  // the decoded string literal, or the identifier
};

// A parsed sub-expression: its node and its text, which includes any
// parentheses around it (the node's own text does not).
struct Operand {
  uint32_t node = 0;
  uint32_t begin = 0;
  uint32_t end = 0;
};

class Parser {
 public:
  Parser(std::string_view src, const std::vector<std::string>& roots)
      : src_(src), roots_(roots) {
    program_.root_names = roots;
    program_.uses_root.assign(roots.size(), false);
  }

  // Reads the first token at byte `pos` of the source.
  Status Start(size_t pos) {
    pos_ = pos;
    return Advance();
  }

  const Token& token() const { return token_; }

  Status ParseExpression(Operand* out) { return ParseOr(out); }

  // Error at the current token: "expected <what>, found <token>".
  Status Expected(std::string_view what) const {
    return ErrorAt(token_.begin, "expected " + std::string(what) + ", found " +
                                     Describe(token_));
  }

  // The program of the expression whose text is [begin, end) of the source;
  // positions become relative to that text.
  std::shared_ptr<const Program> Finish(uint32_t root, uint32_t begin,
                                        uint32_t end) {
    program_.root = root;
    program_.text = std::string(src_.substr(begin, end - begin));
    for (Node& n : program_.nodes) {
      n.begin -= begin;
      n.end -= begin;
    }
    for (internal::Path& p : program_.paths) {
      p.base_end -= begin;
      for (internal::Segment& s : p.segments) s.end -= begin;
    }
    return std::make_shared<const Program>(std::move(program_));
  }

  Status ErrorAt(size_t offset, std::string_view message) const {
    std::string msg = "at column " + std::to_string(offset + 1) + ": ";
    msg += message;
    return Status::InvalidArgument(std::move(msg));
  }

 private:
  // --- Lexer ---------------------------------------------------------------

  std::string Describe(const Token& t) const {
    if (t.kind == Tok::kEnd) return "the end of the text";
    std::string_view text = src_.substr(t.begin, t.end - t.begin);
    std::string s = "'";
    if (text.size() > 24) {
      s += text.substr(0, 24);
      s += "...";
    } else {
      s += text;
    }
    s += "'";
    return s;
  }

  // The character at `pos` for an error message: a whole UTF-8 sequence, or
  // \xNN for a control character or a byte that is not valid UTF-8.
  std::string CharAt(size_t pos) const {
    unsigned char c = static_cast<unsigned char>(src_[pos]);
    size_t len = c < 0x80    ? 1
                 : c >= 0xF0 ? 4
                 : c >= 0xE0 ? 3
                 : c >= 0xC0 ? 2
                             : 0;
    bool valid = len > 0 && c >= 0x20 && c != 0x7F && pos + len <= src_.size();
    for (size_t i = 1; valid && i < len; ++i) {
      valid = (static_cast<unsigned char>(src_[pos + i]) & 0xC0) == 0x80;
    }
    if (valid) return std::string(src_.substr(pos, len));
    static const char kHex[] = "0123456789ABCDEF";
    return std::string("\\x") + kHex[c >> 4] + kHex[c & 0xF];
  }

  Status Advance() {
    while (pos_ < src_.size() && (src_[pos_] == ' ' || src_[pos_] == '\t' ||
                                  src_[pos_] == '\n' || src_[pos_] == '\r')) {
      ++pos_;
    }
    token_ = Token();
    token_.begin = static_cast<uint32_t>(pos_);
    if (pos_ >= src_.size()) {
      token_.end = token_.begin;
      return Status::OK();
    }
    char c = src_[pos_];
    if (IsIdentStart(c)) {
      size_t start = pos_;
      while (pos_ < src_.size() && IsIdentChar(src_[pos_])) ++pos_;
      token_.kind = Tok::kIdent;
      token_.str = std::string(src_.substr(start, pos_ - start));
    } else if (IsDigit(c)) {
      KCQRS_RETURN_IF_ERROR(LexNumber());
    } else if (c == '\'' || c == '"') {
      KCQRS_RETURN_IF_ERROR(LexString());
    } else {
      KCQRS_RETURN_IF_ERROR(LexPunctuation());
    }
    token_.end = static_cast<uint32_t>(pos_);
    return Status::OK();
  }

  Status LexNumber() {
    size_t start = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
        IsDigit(src_[pos_ + 1])) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p >= src_.size() || !IsDigit(src_[p])) {
        return ErrorAt(
            p, "expected the digits of an exponent, found " +
                   (p >= src_.size() ? std::string("the end of the text")
                                     : "'" + CharAt(p) + "'"));
      }
      is_float = true;
      pos_ = p;
      while (pos_ < src_.size() && IsDigit(src_[pos_])) ++pos_;
    }
    std::string_view digits = src_.substr(start, pos_ - start);
    if (pos_ < src_.size() && IsIdentChar(src_[pos_])) {
      return ErrorAt(pos_, "expected an operator after the number " +
                               std::string(digits) + ", found '" +
                               CharAt(pos_) + "'");
    }
    // Integers that fit are int64; any other number is an exact decimal,
    // as in documents (decimal/decimal.h).
    if (!is_float) {
      int64_t i = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
      if (ec == std::errc() && ptr == digits.data() + digits.size()) {
        token_.kind = Tok::kInt;
        token_.int_value = i;
        return Status::OK();
      }
    }
    // The literal's text becomes the decimal's JSON text, and JSON allows
    // no leading zeros: 04.028 is 4.028.
    size_t zeros = 0;
    while (zeros + 1 < digits.size() && digits[zeros] == '0' && IsDigit(digits[zeros + 1])) {
      ++zeros;
    }
    token_.kind = Tok::kDecimal;
    token_.str = std::string(digits.substr(zeros));
    return Status::OK();
  }

  Status ReadHex4(size_t pos, uint32_t* out) const {
    if (pos + 4 > src_.size()) {
      return ErrorAt(pos - 2, "expected 4 hex digits after \\u");
    }
    uint32_t v = 0;
    for (size_t i = pos; i < pos + 4; ++i) {
      char h = src_[i];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return ErrorAt(
            i, "expected 4 hex digits after \\u, found '" + CharAt(i) + "'");
      }
    }
    *out = v;
    return Status::OK();
  }

  Status LexString() {
    size_t start = pos_;
    char quote = src_[pos_++];
    std::string s;
    for (;;) {
      if (pos_ >= src_.size()) {
        return ErrorAt(start, std::string("unterminated string: expected a "
                                          "closing ") +
                                  quote + " before the end of the text");
      }
      char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        s.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) {
        return ErrorAt(start, std::string("unterminated string: expected a "
                                          "closing ") +
                                  quote + " before the end of the text");
      }
      char e = src_[pos_ + 1];
      switch (e) {
        case '\\':
          s.push_back('\\');
          break;
        case '\'':
          s.push_back('\'');
          break;
        case '"':
          s.push_back('"');
          break;
        case '/':
          s.push_back('/');
          break;
        case 'n':
          s.push_back('\n');
          break;
        case 't':
          s.push_back('\t');
          break;
        case 'r':
          s.push_back('\r');
          break;
        case 'b':
          s.push_back('\b');
          break;
        case 'f':
          s.push_back('\f');
          break;
        case 'u': {
          uint32_t cp = 0;
          KCQRS_RETURN_IF_ERROR(ReadHex4(pos_ + 2, &cp));
          size_t next = pos_ + 6;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return ErrorAt(pos_,
                           "a \\u escape of a low surrogate must follow "
                           "a high surrogate (\\uD800-\\uDBFF)");
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low = 0;
            if (next + 1 >= src_.size() || src_[next] != '\\' ||
                src_[next + 1] != 'u' || !ReadHex4(next + 2, &low).ok() ||
                low < 0xDC00 || low > 0xDFFF) {
              return ErrorAt(pos_,
                             "a \\u escape of a high surrogate must be "
                             "followed by a low one (\\uDC00-\\uDFFF)");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            next += 6;
          }
          AppendUtf8(cp, &s);
          pos_ = next;
          continue;
        }
        default:
          return ErrorAt(pos_, "unknown escape '\\" + CharAt(pos_ + 1) +
                                   "' in a string (known: \\\\ \\' \\\" \\n "
                                   "\\t \\r \\b \\f \\/ \\uXXXX)");
      }
      pos_ += 2;
    }
    token_.kind = Tok::kString;
    token_.str = std::move(s);
    return Status::OK();
  }

  Status LexPunctuation() {
    char c = src_[pos_];
    char n = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    auto one = [&](Tok t) {
      token_.kind = t;
      pos_ += 1;
      return Status::OK();
    };
    auto two = [&](Tok t) {
      token_.kind = t;
      pos_ += 2;
      return Status::OK();
    };
    switch (c) {
      case '(':
        return one(Tok::kLParen);
      case ')':
        return one(Tok::kRParen);
      case '[':
        return one(Tok::kLBracket);
      case ']':
        return one(Tok::kRBracket);
      case '{':
        return one(Tok::kLBrace);
      case '}':
        return one(Tok::kRBrace);
      case ',':
        return one(Tok::kComma);
      case '.':
        return one(Tok::kDot);
      case '+':
        return one(Tok::kPlus);
      case '-':
        return one(Tok::kMinus);
      case '*':
        return one(Tok::kStar);
      case '/':
        return one(Tok::kSlash);
      case '%':
        return one(Tok::kPercent);
      case '!':
        return n == '=' ? two(Tok::kNe) : one(Tok::kBang);
      case '<':
        return n == '=' ? two(Tok::kLe) : one(Tok::kLt);
      case '>':
        return n == '=' ? two(Tok::kGe) : one(Tok::kGt);
      case '=':
        if (n == '=') return two(Tok::kEqEq);
        return ErrorAt(pos_,
                       "expected an operator, found '=' (did you mean "
                       "'=='?)");
      case '&':
        if (n == '&') return two(Tok::kAndAnd);
        return ErrorAt(pos_,
                       "expected an operator, found '&' (did you mean "
                       "'&&'?)");
      case '|':
        if (n == '|') return two(Tok::kOrOr);
        return ErrorAt(pos_,
                       "expected an operator, found '|' (did you mean "
                       "'||'?)");
      default:
        return ErrorAt(pos_, "unexpected character '" + CharAt(pos_) + "'");
    }
  }

  // --- Parser --------------------------------------------------------------

  bool IsKeyword(std::string_view keyword) const {
    return token_.kind == Tok::kIdent && token_.str == keyword;
  }

  Status AddNode(Node node, std::initializer_list<uint32_t> children,
                 uint32_t* index) {
    return AddNodeWithChildren(
        node, std::span<const uint32_t>(children.begin(), children.size()),
        index);
  }

  Status AddNodeWithChildren(Node node, std::span<const uint32_t> children,
                             uint32_t* index) {
    size_t depth = 1;
    for (uint32_t c : children) depth = std::max(depth, depths_[c] + 1);
    if (depth > kMaxTreeDepth) {
      return ErrorAt(node.begin,
                     "the expression is nested too deeply (more "
                     "than " +
                         std::to_string(kMaxTreeDepth) +
                         " levels); split it up");
    }
    *index = static_cast<uint32_t>(program_.nodes.size());
    program_.nodes.push_back(node);
    depths_.push_back(depth);
    return Status::OK();
  }

  Status AddConst(json value, uint32_t begin, uint32_t end, Operand* out) {
    Node n;
    n.op = Op::kConst;
    n.begin = begin;
    n.end = end;
    n.a = static_cast<uint32_t>(program_.constants.size());
    program_.constants.push_back(std::move(value));
    KCQRS_RETURN_IF_ERROR(AddNode(n, {}, &out->node));
    out->begin = begin;
    out->end = end;
    return Status::OK();
  }

  Status AddBinary(Op op, const Operand& l, const Operand& r, Operand* out) {
    Node n;
    n.op = op;
    n.begin = l.begin;
    n.end = r.end;
    n.a = l.node;
    n.b = r.node;
    uint32_t index = 0;
    KCQRS_RETURN_IF_ERROR(AddNode(n, {l.node, r.node}, &index));
    *out = Operand{index, l.begin, r.end};
    return Status::OK();
  }

  // Guards the recursion of the parser itself (parentheses, prefixes), which
  // does not always add tree depth.
  class NestingGuard {
   public:
    explicit NestingGuard(size_t* nesting) : nesting_(nesting) { ++*nesting_; }
    ~NestingGuard() { --*nesting_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    size_t* nesting_;
  };

  Status CheckNesting() const {
    if (nesting_ > kMaxNesting) {
      return ErrorAt(token_.begin,
                     "the expression is nested too deeply (more "
                     "than " +
                         std::to_string(kMaxNesting) +
                         " levels of parentheses or prefixes)");
    }
    return Status::OK();
  }

  Status ParseOr(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseAnd(out));
    while (token_.kind == Tok::kOrOr || IsKeyword("or")) {
      KCQRS_RETURN_IF_ERROR(Advance());
      Operand rhs;
      KCQRS_RETURN_IF_ERROR(ParseAnd(&rhs));
      KCQRS_RETURN_IF_ERROR(AddBinary(Op::kOr, *out, rhs, out));
    }
    return Status::OK();
  }

  Status ParseAnd(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseEquality(out));
    while (token_.kind == Tok::kAndAnd || IsKeyword("and")) {
      KCQRS_RETURN_IF_ERROR(Advance());
      Operand rhs;
      KCQRS_RETURN_IF_ERROR(ParseEquality(&rhs));
      KCQRS_RETURN_IF_ERROR(AddBinary(Op::kAnd, *out, rhs, out));
    }
    return Status::OK();
  }

  static bool IsEquality(Tok t) { return t == Tok::kEqEq || t == Tok::kNe; }
  static bool IsRelational(Tok t) {
    return t == Tok::kLt || t == Tok::kLe || t == Tok::kGt || t == Tok::kGe;
  }

  Status ParseEquality(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseRelational(out));
    if (!IsEquality(token_.kind)) return Status::OK();
    Op op = token_.kind == Tok::kEqEq ? Op::kEq : Op::kNe;
    KCQRS_RETURN_IF_ERROR(Advance());
    Operand rhs;
    KCQRS_RETURN_IF_ERROR(ParseRelational(&rhs));
    KCQRS_RETURN_IF_ERROR(AddBinary(op, *out, rhs, out));
    if (IsEquality(token_.kind)) {
      return ErrorAt(token_.begin, "expected an operator other than " +
                                       Describe(token_) +
                                       ": equality comparisons do not chain; "
                                       "use parentheses or &&");
    }
    return Status::OK();
  }

  Status ParseRelational(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseAdditive(out));
    if (!IsRelational(token_.kind)) return Status::OK();
    Op op = token_.kind == Tok::kLt   ? Op::kLt
            : token_.kind == Tok::kLe ? Op::kLe
            : token_.kind == Tok::kGt ? Op::kGt
                                      : Op::kGe;
    KCQRS_RETURN_IF_ERROR(Advance());
    Operand rhs;
    KCQRS_RETURN_IF_ERROR(ParseAdditive(&rhs));
    KCQRS_RETURN_IF_ERROR(AddBinary(op, *out, rhs, out));
    if (IsRelational(token_.kind)) {
      return ErrorAt(token_.begin, "expected an operator other than " +
                                       Describe(token_) +
                                       ": comparisons do not chain; write "
                                       "'a < b && b < c'");
    }
    return Status::OK();
  }

  Status ParseAdditive(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseMultiplicative(out));
    while (token_.kind == Tok::kPlus || token_.kind == Tok::kMinus) {
      Op op = token_.kind == Tok::kPlus ? Op::kAdd : Op::kSub;
      KCQRS_RETURN_IF_ERROR(Advance());
      Operand rhs;
      KCQRS_RETURN_IF_ERROR(ParseMultiplicative(&rhs));
      KCQRS_RETURN_IF_ERROR(AddBinary(op, *out, rhs, out));
    }
    return Status::OK();
  }

  Status ParseMultiplicative(Operand* out) {
    KCQRS_RETURN_IF_ERROR(ParseUnary(out));
    while (token_.kind == Tok::kStar || token_.kind == Tok::kSlash ||
           token_.kind == Tok::kPercent) {
      Op op = token_.kind == Tok::kStar    ? Op::kMul
              : token_.kind == Tok::kSlash ? Op::kDiv
                                           : Op::kMod;
      KCQRS_RETURN_IF_ERROR(Advance());
      Operand rhs;
      KCQRS_RETURN_IF_ERROR(ParseUnary(&rhs));
      KCQRS_RETURN_IF_ERROR(AddBinary(op, *out, rhs, out));
    }
    return Status::OK();
  }

  Status ParseUnary(Operand* out) {
    bool is_not = token_.kind == Tok::kBang || IsKeyword("not");
    bool is_neg = token_.kind == Tok::kMinus;
    if (!is_not && !is_neg) return ParsePostfix(out);
    NestingGuard guard(&nesting_);
    KCQRS_RETURN_IF_ERROR(CheckNesting());
    uint32_t begin = token_.begin;
    KCQRS_RETURN_IF_ERROR(Advance());
    Operand operand;
    KCQRS_RETURN_IF_ERROR(ParseUnary(&operand));
    Node& inner = program_.nodes[operand.node];
    if (is_neg && inner.op == Op::kConst) {
      // Fold negative literals so that -5 is a constant, not an operation.
      json& c = program_.constants[inner.a];
      if (c.is_number_integer() || decimal::IsDecimal(c)) {
        if (c.is_number_integer()) {
          c = -c.get<int64_t>();  // literals are at most INT64_MAX: no overflow
        } else {
          const std::string_view text = decimal::Text(c);
          c = decimal::FromText(text.starts_with('-') ? std::string(text.substr(1))
                                                      : "-" + std::string(text));
        }
        inner.begin = begin;
        inner.end = operand.end;
        *out = Operand{operand.node, begin, operand.end};
        return Status::OK();
      }
    }
    Node n;
    n.op = is_neg ? Op::kNeg : Op::kNot;
    n.begin = begin;
    n.end = operand.end;
    n.a = operand.node;
    uint32_t index = 0;
    KCQRS_RETURN_IF_ERROR(AddNode(n, {operand.node}, &index));
    *out = Operand{index, begin, operand.end};
    return Status::OK();
  }

  // Appends a static step to the path that `base` computes. `path_node` is
  // the kPath node that can be extended, or -1 when `base` is not one; it is
  // updated to the path node that now ends with the step.
  Status AddSegment(internal::Segment segment, Operand* base,
                    int64_t* path_node) {
    if (*path_node < 0) {
      internal::Path path;
      path.from_root = false;
      path.base = base->node;
      path.base_end = base->end;
      Node n;
      n.op = Op::kPath;
      n.begin = base->begin;
      n.end = base->end;
      n.a = static_cast<uint32_t>(program_.paths.size());
      program_.paths.push_back(std::move(path));
      uint32_t index = 0;
      KCQRS_RETURN_IF_ERROR(AddNode(n, {base->node}, &index));
      *path_node = index;
      base->node = index;
    }
    Node& n = program_.nodes[static_cast<size_t>(*path_node)];
    n.end = segment.end;
    base->end = segment.end;
    program_.paths[n.a].segments.push_back(std::move(segment));
    return Status::OK();
  }

  Status ParsePostfix(Operand* out) {
    int64_t path_node = -1;
    KCQRS_RETURN_IF_ERROR(ParsePrimary(out, &path_node));
    for (;;) {
      if (token_.kind == Tok::kDot) {
        KCQRS_RETURN_IF_ERROR(Advance());
        if (token_.kind != Tok::kIdent) {
          if (token_.kind == Tok::kInt) {
            return Expected("a field name after '.' (write [" +
                            std::to_string(token_.int_value) +
                            "] for an array element)");
          }
          return Expected(
              "a field name after '.' (write [\"...\"] for a "
              "name that is not an identifier)");
        }
        internal::Segment seg;
        seg.name = std::move(token_.str);
        seg.end = token_.end;
        KCQRS_RETURN_IF_ERROR(Advance());
        KCQRS_RETURN_IF_ERROR(AddSegment(std::move(seg), out, &path_node));
      } else if (token_.kind == Tok::kLBracket) {
        NestingGuard guard(&nesting_);
        KCQRS_RETURN_IF_ERROR(CheckNesting());
        uint32_t open = token_.begin;
        KCQRS_RETURN_IF_ERROR(Advance());
        Operand key;
        KCQRS_RETURN_IF_ERROR(ParseExpression(&key));
        if (token_.kind != Tok::kRBracket) {
          return Expected("']' to close the '[' at column " +
                          std::to_string(open + 1));
        }
        uint32_t close_end = token_.end;
        KCQRS_RETURN_IF_ERROR(Advance());
        const Node& k = program_.nodes[key.node];
        if (k.op == Op::kConst) {
          const json& c = program_.constants[k.a];
          internal::Segment seg;
          seg.end = close_end;
          if (c.is_string()) {
            seg.name = c.get<std::string>();
          } else if (c.is_number_integer()) {
            seg.is_index = true;
            seg.index = c.get<int64_t>();
          } else {
            return ErrorAt(key.begin,
                           "expected a field name (a string) or an array "
                           "index (an integer) between [ and ], found " +
                               std::string(internal::TypeName(c)));
          }
          // The constant stays in the table, unused: harmless and rare.
          KCQRS_RETURN_IF_ERROR(AddSegment(std::move(seg), out, &path_node));
        } else {
          Node n;
          n.op = Op::kIndex;
          n.begin = out->begin;
          n.end = close_end;
          n.a = out->node;
          n.b = key.node;
          uint32_t index = 0;
          KCQRS_RETURN_IF_ERROR(AddNode(n, {out->node, key.node}, &index));
          *out = Operand{index, out->begin, close_end};
          path_node = -1;
        }
      } else {
        return Status::OK();
      }
    }
  }

  Status ParsePrimary(Operand* out, int64_t* path_node) {
    const uint32_t begin = token_.begin;
    const uint32_t end = token_.end;
    switch (token_.kind) {
      case Tok::kInt: {
        json v = token_.int_value;
        KCQRS_RETURN_IF_ERROR(Advance());
        return AddConst(std::move(v), begin, end, out);
      }
      case Tok::kDecimal: {
        json v = decimal::FromText(token_.str);
        KCQRS_RETURN_IF_ERROR(Advance());
        return AddConst(std::move(v), begin, end, out);
      }
      case Tok::kString: {
        json v = std::move(token_.str);
        KCQRS_RETURN_IF_ERROR(Advance());
        return AddConst(std::move(v), begin, end, out);
      }
      case Tok::kLParen: {
        NestingGuard guard(&nesting_);
        KCQRS_RETURN_IF_ERROR(CheckNesting());
        KCQRS_RETURN_IF_ERROR(Advance());
        Operand inner;
        KCQRS_RETURN_IF_ERROR(ParseExpression(&inner));
        if (token_.kind != Tok::kRParen) {
          return Expected("')' to close the '(' at column " +
                          std::to_string(begin + 1));
        }
        *out = Operand{inner.node, begin, token_.end};
        return Advance();
      }
      case Tok::kLBracket:
        return ParseArray(out);
      case Tok::kIdent:
        break;
      default:
        return Expected("an expression");
    }

    std::string name = std::move(token_.str);
    if (name == "true" || name == "false" || name == "null") {
      KCQRS_RETURN_IF_ERROR(Advance());
      json v = name == "null" ? json(nullptr) : json(name == "true");
      return AddConst(std::move(v), begin, end, out);
    }
    if (name == "and" || name == "or" || name == "not") {
      return Expected("an expression");
    }
    KCQRS_RETURN_IF_ERROR(Advance());
    if (token_.kind == Tok::kLParen) return ParseCall(name, begin, out);

    auto it = std::find(roots_.begin(), roots_.end(), name);
    if (it == roots_.end()) return UnknownName(name, begin);
    internal::Path path;
    path.from_root = true;
    path.base = static_cast<uint32_t>(it - roots_.begin());
    path.base_end = end;
    program_.uses_root[path.base] = true;
    Node n;
    n.op = Op::kPath;
    n.begin = begin;
    n.end = end;
    n.a = static_cast<uint32_t>(program_.paths.size());
    program_.paths.push_back(std::move(path));
    KCQRS_RETURN_IF_ERROR(AddNode(n, {}, &out->node));
    out->begin = begin;
    out->end = end;
    *path_node = out->node;
    return Status::OK();
  }

  Status UnknownName(const std::string& name, uint32_t begin) const {
    if (FindFunction(name) != nullptr) {
      return ErrorAt(
          begin, "'" + name + "' is a function: call it as " + name + "(...)");
    }
    std::string msg = "unknown name '" + name + "'";
    std::vector<std::string_view> candidates(roots_.begin(), roots_.end());
    candidates.insert(candidates.end(), {"true", "false", "null"});
    std::string hint = DidYouMean(name, candidates);
    if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
    msg += "; names here: ";
    if (roots_.empty()) msg += "none";
    for (size_t i = 0; i < roots_.size(); ++i) {
      if (i > 0) msg += ", ";
      msg += roots_[i];
    }
    return ErrorAt(begin, msg);
  }

  Status ParseArray(Operand* out) {
    NestingGuard guard(&nesting_);
    KCQRS_RETURN_IF_ERROR(CheckNesting());
    const uint32_t begin = token_.begin;
    KCQRS_RETURN_IF_ERROR(Advance());
    std::vector<uint32_t> elements;
    if (token_.kind != Tok::kRBracket) {
      for (;;) {
        Operand e;
        KCQRS_RETURN_IF_ERROR(ParseExpression(&e));
        elements.push_back(e.node);
        if (token_.kind == Tok::kComma) {
          KCQRS_RETURN_IF_ERROR(Advance());
          continue;
        }
        if (token_.kind == Tok::kRBracket) break;
        return Expected("',' or ']' in the array opened at column " +
                        std::to_string(begin + 1));
      }
    }
    const uint32_t end = token_.end;
    KCQRS_RETURN_IF_ERROR(Advance());
    bool all_const = std::all_of(
        elements.begin(), elements.end(),
        [&](uint32_t e) { return program_.nodes[e].op == Op::kConst; });
    if (all_const) {
      // A literal list ("status in ['A', 'B']") is built once, here.
      json array = json::array();
      for (uint32_t e : elements) {
        array.push_back(program_.constants[program_.nodes[e].a]);
      }
      return AddConst(std::move(array), begin, end, out);
    }
    Node n;
    n.op = Op::kArray;
    n.begin = begin;
    n.end = end;
    n.a = static_cast<uint32_t>(program_.args.size());
    n.b = static_cast<uint32_t>(elements.size());
    program_.args.insert(program_.args.end(), elements.begin(), elements.end());
    KCQRS_RETURN_IF_ERROR(AddNodeWithChildren(n, elements, &out->node));
    out->begin = begin;
    out->end = end;
    return Status::OK();
  }

  // The name and '(' are consumed; the token is the first one of the
  // arguments.
  Status ParseCall(const std::string& name, uint32_t begin, Operand* out) {
    const FunctionInfo* f = FindFunction(name);
    if (f == nullptr) {
      std::vector<std::string_view> candidates;
      for (const FunctionInfo& fi : kFunctions) candidates.push_back(fi.name);
      std::string msg = "unknown function '" + name + "'";
      std::string hint = DidYouMean(name, candidates);
      if (!hint.empty()) msg += " (did you mean '" + hint + "'?)";
      msg += "; functions: ";
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (i > 0) msg += ", ";
        msg += candidates[i];
      }
      return ErrorAt(begin, msg);
    }
    NestingGuard guard(&nesting_);
    KCQRS_RETURN_IF_ERROR(CheckNesting());
    KCQRS_RETURN_IF_ERROR(Advance());
    std::vector<uint32_t> args;
    if (token_.kind != Tok::kRParen) {
      for (;;) {
        Operand a;
        KCQRS_RETURN_IF_ERROR(ParseExpression(&a));
        args.push_back(a.node);
        if (token_.kind == Tok::kComma) {
          KCQRS_RETURN_IF_ERROR(Advance());
          continue;
        }
        if (token_.kind == Tok::kRParen) break;
        return Expected("',' or ')' in the call of " + name + "() at column " +
                        std::to_string(begin + 1));
      }
    }
    const uint32_t end = token_.end;
    KCQRS_RETURN_IF_ERROR(Advance());
    if (args.size() < f->min_args || args.size() > f->max_args) {
      std::string expected;
      if (f->max_args == SIZE_MAX) {
        expected = "at least " + std::to_string(f->min_args);
      } else if (f->max_args != f->min_args) {
        expected = std::to_string(f->min_args) + " or " + std::to_string(f->max_args);
      } else {
        expected = std::to_string(f->min_args);
      }
      expected += f->min_args == 1 ? " argument" : " arguments";
      return ErrorAt(begin, name + "() takes " + expected + ", found " +
                                std::to_string(args.size()));
    }
    if (f->fn == Fn::kRound || f->fn == Fn::kDiv) {
      KCQRS_RETURN_IF_ERROR(CheckRoundingArgs(name, args, f->fn == Fn::kRound ? 1 : 2));
    }
    Node n;
    n.op = Op::kCall;
    n.fn = f->fn;
    n.begin = begin;
    n.end = end;
    n.a = static_cast<uint32_t>(program_.args.size());
    n.b = static_cast<uint32_t>(args.size());
    program_.args.insert(program_.args.end(), args.begin(), args.end());
    if (f->fn == Fn::kNow) program_.uses_now = true;
    KCQRS_RETURN_IF_ERROR(AddNodeWithChildren(n, args, &out->node));
    out->begin = begin;
    out->end = end;
    return Status::OK();
  }

  // round() and div() take a scale and a rounding mode: when they are
  // literals, a wrong one is an error of the topology, not of every record.
  Status CheckRoundingArgs(const std::string& name, const std::vector<uint32_t>& args,
                           size_t scale_arg) {
    const Node& scale = program_.nodes[args[scale_arg]];
    if (scale.op == Op::kConst) {
      const json& c = program_.constants[scale.a];
      if (!c.is_number_integer() || c.get<int64_t>() < -decimal::kMaxScale ||
          c.get<int64_t>() > decimal::kMaxScale) {
        return ErrorAt(scale.begin, name + "() takes a scale (digits after the point) from -" +
                                        std::to_string(decimal::kMaxScale) + " to " +
                                        std::to_string(decimal::kMaxScale) + ", found " +
                                        std::string(src_.substr(scale.begin,
                                                                scale.end - scale.begin)));
      }
    }
    if (args.size() > scale_arg + 1) {
      const Node& mode = program_.nodes[args[scale_arg + 1]];
      if (mode.op == Op::kConst) {
        const json& c = program_.constants[mode.a];
        if (!c.is_string() || !decimal::ParseRounding(c.get<std::string>())) {
          return ErrorAt(mode.begin,
                         name + "() takes a rounding mode, one of " +
                             std::string(decimal::RoundingNames()) + "; found " +
                             std::string(src_.substr(mode.begin, mode.end - mode.begin)));
        }
      }
    }
    return Status::OK();
  }

  std::string_view src_;
  const std::vector<std::string>& roots_;
  size_t pos_ = 0;
  Token token_;
  size_t nesting_ = 0;
  Program program_;
  std::vector<size_t> depths_;  // tree depth of each node
};

// The offset of the first byte of `text` that does not begin a well-formed
// UTF-8 character, or npos. Each character is checked by util::IsValidUtf8,
// so the rules are the ones every module applies.
size_t FirstInvalidUtf8(std::string_view text) {
  if (util::IsValidUtf8(text)) return std::string_view::npos;
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (!util::IsValidUtf8(text.substr(i, length))) return i;
    i += length;
  }
  return std::string_view::npos;
}

Status CheckInputs(std::string_view text,
                   const std::vector<std::string>& roots) {
  if (text.size() > kMaxTextBytes) {
    return Status::InvalidArgument(
        "at column 1: expected an expression of at most " +
        std::to_string(kMaxTextBytes) + " bytes, found " +
        std::to_string(text.size()));
  }
  // String literals and template text are copied into values byte for
  // byte, and values end up in JSON, which must be UTF-8: refuse such text
  // here, with its place, rather than fail every record later.
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const auto byte = static_cast<unsigned char>(text[bad]);
    return Status::InvalidArgument("at column " + std::to_string(bad + 1) +
                                   ": expected UTF-8 text, found the byte 0x" +
                                   kHex[byte >> 4] + kHex[byte & 15]);
  }
  for (const std::string& r : roots) {
    if (!IsIdentifier(r)) {
      return Status::InvalidArgument("root name '" + r +
                                     "' is not an identifier");
    }
  }
  return Status::OK();
}

std::shared_ptr<const Program> NullProgram() {
  static const std::shared_ptr<const Program> program = [] {
    auto p = std::make_shared<Program>();
    p->text = "null";
    p->constants.emplace_back(nullptr);
    Node n;
    n.op = Op::kConst;
    n.end = 4;
    p->nodes.push_back(n);
    return std::shared_ptr<const Program>(std::move(p));
  }();
  return program;
}

}  // namespace

Expression::Expression() : program_(NullProgram()) {}

Expression::Expression(std::shared_ptr<const internal::Program> program)
    : program_(std::move(program)) {}

Result<Expression> Expression::Compile(std::string_view text,
                                       const std::vector<std::string>& roots) {
  try {
    KCQRS_RETURN_IF_ERROR(CheckInputs(text, roots));
    Parser parser(text, roots);
    KCQRS_RETURN_IF_ERROR(parser.Start(0));
    Operand root;
    KCQRS_RETURN_IF_ERROR(parser.ParseExpression(&root));
    if (parser.token().kind != Tok::kEnd) {
      return parser.Expected("an operator or the end of the expression");
    }
    return Expression(
        parser.Finish(root.node, 0, static_cast<uint32_t>(text.size())));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("compiling an expression: ") +
                            e.what());
  }
}

Result<kcqrs::Json> Expression::Evaluate(const Context& ctx) const {
  json out;
  KCQRS_RETURN_IF_ERROR(internal::EvaluateToJson(*program_, ctx, &out));
  return out;
}

Result<bool> Expression::EvaluateBool(const Context& ctx) const {
  bool out = false;
  KCQRS_RETURN_IF_ERROR(internal::EvaluateToBool(*program_, ctx, &out));
  return out;
}

const std::string& Expression::text() const { return program_->text; }

std::optional<std::string> Expression::SinglePath() const {
  const Node& n = program_->nodes[program_->root];
  if (n.op != Op::kPath) return std::nullopt;
  const internal::Path& path = program_->paths[n.a];
  if (!path.from_root) return std::nullopt;
  try {
    std::string out = program_->root_names[path.base];
    for (const internal::Segment& s : path.segments) {
      if (s.is_index) {
        out += "[" + std::to_string(s.index) + "]";
      } else if (IsIdentifier(s.name)) {
        out += ".";
        out += s.name;
      } else {
        out += "[";
        internal::AppendCompactJson(json(s.name), &out);
        out += "]";
      }
    }
    return out;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool Expression::UsesRoot(size_t index) const {
  return index < program_->uses_root.size() && program_->uses_root[index];
}

bool Expression::RootFields(size_t index, std::set<std::string>* fields) const {
  for (const internal::Path& path : program_->paths) {
    if (!path.from_root || path.base != index) continue;
    if (path.segments.empty() || path.segments.front().is_index) return false;
    fields->insert(path.segments.front().name);
  }
  return true;
}

bool Expression::UsesNow() const { return program_->uses_now; }

Result<Template> Template::Compile(std::string_view text,
                                   const std::vector<std::string>& roots) {
  try {
    KCQRS_RETURN_IF_ERROR(CheckInputs(text, roots));
    Template t;
    t.text_ = std::string(text);
    std::string literal;
    auto flush = [&] {
      if (literal.empty()) return;
      t.parts_.push_back(Part{std::move(literal), std::nullopt});
      literal.clear();
    };
    size_t i = 0;
    while (i < text.size()) {
      char c = text[i];
      char next = i + 1 < text.size() ? text[i + 1] : '\0';
      if (c == '{' && next == '{') {
        literal.push_back('{');
        i += 2;
      } else if (c == '}' && next == '}') {
        literal.push_back('}');
        i += 2;
      } else if (c == '}') {
        return Status::InvalidArgument(
            "at column " + std::to_string(i + 1) +
            ": found a '}' that closes no '{'; write '}}' for a literal brace");
      } else if (c == '{') {
        Parser parser(text, roots);
        KCQRS_RETURN_IF_ERROR(parser.Start(i + 1));
        if (parser.token().kind == Tok::kRBrace) {
          return parser.Expected(
              "an expression between { and } (write '{{' "
              "for a literal brace)");
        }
        Operand expr;
        KCQRS_RETURN_IF_ERROR(parser.ParseExpression(&expr));
        if (parser.token().kind != Tok::kRBrace) {
          return parser.Expected("'}' to close the '{' at column " +
                                 std::to_string(i + 1));
        }
        flush();
        t.parts_.push_back(
            Part{std::string(),
                 Expression(parser.Finish(expr.node, expr.begin, expr.end))});
        i = parser.token().end;
      } else {
        literal.push_back(c);
        ++i;
      }
    }
    flush();
    return t;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("compiling a template: ") + e.what());
  }
}

Result<std::string> Template::Render(const Expression::Context& ctx) const {
  try {
    std::string out;
    for (const Part& p : parts_) {
      if (p.expression) {
        KCQRS_RETURN_IF_ERROR(
            internal::EvaluateAppend(*p.expression->program_, ctx, &out));
      } else {
        out += p.literal;
      }
    }
    return out;
  } catch (const std::exception& e) {
    return Status::Internal(std::string("rendering '") + text_ +
                            "': " + e.what());
  }
}

std::vector<Expression> Template::expressions() const {
  std::vector<Expression> out;
  for (const Part& p : parts_) {
    if (p.expression) out.push_back(*p.expression);
  }
  return out;
}

}  // namespace kcqrs::topology
