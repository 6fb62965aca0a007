#include "decimal/decimal.h"

#include <mpdecimal.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

namespace kcqrs::decimal {
namespace {

using json = kcqrs::Json;

// An mpd_t with room for 152 digits in place, so the common operand costs no
// allocation; libmpdec moves a longer one to the heap itself and mpd_del
// frees it then. Not copyable: data points into the object.
class Dec {
 public:
  Dec() {
    v_.flags = MPD_STATIC | MPD_STATIC_DATA;
    v_.exp = 0;
    v_.digits = 0;
    v_.len = 0;
    v_.alloc = kWords;
    v_.data = data_;
  }
  ~Dec() { mpd_del(&v_); }
  Dec(const Dec&) = delete;
  Dec& operator=(const Dec&) = delete;

  mpd_t* get() { return &v_; }
  const mpd_t* get() const { return &v_; }

 private:
  static constexpr mpd_ssize_t kWords = 8;
  mpd_uint_t data_[kWords];
  mpd_t v_;
};

// Operands are read exactly (a decimal's text may have any number of
// digits; documents are bounded in size, so its digits are too).
const mpd_context_t& ExactContext() {
  static const mpd_context_t ctx = [] {
    mpd_context_t c;
    mpd_maxcontext(&c);
    c.traps = 0;
    return c;
  }();
  return ctx;
}

mpd_context_t ResultContext(Rounding rounding = Rounding::kHalfEven) {
  mpd_context_t c;
  mpd_maxcontext(&c);
  c.prec = kMaxDigits;
  c.emax = kMaxExponent;
  c.emin = -kMaxExponent;
  c.traps = 0;
  c.clamp = 0;
  switch (rounding) {
    case Rounding::kHalfEven: c.round = MPD_ROUND_HALF_EVEN; break;
    case Rounding::kHalfUp: c.round = MPD_ROUND_HALF_UP; break;
    case Rounding::kHalfDown: c.round = MPD_ROUND_HALF_DOWN; break;
    case Rounding::kUp: c.round = MPD_ROUND_UP; break;
    case Rounding::kDown: c.round = MPD_ROUND_DOWN; break;
    case Rounding::kCeiling: c.round = MPD_ROUND_CEILING; break;
    case Rounding::kFloor: c.round = MPD_ROUND_FLOOR; break;
  }
  return c;
}

void AppendDouble(double d, std::string* out) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  (void)ec;
  out->append(buf, ptr);
}

// Reads a number document into *out, exactly.
void Load(const json& j, mpd_t* out) {
  uint32_t status = 0;
  const mpd_context_t& ctx = ExactContext();
  switch (j.type()) {
    case json::value_t::number_integer:
      mpd_qset_i64(out, j.get<int64_t>(), &ctx, &status);
      return;
    case json::value_t::number_unsigned:
      mpd_qset_u64(out, j.get<uint64_t>(), &ctx, &status);
      return;
    case json::value_t::number_float: {
      std::string text;
      AppendDouble(j.get<double>(), &text);
      mpd_qset_string_exact(out, text.c_str(), &status);
      return;
    }
    default: {
      // A decimal: its text needs a terminating NUL for libmpdec.
      const std::string_view text = Text(j);
      char small[64];
      if (text.size() < sizeof(small)) {
        std::memcpy(small, text.data(), text.size());
        small[text.size()] = '\0';
        mpd_qset_string_exact(out, small, &status);
      } else {
        mpd_qset_string_exact(out, std::string(text).c_str(), &status);
      }
      if (mpd_isnan(out)) {
        // An exponent past libmpdec's (18 digits; JSON allows any): what it
        // means is a zero (1e-99999999999999999999, which JSON parsers
        // read as 0) or an infinity, so it compares as one; arithmetic on
        // it is out of range.
        const bool tiny = text.find("e-") != std::string_view::npos ||
                          text.find("E-") != std::string_view::npos;
        const uint8_t sign = text.starts_with('-') ? MPD_NEG : MPD_POS;
        if (tiny) {
          mpd_qset_i32(out, 0, &ctx, &status);
          mpd_set_sign(out, sign);
        } else {
          mpd_setspecial(out, sign, MPD_INF);
        }
      }
      return;
    }
  }
}

// The result as a document: an integer when libmpdec would write it as one
// that fits int64, else a decimal with libmpdec's text (scientific notation
// only when the exponent is positive or the number very small, as Python's
// str(Decimal) writes it; always a valid JSON number for a finite value).
json Store(const mpd_t* v) {
  if (v->exp == 0) {
    uint32_t status = 0;
    const int64_t i = mpd_qget_i64(v, &status);
    if (status == 0) return json(i);
  }
  char* text = mpd_to_sci(v, /*fmt=*/1);
  if (text == nullptr) throw std::bad_alloc();
  json out = FromText(text);
  mpd_free(text);
  return out;
}

Status Failure(uint32_t status, std::string_view inexact) {
  if (status & MPD_Malloc_error) return Status::Internal("out of memory in decimal arithmetic");
  if (status & MPD_Division_by_zero) return Status::InvalidArgument("division by zero");
  if (status & (MPD_Overflow | MPD_Underflow | MPD_Subnormal | MPD_Clamped)) {
    return Status::InvalidArgument("decimal result out of range (exponent beyond +-" +
                                   std::to_string(kMaxExponent) + ")");
  }
  if (status & (MPD_Invalid_operation | MPD_Division_impossible | MPD_Division_undefined)) {
    return Status::InvalidArgument("decimal result needs more than " +
                                   std::to_string(kMaxDigits) + " digits");
  }
  return Status::InvalidArgument(std::string(inexact));
}

constexpr uint32_t kNotExact = MPD_Inexact | MPD_Errors | MPD_Overflow | MPD_Underflow |
                               MPD_Subnormal | MPD_Clamped;

// An infinite operand (a number past libmpdec's exponents) makes an
// infinite result without raising a flag.
Status OutOfRange() {
  return Status::InvalidArgument("decimal result out of range (exponent beyond +-" +
                                 std::to_string(kMaxExponent) + ")");
}

std::string TooManyDigits() {
  return "decimal result needs more than " + std::to_string(kMaxDigits) + " digits";
}

using BinaryOp = void (*)(mpd_t*, const mpd_t*, const mpd_t*, const mpd_context_t*,
                          uint32_t*);

Status Binary(BinaryOp op, const json& a, const json& b, json* out) {
  Dec x, y, r;
  Load(a, x.get());
  Load(b, y.get());
  const mpd_context_t ctx = ResultContext();
  uint32_t status = 0;
  op(r.get(), x.get(), y.get(), &ctx, &status);
  if (status & kNotExact) return Failure(status, TooManyDigits());
  if (mpd_isspecial(r.get())) return OutOfRange();
  *out = Store(r.get());
  return Status::OK();
}

using UnaryOp = void (*)(mpd_t*, const mpd_t*, const mpd_context_t*, uint32_t*);

Status Unary(UnaryOp op, const json& x, json* out) {
  Dec v, r;
  Load(x, v.get());
  const mpd_context_t ctx = ResultContext();
  uint32_t status = 0;
  op(r.get(), v.get(), &ctx, &status);
  if (status & kNotExact) return Failure(status, TooManyDigits());
  if (mpd_isspecial(r.get())) return OutOfRange();
  *out = Store(r.get());
  return Status::OK();
}

bool IsZeroNumber(const json& j) {
  switch (j.type()) {
    case json::value_t::number_integer: return j.get<int64_t>() == 0;
    case json::value_t::number_unsigned: return j.get<uint64_t>() == 0;
    case json::value_t::number_float: return j.get<double>() == 0;
    default: {
      Dec x;
      Load(j, x.get());
      return mpd_iszero(x.get());
    }
  }
}

// The decimal 1E<exponent>, the operand of mpd_qquantize.
void SetOneE(int exponent, mpd_t* out) {
  uint32_t status = 0;
  mpd_qset_i32(out, 1, &ExactContext(), &status);
  out->exp = exponent;
}

Status CheckScale(int scale) {
  if (scale < -kMaxScale || scale > kMaxScale) {
    return Status::InvalidArgument("scale " + std::to_string(scale) + " is outside -" +
                                   std::to_string(kMaxScale) + ".." +
                                   std::to_string(kMaxScale));
  }
  return Status::OK();
}

Status Quantize(const mpd_t* v, int scale, Rounding rounding, json* out) {
  Dec q, r;
  SetOneE(-scale, q.get());
  const mpd_context_t ctx = ResultContext(rounding);
  uint32_t status = 0;
  mpd_qquantize(r.get(), v, q.get(), &ctx, &status);
  if (status & (MPD_Errors | MPD_Overflow | MPD_Underflow | MPD_Subnormal | MPD_Clamped)) {
    return Failure(status, TooManyDigits());
  }
  if (mpd_isspecial(r.get())) return OutOfRange();
  *out = Store(r.get());
  return Status::OK();
}

}  // namespace

