#include "engine/serving/http_api.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <functional>
#include <list>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "engine/graph/describe.h"
#include "engine/kafka/producer.h"
#include "engine/codec/partitioner.h"
#include "engine/serving/ui_page.h"
#include "util/base64url.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kProblemBase[] = "urn:kcqrs:problem:";

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

// A problem with members of its own beyond RFC 9457's (commandId,
// position, missing_partitions). Every string in it is valid UTF-8: the
// ones from the request are checked before they get here.
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

// A request's bytes that go into JSON or into a Kafka record must be UTF-8
// text; nullopt when they are, else the reason to answer 400 with.
std::optional<std::string> NotUtf8(std::string_view name, std::string_view value,
                                   std::string_view use) {
  const size_t at = util::FindInvalidUtf8(value);
  if (at == std::string_view::npos) return std::nullopt;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(value[at]));
  return std::string(name) + ": not valid UTF-8 (byte " + std::to_string(at) + " is " + byte +
         "); " + std::string(use) + " must be UTF-8 text";
}

// A stored value as JSON text, when it is a JSON document. kcqrs's own
// stores hold canonical JSON, recognised without building a document and
// served as it is; other values (a C++ processor's) are JSON when they
// parse within the limits, else bytes: nullopt, and the caller serves
// them as bytes, never as a string it would have to make up.
std::optional<std::string> StoredJson(std::string_view v, const JsonLimits& limits) {
  size_t pos = 0;
  if (SkipCanonical(v, &pos) && pos == v.size()) return std::string(v);
  auto parsed = ParseJson(v, limits);
  if (!parsed.ok()) return std::nullopt;
  return DumpJson(*parsed);
}

// RFC 4648 section 4 base64, padded: what `base64 -d` and every language's
// standard decoder read. Values are opaque to kcqrs; no URL travels here.
std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < in.size()) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// `"key":"o-1"`, or `"key_base64":"/w=="` for a key that is not UTF-8 (the
// cursor keeps its bytes either way).
std::string KeyMember(std::string_view key) {
  if (util::IsValidUtf8(key)) return "\"key\":" + http::JsonQuote(key);
  return "\"key_base64\":\"" + Base64(key) + "\"";
}


std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string NewCommandId() {
  static thread_local std::mt19937_64 gen(std::random_device{}());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(gen()),
                static_cast<unsigned long long>(gen()));
  return buf;
}

// The smallest string greater than every string starting with `prefix`;
// empty when there is none (all 0xff).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return prefix;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace

// Requests parked until a position is applied, answered by a thread of
// their own: stream threads notify through the PositionLog.
class Waiter {
 public:
  struct Parked {
    std::function<PositionLog::Answer()> check;
    std::function<void()> on_applied;
    std::function<void(PositionLog::Answer)> on_give_up;  // too old, or time-out
    Clock::time_point deadline;
  };

  explicit Waiter(const PositionLog* log) : log_(log) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Waiter() { Stop(); }

