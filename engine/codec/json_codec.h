// Fast JSON text <-> kcqrs::Json for the per-record hot path.
//
// kcqrs::Json stays the document type (expressions, Lua and processors
// pass it around); only reading and writing its text is done here, because
// nlohmann's own parser and serializer cost most of a command's time (its
// lexer keeps positions and a token copy for error messages, byte by byte).
//
// The contract is nlohmann's, with one difference, numbers:
//   ParseJson(text)  == kcqrs::Json::parse(text, nullptr, false)
//   DumpJson(doc)    == doc.dump()
// for every input, including duplicate keys (the last one wins), \u escapes
// and surrogate pairs, and UTF-8 validation. Integers are nlohmann's
// (non-negative ones number_unsigned, negative ones number_integer); every
// other number (a fraction, an exponent, an integer beyond 64 bits) is an
// exact decimal (decimal/decimal.h) that DumpJson writes back as the text it
// was read from, where nlohmann would make a double; so a number beyond a
// double's range (1e400), which nlohmann refuses, is accepted. The fast
// paths handle the common shapes; anything unusual (nesting deeper than
// 256, invalid input) goes through nlohmann's parser, so errors and
// messages are nlohmann's (and past 256 levels, its refusal of 1e400). tests/engine/json_codec_test.cc compares both on
// generated documents.
//
// Canonical text is what DumpJson writes: compact, object keys in order,
// each key once, escapes as nlohmann writes them, integers as nlohmann
// writes them and decimals as they came. SkipCanonical
// recognises it without building a document, so that a caller may copy
// canonical text verbatim where it would otherwise parse and dump it again.
//
// Thread-safety: free functions without shared state.
#ifndef KCQRS_ENGINE_CODEC_JSON_CODEC_H_
#define KCQRS_ENGINE_CODEC_JSON_CODEC_H_

#include "json/document.h"

#include <cstddef>
#include <string>
#include <string_view>

#include "kcqrs/status.h"

namespace kcqrs::engine {

// What ParseJson(text, limits) accepts: EngineOptions::limits
// (include/kcqrs/options.h), whose defaults these are.
struct JsonLimits {
  // Deepest nesting of objects and arrays: `{}` is 1, `{"a":[1]}` is 2.
  int max_depth = 64;
  // Longest text, in bytes.
  size_t max_bytes = 1 << 20;
};

// Input from outside (a record value, an HTTP body): the document, or
// InvalidArgument saying why not, with where:
//   "1300000 bytes, more than the limit of 1048576 bytes (limits.max_document_bytes)"
//   "nesting deeper than 64 levels at byte 1234 (limits.max_json_depth)"
//   "not valid JSON: parse error at line 1, column 9: ..." (nlohmann's words)
// Byte offsets count from 0; the one named for depth is the bracket that
// opens the first level past the limit. Nothing deeper than the limit is
// ever built or recursed into. As fast as ParseJson(text) on valid input:
// the size is checked up front and the depth during the one parse (a
// separate scan runs only for the rare text the fast path hands to
// nlohmann).
Result<kcqrs::Json> ParseJson(std::string_view text, const JsonLimits& limits);

// kcqrs::Json::parse(text, nullptr, /*allow_exceptions=*/false): the
// document, or a discarded value when `text` is not JSON. No limits: for
// documents kcqrs wrote itself (stored state); input from outside goes
// through the overload above.
kcqrs::Json ParseJson(std::string_view text);

// doc.dump(), and AppendJson appends it to *out. Throws what dump() throws
// (kcqrs::Json::type_error for a string that is not UTF-8).
std::string DumpJson(const kcqrs::Json& doc);
void AppendJson(const kcqrs::Json& doc, std::string* out);

// When `text` at *pos starts with one canonical JSON value (nothing before
// it), moves *pos past it and returns true. Returns false for anything that
// DumpJson(ParseJson(value)) would not reproduce byte for byte (whitespace,
// keys out of order or repeated, "-0", "\/", ...); *pos is then
// unspecified. It may also return false for some canonical text that is
// costly to prove so (keys with escapes, nesting deeper than 256).
bool SkipCanonical(std::string_view text, size_t* pos);

// As SkipCanonical, for a canonical string whose content has no escape:
// sets *content to the characters between the quotes.
bool SkipCanonicalPlainString(std::string_view text, size_t* pos, std::string_view* content);

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_CODEC_JSON_CODEC_H_
