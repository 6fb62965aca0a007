#include "engine/http_api.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <functional>
#include <list>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "engine/describe.h"
#include "engine/kafka/producer.h"
#include "engine/partitioner.h"
#include "engine/ui_page.h"
#include "util/base64url.h"

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

// A value as stored: JSON documents are embedded as they are, anything else
// (a custom processor's bytes) as a JSON string.
json StoredValue(std::string_view v) {
  json j = json::parse(v, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return json(std::string(v));
  return j;
}

// The key as JSON text; invalid UTF-8 is replaced (the cursor keeps bytes).
std::string KeyJson(std::string_view key) { return http::JsonQuote(key); }


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
    auto answer = p.check();
    if (answer == PositionLog::Answer::kApplied) return p.on_applied();
    if (answer == PositionLog::Answer::kTooOld) return p.on_give_up(answer);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return p.on_give_up(PositionLog::Answer::kPending);
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
    for (Parked& p : left) p.on_give_up(PositionLog::Answer::kPending);
  }

 private:
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
        auto answer = p.check();
        if (answer == PositionLog::Answer::kApplied) {
          p.on_applied();
        } else if (answer == PositionLog::Answer::kTooOld || now >= p.deadline) {
          p.on_give_up(answer);
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
    kafka::Properties p = options_.kafka_properties;
    p["bootstrap.servers"] = options_.bootstrap_servers;
    p["client.id"] = options_.application_id + "-http-commands";
    p["enable.idempotence"] = "true";
    p["acks"] = "all";
    p["linger.ms"] = "1";
    auto producer = kafka::Producer::Create(p);
    if (!producer.ok()) return producer.status().WithContext("the command producer");
    producer_ = std::move(producer).value();
    // Delivery reports answer POST /commands; this thread serves them.
    poller_ = std::thread([this] {
      while (!stopping_) producer_->Poll(std::chrono::milliseconds(20));
    });
    return Status::OK();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    waiter_.Stop();
    if (producer_) (void)producer_->Flush(std::chrono::seconds(5));
    stopping_ = true;
    if (poller_.joinable()) poller_.join();
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
    // Documents kcqrs stores are JSON objects already: send their bytes as
    // they are (no parse and print per lookup).
    const std::string& raw = **v;
    if (!raw.empty() && (raw.front() == '{' || raw.front() == '[')) {
      return http::Response::Json(200, std::move(**v));
    }
    return http::Response::Json(200, StoredValue(raw).dump());
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
          name != "cursor" && name != "position" && name != "timeout_ms") {
        *bad = Problem(400, "bad-parameter", "Bad parameter",
                       "unknown parameter '" + name +
                           "' (expected prefix, from, to, limit, cursor, position, timeout_ms)");
        return false;
      }
    }
    return true;
  }

  http::Response Scan(StoreRegistry* registry, const std::string& store,
                      const http::Request& req) const {
    auto view = registry->View(store);
    if (!view) return Problem(404, "unknown-store", "Unknown store", "no store named '" + store + "'");
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
      body += "{\"key\":" + KeyJson(it->key()) + ",\"value\":" + StoredValue(it->value()).dump() + "}";
      last = std::string(it->key());
      ++n;
    }
    if (!it->status().ok()) {
      return Unavailable("store-unavailable", "Store unavailable", it->status().message());
    }
    body += "],\"next\":";
    body += more ? "\"" + util::Base64UrlEncode(last) + "\"" : "null";
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
    json command = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (command.is_discarded() || !command.is_object()) {
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
    Status sent = producer_->Send(
        record, [this, shared_respond, command_id, wait, timeout, topology, agg, id,
                 topic = record.topic](const Status& s, int32_t partition, int64_t offset) {
          if (!s.ok()) {
            return (*shared_respond)(Unavailable("kafka-unavailable", "Command not written",
                                                 "writing the command to " + topic +
                                                     " failed: " + s.message()));
          }
          RecordPosition position{topic, partition, offset};
          const std::string token = EncodePositionToken(position);
          if (!wait) {
            return (*shared_respond)(http::Response::Json(
                202, json{{"commandId", command_id}, {"position", token}}.dump()));
          }
          AwaitDecision(shared_respond, position, token, command_id, *agg, id, topology,
                        timeout);
        });
    if (!sent.ok()) {
      (*shared_respond)(Unavailable("kafka-unavailable", "Command not written",
                                    sent.message()));
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
        [respond, token, timeout](PositionLog::Answer) {
          json body = {{"type", std::string(kProblemBase) + "not-decided-in-time"},
                       {"title", "Command not decided in time"},
                       {"status", 503},
                       {"detail", "the command is written but was not decided within " +
                                      std::to_string(timeout.count()) +
                                      " ms; query with its position to see its effects"},
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
  std::unique_ptr<kafka::Producer> producer_;
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
