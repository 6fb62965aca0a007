#include "engine/serving/query_routes.h"

#include <strings.h>

#include "json/document.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/codec/json_codec.h"
#include "engine/codec/partitioner.h"
#include "util/base64url.h"
#include "util/utf8.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

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

// The version of a stored aggregate, {"commands":[...],"state":...,
// "version":N}, for its ETag, read from the end of its canonical text (keys
// sorted: "version" is last) without parsing it.
std::optional<int64_t> VersionAtEnd(std::string_view v) {
  static constexpr std::string_view kKey = "\"version\":";
  if (v.size() < kKey.size() + 3 || v.back() != '}') return std::nullopt;
  const size_t digits = v.find_last_not_of("0123456789", v.size() - 2);
  if (digits == std::string_view::npos || digits + 1 == v.size() - 1 ||
      digits + 1 < kKey.size() || v.substr(digits + 1 - kKey.size(), kKey.size()) != kKey) {
    return std::nullopt;
  }
  return ParseInt(v.substr(digits + 1, v.size() - 2 - digits));
}

// The same from a parsed document (a stored value that was not canonical).
std::optional<int64_t> VersionOf(const json& doc) {
  if (!doc.is_object()) return std::nullopt;
  auto it = doc.find("version");
  // is_number_integer() holds for unsigned too: keep within int64.
  if (it == doc.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX) return std::nullopt;
  return it->get<int64_t>();
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


// The internal parameter of a scan one instance asks of a holder: answer
// for these partitions only ("0,2").
constexpr char kOnlyPartitions[] = "only_partitions";
// What a forwarded request may take beyond the wait the client asked for:
// the hop itself.
constexpr std::chrono::milliseconds kForwardMargin{5000};

// "0,2" -> {0, 2}; every entry a partition of the store, none twice.
Result<std::set<int32_t>> ParsePartitionList(std::string_view list, int partitions) {
  std::set<int32_t> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view item = list.substr(start, comma - start);
    auto v = ParseInt(item);
    if (!v || *v < 0 || *v >= partitions) {
      return Status::InvalidArgument("expected partition numbers 0 to " +
                                     std::to_string(partitions - 1) +
                                     " separated by commas, found '" + std::string(item) + "'");
    }
    if (!out.insert(static_cast<int32_t>(*v)).second) {
      return Status::InvalidArgument("partition " + std::string(item) + " is listed twice");
    }
    start = comma + 1;
  }
  return out;
}

std::string JoinPartitions(const std::vector<int32_t>& partitions) {
  std::string list;
  for (int32_t p : partitions) list += (list.empty() ? "" : ", ") + std::to_string(p);
  return list;
}

// 503 naming the partitions a scan could not see, and why when known.
http::Response MissingPartitions(const std::string& store, const std::vector<int32_t>& missing,
                                 const std::vector<std::string>& why) {
  std::string detail = "the scan cannot see partition(s) " + JoinPartitions(missing) +
                       " of store '" + store + "' (";
  if (why.empty()) {
    detail += "restoring, or hosted by another instance";
  } else {
    for (size_t i = 0; i < why.size(); ++i) detail += (i > 0 ? "; " : "") + why[i];
  }
  detail += "); retry, or pass partial=true for what can be seen";
  return ProblemWith(503, "partitions-unavailable", "Partitions unavailable", detail,
                     {{"missing_partitions", missing}});
}

// A read may be answered from a standby copy, a moment behind its holder,
// when it asks for that (Kcqrs-Standby-Ok) and need not see a given write
// (?position): read-your-writes waits for the holder.
bool StandbyAllowed(const http::Request& req) {
  return req.Header(kStandbyOkHeader).has_value() && !req.Query("position");
}

