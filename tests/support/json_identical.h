// Stricter equality of JSON documents than nlohmann's operator== (which
// calls 1, 1u and 1.0 equal, and 0.0 and -0.0): the same types all the way
// down, floats bit for bit, decimals text for text. Used by the codec's differential tests and the
// fuzz targets (fuzz/) that compare documents.
#ifndef KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_
#define KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_

#include "json/document.h"

#include <cstddef>
#include <cstring>

#include "decimal/decimal.h"

namespace kcqrs::testing {

struct JsonIdentity {
  // Signed and unsigned integers count as one kind (compared by value).
  bool any_integer_kind = false;
  // NaN equals NaN (a fuzzer's inputs can make them).
  bool nan_equals_nan = false;
};

inline bool IdenticalJson(const kcqrs::Json& a, const kcqrs::Json& b,
                          JsonIdentity how = {}) {
  using json = kcqrs::Json;
  if (how.any_integer_kind && (a.is_number_integer() || b.is_number_integer())) {
    return a.is_number_integer() && b.is_number_integer() && a == b;
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto ib = b.begin();
      for (auto ia = a.begin(); ia != a.end(); ++ia, ++ib) {
        if (ia.key() != ib.key() || !IdenticalJson(ia.value(), ib.value(), how)) return false;
      }
      return true;
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!IdenticalJson(a[i], b[i], how)) return false;
      }
      return true;
    }
    case json::value_t::number_float: {
      const double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0 || (how.nan_equals_nan && x != x && y != y);
    }
    default:
      return a == b;
  }
}

// `doc` with each decimal (decimal/decimal.h) replaced by the double that
// nlohmann parses its text as: what nlohmann's own parse() gives for the same
// text, if every decimal kept the text of its number. Sets *bad_text when a
// decimal's text is not a JSON number, and *beyond_double when nlohmann
// refuses it as out of a double's range (1e400, which kcqrs keeps).
inline kcqrs::Json DecimalsAsDoubles(const kcqrs::Json& doc, bool* bad_text = nullptr,
                                     bool* beyond_double = nullptr) {
  using json = kcqrs::Json;
  if (decimal::IsDecimal(doc)) {
    const std::string_view text = decimal::Text(doc);
    if (!decimal::IsJsonNumber(text)) {
      if (bad_text != nullptr) *bad_text = true;
      return json();
    }
    json d = json::parse(text, nullptr, false);
    if (d.is_discarded()) {
      if (beyond_double != nullptr) *beyond_double = true;
      return json();
    }
    return d;
  }
  if (doc.is_array()) {
    json out = json::array();
    for (const json& e : doc) out.push_back(DecimalsAsDoubles(e, bad_text, beyond_double));
    return out;
  }
  if (doc.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : doc.items()) out[k] = DecimalsAsDoubles(v, bad_text, beyond_double);
    return out;
  }
  return doc;
}

// Whether a document holds a double (number_float) anywhere: kcqrs's codec
// never makes one.
inline bool HasDouble(const kcqrs::Json& doc) {
  if (doc.is_number_float()) return true;
  if (doc.is_structured()) {
    for (const auto& e : doc) {
      if (HasDouble(e)) return true;
    }
  }
  return false;
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_
