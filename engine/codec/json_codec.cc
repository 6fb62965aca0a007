#include "engine/codec/json_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

#include "decimal/decimal.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

// The fast parser and scanner recurse once per level; deeper documents go
// to nlohmann, whose parser does not recurse. Bounds their stack use.
constexpr int kMaxDepth = 256;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the UTF-8 sequence at p (>= 0x80), 0 when invalid: what
// nlohmann's lexer and serializer accept.
using util::Utf8SequenceLength;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

using util::AppendUtf8;

// Bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
// A table: one load a byte where four comparisons were.
constexpr std::array<bool, 256> kPlainAscii = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

bool IsPlainAscii(char c) { return kPlainAscii[static_cast<unsigned char>(c)]; }

// A recursive-descent parser for the common case. Any input it does not
// accept goes to nlohmann, so it only has to be right when it accepts.
class Parser {
 public:
  // Gives up on nesting deeper than max_depth (at most kMaxDepth), noting
  // where in too_deep_at().
  Parser(std::string_view text, int max_depth)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()),
        max_depth_(max_depth) {}

  // The offset of the bracket that opened level max_depth + 1, when that is
  // why Parse failed; npos otherwise.
  size_t too_deep_at() const { return too_deep_at_; }

  bool Parse(json* out) {
    // A UTF-8 byte order mark before the value, which nlohmann skips too.
    if (end_ - p_ >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;
    SkipWhitespace();
    if (!Value(out, 0)) return false;
    SkipWhitespace();
    return p_ == end_;
  }

 private:
  void SkipWhitespace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool Value(json* out, int depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{': return Object(out, depth);
      case '[': return Array(out, depth);
      case '"': {
        *out = json(json::value_t::string);
        return String(out->get_ptr<std::string*>());
      }
      case 't': return Literal("true", 4) && (*out = true, true);
      case 'f': return Literal("false", 5) && (*out = false, true);
      case 'n': return Literal("null", 4) && (*out = nullptr, true);
      default: return Number(out);
    }
  }

  bool Literal(const char* text, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, text, n) != 0) return false;
    p_ += n;
    return true;
  }

  bool TooDeep() {
    too_deep_at_ = static_cast<size_t>(p_ - begin_);
    return false;
  }

  bool Object(json* out, int depth) {
    if (depth >= max_depth_) return TooDeep();
    ++p_;
    *out = json(json::value_t::object);
    json::object_t& object = *out->get_ptr<json::object_t*>();
    SkipWhitespace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    while (true) {
      if (p_ == end_ || *p_ != '"') return false;
      std::string key;
      if (!String(&key)) return false;
      SkipWhitespace();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      SkipWhitespace();
      // Members go in as they come and are put in key order once the
      // object is complete, where the last duplicate wins, as in nlohmann's
      // parser (json/document.h).
      json& value = object.AppendUnsorted(std::move(key), nullptr);
      if (!Value(&value, depth + 1)) return false;
      SkipWhitespace();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        object.SortMembers();
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      SkipWhitespace();
    }
  }

  bool Array(json* out, int depth) {
    if (depth >= max_depth_) return TooDeep();
    ++p_;
    *out = json(json::value_t::array);
    json::array_t& array = *out->get_ptr<json::array_t*>();
    SkipWhitespace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    while (true) {
      array.emplace_back();
      if (!Value(&array.back(), depth + 1)) return false;
      SkipWhitespace();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      SkipWhitespace();
    }
  }

  // At the opening quote; appends the unescaped content to *s.
  bool String(std::string* s) {
    ++p_;
    const char* run = p_;
    while (true) {
      while (p_ != end_ && IsPlainAscii(*p_)) ++p_;
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        s->append(run, static_cast<size_t>(p_ - run));
        ++p_;
        return true;
      }
      if (c == '\\') {
        s->append(run, static_cast<size_t>(p_ - run));
        if (!Escape(s)) return false;
        run = p_;
      } else if (c < 0x20) {
        return false;  // a control character must be escaped
      } else {
        const size_t n = Utf8SequenceLength(p_, end_);
        if (n == 0) return false;
        p_ += n;
      }
    }
  }

  bool Hex4(uint32_t* cp) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = HexValue(p_[i]);
      if (h < 0) return false;
      v = (v << 4) | static_cast<uint32_t>(h);
    }
    p_ += 4;
    *cp = v;
    return true;
  }

  bool Escape(std::string* s) {
    ++p_;  // the backslash
    if (p_ == end_) return false;
    const char c = *p_++;
    switch (c) {
      case '"': s->push_back('"'); return true;
      case '\\': s->push_back('\\'); return true;
      case '/': s->push_back('/'); return true;
      case 'b': s->push_back('\b'); return true;
      case 'f': s->push_back('\f'); return true;
      case 'n': s->push_back('\n'); return true;
      case 'r': s->push_back('\r'); return true;
      case 't': s->push_back('\t'); return true;
      case 'u': {
        uint32_t cp = 0;
        if (!Hex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a lone low surrogate
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
          p_ += 2;
          if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        AppendUtf8(cp, s);
        return true;
      }
      default: return false;
    }
  }

  bool Number(json* out) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    } else {
      return false;
    }
    bool is_float = false;
    if (p_ < end_ && *p_ == '.') {
      is_float = true;
      ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      is_float = true;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !IsDigit(*p_)) return false;
      while (p_ < end_ && IsDigit(*p_)) ++p_;
    }
    // Integers first, as nlohmann (unsigned when not negative); anything
    // else (a fraction, an exponent, an integer beyond 64 bits) is a decimal
    // kept as the text it came in as (decimal/decimal.h).
    if (!is_float) {
      if (negative) {
        int64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && ptr == p_) {
          *out = v;
          return true;
        }
      } else {
        uint64_t v = 0;
        auto [ptr, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && ptr == p_) {
          *out = v;
          return true;
        }
      }
    }
    // Any JSON number is taken, beyond a double's range too (1e400, which
    // nlohmann refuses): a decimal is its text, and arithmetic on it
    // (decimal/) has its own range. Otherwise state holding a result such
    // as 1e308 * 10 could not be read back.
    *out = decimal::FromText(std::string_view(start, static_cast<size_t>(p_ - start)));
    return true;
  }

  const char* const begin_;
  const char* p_;
  const char* const end_;
  const int max_depth_;
  size_t too_deep_at_ = std::string_view::npos;
};