  // Checks at once (most reads need no wait), else parks.
  void Park(Parked p) {
    std::optional<PositionLog::Answer> answer;
    Guard([&] { answer = p.check(); });
    if (!answer) return;  // dropped: answered 500
    if (*answer == PositionLog::Answer::kApplied) return Guard(p.on_applied);
    if (*answer == PositionLog::Answer::kTooOld) return Guard([&] { p.on_give_up(*answer); });
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      lock.unlock();
      return Guard([&] { p.on_give_up(PositionLog::Answer::kPending); });
    }
    parked_.push_back(std::move(p));
  }

  void Stop() {
    std::list<Parked> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      left.swap(parked_);
    }
    if (thread_.joinable()) thread_.join();
    for (Parked& p : left) Guard([&] { p.on_give_up(PositionLog::Answer::kPending); });
  }

 private:
  // Runs a parked request's callback. One that throws (a bug, or a stored
  // document of a shape nobody expected) must not end the waiter thread or
  // the process: it is logged, and the request dropped with it, so its
  // Responder dies unanswered and the server answers 500.
  template <typename F>
  static void Guard(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      spdlog::error("http: a waiting request failed: {}", e.what());
    } catch (...) {
      spdlog::error("http: a waiting request failed with an unknown exception");
    }
  }

  void Run() {
    uint64_t seen = log_->version();
    for (;;) {
      // Woken by every commit; the time-out bounds how late a deadline is.
      log_->WaitForChange(seen, std::chrono::milliseconds(50));
      seen = log_->version();
      std::list<Parked> batch;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        batch.swap(parked_);
      }
      const auto now = Clock::now();
      std::list<Parked> still;
      for (Parked& p : batch) {
        std::optional<PositionLog::Answer> answer;
        Guard([&] { answer = p.check(); });
        if (!answer) continue;  // dropped: answered 500
        if (*answer == PositionLog::Answer::kApplied) {
          Guard(p.on_applied);
        } else if (*answer == PositionLog::Answer::kTooOld || now >= p.deadline) {
          Guard([&] { p.on_give_up(*answer); });
        } else {
          still.push_back(std::move(p));
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      parked_.splice(parked_.end(), still);
    }
  }

  const PositionLog* log_;
  std::mutex mu_;
  std::list<Parked> parked_;
  bool stopping_ = false;
  std::thread thread_;
};

class HttpApi::Impl {
 public:
  Impl(EngineView* engine, HttpApiOptions options)
      : engine_(engine), options_(std::move(options)), waiter_(&engine->positions()) {}

  ~Impl() { Stop(); }

  Status Start() {
    auto producer = NewProducer();
    if (!producer.ok()) return producer.status();
    producer_ = std::move(producer).value();
    // Delivery reports answer POST /commands; this thread serves them.
    poller_ = std::thread([this] {
      while (!stopping_) Producer()->Poll(std::chrono::milliseconds(20));
    });
    return Status::OK();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    waiter_.Stop();
    if (auto p = Producer()) (void)p->Flush(std::chrono::seconds(5));
    stopping_ = true;
    if (poller_.joinable()) poller_.join();
    std::lock_guard<std::mutex> lock(producer_mu_);
    producer_.reset();
  }

  void Register(http::Router& router) {
    Add(router, "GET", "/healthz", [this](const http::Request&) { return Healthz(); });
    Add(router, "GET", "/readyz", [this](const http::Request&) { return Readyz(); });
    Add(router, "GET", "/stats", [this](const http::Request&) {
      return http::Response::Json(200, engine_->Stats().dump());
    });
    Add(router, "GET", "/metrics", [this](const http::Request&) {
      return http::Response::Text(200, engine_->metrics()->Serialize(),
                                  std::string(metrics::Metrics::kContentType));
    });
    Add(router, "GET", "/stores", [this](const http::Request&) { return ListStores(); });
    Add(router, "GET", "/topology", [this](const http::Request& req) { return Topology(req); });
    Add(router, "GET", "/", [](const http::Request&) {
      return http::Response::Text(200, std::string(UiPageHtml()), "text/html; charset=utf-8");
    });
    AddAsync(router, "GET", "/stores/{store}/keys/{key}",
             [this](const http::Request& req, http::Responder respond) {
               Query(req, std::move(respond), /*scan=*/false);
             });
    AddAsync(router, "GET", "/stores/{store}/keys",
             [this](const http::Request& req, http::Responder respond) {
               Query(req, std::move(respond), /*scan=*/true);
             });
    AddAsync(router, "POST", "/commands/{aggregate}",
             [this](const http::Request& req, http::Responder respond) {
               PostCommand(req, std::move(respond));
             });
  }

  // Registers a route whose requests are counted and timed under its
  // pattern (never the raw path, which would make a series per key).
  void Add(http::Router& router, const std::string& method, const std::string& pattern,
           http::Handler handler) {
    AddAsync(router, method, pattern,
             [handler = std::move(handler)](const http::Request& req, http::Responder respond) {
               respond(handler(req));
             });
  }

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

