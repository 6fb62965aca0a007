// Stricter equality of JSON documents than nlohmann's operator== (which
// calls 1, 1u and 1.0 equal, and 0.0 and -0.0): the same types all the way
// down, floats bit for bit. Used by the codec's differential tests and the
// fuzz targets (fuzz/) that compare documents.
#ifndef KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_
#define KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstring>

namespace kcqrs::testing {

struct JsonIdentity {
  // Signed and unsigned integers count as one kind (compared by value).
  bool any_integer_kind = false;
  // NaN equals NaN (a fuzzer's inputs can make them).
  bool nan_equals_nan = false;
};

inline bool IdenticalJson(const nlohmann::json& a, const nlohmann::json& b,
                          JsonIdentity how = {}) {
  using nlohmann::json;
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

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_SUPPORT_JSON_IDENTICAL_H_
