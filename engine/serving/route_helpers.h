// What HttpApi's route families share (internal to engine/serving): the
// problem+json answers, the parsing of parameters more than one family
// takes, and RouteTable, which counts and times every route.
//
// Thread-safety: the free functions are pure; a RouteTable is used while
// registering only, and the handlers it installs are safe from any thread.
#ifndef KCQRS_ENGINE_SERVING_ROUTE_HELPERS_H_
#define KCQRS_ENGINE_SERVING_ROUTE_HELPERS_H_

#include "json/document.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/http/server.h"
#include "engine/metrics/metrics.h"
#include "engine/serving/store_registry.h"

namespace kcqrs::engine {

using Clock = std::chrono::steady_clock;

// An RFC 9457 problem+json answer; its "type" is "urn:kcqrs:problem:"
// followed by `slug` ("unknown-store").
http::Response Problem(int status, const std::string& slug, std::string_view title,
                       std::string_view detail);

// A 503 problem with Retry-After: 1.
http::Response Unavailable(const std::string& slug, std::string_view title,
                           std::string_view detail);

// A problem with members of its own beyond RFC 9457's (commandId,
// position, missing_partitions). Every string in it is valid UTF-8: the
// ones from the request are checked before they get here.
http::Response ProblemWith(int status, const std::string& slug, std::string_view title,
                           std::string_view detail, kcqrs::Json extra);

// nullopt when `token` is empty or the request carries
// "Authorization: Bearer <token>" (the scheme in any case, RFC 6750); else
// the 401 to answer, with WWW-Authenticate: Bearer and a detail saying that
// `what` ("POST /commands") needs the token. The token is compared in time
// independent of where it differs, so that timing does not reveal it.
std::optional<http::Response> Unauthorized(const http::Request& req, const std::string& token,
                                           std::string_view what);

// A request's bytes that go into JSON or into a Kafka record must be UTF-8
// text; nullopt when they are, else the reason to answer 400 with.
std::optional<std::string> NotUtf8(std::string_view name, std::string_view value,
                                   std::string_view use);

// A whole decimal integer; nullopt for anything else ("", "12x", "1e3").
std::optional<int64_t> ParseInt(std::string_view s);

// The strong ETag of an aggregate version, "\"7\"": what a GET of an
// aggregate's key sends, and what If-Match on POST /commands takes back.
std::string VersionETag(int64_t version);

// The expected aggregate version a POST /commands states in its headers
// (RFC 9110 preconditions): `If-Match: "7"` (the ETag of the aggregate's
// GET) expects version 7; `If-None-Match: *` expects 0, "create only".
// nullopt in the inner optional when neither is sent; nullopt with the 400
// to answer in *bad when either is malformed or both are sent.
std::optional<std::optional<int64_t>> ExpectedVersionFromHeaders(const http::Request& req,
                                                                 http::Response* bad);

// ?timeout_ms (the wait of ?position and ?wait=true): `fallback` when
// absent; nullopt with the 400 to answer in *bad when not 0 to `max`.
std::optional<std::chrono::milliseconds> WaitTimeout(const http::Request& req,
                                                     std::chrono::milliseconds fallback,
                                                     std::chrono::milliseconds max,
                                                     http::Response* bad);

// The partitions of a store hosted here and their keys, as GET /stores and
// GET /stats show them.
struct HostedSummary {
  std::vector<int32_t> partitions;  // in order
  uint64_t approximate_keys = 0;    // RocksDB's estimate, summed
  // The keys, counted when there are at most kExactKeyCountLimit of them
  // (keys_exact), else the estimate. RocksDB's estimate-num-keys adds up the
  // entries of the memtables and SST files, so every overwrite not yet
  // compacted away counts again: an aggregate decided five times counted
  // five times, before its first flush.
  uint64_t keys = 0;
  bool keys_exact = true;
};
inline constexpr uint64_t kExactKeyCountLimit = 10000;
HostedSummary SummarizeHosted(const StoreRegistry& registry, const std::string& store);

// Registers routes on a router so that each one's requests are counted and
// timed in `metrics` under its pattern (never the raw path, which would
// make a series per key).
class RouteTable {
 public:
  RouteTable(http::Router* router, metrics::Metrics* metrics)
      : router_(router), metrics_(metrics) {}

  void Add(const std::string& method, const std::string& pattern, http::Handler handler);
  void AddAsync(const std::string& method, const std::string& pattern,
                http::AsyncHandler handler);

 private:
  http::Router* router_;
  metrics::Metrics* metrics_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_ROUTE_HELPERS_H_