std::optional<Rounding> ParseRounding(std::string_view name) {
  if (name == "half_even") return Rounding::kHalfEven;
  if (name == "half_up") return Rounding::kHalfUp;
  if (name == "half_down") return Rounding::kHalfDown;
  if (name == "up") return Rounding::kUp;
  if (name == "down") return Rounding::kDown;
  if (name == "ceiling") return Rounding::kCeiling;
  if (name == "floor") return Rounding::kFloor;
  return std::nullopt;
}

std::string_view RoundingNames() {
  return "'half_even', 'half_up', 'half_down', 'up', 'down', 'ceiling', 'floor'";
}

json FromText(std::string_view json_number) {
  return json::binary(
      json::binary_t::container_type(json_number.begin(), json_number.end()), kJsonSubtype);
}

bool IsJsonNumber(std::string_view t) {
  size_t i = 0;
  auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit(i)) return false;
  if (t[i] == '0') {
    ++i;
  } else {
    while (digit(i)) ++i;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == t.size();
}

Result<json> FromString(std::string_view text) {
  if (!IsJsonNumber(text)) return Status::InvalidArgument("not a number");
  if (text.find_first_of(".eE") == std::string_view::npos) {
    const char* end = text.data() + text.size();
    if (text[0] == '-') {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), end, v);
      if (ec == std::errc() && ptr == end) return json(v);
    } else {
      uint64_t v = 0;
      auto [ptr, ec] = std::from_chars(text.data(), end, v);
      if (ec == std::errc() && ptr == end) return json(v);
    }
  }
  return FromText(text);
}