// A page as the client sees it: items, the cursor of the next page, and,
// when asked for partial answers, what was missing; when a standby copy
// answered for some partitions, which (and Kcqrs-Standby: true), so that
// a page a moment behind never looks current.
http::Response RenderPage(const QueryRoutes::ScanPage& page, bool partial) {
  std::string body = "{\"items\":[";
  for (size_t i = 0; i < page.items.size(); ++i) {
    if (i > 0) body += ',';
    body += page.items[i].second;
  }
  body += "],\"next\":";
  body += page.more && !page.items.empty()
              ? "\"" + util::Base64UrlEncode(page.items.back().first) + "\""
              : "null";
  if (partial) {
    body += ",\"partial\":";
    body += page.missing.empty() ? "false" : "true";
    body += ",\"missing_partitions\":" + json(page.missing).dump();
  }
  if (!page.standby.empty()) body += ",\"standby_partitions\":" + json(page.standby).dump();
  body += "}";
  http::Response r = http::Response::Json(200, std::move(body));
  if (!page.standby.empty()) r.headers.emplace_back(kStandbyHeader, "true");
  return r;
}

void SortUnique(std::vector<int32_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

// The first `limit` items of several sources' pages, in key order. Each
// source gave its first `limit` items past the cursor, so the first
// `limit` of them all are the first `limit` of the store.
QueryRoutes::ScanPage MergePages(std::vector<QueryRoutes::ScanPage> pages, size_t limit) {
  QueryRoutes::ScanPage merged;
  for (QueryRoutes::ScanPage& p : pages) {
    merged.more = merged.more || p.more;
    std::move(p.items.begin(), p.items.end(), std::back_inserter(merged.items));
    merged.missing.insert(merged.missing.end(), p.missing.begin(), p.missing.end());
    merged.standby.insert(merged.standby.end(), p.standby.begin(), p.standby.end());
  }
  std::sort(merged.items.begin(), merged.items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  if (merged.items.size() > limit) {
    merged.items.resize(limit);
    merged.more = true;
  }
  SortUnique(&merged.missing);
  SortUnique(&merged.standby);
  return merged;
}

// Standard padded base64 (as Base64 writes it) back to bytes.
std::optional<std::string> FromBase64(std::string s) {
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
    else if (c == '-' || c == '_') return std::nullopt;
  }
  return util::Base64UrlDecode(s);
}

// A holder's answer to a scan for some of its partitions (RenderPage's,
// with partial=true) back into a page.
Result<QueryRoutes::ScanPage> ParsePage(int status, const std::string& body) {
  json doc = ParseJson(body);
  if (status != 200) {
    std::string detail = doc.is_object() ? doc.value("detail", "") : "";
    return Status::Unavailable("answered " + std::to_string(status) +
                               (detail.empty() ? "" : ": " + detail));
  }
  if (!doc.is_object() || !doc.contains("items") || !doc["items"].is_array()) {
    return Status::Unavailable("answered 200 without a page of items");
  }
  QueryRoutes::ScanPage page;
  for (const json& item : doc["items"]) {
    std::optional<std::string> key;
    if (item.is_object() && item.contains("key") && item["key"].is_string()) {
      key = item["key"].get<std::string>();
    } else if (item.is_object() && item.contains("key_base64") &&
               item["key_base64"].is_string()) {
      key = FromBase64(item["key_base64"].get<std::string>());
    }
    if (!key) return Status::Unavailable("answered an item without a key");
    // DumpJson: the holder's decimals stay as it wrote them. ParseJson
    // took only valid UTF-8, so nothing here can throw.
    page.items.emplace_back(std::move(*key), DumpJson(item));
  }
  page.more = doc.contains("next") && doc["next"].is_string();
  for (auto [member, out] : {std::pair{"missing_partitions", &page.missing},
                             std::pair{"standby_partitions", &page.standby}}) {
    if (!doc.contains(member) || !doc[member].is_array()) continue;
    for (const json& p : doc[member]) {
      if (p.is_number_integer()) out->push_back(p.get<int32_t>());
    }
  }
  return page;
}

}  // namespace

