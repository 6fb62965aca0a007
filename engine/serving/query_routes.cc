#include "engine/serving/query_routes.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/codec/json_codec.h"
#include "util/base64url.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using nlohmann::json;

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

// The smallest string greater than every string starting with `prefix`;
// empty when there is none (all 0xff).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return prefix;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

http::Response UnknownStore(const std::string& store) {
  return Problem(404, "unknown-store", "Unknown store", "no store named '" + store + "'");
}

// The topics on the way from any record to `store`: its task's sources,
// and hop by hop the sources of the tasks that write them.
std::set<std::string> PathTopics(const CompiledTopology& t, const SubTopology& st) {
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

}  // namespace

void QueryRoutes::Register(RouteTable& routes) {
  routes.Add("GET", "/stores", [this](const http::Request&) { return ListStores(); });
  routes.AddAsync("GET", "/stores/{store}/keys/{key}",
                  [this](const http::Request& req, http::Responder respond) {
                    Query(req, std::move(respond), /*scan=*/false);
                  });
  routes.AddAsync("GET", "/stores/{store}/keys",
                  [this](const http::Request& req, http::Responder respond) {
                    Query(req, std::move(respond), /*scan=*/true);
                  });
}

http::Response QueryRoutes::ListStores() const {
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
    const HostedSummary hosted = SummarizeHosted(*registry, name);
    s["hosted_partitions"] = hosted.partitions;
    s["approximate_keys"] = hosted.approximate_keys;
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

void QueryRoutes::Query(const http::Request& req, http::Responder respond, bool scan) {
  auto topology = engine_->topology();
  StoreRegistry* registry = engine_->registry();
  if (!topology || !registry) {
    return respond(Unavailable("not-ready", "Not ready", "the engine is still starting"));
  }
  const std::string store = req.path_params.at("store");
  const SubTopology* st = topology->SubTopologyOfStore(store);
  if (st == nullptr || !registry->View(store)) {
    return respond(UnknownStore(store));
  }
  // Validate everything before waiting, so a bad request fails at once.
  http::Response bad;
  if (scan && !ValidateScan(req, &bad)) return respond(std::move(bad));
  const auto timeout_or =
      WaitTimeout(req, options_->default_wait, options_->max_wait, &bad);
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
  waiter_->Park(Waiter::Parked{
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

http::Response QueryRoutes::Get(StoreRegistry* registry, const std::string& store,
                                const std::string& key) const {
  auto view = registry->View(store);
  if (!view) return UnknownStore(store);
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
  if (auto doc = StoredJson(raw, options_->limits)) return http::Response::Json(200, *doc);
  return http::Response::Text(200, std::move(raw), "application/octet-stream");
}

bool QueryRoutes::ValidateScan(const http::Request& req, http::Response* bad) const {
  if (auto l = req.Query("limit")) {
    auto v = ParseInt(*l);
    if (!v || *v < 1 || *v > options_->max_limit) {
      *bad = Problem(400, "bad-parameter", "Bad parameter",
                     "limit: expected 1 to " + std::to_string(options_->max_limit) +
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

http::Response QueryRoutes::Scan(StoreRegistry* registry, const std::string& store,
                                 const http::Request& req) const {
  std::vector<int32_t> missing;
  auto view = registry->View(store, &missing);
  if (!view) return UnknownStore(store);
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
      static_cast<int>(ParseInt(req.Query("limit").value_or("")).value_or(options_->default_limit));
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
    if (auto doc = StoredJson(it->value(), options_->limits)) {
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

}  // namespace kcqrs::engine