Result<json> FromDouble(double value) {
  if (!std::isfinite(value)) return Status::InvalidArgument("not a finite number");
  std::string text;
  AppendDouble(value, &text);
  // As nlohmann writes a double: 1.0 stays 1.0, not the integer 1.
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return FromText(text);
}

void AppendText(const json& number, std::string* out) {
  char buf[24];
  switch (number.type()) {
    case json::value_t::number_integer: {
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), number.get<int64_t>());
      (void)ec;
      out->append(buf, ptr);
      return;
    }
    case json::value_t::number_unsigned: {
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), number.get<uint64_t>());
      (void)ec;
      out->append(buf, ptr);
      return;
    }
    case json::value_t::number_float: AppendDouble(number.get<double>(), out); return;
    default: out->append(Text(number)); return;
  }
}

void AppendJson(const json& doc, std::string* out) {
  // nlohmann writes everything but decimals, which it would write as binary.
  switch (doc.type()) {
    case json::value_t::binary:
      if (IsDecimal(doc)) {
        *out += Text(doc);
        return;
      }
      break;
    case json::value_t::array: {
      *out += '[';
      bool first = true;
      for (const json& e : *doc.get_ptr<const json::array_t*>()) {
        if (!first) *out += ',';
        first = false;
        AppendJson(e, out);
      }
      *out += ']';
      return;
    }
    case json::value_t::object: {
      *out += '{';
      bool first = true;
      for (const auto& [key, e] : *doc.get_ptr<const json::object_t*>()) {
        if (!first) *out += ',';
        first = false;
        *out += json(key).dump(-1, ' ', false, json::error_handler_t::replace);
        *out += ':';
        AppendJson(e, out);
      }
      *out += '}';
      return;
    }
    default:
      break;
  }
  *out += doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Dump(const json& doc) {
  std::string out;
  AppendJson(doc, &out);
  return out;
}

Status Add(const json& a, const json& b, json* out) { return Binary(mpd_qadd, a, b, out); }
Status Subtract(const json& a, const json& b, json* out) {
  return Binary(mpd_qsub, a, b, out);
}
Status Multiply(const json& a, const json& b, json* out) {
  return Binary(mpd_qmul, a, b, out);
}

Status Divide(const json& a, const json& b, json* out) {
  if (IsZeroNumber(b)) return Status::InvalidArgument("division by zero");
  Dec x, y, r;
  Load(a, x.get());
  Load(b, y.get());
  const mpd_context_t ctx = ResultContext();
  uint32_t status = 0;
  mpd_qdiv(r.get(), x.get(), y.get(), &ctx, &status);
  if (status & kNotExact) {
    return Failure(status, "the quotient has no exact decimal of at most " +
                               std::to_string(kMaxDigits) +
                               " digits: round it with div(a, b, scale)");
  }
  if (mpd_isspecial(r.get())) return OutOfRange();
  *out = Store(r.get());
  return Status::OK();
}

Status Remainder(const json& a, const json& b, json* out) {
  if (IsZeroNumber(b)) return Status::InvalidArgument("division by zero");
  return Binary(mpd_qrem, a, b, out);
}

Status DivideRounded(const json& a, const json& b, int scale, Rounding rounding, json* out) {
  if (Status s = CheckScale(scale); !s.ok()) return s;
  if (IsZeroNumber(b)) return Status::InvalidArgument("division by zero");
  Dec x, y, q;
  Load(a, x.get());
  Load(b, y.get());
  if (mpd_iszero(x.get())) return Quantize(x.get(), scale, rounding, out);
  // The quotient has at least adjexp(a) - adjexp(b) + scale digits down to
  // the rounding position: past kMaxDigits, no rounding can make it fit.
  const int64_t integer_digits =
      static_cast<int64_t>(mpd_adjexp(x.get())) - mpd_adjexp(y.get()) + 1;
  const int64_t prec = integer_digits + scale + 2;
  if (prec - 3 > kMaxDigits) return Status::InvalidArgument(TooManyDigits());
  // Rounding twice is wrong (2.4999 -> 2.500 -> 3), unless the first
  // rounding is 05UP with a digit to spare: it keeps a nonzero last digit
  // for any discarded remainder, so the second rounding sees what the exact
  // quotient would have shown it. This is how Python's decimal avoids it.
  mpd_context_t ctx;
  mpd_maxcontext(&ctx);
  ctx.traps = 0;
  ctx.prec = prec < 1 ? 1 : static_cast<mpd_ssize_t>(prec);
  ctx.round = MPD_ROUND_05UP;
  uint32_t status = 0;
  if (mpd_isspecial(x.get()) || mpd_isspecial(y.get())) return OutOfRange();
  mpd_qdiv(q.get(), x.get(), y.get(), &ctx, &status);
  if (status & (MPD_Errors | MPD_Overflow | MPD_Underflow)) {
    return Failure(status, TooManyDigits());
  }
  return Quantize(q.get(), scale, rounding, out);
}

Status Round(const json& x, int scale, Rounding rounding, json* out) {
  if (Status s = CheckScale(scale); !s.ok()) return s;
  Dec v;
  Load(x, v.get());
  return Quantize(v.get(), scale, rounding, out);
}

Status Negate(const json& x, json* out) { return Unary(mpd_qminus, x, out); }
Status Abs(const json& x, json* out) { return Unary(mpd_qabs, x, out); }

int Compare(const json& a, const json& b) {
  Dec x, y;
  Load(a, x.get());
  Load(b, y.get());
  uint32_t status = 0;
  return mpd_qcmp(x.get(), y.get(), &status);
}

bool Equal(const json& a, const json& b) {
  const bool a_number = IsNumber(a);
  const bool b_number = IsNumber(b);
  if (a_number || b_number) {
    if (!a_number || !b_number) return false;
    if (a.is_number() && b.is_number() && !a.is_number_float() && !b.is_number_float()) {
      return a == b;  // two integers: nlohmann compares them exactly
    }
    return Compare(a, b) == 0;
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::array: {
      const auto& x = *a.get_ptr<const json::array_t*>();
      const auto& y = *b.get_ptr<const json::array_t*>();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Equal(x[i], y[i])) return false;
      }
      return true;
    }
    case json::value_t::object: {
      const auto& x = *a.get_ptr<const json::object_t*>();
      const auto& y = *b.get_ptr<const json::object_t*>();
      if (x.size() != y.size()) return false;
      for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j) {
        // Both maps are ordered by key: equal objects pair up in order.
        if (i->first != j->first || !Equal(i->second, j->second)) return false;
      }
      return true;
    }
    default:
      return a == b;
  }
}