// The offset of the bracket that opens level max_depth + 1 of `text`, or
// npos. Brackets inside strings do not count; the text need not be JSON.
// Used only before handing text to nlohmann, which builds whatever depth
// it is given.
size_t FindTooDeep(std::string_view text, int max_depth) {
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    switch (text[i]) {
      case '"':
        for (++i; i < text.size() && text[i] != '"'; ++i) {
          if (text[i] == '\\') ++i;
        }
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return i;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return std::string_view::npos;
}

// Appends to a std::string through a raw cursor into its spare room.
// std::string's push_back and append check the capacity and rewrite the
// size and terminator on every call: a command's documents are written a
// character or a short run at a time, and that bookkeeping was a third of
// DumpJson's instructions (callgrind of micro_bench). While the Writer
// lives the string holds room past what was written (its region, grown by
// doubling what this Writer added, never the whole string: appending to a
// long string stays linear); the string is cut to what was written when
// the Writer goes, an exception included.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out), start_(out->size()) {
    out->resize(start_ + 64);
    Reset(start_);
  }
  ~Writer() { out_->resize(Written()); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Room for n more characters; the Unchecked calls may then write them.
  void Reserve(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Grow(n);
  }
  void PutUnchecked(char c) { *p_++ = c; }
  void PutUnchecked(const char* s, size_t n) {
    std::memcpy(p_, s, n);
    p_ += n;
  }
  char* cursor() { return p_; }
  void Advance(char* to) { p_ = to; }

  void Put(char c) {
    Reserve(1);
    PutUnchecked(c);
  }
  void Put(std::string_view s) {
    Reserve(s.size());
    PutUnchecked(s.data(), s.size());
  }

  size_t Written() const { return static_cast<size_t>(p_ - out_->data()); }
  // Drops what was written after offset `at`.
  void Truncate(size_t at) { p_ = out_->data() + at; }

 private:
  void Grow(size_t n) {
    const size_t used = Written();
    out_->resize(used + std::max(n, out_->size() - start_));
    Reset(used);
  }
  void Reset(size_t used) {
    p_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }

  std::string* const out_;
  const size_t start_;  // the string's size when the Writer began
  char* p_;
  char* end_;
};