  void AddAsync(http::Router& router, const std::string& method, const std::string& pattern,
                http::AsyncHandler handler) {
    auto counters = std::make_shared<RouteCounters>();
    counters->metrics = engine_->metrics();
    counters->method = method;
    counters->pattern = pattern;
    counters->duration = counters->metrics->HttpDuration(pattern);
    router.AddAsync(method, pattern,
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

 private:
  http::Response Topology(const http::Request& req) const {
    auto format = ParseDescribeFormat(req.Query("format").value_or("json"));
    if (!format) {
      return Problem(400, "bad-parameter", "Bad parameter",
                     "format: expected json, mermaid or text");
    }
    auto topology = engine_->topology();
    if (!topology) return Unavailable("not-ready", "Not ready", "the engine is still starting");
    std::string body = Describe(*topology, *format);
    if (*format == DescribeFormat::kJson) return http::Response::Json(200, std::move(body));
    return http::Response::Text(200, std::move(body));
  }

  http::Response Healthz() const {
    Status s = engine_->health();
    if (!s.ok()) return Problem(500, "failed", "The engine has stopped", s.ToString());
    return http::Response::Json(200, R"({"status":"UP"})");
  }

  http::Response Readyz() const {
    json body = engine_->Readiness();
    if (engine_->ready()) return http::Response::Json(200, body.dump());
    http::Response r = http::Response::Json(503, body.dump());
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  http::Response ListStores() const {
    auto topology = engine_->topology();
    StoreRegistry* registry = engine_->registry();
    if (!topology || !registry) {
      return Unavailable("not-ready", "Not ready", "the engine is still starting");
    }
    json stores = json::array();
    for (const std::string& name : registry->stores()) {
      json s;
      s["name"] = name;
      s["kind"] = topology->Store(name).kind == StoreSpec::Kind::kMemory ? "memory" : "rocksdb";
      s["partitions"] = registry->partitions(name);
      s["changelog"] = topology->ChangelogTopic(name);
      json hosted = json::array();
      uint64_t keys = 0;
      for (const auto& [p, reader] : registry->Hosted(name)) {
        hosted.push_back(p);
        keys += reader->ApproximateNumEntries();
      }
      s["hosted_partitions"] = hosted;
      s["approximate_keys"] = keys;
      json positions = json::object();
      for (const auto& [topic, parts] : registry->Positions(name)) {
        for (const auto& [p, next] : parts) positions[topic][std::to_string(p)] = next;
      }
      s["positions"] = positions;
      stores.push_back(std::move(s));
    }
    return http::Response::Json(
        200, json{{"stores", stores},
                  {"note", "approximate_keys is an estimate (RocksDB's estimate-num-keys) "
                           "over the partitions hosted by this instance"}}
                 .dump());
  }

  // The topics on the way from any record to `store`: its task's sources,
  // and hop by hop the sources of the tasks that write them.
  std::set<std::string> PathTopics(const CompiledTopology& t, const SubTopology& st) const {
    std::set<std::string> out;
    std::vector<const SubTopology*> todo = {&st};
    std::set<int> visited;
    while (!todo.empty()) {
      const SubTopology* cur = todo.back();
      todo.pop_back();
      if (!visited.insert(cur->id).second) continue;
      for (const std::string& source : cur->sources) {
        out.insert(source);
        for (const SubTopology& other : t.subtopologies()) {
          for (const Node& n : other.nodes) {
            for (const std::string& sink : n.sinks) {
              if (sink == source) todo.push_back(&other);
            }
          }
        }
      }
    }
    return out;
  }

  // ?timeout_ms, or nullopt with the 400 to answer in `bad`.
  std::optional<std::chrono::milliseconds> WaitTimeout(const http::Request& req,
                                                       http::Response* bad) const {
    auto t = req.Query("timeout_ms");
    if (!t) return options_.default_wait;
    auto v = ParseInt(*t);
    if (!v || *v < 0 || *v > options_.max_wait.count()) {
      *bad = Problem(400, "bad-parameter", "Bad parameter",
                     "timeout_ms: expected 0 to " + std::to_string(options_.max_wait.count()) +
                         ", found '" + *t + "'");
      return std::nullopt;
    }
    return std::chrono::milliseconds(*v);
  }

  void Query(const http::Request& req, http::Responder respond, bool scan) {
    auto topology = engine_->topology();
    StoreRegistry* registry = engine_->registry();
    if (!topology || !registry) {
      return respond(Unavailable("not-ready", "Not ready", "the engine is still starting"));
    }
    const std::string store = req.path_params.at("store");
    const SubTopology* st = topology->SubTopologyOfStore(store);
    if (st == nullptr || !registry->View(store)) {
      return respond(Problem(404, "unknown-store", "Unknown store",
                             "no store named '" + store + "'"));
    }
    // Validate everything before waiting, so a bad request fails at once.
    http::Response bad;
    if (scan && !ValidateScan(req, &bad)) return respond(std::move(bad));
    const auto timeout_or = WaitTimeout(req, &bad);
    if (!timeout_or) return respond(std::move(bad));
    const std::chrono::milliseconds timeout = *timeout_or;
    auto run = [this, registry, store, scan, req]() {
      return scan ? Scan(registry, store, req) : Get(registry, store, req.path_params.at("key"));
    };
    auto token = req.Query("position");
    if (!token) return respond(run());
    auto position = DecodePositionToken(*token);
    if (!position) {
      return respond(Problem(400, "bad-position", "Bad position token",
                             "position: not a token returned by POST /commands"));
    }
    std::set<std::string> sources(st->sources.begin(), st->sources.end());
    std::set<std::string> path = PathTopics(*topology, *st);
    auto shared_respond = std::make_shared<http::Responder>(std::move(respond));
    const PositionLog* log = &engine_->positions();
    waiter_.Park(Waiter::Parked{
        [log, position = *position, sources, path] {
          return log->Applied(position, sources, path);
        },
        [shared_respond, run] { (*shared_respond)(run()); },
        [shared_respond, store, timeout](PositionLog::Answer answer) {
          if (answer == PositionLog::Answer::kTooOld) {
            return (*shared_respond)(Problem(
                410, "position-too-old", "Position too old",
                "this instance no longer remembers that position; query without it"));
          }
          (*shared_respond)(Unavailable(
              "position-not-reached", "Position not reached",
              "store '" + store + "' has not applied the position within " +
                  std::to_string(timeout.count()) +
                  " ms (still processing, or its task is on another instance)"));
        },
        Clock::now() + timeout});
  }

  http::Response Get(StoreRegistry* registry, const std::string& store,
                     const std::string& key) const {
    auto view = registry->View(store);
    if (!view) return Problem(404, "unknown-store", "Unknown store", "no store named '" + store + "'");
    auto v = view->Get(key);
    if (!v.ok()) {
      return Unavailable("store-unavailable", "Store unavailable", v.status().message());
    }
    if (!v->has_value()) {
      return Problem(404, "unknown-key", "Key not found",
                     "no key '" + key + "' in store '" + store + "'");
    }
    // Documents kcqrs stores are canonical JSON already: their bytes are
    // sent as they are (no parse and print per lookup).
    std::string& raw = **v;
    size_t end = 0;
    if (SkipCanonical(raw, &end) && end == raw.size()) {
      return http::Response::Json(200, std::move(raw));
    }
    if (auto doc = StoredJson(raw, options_.limits)) return http::Response::Json(200, *doc);
    return http::Response::Text(200, std::move(raw), "application/octet-stream");
  }

  bool ValidateScan(const http::Request& req, http::Response* bad) const {
    if (auto l = req.Query("limit")) {
      auto v = ParseInt(*l);
      if (!v || *v < 1 || *v > options_.max_limit) {
        *bad = Problem(400, "bad-parameter", "Bad parameter",
                       "limit: expected 1 to " + std::to_string(options_.max_limit) +
                           ", found '" + *l + "'");
        return false;
      }
    }
    if (auto c = req.Query("cursor")) {
      if (!util::Base64UrlDecode(*c)) {
        *bad = Problem(400, "bad-parameter", "Bad parameter",
                       "cursor: not a cursor returned by an earlier page");
        return false;
      }
    }
    for (const auto& [name, value] : req.query) {
      if (name != "prefix" && name != "from" && name != "to" && name != "limit" &&
          name != "cursor" && name != "position" && name != "timeout_ms" && name != "partial") {
        *bad = Problem(400, "bad-parameter", "Bad parameter",
                       "unknown parameter '" + name +
                           "' (expected prefix, from, to, limit, cursor, partial, position, "
                           "timeout_ms)");
        return false;
      }
    }
    if (auto partial = req.Query("partial"); partial && *partial != "true" && *partial != "false") {
      *bad = Problem(400, "bad-parameter", "Bad parameter",
                     "partial: expected true or false, found '" + *partial + "'");
      return false;
    }
    return true;
  }

  http::Response Scan(StoreRegistry* registry, const std::string& store,
                      const http::Request& req) const {
    std::vector<int32_t> missing;
    auto view = registry->View(store, &missing);
    if (!view) return Problem(404, "unknown-store", "Unknown store", "no store named '" + store + "'");
    // A scan that cannot see every partition says so: never a partial page
    // that looks whole.
    const bool partial = req.Query("partial").value_or("false") == "true";
    if (!missing.empty() && !partial) {
      std::string list;
      for (int32_t p : missing) list += (list.empty() ? "" : ", ") + std::to_string(p);
      return ProblemWith(503, "partitions-unavailable", "Partitions unavailable",
                         "the scan cannot see partition(s) " + list + " of store '" + store +
                             "' (restoring, or hosted by another instance); retry, or pass "
                             "partial=true for what this instance has",
                         {{"missing_partitions", missing}});
    }
    std::string from = req.Query("from").value_or("");
    std::string to = req.Query("to").value_or("");
    if (auto prefix = req.Query("prefix")) {
      if (*prefix > from) from = *prefix;
      std::string end = PrefixEnd(*prefix);
      if (!end.empty() && (to.empty() || end < to)) to = end;
    }
    if (auto cursor = req.Query("cursor")) {
      // The cursor is the last key of the previous page; continue after it.
      std::string after = *util::Base64UrlDecode(*cursor) + std::string(1, '\0');
      if (after > from) from = after;
    }
    const int limit =
        static_cast<int>(ParseInt(req.Query("limit").value_or("")).value_or(options_.default_limit));
    std::string body = "{\"items\":[";
    int n = 0;
    std::string last;
    bool more = false;
    auto it = view->Range(from, to);
    for (; it->Valid(); it->Next()) {
      if (n == limit) {
        more = true;
        break;
      }
      if (n > 0) body += ',';
      body += '{';
      body += KeyMember(it->key());
      if (auto doc = StoredJson(it->value(), options_.limits)) {
        body += ",\"value\":";
        body += *doc;
      } else {
        body += ",\"value_base64\":\"" + Base64(it->value()) + "\"";
      }
      body += '}';
      last = std::string(it->key());
      ++n;
    }
    if (!it->status().ok()) {
      return Unavailable("store-unavailable", "Store unavailable", it->status().message());
    }
    body += "],\"next\":";
    body += more ? "\"" + util::Base64UrlEncode(last) + "\"" : "null";
    if (partial) {
      body += ",\"partial\":";
      body += missing.empty() ? "false" : "true";
      body += ",\"missing_partitions\":" + json(missing).dump();
    }
    body += "}";
    return http::Response::Json(200, std::move(body));
  }

  void PostCommand(const http::Request& req, http::Responder respond) {
    http::Response bad;
    if (!options_.command_token.empty()) {
      auto auth = req.Header("authorization");
      if (!auth || *auth != "Bearer " + options_.command_token) {
        http::Response r = Problem(401, "unauthorized", "Unauthorized",
                                   "POST /commands needs 'Authorization: Bearer <token>'");
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
        return respond(std::move(r));
      }
    }
    auto topology = engine_->topology();
    if (!topology) {
      return respond(Unavailable("not-ready", "Not ready", "the engine is still starting"));
    }
    const std::string name = req.path_params.at("aggregate");
    const CompiledAggregate* agg = nullptr;
    for (const CompiledAggregate& a : topology->aggregates()) {
      if (a.spec.name == name) agg = &a;
    }
    if (agg == nullptr) {
      return respond(Problem(404, "unknown-aggregate", "Unknown aggregate",
                             "no aggregate named '" + name + "'"));
    }
    const AggregateSpec& spec = agg->spec;
    if (req.body.size() > options_.limits.max_bytes) {
      return respond(Problem(413, "too-large", "Command too large",
                             "the body is " + std::to_string(req.body.size()) +
                                 " bytes, more than the limit of " +
                                 std::to_string(options_.limits.max_bytes) +
                                 " bytes (limits.max_document_bytes)"));
    }
    // Within the limits, so that nothing deeper is ever built, copied or
    // written (each of those recurses per level).
    auto parsed = ParseJson(req.body, options_.limits);
    if (!parsed.ok()) {
      const std::string why = parsed.status().message();
      return respond(Problem(400, "bad-command", "Bad command",
                             why.rfind("not valid JSON", 0) == 0
                                 ? "the body must be a JSON object (the command); it is " + why
                                 : "the body: " + why));
    }
    json command = std::move(parsed).value();
    if (!command.is_object()) {
      return respond(Problem(400, "bad-command", "Bad command",
                             "the body must be a JSON object (the command)"));
    }
    auto type = command.find(spec.type_field);
    if (type == command.end() || !type->is_string()) {
      return respond(Problem(400, "bad-command", "Bad command",
                             "the command has no '" + spec.type_field + "' field (a string)"));
    }
    if (!agg->commands.count(type->get<std::string>())) {
      return respond(Problem(400, "bad-command", "Bad command",
                             "unknown command type '" + type->get<std::string>() +
                                 "' for aggregate '" + name + "' (known: " +
                                 agg->command_types + ")"));
    }
    std::string id;
    if (!spec.id_field.empty()) {
      auto f = command.find(spec.id_field);
      if (f != command.end() && f->is_string()) id = f->get<std::string>();
      if (f != command.end() && f->is_number_integer()) id = f->dump();
      if (id.empty()) {
        return respond(Problem(400, "bad-command", "Bad command",
                               "the command has no '" + spec.id_field +
                                   "' field (the aggregate id)"));
      }
    } else {
      id = req.Query("key").value_or("");
      if (id.empty()) {
        return respond(Problem(400, "bad-command", "Bad command",
                               "aggregate '" + name +
                                   "' takes its id from the record key: pass ?key=ID"));
      }
      if (auto why = NotUtf8("key", id, "the aggregate id (the command's Kafka key)")) {
        return respond(Problem(400, "bad-parameter", "Bad parameter", *why));
      }
    }
    const auto timeout_or = WaitTimeout(req, &bad);
    if (!timeout_or) return respond(std::move(bad));
    const std::chrono::milliseconds timeout = *timeout_or;
    const bool wait = req.Query("wait").value_or("false") == "true";
    std::string command_id;
    auto cid = command.find(spec.command_id_field);
    if (cid != command.end() && cid->is_string() && !cid->get<std::string>().empty()) {
      command_id = cid->get<std::string>();
    } else {
      command_id = NewCommandId();
      command[spec.command_id_field] = command_id;
    }

    kafka::OutgoingRecord record;
    record.topic = spec.command_topics.front();
    const int partitions = topology->partitions(record.topic);
    if (partitions > 0) record.partition = PartitionForKey(id, partitions);
    record.key = id;
    record.value = command.dump();
    auto shared_respond = std::make_shared<http::Responder>(std::move(respond));
    std::shared_ptr<kafka::Producer> producer = Producer();
    Status sent = producer->Send(
        record, [this, shared_respond, command_id, wait, timeout, topology, agg, id,
                 topic = record.topic, producer_of_record = producer.get()](
                    const Status& s, int32_t partition, int64_t offset) {
          // Runs on the producer's poll thread, inside librdkafka: nothing
          // may escape. A failure drops the responder, which answers 500.
          try {
            if (s.IsFenced()) ReplaceProducer(producer_of_record);
            if (!s.ok()) {
              // With the commandId, the client can retry safely: the same
              // id is decided once.
              return (*shared_respond)(
                  ProblemWith(503, "kafka-unavailable", "Command not written",
                              "writing the command to " + topic + " failed: " + s.message() +
                                  "; retry with the same commandId",
                              {{"commandId", command_id}}));
            }
            RecordPosition position{topic, partition, offset};
            const std::string token = EncodePositionToken(position);
            if (!wait) {
              return (*shared_respond)(http::Response::Json(
                  202, json{{"commandId", command_id}, {"position", token}}.dump()));
            }
            AwaitDecision(shared_respond, position, token, command_id, *agg, id, topology,
                          timeout);
          } catch (const std::exception& e) {
            spdlog::error("http: POST /commands: answering command {} failed: {}", command_id,
                          e.what());
          }
        });
    if (!sent.ok()) {
      if (sent.IsFenced()) ReplaceProducer(producer.get());
      (*shared_respond)(ProblemWith(503, "kafka-unavailable", "Command not written",
                                    sent.message() + "; retry with the same commandId",
                                    {{"commandId", command_id}}));
    }
  }

  // Answers once the aggregate's task has committed past the command: with
  // its events (200) or its rejection (409), read from the aggregate's
  // remembered outcomes.
  void AwaitDecision(std::shared_ptr<http::Responder> respond, RecordPosition position,
                     std::string token, std::string command_id, const CompiledAggregate& agg,
                     std::string id, std::shared_ptr<const CompiledTopology> topology,
                     std::chrono::milliseconds timeout) {
    const PositionLog* log = &engine_->positions();
    StoreRegistry* registry = engine_->registry();
    const std::set<std::string> sources = {position.topic};
    const std::string store = agg.spec.store;
    const int window = agg.spec.dedup_window;
    waiter_.Park(Waiter::Parked{
        [log, position, sources] { return log->Applied(position, sources, sources); },
        [respond, registry, store, id, command_id, token, window, topology, log, position] {
          auto view = registry->View(store);
          auto v = view ? view->Get(id) : Result<std::optional<std::string>>(
                                              Status::Unavailable("store not hosted"));
          if (!v.ok()) {
            return (*respond)(Unavailable("store-unavailable", "Store unavailable",
                                          v.status().message()));
          }
          json aggregate = v->has_value() ? json::parse(**v, nullptr, false) : json();
          if (aggregate.is_object()) {
            for (const json& c : aggregate.value("commands", json::array())) {
              if (c.value("id", "") != command_id) continue;
              if (c.contains("rejected")) {
                json body = {{"type", std::string(kProblemBase) + "rejected"},
                             {"title", "Command rejected"},
                             {"status", 409},
                             {"detail", c["rejected"].value("reason", "")},
                             {"code", c["rejected"].value("code", "")},
                             {"commandId", command_id},
                             {"position", token}};
                http::Response r = http::Response::Json(409, body.dump());
                r.content_type = "application/problem+json";
                return (*respond)(std::move(r));
              }
              return (*respond)(http::Response::Json(
                  200, json{{"commandId", command_id},
                            {"position", token},
                            {"events", c.value("events", json::array())}}
                           .dump()));
            }
          }
          if (auto reason = log->DeadLetterReason(position)) {
            http::Response r = http::Response::Json(
                422, json{{"type", std::string(kProblemBase) + "dead-lettered"},
                          {"title", "Command dead-lettered"},
                          {"status", 422},
                          {"detail", "the command went to the dead-letter topic: " + *reason},
                          {"reason", *reason},
                          {"commandId", command_id},
                          {"position", token}}
                         .dump());
            r.content_type = "application/problem+json";
            return (*respond)(std::move(r));
          }
          if (window == 0) {
            return (*respond)(http::Response::Json(
                200, json{{"commandId", command_id}, {"position", token}, {"decided", true}}
                         .dump()));
          }
          // Decided here, not dead-lettered by a commit this process
          // remembers: its outcome was kept with the aggregate and has left
          // the window of the last `dedup_window` outcomes since (or it was
          // dead-lettered by an earlier run of the application).
          http::Response r = http::Response::Json(
              200, json{{"commandId", command_id},
                        {"position", token},
                        {"decided", true},
                        {"outcome", "unknown"},
                        {"detail", "the command was decided, but its outcome is no longer "
                                   "remembered: the aggregate keeps the last " +
                                       std::to_string(window) +
                                       " outcomes (dedup_window); read the event and "
                                       "rejection topics for it"}}
                       .dump());
          (*respond)(std::move(r));
        },
        [respond, token, timeout, command_id](PositionLog::Answer) {
          json body = {{"type", std::string(kProblemBase) + "not-decided-in-time"},
                       {"title", "Command not decided in time"},
                       {"status", 503},
                       {"detail", "the command is written but was not decided within " +
                                      std::to_string(timeout.count()) +
                                      " ms; query with its position to see its effects, or "
                                      "post it again with the same commandId for its outcome"},
                       {"commandId", command_id},
                       {"position", token}};
          http::Response r = http::Response::Json(503, body.dump());
          r.content_type = "application/problem+json";
          r.headers.emplace_back("Retry-After", "1");
          (*respond)(std::move(r));
        },
        Clock::now() + timeout});
  }

  EngineView* engine_;
  HttpApiOptions options_;
  Waiter waiter_;
  // The idempotent producer of POST /commands. librdkafka can end one for
  // good (a fatal idempotence error, e.g. librdkafka 2.0.2's sequence
  // desynchronization after a broker restart, librdkafka#4438): the first
  // request that sees it replaces it, so that commands flow again instead of
  // answering 503 until a restart. Requests in flight on the old one are
  // answered (503, retry with the same commandId) when it goes.
  Result<std::unique_ptr<kafka::Producer>> NewProducer() const {
    kafka::Properties p = options_.kafka_properties;
    p["bootstrap.servers"] = options_.bootstrap_servers;
    p["client.id"] = options_.application_id + "-http-commands";
    p["enable.idempotence"] = "true";
    p["acks"] = "all";
    p["linger.ms"] = "1";
    auto producer = kafka::Producer::Create(p);
    if (!producer.ok()) return producer.status().WithContext("the command producer");
    return producer;
  }
  std::shared_ptr<kafka::Producer> Producer() const {
    std::lock_guard<std::mutex> lock(producer_mu_);
    return producer_;
  }
  // Replaces `failed` unless another request has already done so.
  void ReplaceProducer(const kafka::Producer* failed) {
    std::lock_guard<std::mutex> lock(producer_mu_);
    if (producer_.get() != failed || stopping_) return;
    auto fresh = NewProducer();
    if (!fresh.ok()) {
      spdlog::error("http: replacing the command producer: {}", fresh.status().ToString());
      return;
    }
    spdlog::warn("http: the command producer failed for good; replaced it");
    producer_ = std::move(fresh).value();
  }
  mutable std::mutex producer_mu_;
  std::shared_ptr<kafka::Producer> producer_;  // guarded by producer_mu_
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
};

HttpApi::HttpApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpApi::~HttpApi() = default;

Result<std::unique_ptr<HttpApi>> HttpApi::Create(EngineView* engine, HttpApiOptions options) {
  auto impl = std::make_unique<Impl>(engine, std::move(options));
  KCQRS_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpApi>(new HttpApi(std::move(impl)));
}

void HttpApi::Register(http::Router& router) { impl_->Register(router); }
void HttpApi::Stop() { impl_->Stop(); }

}  // namespace kcqrs::engine