bool IsWhole(const json& x) {
  switch (x.type()) {
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return true;
    case json::value_t::number_float: {
      const double d = x.get<double>();
      return std::isfinite(d) && std::trunc(d) == d;
    }
    default: {
      Dec v;
      Load(x, v.get());
      return mpd_isinteger(v.get());
    }
  }
}

bool FitsScale(const json& x, int scale) {
  if ((x.is_number_integer() || x.is_number_unsigned()) && scale >= 0) return true;
  Dec v, r;
  Load(x, v.get());
  if (mpd_isspecial(v.get())) return false;
  if (mpd_iszero(v.get())) return true;
  uint32_t status = 0;
  mpd_qreduce(r.get(), v.get(), &ExactContext(), &status);
  return r.get()->exp >= -static_cast<mpd_ssize_t>(scale);
}

std::optional<int64_t> ToInt64(const json& x) {
  // Unsigned first: nlohmann's is_number_integer() holds for unsigned too.
  if (x.is_number_unsigned()) {
    const uint64_t u = x.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (x.is_number_integer()) return x.get<int64_t>();
  Dec v, q, r;
  Load(x, v.get());
  if (!mpd_isinteger(v.get())) return std::nullopt;
  SetOneE(0, q.get());
  const mpd_context_t ctx = ResultContext();
  uint32_t status = 0;
  mpd_qquantize(r.get(), v.get(), q.get(), &ctx, &status);
  if (status & (MPD_Errors | MPD_Inexact)) return std::nullopt;
  status = 0;
  const int64_t i = mpd_qget_i64(r.get(), &status);
  if (status != 0) return std::nullopt;
  return i;
}

}  // namespace kcqrs::decimal