// The escape nlohmann's serializer writes for a byte below 0x20, '"' or '\\'.
void AppendEscape(unsigned char c, Writer* out) {
  switch (c) {
    case '"': out->Put("\\\""); return;
    case '\\': out->Put("\\\\"); return;
    case '\b': out->Put("\\b"); return;
    case '\f': out->Put("\\f"); return;
    case '\n': out->Put("\\n"); return;
    case '\r': out->Put("\\r"); return;
    case '\t': out->Put("\\t"); return;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out->Put(std::string_view(u, sizeof(u)));
      return;
    }
  }
}

// The rest of AppendString from `p`, the first byte that is not plain ASCII;
// `start` is where the string's opening quote was written.
void AppendStringRest(const std::string& s, const char* p, size_t start, Writer* out) {
  const char* const end = s.data() + s.size();
  const char* run = p;
  while (p < end) {
    const auto c = static_cast<unsigned char>(*p);
    if (IsPlainAscii(*p)) {
      ++p;
    } else if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(p, end);
      if (n == 0) {
        // Not UTF-8: nlohmann's dump() throws, with its own message. Should
        // it not, what it wrote is the answer.
        std::string whole = json(s).dump();
        out->Truncate(start);
        out->Put(whole);
        return;
      }
      p += n;
    } else {
      out->Put(std::string_view(run, static_cast<size_t>(p - run)));
      AppendEscape(c, out);
      ++p;
      run = p;
    }
  }
  out->Put(std::string_view(run, static_cast<size_t>(end - run)));
  out->Put('"');
}

void AppendString(const std::string& s, Writer* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  // The common case, nothing to escape, in one copy.
  while (p < end && IsPlainAscii(*p)) ++p;
  const size_t start = out->Written();
  out->Reserve(s.size() + 2);
  out->PutUnchecked('"');
  out->PutUnchecked(s.data(), static_cast<size_t>(p - s.data()));
  if (p == end) {
    out->PutUnchecked('"');
    return;
  }
  AppendStringRest(s, p, start, out);
}

void Append(const json& j, Writer* out) {
  switch (j.type()) {
    case json::value_t::null: out->Put("null"); return;
    case json::value_t::boolean: out->Put(j.get<bool>() ? "true" : "false"); return;
    case json::value_t::number_integer: {
      out->Reserve(24);
      auto [ptr, ec] = std::to_chars(out->cursor(), out->cursor() + 24, j.get<int64_t>());
      (void)ec;
      out->Advance(ptr);
      return;
    }
    case json::value_t::number_unsigned: {
      out->Reserve(24);
      auto [ptr, ec] = std::to_chars(out->cursor(), out->cursor() + 24, j.get<uint64_t>());
      (void)ec;
      out->Advance(ptr);
      return;
    }
    case json::value_t::string: AppendString(*j.get_ptr<const std::string*>(), out); return;
    case json::value_t::object: {
      out->Put('{');
      bool first = true;
      for (const auto& [key, value] : *j.get_ptr<const json::object_t*>()) {
        if (!first) out->Put(',');
        first = false;
        AppendString(key, out);
        out->Put(':');
        Append(value, out);
      }
      out->Put('}');
      return;
    }
    case json::value_t::array: {
      out->Put('[');
      bool first = true;
      for (const json& value : *j.get_ptr<const json::array_t*>()) {
        if (!first) out->Put(',');
        first = false;
        Append(value, out);
      }
      out->Put(']');
      return;
    }
    case json::value_t::binary:
      if (decimal::IsDecimal(j)) {
        out->Put(decimal::Text(j));
        return;
      }
      out->Put(j.dump());
      return;
    default:
      // Floats (nlohmann's shortest round-trip form), discarded.
      out->Put(j.dump());
      return;
  }
}

// Recognises canonical text (see SkipCanonical) without building anything.
class CanonicalScanner {
 public:
  CanonicalScanner(std::string_view text, size_t pos) : t_(text), i_(pos) {}
  size_t pos() const { return i_; }

  bool Value(int depth) {
    if (i_ >= t_.size()) return false;
    switch (t_[i_]) {
      case '{': return Object(depth);
      case '[': return Array(depth);
      case '"': {
        bool plain = false;
        return String(nullptr, &plain);
      }
      case 't': return Literal("true");
      case 'f': return Literal("false");
      case 'n': return Literal("null");
      default: return Number();
    }
  }