void QueryRoutes::Register(RouteTable& routes) {
  // http.query_token guards every read of a store's contents (and their
  // list); a request forwarded by another instance carries the token too.
  routes.Add("GET", "/stores", [this](const http::Request& req) {
    if (auto denied = Unauthorized(req, options_->query_token, "GET /stores")) {
      return forwarder_->ServedHere(std::move(*denied));
    }
    return ListStores();
  });
  routes.AddAsync("GET", "/stores/{store}/keys/{key}",
                  [this](const http::Request& req, http::Responder respond) {
                    if (auto denied = Unauthorized(req, options_->query_token, "GET /stores")) {
                      return respond(forwarder_->ServedHere(std::move(*denied)));
                    }
                    Query(req, std::move(respond), /*scan=*/false);
                  });
  routes.AddAsync("GET", "/stores/{store}/keys",
                  [this](const http::Request& req, http::Responder respond) {
                    if (auto denied = Unauthorized(req, options_->query_token, "GET /stores")) {
                      return respond(forwarder_->ServedHere(std::move(*denied)));
                    }
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

void QueryRoutes::Query(const http::Request& req, http::Responder raw_respond, bool scan) {
  // Every answer made here says so; the answers relayed from a holder
  // carry the holder's id instead (see ForwardGet and FanOutScan).
  const Forwarder* forwarder = forwarder_;
  auto respond = [forwarder, raw_respond](http::Response r) {
    raw_respond(forwarder->ServedHere(std::move(r)));
  };
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
  // Validate everything before waiting or forwarding, so a bad request
  // fails at once, here.
  http::Response bad;
  std::optional<std::set<int32_t>> only;
  if (scan && !ValidateScan(req, registry->partitions(store), &only, &bad)) {
    return respond(std::move(bad));
  }
  const auto timeout_or =
      WaitTimeout(req, options_->default_wait, options_->max_wait, &bad);
  if (!timeout_or) return respond(std::move(bad));
  const std::chrono::milliseconds timeout = *timeout_or;
  std::optional<RecordPosition> position;
  if (auto token = req.Query("position")) {
    position = DecodePositionToken(*token);
    if (!position) {
      return respond(Problem(400, "bad-position", "Bad position token",
                             "position: not a position token (one returned by POST "
                             "/commands, or base64url of {\"t\":topic,\"p\":partition,"
                             "\"o\":offset} of a command produced to Kafka: "
                             "docs/http-api.md)"));
    }
  }
  std::vector<int32_t> missing;
  std::shared_ptr<const ReadOnlyKeyValueStore> view = registry->View(store, &missing);
  const bool forwarded = Forwarder::WasForwarded(req);

  if (!scan) {
    const std::string key = req.path_params.at("key");
    const int partitions = registry->partitions(store);
    const int32_t p = partitions > 0 ? PartitionForKey(key, partitions) : 0;
    bool hosted = std::find(missing.begin(), missing.end(), p) == missing.end();
    if (hosted && !position && forwarder_->directory() != nullptr) {
      http::Response here = Get(registry, store, key);
      if (here.status != 503) return respond(std::move(here));
      // The partition left between the look above and the read (a
      // rebalance moved it, e.g. to this instance's own standby copy or to
      // another holder): answer as for a partition hosted elsewhere, not
      // with a 503 a moment before the next owner could have answered.
      hosted = false;
    }
    if (!hosted) {
      // A key that producers not partitioning by murmur2 put into a
      // partition hosted here is answered here (RoutingView looks).
      if (!position) {
        auto v = view->Get(key);
        if (v.ok() && v->has_value()) return respond(Get(registry, store, key));
      }
      if (forwarded && StandbyAllowed(req)) {
        if (auto answer = FromStandby(store, key, p)) return respond(std::move(*answer));
      }
      if (forwarded) {
        return respond(ProblemWith(
            503, "partition-not-hosted", "Partition not hosted here",
            "partition " + std::to_string(p) + " of store '" + store +
                "' is not hosted by this instance; the request was forwarded by " +
                req.Header(kForwardedByHeader).value_or("") +
                ", whose directory is a moment behind a rebalance; retry",
            {{"partition", p}}));
      }
      if (forwarder_->directory() != nullptr) {
        return ForwardGet(req, *st, p, timeout, std::move(raw_respond));
      }
      // A process alone: the partition is restoring, or another process's
      // that this one knows nothing of; the view says which partition.
    }
    auto run = [this, registry, store, key] { return Get(registry, store, key); };
    if (!position) return respond(run());
    auto shared = std::make_shared<decltype(respond)>(std::move(respond));
    return AfterPosition(*position, *st, store, timeout, [shared, run] { (*shared)(run()); },
                         [shared](http::Response r) { (*shared)(std::move(r)); });
  }

  // A scan. A holder answering for some partitions (only_partitions), or a
  // request another instance forwarded, is answered from here alone.
  if (!only && !forwarded && !missing.empty() && forwarder_->directory() != nullptr) {
    std::set<int32_t> hosted;
    for (int32_t p = 0; p < registry->partitions(store); ++p) hosted.insert(p);
    for (int32_t p : missing) hosted.erase(p);
    return FanOutScan(req, registry, *st, std::move(hosted), std::move(missing), timeout,
                      std::move(raw_respond));
  }
  auto run = [this, registry, store, req, only] { return Scan(registry, store, req, only); };
  if (!position) return respond(run());
  auto shared = std::make_shared<decltype(respond)>(std::move(respond));
  AfterPosition(*position, *st, store, timeout, [shared, run] { (*shared)(run()); },
                [shared](http::Response r) { (*shared)(std::move(r)); });
}

void QueryRoutes::AfterPosition(const RecordPosition& position, const SubTopology& st,
                                const std::string& store, std::chrono::milliseconds timeout,
                                std::function<void()> run,
                                std::function<void(http::Response)> respond) const {
  auto topology = engine_->topology();
  std::set<std::string> sources(st.sources.begin(), st.sources.end());
  std::set<std::string> path = PathTopics(*topology, st);
  const PositionLog* log = &engine_->positions();
  waiter_->Park(Waiter::Parked{
      [log, position, sources, path] { return log->Applied(position, sources, path); },
      std::move(run),
      [respond, store, timeout](PositionLog::Answer answer) {
        if (answer == PositionLog::Answer::kTooOld) {
          return respond(Problem(
              410, "position-too-old", "Position too old",
              "this instance no longer remembers that position; query without it"));
        }
        respond(Unavailable(
            "position-not-reached", "Position not reached",
            "store '" + store + "' has not applied the position within " +
                std::to_string(timeout.count()) +
                " ms (still processing, or its task is on another instance)"));
      },
      Clock::now() + timeout});
}

void QueryRoutes::ForwardGet(const http::Request& req, const SubTopology& st, int32_t partition,
                             std::chrono::milliseconds timeout,
                             http::Responder respond) const {
  const std::string store = req.path_params.at("store");
  const std::string task = TaskIdOf(st, partition);
  std::optional<InstanceInfo> holder = forwarder_->OtherHolder(task);
  if (!holder) {
    return OrFromStandby(req, st, partition,
                         ProblemWith(503, "partition-unavailable", "Partition unavailable",
                                     "partition " + std::to_string(partition) + " of store '" +
                                         store + "' (task " + task +
                                         ") has no active holder that can answer now (between "
                                         "owners, or restoring); retry",
                                     {{"partition", partition}}),
                         std::move(respond));
  }
  // The holder may wait for ?position up to the same timeout; the margin
  // is for the hop itself.
  forwarder_->Send(
      *holder, "GET", req.target, {}, "", timeout + kForwardMargin,
      [this, req, st, respond = std::move(respond), holder = *holder, partition, store,
       task](Result<http::ClientResponse> answer) mutable {
        if (answer.ok() && answer->status != 503) {
          return respond(Forwarder::Relay(*answer, holder));
        }
        http::Response unavailable =
            answer.ok() ? Forwarder::Relay(*answer, holder)
                        : ProblemWith(503, "partition-unavailable", "Partition unavailable",
                                      "partition " + std::to_string(partition) + " of store '" +
                                          store + "' (task " + task +
                                          ") is held by instance " + holder.id +
                                          ", which did not answer: " +
                                          answer.status().message() + "; retry",
                                      {{"partition", partition}, {"holder", holder.id}});
        OrFromStandby(req, st, partition, std::move(unavailable), std::move(respond));
      });
}

http::Response QueryRoutes::ServedBySomeone(http::Response r) const {
  // A holder's own 503, relayed, already names it.
  for (const auto& [name, value] : r.headers) {
    if (strcasecmp(name.c_str(), kServedByHeader) == 0) return r;
  }
  return forwarder_->ServedHere(std::move(r));
}

std::optional<http::Response> QueryRoutes::FromStandby(const std::string& store,
                                                       const std::string& key,
                                                       int32_t partition) const {
  StoreRegistry* standby = engine_->standby_registry();
  if (standby == nullptr) return std::nullopt;
  std::vector<int32_t> missing;
  if (!standby->View(store, &missing)) return std::nullopt;
  if (std::find(missing.begin(), missing.end(), partition) != missing.end()) return std::nullopt;
  http::Response r = Get(standby, store, key);
  // The copy closed between the look above and the read: its task is
  // being promoted here or dropped. No copy, then, rather than a 503 for a
  // key that another copy or the new owner answers.
  if (r.status == 503) return std::nullopt;
  r.headers.emplace_back(kStandbyHeader, "true");
  return r;
}

void QueryRoutes::OrFromStandby(const http::Request& req, const SubTopology& st,
                                int32_t partition, http::Response unavailable,
                                http::Responder respond) const {
  // A read that must see a write (?position) waits for the holder; any
  // other read may be answered from a standby copy, a moment behind, and
  // says so: the key stays answerable while its task moves.
  const std::string store = req.path_params.at("store");
  const std::string key = req.path_params.at("key");
  if (req.Query("position")) return respond(ServedBySomeone(std::move(unavailable)));
  if (auto here = FromStandby(store, key, partition)) {
    return respond(forwarder_->ServedHere(std::move(*here)));
  }
  AskStandbys(
      req.target, OtherStandbys(st, partition), 0,
      [](const http::ClientResponse& answer) { return answer.status != 503; },
      [this, unavailable = std::move(unavailable),
       respond = std::move(respond)](StandbyAnswer answer) mutable {
        if (answer) return respond(Forwarder::Relay(answer->first, answer->second));
        respond(ServedBySomeone(std::move(unavailable)));
      });
}

std::vector<InstanceInfo> QueryRoutes::OtherStandbys(const SubTopology& st,
                                                     int32_t partition) const {
  std::vector<InstanceInfo> standbys;
  if (const InstanceDirectory* d = forwarder_->directory()) {
    for (InstanceInfo& i : d->StandbyHolders(TaskIdOf(st, partition))) {
      if (i.id != forwarder_->SelfId()) standbys.push_back(std::move(i));
    }
  }
  return standbys;
}

void QueryRoutes::AskStandbys(std::string target, std::vector<InstanceInfo> standbys,
                              size_t next,
                              std::function<bool(const http::ClientResponse&)> answers,
                              std::function<void(StandbyAnswer)> done) const {
  if (next >= standbys.size()) return done(std::nullopt);
  const InstanceInfo standby = standbys[next];
  forwarder_->Send(
      standby, "GET", target, {{kStandbyOkHeader, "1"}}, "", std::chrono::seconds(2),
      [this, target, standbys = std::move(standbys), next, answers = std::move(answers),
       done = std::move(done), standby](Result<http::ClientResponse> answer) mutable {
        if (answer.ok() && answers(*answer)) {
          return done(std::make_pair(std::move(answer).value(), standby));
        }
        AskStandbys(std::move(target), std::move(standbys), next + 1, std::move(answers),
                    std::move(done));
      });
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
  const bool canonical = SkipCanonical(raw, &end) && end == raw.size();
  // An aggregate's own store: its version is the ETag that If-Match on
  // POST /commands takes back (optimistic concurrency).
  bool aggregate_store = false;
  if (auto topology = engine_->topology()) {
    for (const CompiledAggregate& a : topology->aggregates()) {
      aggregate_store = aggregate_store || a.spec.store == store;
    }
  }
  auto tagged = [aggregate_store](http::Response r, std::optional<int64_t> version) {
    if (aggregate_store && version) r.headers.emplace_back("ETag", VersionETag(*version));
    return r;
  };
  if (canonical) {
    const std::optional<int64_t> version = aggregate_store ? VersionAtEnd(raw) : std::nullopt;
    return tagged(http::Response::Json(200, std::move(raw)), version);
  }
  // Other values (a C++ processor's) are JSON when they parse within the
  // limits, parsed once here; else bytes, never a string made up for them.
  auto parsed = ParseJson(raw, options_->limits);
  if (!parsed.ok()) return http::Response::Text(200, std::move(raw), "application/octet-stream");
  return tagged(http::Response::Json(200, DumpJson(*parsed)), VersionOf(*parsed));
}

bool QueryRoutes::ValidateScan(const http::Request& req, int partitions,
                               std::optional<std::set<int32_t>>* only,
                               http::Response* bad) const {
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
        name != "cursor" && name != "position" && name != "timeout_ms" && name != "partial" &&
        name != kOnlyPartitions) {
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
  if (auto list = req.Query(kOnlyPartitions)) {
    auto parsed = ParsePartitionList(*list, partitions);
    if (!parsed.ok()) {
      *bad = Problem(400, "bad-parameter", "Bad parameter",
                     std::string(kOnlyPartitions) + ": " + parsed.status().message());
      return false;
    }
    *only = std::move(parsed).value();
  }
  return true;
}

int QueryRoutes::Limit(const http::Request& req) const {
  return static_cast<int>(
      ParseInt(req.Query("limit").value_or("")).value_or(options_->default_limit));
}

QueryRoutes::ScanPage QueryRoutes::LocalScan(StoreRegistry* registry, const std::string& store,
                                             const http::Request& req,
                                             const std::optional<std::set<int32_t>>& only,
                                             http::Response* error) const {
  ScanPage page;
  auto view = only ? registry->ViewOf(store, *only, &page.missing)
                   : registry->View(store, &page.missing);
  if (!view) {
    *error = UnknownStore(store);
    return page;
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
  const size_t limit = static_cast<size_t>(Limit(req));
  auto it = view->Range(from, to);
  for (; it->Valid(); it->Next()) {
    if (page.items.size() == limit) {
      page.more = true;
      break;
    }
    std::string item = "{" + KeyMember(it->key());
    if (auto doc = StoredJson(it->value(), options_->limits)) {
      item += ",\"value\":";
      item += *doc;
    } else {
      item += ",\"value_base64\":\"" + Base64(it->value()) + "\"";
    }
    item += '}';
    page.items.emplace_back(std::string(it->key()), std::move(item));
  }
  if (!it->status().ok()) {
    *error = Unavailable("store-unavailable", "Store unavailable", it->status().message());
  }
  return page;
}

http::Response QueryRoutes::Scan(StoreRegistry* registry, const std::string& store,
                                 const http::Request& req,
                                 const std::optional<std::set<int32_t>>& only) const {
  http::Response error;
  ScanPage page = LocalScan(registry, store, req, only, &error);
  if (error.status != 200) return error;
  // Another instance asking for partitions whose holder cannot answer, of
  // this instance as a standby holder (StandbyScans there): its copies
  // answer for what it does not run.
  if (!page.missing.empty() && Forwarder::WasForwarded(req) && StandbyAllowed(req)) {
    ScanPage copies = StandbyScan(store, req, page.missing);
    page.missing.clear();
    page = MergePages({std::move(page), std::move(copies)}, static_cast<size_t>(Limit(req)));
  }
  // A scan that cannot see every partition says so: never a partial page
  // that looks whole.
  const bool partial = req.Query("partial").value_or("false") == "true";
  if (!page.missing.empty() && !partial) return MissingPartitions(store, page.missing, {});
  return RenderPage(page, partial);
}

QueryRoutes::ScanPage QueryRoutes::StandbyScan(const std::string& store,
                                               const http::Request& req,
                                               const std::vector<int32_t>& partitions) const {
  ScanPage page;
  StoreRegistry* copies = engine_->standby_registry();
  http::Response error;
  if (copies != nullptr) {
    page = LocalScan(copies, store, req,
                     std::set<int32_t>(partitions.begin(), partitions.end()), &error);
  }
  // No copies, or a copy that cannot be read now: the partitions are for
  // another standby holder to answer.
  if (copies == nullptr || error.status != 200) {
    page = ScanPage{};
    page.missing = partitions;
    return page;
  }
  for (int32_t p : partitions) {
    if (std::find(page.missing.begin(), page.missing.end(), p) == page.missing.end()) {
      page.standby.push_back(p);
    }
  }
  return page;
}

// What a fanned-out scan waits for: the local part and one answer per
// holder, each delivered once, from any thread.
struct QueryRoutes::Gather {
  std::mutex mu;
  int pending = 0;  // answers still to come
  std::vector<ScanPage> pages;
  std::vector<int32_t> unanswered;
  std::vector<std::string> why;
  std::optional<http::Response> failure;  // answered as it is
  bool failure_relayed = false;            // a holder's, with its Served-By
  const Forwarder* forwarder = nullptr;
  std::function<void(http::Response)> respond;
  http::Request req;  // the client's
  SubTopology st;     // the store's
  std::string store;
  // What each source is asked: the client's page with partial=true and
  // only_partitions= (its partitions follow).
  std::string target_base;
  size_t limit = 0;
  bool partial = false;
  bool standby_ok = false;  // StandbyAllowed(req)

  // A source will give `n` answers more: called by a source before its
  // own answer (so that the gather cannot finish in between).
  void Expect(size_t n) {
    std::lock_guard<std::mutex> lock(mu);
    pending += static_cast<int>(n);
  }
  void Page(ScanPage page) {
    Done([&] { pages.push_back(std::move(page)); });
  }
  void Unanswered(const std::vector<int32_t>& partitions, std::string reason) {
    Done([&] {
      unanswered.insert(unanswered.end(), partitions.begin(), partitions.end());
      why.push_back(std::move(reason));
    });
  }
  void Fail(http::Response r, bool relayed) {
    Done([&] {
      if (failure) return;
      failure = std::move(r);
      failure_relayed = relayed;
    });
  }

 private:
  template <typename F>
  void Done(F add) {
    {
      std::lock_guard<std::mutex> lock(mu);
      add();
      if (--pending > 0) return;
    }
    const bool relayed = failure && failure_relayed;
    http::Response r = Finish();
    respond(relayed ? std::move(r) : forwarder->ServedHere(std::move(r)));
  }
  http::Response Finish() {
    if (failure) return std::move(*failure);
    ScanPage merged = MergePages(std::move(pages), limit);
    merged.missing.insert(merged.missing.end(), unanswered.begin(), unanswered.end());
    SortUnique(&merged.missing);
    if (!merged.missing.empty() && !partial) return MissingPartitions(store, merged.missing, why);
    return RenderPage(merged, partial);
  }
};

void QueryRoutes::FanOutScan(const http::Request& req, StoreRegistry* registry,
                             const SubTopology& st, std::set<int32_t> hosted,
                             std::vector<int32_t> elsewhere, std::chrono::milliseconds timeout,
                             http::Responder respond) const {
  const std::string store = req.path_params.at("store");
  auto gather = std::make_shared<Gather>();
  gather->store = store;
  gather->req = req;
  gather->st = st;
  gather->limit = static_cast<size_t>(Limit(req));
  gather->partial = req.Query("partial").value_or("false") == "true";
  gather->standby_ok = StandbyAllowed(req);
  gather->forwarder = forwarder_;
  gather->respond = std::move(respond);

  // Who answers for what. A partition nobody holds fails the scan at once
  // (unless partial, or a standby copy may answer for it): no waiting on
  // the others for a 503.
  std::map<std::string, std::pair<InstanceInfo, std::vector<int32_t>>> by_holder;
  std::vector<int32_t> orphans;
  for (int32_t p : elsewhere) {
    if (auto holder = forwarder_->OtherHolder(TaskIdOf(st, p))) {
      auto& entry = by_holder[holder->id];
      entry.first = *holder;
      entry.second.push_back(p);
    } else {
      orphans.push_back(p);
    }
  }
  if (!orphans.empty() && !gather->partial && !gather->standby_ok) {
    return gather->respond(forwarder_->ServedHere(MissingPartitions(
        store, orphans, {"no instance holds them as active tasks now (between owners, or "
                         "restoring)"})));
  }
  gather->pending = 1 + static_cast<int>(by_holder.size()) + (orphans.empty() ? 0 : 1);

  // What every holder is asked: the same page, for its partitions, with
  // what it lacks listed rather than refused.
  std::string query;
  for (const auto& [name, value] : req.query) {
    if (name == "partial" || name == kOnlyPartitions) continue;
    query += UrlEncode(name) + "=" + UrlEncode(value) + "&";
  }
  query += "partial=true&";
  query += kOnlyPartitions;
  query += "=";
  gather->target_base = "/stores/" + UrlEncode(store) + "/keys?" + query;
  for (auto& [id, entry] : by_holder) {
    std::string list;
    for (int32_t p : entry.second) list += (list.empty() ? "" : ",") + std::to_string(p);
    forwarder_->Send(
        entry.first, "GET", gather->target_base + list, {}, "", timeout + kForwardMargin,
        [this, gather, holder = entry.first, partitions = entry.second](
            Result<http::ClientResponse> answer) {
          if (!answer.ok()) {
            return StandbyScans(gather, partitions,
                                "instance " + holder.id +
                                    " did not answer: " + answer.status().message());
          }
          if (answer->status >= 400 && answer->status < 500) {
            return gather->Fail(Forwarder::Relay(*answer, holder), /*relayed=*/true);
          }
          auto page = ParsePage(answer->status, answer->body);
          if (!page.ok()) {
            return StandbyScans(gather, partitions,
                                "instance " + holder.id + ": " + page.status().message());
          }
          PageOrStandbys(gather, std::move(page).value(),
                         "instance " + holder.id + " does not host them now");
        });
  }
  if (!orphans.empty()) {
    StandbyScans(gather, orphans, "no instance holds them as active tasks now");
  }

  auto local = [this, registry, store, req, hosted, gather] {
    http::Response error;
    ScanPage page = LocalScan(registry, store, req, std::optional<std::set<int32_t>>(hosted),
                              &error);
    if (error.status != 200) return gather->Fail(std::move(error), /*relayed=*/false);
    PageOrStandbys(gather, std::move(page), "no longer hosted here");
  };
  auto token = req.Query("position");
  if (!token) return local();
  AfterPosition(*DecodePositionToken(*token), st, store, timeout, local,
                [gather](http::Response r) { gather->Fail(std::move(r), /*relayed=*/false); });
}

void QueryRoutes::PageOrStandbys(const std::shared_ptr<Gather>& gather, ScanPage page,
                                 const std::string& why) const {
  if (gather->standby_ok && !page.missing.empty()) {
    // The copies' answer comes before this page's, which finishes nothing.
    gather->Expect(1);
    StandbyScans(gather, std::exchange(page.missing, {}), why);
  }
  gather->Page(std::move(page));
}

void QueryRoutes::StandbyScans(const std::shared_ptr<Gather>& gather,
                               std::vector<int32_t> partitions, const std::string& why) const {
  if (!gather->standby_ok) return gather->Unanswered(partitions, why);
  // This instance's copies first: no hop. Each partition it keeps no copy
  // of is asked of the other standby holders one by one (their copies
  // differ), as a lookup of one of its keys would be.
  ScanPage here = StandbyScan(gather->store, gather->req, partitions);
  const std::vector<int32_t> rest = std::exchange(here.missing, {});
  gather->Expect(rest.size());
  gather->Page(std::move(here));
  for (int32_t p : rest) {
    AskStandbys(
        gather->target_base + std::to_string(p), OtherStandbys(gather->st, p), 0,
        [p](const http::ClientResponse& answer) {
          auto page = ParsePage(answer.status, answer.body);
          return page.ok() &&
                 std::find(page->missing.begin(), page->missing.end(), p) == page->missing.end();
        },
        [gather, p, why](StandbyAnswer answer) {
          if (!answer) {
            return gather->Unanswered({p}, why + "; no standby copy of partition " +
                                               std::to_string(p) + " answered");
          }
          gather->Page(*ParsePage(answer->first.status, answer->first.body));
        });
  }
}
}  // namespace kcqrs::engine
