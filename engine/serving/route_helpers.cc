#include "engine/serving/route_helpers.h"

#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "util/utf8.h"

namespace kcqrs::engine {

using json = kcqrs::Json;

namespace {
constexpr char kProblemBase[] = "urn:kcqrs:problem:";
}  // namespace

http::Response Problem(int status, const std::string& slug, std::string_view title,
                       std::string_view detail) {
  return http::Response::Problem(status, title, detail, kProblemBase + slug);
}

http::Response Unavailable(const std::string& slug, std::string_view title,
                           std::string_view detail) {
  http::Response r = Problem(503, slug, title, detail);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

http::Response ProblemWith(int status, const std::string& slug, std::string_view title,
                           std::string_view detail, json extra) {
  json body = {{"type", kProblemBase + slug},
               {"title", title},
               {"status", status},
               {"detail", detail}};
  body.update(extra);
  http::Response r =
      http::Response::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  r.content_type = "application/problem+json";
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

namespace {

// Equal when a == expected; the time depends on expected's length only.
bool ConstantTimeEquals(std::string_view a, std::string_view expected) {
  volatile unsigned char diff = a.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ static_cast<unsigned char>(expected[i])));
  }
  return diff == 0;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<http::Response> Unauthorized(const http::Request& req, const std::string& token,
                                           std::string_view what) {
  if (token.empty()) return std::nullopt;
  const std::optional<std::string> auth = req.Header("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (auth && StartsWithNoCase(*auth, kScheme) &&
      ConstantTimeEquals(std::string_view(*auth).substr(kScheme.size()), token)) {
    return std::nullopt;
  }
  http::Response r = Problem(401, "unauthorized", "Unauthorized",
                             std::string(what) + " needs 'Authorization: Bearer <token>'");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::optional<std::string> NotUtf8(std::string_view name, std::string_view value,
                                   std::string_view use) {
  const size_t at = util::FindInvalidUtf8(value);
  if (at == std::string_view::npos) return std::nullopt;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(value[at]));
  return std::string(name) + ": not valid UTF-8 (byte " + std::to_string(at) + " is " + byte +
         "); " + std::string(use) + " must be UTF-8 text";
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string VersionETag(int64_t version) { return "\"" + std::to_string(version) + "\""; }

std::optional<std::optional<int64_t>> ExpectedVersionFromHeaders(const http::Request& req,
                                                                 http::Response* bad) {
  auto trim = [](std::string v) {
    const size_t b = v.find_first_not_of(" \t");
    const size_t e = v.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
  };
  const std::optional<std::string> match = req.Header("if-match");
  const std::optional<std::string> none = req.Header("if-none-match");
  // What the client sent, quoted back only when it is text.
  auto shown = [](const std::string& v) {
    return util::FindInvalidUtf8(v) == std::string_view::npos && v.size() <= 80
               ? "'" + v + "'"
               : std::string("a value of ") + std::to_string(v.size()) + " bytes";
  };
  auto refuse = [bad](std::string detail) {
    *bad = Problem(400, "bad-precondition", "Bad precondition", detail);
    return std::nullopt;
  };
  if (match && none) {
    return refuse("If-Match and If-None-Match together: send If-Match: \"N\" to expect "
                  "version N, or If-None-Match: * to create only");
  }
  if (none) {
    if (trim(*none) != "*") {
      return refuse("If-None-Match: only * is taken (create only: the aggregate must not "
                    "exist yet), found " + shown(*none));
    }
    return std::optional<int64_t>(0);
  }
  if (!match) return std::optional<int64_t>();
  const std::string tag = trim(*match);
  // One strong ETag: a weak one never matches (RFC 9110, 13.1.1), and a
  // list or * cannot say which version the command was decided on.
  std::optional<int64_t> v;
  if (tag.size() >= 3 && tag.front() == '"' && tag.back() == '"') {
    const std::string digits = tag.substr(1, tag.size() - 2);
    if (digits.find_first_not_of("0123456789") == std::string::npos) v = ParseInt(digits);
  }
  if (!v) {
    return refuse("If-Match: expected one strong ETag of the aggregate, its version in quotes "
                  "as GET /stores/{store}/keys/{id} sends it (e.g. \"7\"), found " + shown(*match));
  }
  return std::optional<int64_t>(*v);
}

std::optional<std::chrono::milliseconds> WaitTimeout(const http::Request& req,
                                                     std::chrono::milliseconds fallback,
                                                     std::chrono::milliseconds max,
                                                     http::Response* bad) {
  auto t = req.Query("timeout_ms");
  if (!t) return fallback;
  auto v = ParseInt(*t);
  if (!v || *v < 0 || *v > max.count()) {
    *bad = Problem(400, "bad-parameter", "Bad parameter",
                   "timeout_ms: expected 0 to " + std::to_string(max.count()) + ", found '" +
                       *t + "'");
    return std::nullopt;
  }
  return std::chrono::milliseconds(*v);
}

HostedSummary SummarizeHosted(const StoreRegistry& registry, const std::string& store) {
  HostedSummary out;
  uint64_t counted = 0;
  for (const auto& [p, reader] : registry.Hosted(store)) {
    out.partitions.push_back(p);
    out.approximate_keys += reader->ApproximateNumEntries();
    // A walk over committed data only, stopped at the limit so that a page
    // refreshing every 2 s costs a big store no more than a small one.
    if (!out.keys_exact) continue;
    auto it = reader->Range("", "");
    for (; it->Valid() && counted <= kExactKeyCountLimit; it->Next()) ++counted;
    if (counted > kExactKeyCountLimit || !it->status().ok()) out.keys_exact = false;
  }
  out.keys = out.keys_exact ? counted : out.approximate_keys;
  return out;
}

namespace {

// The request counters of one route, by status, made on first use: the
// registry lookup allocates label strings, this only takes a short lock.
struct RouteCounters {
  metrics::Metrics* metrics;
  std::string method;
  std::string pattern;
  metrics::Histogram duration;
  std::mutex mu;
  std::map<int, metrics::Counter> by_status;

  void Count(int status, double seconds) {
    duration.Observe(seconds);
    metrics::Counter c;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = by_status.find(status);
      if (it == by_status.end()) {
        it = by_status.emplace(status, metrics->HttpRequests(pattern, method, status)).first;
      }
      c = it->second;
    }
    c.Increment();
  }
};

}  // namespace

void RouteTable::Add(const std::string& method, const std::string& pattern,
                     http::Handler handler) {
  AddAsync(method, pattern,
           [handler = std::move(handler)](const http::Request& req, http::Responder respond) {
             respond(handler(req));
           });
}

void RouteTable::AddAsync(const std::string& method, const std::string& pattern,
                          http::AsyncHandler handler) {
  auto counters = std::make_shared<RouteCounters>();
  counters->metrics = metrics_;
  counters->method = method;
  counters->pattern = pattern;
  counters->duration = counters->metrics->HttpDuration(pattern);
  router_->AddAsync(method, pattern,
                    [counters, handler = std::move(handler)](const http::Request& req,
                                                             http::Responder respond) {
                      const auto start = Clock::now();
                      handler(req, [counters, start,
                                    respond = std::move(respond)](http::Response r) {
                        counters->Count(
                            r.status, std::chrono::duration<double>(Clock::now() - start).count());
                        respond(std::move(r));
                      });
                    });
}

}  // namespace kcqrs::engine