  // At the opening quote. *plain: the content has no escape; then *content
  // (when not null) is set to it.
  bool String(std::string_view* content, bool* plain) {
    const size_t start = ++i_;
    *plain = true;
    while (true) {
      while (i_ < t_.size() && IsPlainAscii(t_[i_])) ++i_;
      if (i_ >= t_.size()) return false;
      const auto c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        if (content != nullptr) *content = t_.substr(start, i_ - start);
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c >= 0x80) {
        const size_t n = Utf8SequenceLength(t_.data() + i_, t_.data() + t_.size());
        if (n == 0) return false;
        i_ += n;
      } else {
        *plain = false;
        if (!CanonicalEscape()) return false;
      }
    }
  }

 private:
  bool Literal(std::string_view word) {
    if (t_.compare(i_, word.size(), word) != 0) return false;
    i_ += word.size();
    return true;
  }

  // At a backslash: only the escapes nlohmann's serializer writes.
  bool CanonicalEscape() {
    if (i_ + 1 >= t_.size()) return false;
    switch (t_[i_ + 1]) {
      case '"':
      case '\\':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't': i_ += 2; return true;
      case 'u': {
        // \u00XX, lower-case hex, for the control characters that have no
        // short escape.
        if (i_ + 6 > t_.size() || t_[i_ + 2] != '0' || t_[i_ + 3] != '0') return false;
        const char hi = t_[i_ + 4];
        const char lo = t_[i_ + 5];
        if (hi != '0' && hi != '1') return false;
        if (!IsDigit(lo) && !(lo >= 'a' && lo <= 'f')) return false;
        const int v = (hi - '0') * 16 + HexValue(lo);
        if (v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') return false;
        i_ += 6;
        return true;
      }
      default: return false;
    }
  }

  bool Number() {
    const size_t start = i_;
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    if (i_ >= t_.size()) return false;
    if (t_[i_] == '0') {
      ++i_;
    } else if (t_[i_] >= '1' && t_[i_] <= '9') {
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    } else {
      return false;
    }
    const bool is_float =
        i_ < t_.size() && (t_[i_] == '.' || t_[i_] == 'e' || t_[i_] == 'E');
    if (!is_float) {
      const std::string_view digits = t_.substr(start, i_ - start);
      // Within 64 bits it is written back the same; beyond them it is a
      // decimal kept as it is. Only "-0" is parsed as the integer 0.
      return digits != "-0";
    }
    // A decimal: kept as the text it came in as, so any valid form is.
    if (t_[i_] == '.') {
      ++i_;
      if (i_ >= t_.size() || !IsDigit(t_[i_])) return false;
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (i_ >= t_.size() || !IsDigit(t_[i_])) return false;
      while (i_ < t_.size() && IsDigit(t_[i_])) ++i_;
    }
    return true;
  }

  bool Object(int depth) {
    if (depth >= kMaxDepth) return false;
    ++i_;
    if (i_ < t_.size() && t_[i_] == '}') {
      ++i_;
      return true;
    }
    std::string_view previous;
    bool first = true;
    while (true) {
      if (i_ >= t_.size() || t_[i_] != '"') return false;
      std::string_view key;
      bool plain = false;
      if (!String(&key, &plain) || !plain) return false;
      if (!first && !(previous < key)) return false;  // out of order, or repeated
      previous = key;
      first = false;
      if (i_ >= t_.size() || t_[i_] != ':') return false;
      ++i_;
      if (!Value(depth + 1)) return false;
      if (i_ >= t_.size()) return false;
      if (t_[i_] == '}') {
        ++i_;
        return true;
      }
      if (t_[i_] != ',') return false;
      ++i_;
    }
  }

  bool Array(int depth) {
    if (depth >= kMaxDepth) return false;
    ++i_;
    if (i_ < t_.size() && t_[i_] == ']') {
      ++i_;
      return true;
    }
    while (true) {
      if (!Value(depth + 1)) return false;
      if (i_ >= t_.size()) return false;
      if (t_[i_] == ']') {
        ++i_;
        return true;
      }
      if (t_[i_] != ',') return false;
      ++i_;
    }
  }

  std::string_view t_;
  size_t i_;
};

// Builds the document for text the fast parser handed over (a byte order
// mark, nesting past kMaxDepth, invalid text), with nlohmann's parser and
// its error messages but kcqrs's numbers: nlohmann's SAX interface gives a
// float's text, which becomes the decimal, as in the fast parser.
class DomBuilder {
 public:
  explicit DomBuilder(json* root) : root_(root) {}

