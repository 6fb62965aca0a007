// engine/codec/json_codec.h against nlohmann's own parser, differentially, as the
// header promises: ParseJson(text) is kcqrs::Json::parse(text, nullptr, false)
// (same documents, integer types included, same rejections) except that a
// number nlohmann makes a double is a decimal keeping its text (the text
// must parse to nlohmann's double) and one beyond a double's range, which
// nlohmann refuses, is accepted; DumpJson writes a document that parses
// back to itself, and to nlohmann's document (same exceptions as dump());
// and SkipCanonical only accepts text that DumpJson(ParseJson(text))
// reproduces byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/codec/json_codec.h"
#include "tests/support/json_identical.h"

namespace {

using json = kcqrs::Json;

[[noreturn]] void Fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "json_codec_fuzzer: %s\n  input: %.*s\n", what,
               static_cast<int>(text.size()), text.data());
  std::abort();
}

bool Identical(const json& a, const json& b) {
  return kcqrs::testing::IdenticalJson(a, b, {.nan_equals_nan = true});
}

// dump(), or the exception's message prefixed with '!'.
template <typename F>
std::string DumpOrError(F dump) {
  try {
    return dump();
  } catch (const json::exception& e) {
    return std::string("!") + e.what();
  }
}

// True when nlohmann refuses `text` for a number beyond a double's range
// (out_of_range.406). A later duplicate key can drop that number from the
// document ParseJson builds, so the document alone cannot tell.
bool RefusedForRange(std::string_view text) {
  try {
    // GCC's warn_unused_result is not silenced by a cast to void.
    const json parsed = json::parse(text);
    (void)parsed;
  } catch (const json::out_of_range& e) {
    return e.id == 406;
  } catch (const json::exception&) {
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const json expected = json::parse(text, nullptr, false);
  const json actual = kcqrs::engine::ParseJson(text);
  bool beyond_double = false;
  if (!actual.is_discarded()) {
    (void)kcqrs::testing::DecimalsAsDoubles(actual, nullptr, &beyond_double);
  }
  // Only a number beyond a double's range (1e400), which kcqrs keeps as a
  // decimal, lets ParseJson accept what nlohmann rejects.
  if (actual.is_discarded() != expected.is_discarded() &&
      !(expected.is_discarded() && (beyond_double || RefusedForRange(text)))) {
    Fail(expected.is_discarded() ? "ParseJson accepted what nlohmann rejects"
                                 : "ParseJson rejected what nlohmann accepts",
         text);
  }
  if (!expected.is_discarded()) {
    bool bad_text = false;
    if (kcqrs::testing::HasDouble(actual)) Fail("ParseJson made a double", text);
    if (!Identical(kcqrs::testing::DecimalsAsDoubles(actual, &bad_text), expected) || bad_text) {
      Fail("ParseJson and nlohmann disagree", text);
    }
    const std::string dumped = DumpOrError([&] { return kcqrs::engine::DumpJson(actual); });
    const std::string nlohmann_dumped = DumpOrError([&] { return expected.dump(); });
    if ((dumped[0] == '!') != (nlohmann_dumped[0] == '!')) {
      Fail("DumpJson and dump() disagree on throwing", text);
    }
    if (dumped[0] != '!') {
      // -0 is the integer 0, written 0 and read back unsigned: equal values.
      const kcqrs::testing::JsonIdentity values{.any_integer_kind = true, .nan_equals_nan = true};
      if (!kcqrs::testing::IdenticalJson(kcqrs::engine::ParseJson(dumped), actual, values)) {
        Fail("DumpJson wrote what does not parse back to the document", text);
      }
      if (!kcqrs::testing::IdenticalJson(json::parse(dumped, nullptr, false), expected, values)) {
        Fail("DumpJson wrote what nlohmann reads as another document", text);
      }
    }
    // What DumpJson writes is canonical: SkipCanonical may decline it (its
    // documented exceptions) but must never stop inside it.
    if (dumped[0] != '!') {
      size_t pos = 0;
      if (kcqrs::engine::SkipCanonical(dumped, &pos) && pos != dumped.size()) {
        Fail("SkipCanonical stopped inside canonical text", dumped);
      }
    }
  }

  // Whatever prefix SkipCanonical accepts must be one value that parses and
  // dumps back to exactly those bytes.
  size_t pos = 0;
  if (kcqrs::engine::SkipCanonical(text, &pos)) {
    if (pos == 0 || pos > text.size()) Fail("SkipCanonical moved out of range", text);
    const std::string_view value = text.substr(0, pos);
    const json doc = kcqrs::engine::ParseJson(value);
    if (doc.is_discarded()) Fail("SkipCanonical accepted text that is not JSON", text);
    if (DumpOrError([&] { return kcqrs::engine::DumpJson(doc); }) != value) {
      Fail("SkipCanonical accepted text that is not canonical", text);
    }
  }
  pos = 0;
  std::string_view content;
  if (kcqrs::engine::SkipCanonicalPlainString(text, &pos, &content)) {
    if (pos < 2 || pos > text.size()) Fail("SkipCanonicalPlainString moved out of range", text);
    const json doc = json::parse(text.substr(0, pos), nullptr, false);
    if (!doc.is_string() || doc.get_ref<const std::string&>() != content ||
        DumpOrError([&] { return doc.dump(); }) != text.substr(0, pos)) {
      Fail("SkipCanonicalPlainString accepted what is not a plain canonical string", text);
    }
  }
  return 0;
}