  bool null() { return Put(nullptr); }
  bool boolean(bool v) { return Put(v); }
  bool number_integer(json::number_integer_t v) { return Put(v); }
  bool number_unsigned(json::number_unsigned_t v) { return Put(v); }
  bool number_float(json::number_float_t, const json::string_t& text) {
    return Put(decimal::FromText(text));
  }
  bool string(json::string_t& v) { return Put(std::move(v)); }
  bool binary(json::binary_t& v) { return Put(json::binary(std::move(v))); }
  bool start_object(std::size_t) {
    stack_.push_back(Put(json::value_t::object));
    return true;
  }
  bool key(json::string_t& k) {
    // Sorted at the end of the object, where the last duplicate wins, as in
    // nlohmann's own DOM parser.
    key_ = &stack_.back()->get_ptr<json::object_t*>()->AppendUnsorted(std::move(k), nullptr);
    return true;
  }
  bool end_object() {
    stack_.back()->get_ptr<json::object_t*>()->SortMembers();
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) {
    stack_.push_back(Put(json::value_t::array));
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    error_ = e.what();
    return false;
  }

  // nlohmann's message when the text is not JSON, else empty.
  const std::string& error() const { return error_; }

 private:
  // Places v where the parser is (the root, the current key, or the end of
  // the current array) and returns where it went.
  json* Put(json v) {
    if (stack_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    json* top = stack_.back();
    if (top->is_array()) {
      top->get_ptr<json::array_t*>()->push_back(std::move(v));
      return &top->get_ptr<json::array_t*>()->back();
    }
    *key_ = std::move(v);
    return key_;
  }

  json* root_;
  std::vector<json*> stack_;
  json* key_ = nullptr;
  std::string error_;
};

// nlohmann's parser with DomBuilder: the document, or false with *error set
// to nlohmann's message.
bool SlowParse(std::string_view text, json* out, std::string* error) {
  DomBuilder builder(out);
  if (json::sax_parse(text.begin(), text.end(), &builder)) return true;
  *error = builder.error();
  return false;
}

}  // namespace

json ParseJson(std::string_view text) {
  json out;
  Parser parser(text, kMaxDepth);
  if (parser.Parse(&out)) return out;
  std::string error;
  if (SlowParse(text, &out, &error)) return out;
  return json(json::value_t::discarded);
}

Result<json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::InvalidArgument(std::to_string(text.size()) +
                                   " bytes, more than the limit of " +
                                   std::to_string(limits.max_bytes) +
                                   " bytes (limits.max_document_bytes)");
  }
  auto too_deep = [&](size_t at) {
    return Status::InvalidArgument("nesting deeper than " + std::to_string(limits.max_depth) +
                                   " levels at byte " + std::to_string(at) +
                                   " (limits.max_json_depth)");
  };
  const int depth = limits.max_depth < kMaxDepth ? limits.max_depth : kMaxDepth;
  {
    json out;
    Parser parser(text, depth);
    if (parser.Parse(&out)) return out;
    if (parser.too_deep_at() != std::string_view::npos && depth == limits.max_depth) {
      return too_deep(parser.too_deep_at());
    }
  }
  // Rare: invalid text, or a limit
  // past the fast parser's. nlohmann's parser does not recurse, but the
  // document it builds must not be deeper than the limit.
  if (size_t at = FindTooDeep(text, limits.max_depth); at != std::string_view::npos) {
    return too_deep(at);
  }
  json out;
  std::string msg;
  if (SlowParse(text, &out, &msg)) return out;
  // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
  if (size_t p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
  return Status::InvalidArgument("not valid JSON: " + msg);
}

std::string DumpJson(const json& doc) {
  std::string out;
  out.reserve(128);
  {
    Writer w(&out);
    Append(doc, &w);
  }
  return out;
}

void AppendJson(const json& doc, std::string* out) {
  Writer w(out);
  Append(doc, &w);
}

bool SkipCanonical(std::string_view text, size_t* pos) {
  CanonicalScanner scanner(text, *pos);
  if (!scanner.Value(0)) return false;
  *pos = scanner.pos();
  return true;
}

bool SkipCanonicalPlainString(std::string_view text, size_t* pos, std::string_view* content) {
  if (*pos >= text.size() || text[*pos] != '"') return false;
  CanonicalScanner scanner(text, *pos);
  bool plain = false;
  if (!scanner.String(content, &plain) || !plain) return false;
  *pos = scanner.pos();
  return true;
}

}  // namespace kcqrs::engine
