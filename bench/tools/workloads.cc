#include "workloads.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace kbench {

using nlohmann::json;

uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Hash64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // FNV-1a alone leaves the high bits poorly mixed for short inputs; summing
  // such hashes would let different multisets collide more than 2^-64.
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

void Digest::Add(std::string_view key, std::string_view value) {
  std::string buf;
  buf.reserve(key.size() + 1 + value.size());
  buf.append(key).push_back('\n');
  buf.append(value);
  sum_ += Hash64(buf);
  ++count_;
}

std::string HexDigest(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

std::string Digest::Hex() const { return HexDigest(sum_); }

json Canonicalize(json v) {
  if (v.is_object() || v.is_array()) {
    for (auto& e : v) e = Canonicalize(std::move(e));
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) &&
        std::fabs(d) < 9.007199254740992e15) {
      return json(static_cast<int64_t>(d));
    }
  }
  return v;
}

std::string CanonicalJson(std::string_view text) {
  json v = json::parse(text.begin(), text.end(), nullptr, false);
  if (v.is_discarded()) {
    throw std::invalid_argument("not JSON: " +
                                std::string(text.substr(0, 200)));
  }
  return Canonicalize(std::move(v)).dump();
}

// ---------------------------------------------------------------------------
// 1. Stateless.

namespace {

constexpr const char* kKinds[] = {"view", "click", "buy"};
constexpr const char* kCountries[] = {"DE", "FR", "US", "GB",
                                      "JP", "BR", "IN", "NL"};
constexpr uint64_t kBaseTs = 1764300000000ULL;

struct StatelessFields {
  uint64_t user;
  const char* kind;
  uint64_t amount;
  const char* country;
  uint64_t ts;
  uint64_t session;
};

StatelessFields FieldsOf(uint64_t n) {
  uint64_t r = SplitMix64(n);
  return {r % 20000,       kKinds[(r >> 16) % 3],
          (r >> 24) % 500, kCountries[(r >> 33) % 8],
          kBaseTs + n,     SplitMix64(r)};
}

}  // namespace

void StatelessRecord(uint64_t n, std::string* key, std::string* value) {
  StatelessFields f = FieldsOf(n);
  char buf[320];
  int len = std::snprintf(buf, sizeof(buf), "u-%05" PRIu64, f.user);
  key->assign(buf, static_cast<size_t>(len));
  len = std::snprintf(
      buf, sizeof(buf),
      "{\"id\":\"r-%07" PRIu64 "\",\"user\":\"u-%05" PRIu64
      "\",\"kind\":\"%s\",\"amount\":%" PRIu64
      ",\"country\":\"%s\",\"ts\":%" PRIu64 ",\"session\":\"s-%016" PRIx64
      "\",\"agent\":\"Mozilla/5.0 (X11; Linux x86_64) kbench\"}",
      n, f.user, f.kind, f.amount, f.country, f.ts, f.session);
  value->assign(buf, static_cast<size_t>(len));
}

bool StatelessTransform(uint64_t n, json* out) {
  StatelessFields f = FieldsOf(n);
  if (std::string_view(f.kind) == "view" || f.amount < 100) return false;
  char id[32], user[16];
  std::snprintf(id, sizeof(id), "r-%07" PRIu64, n);
  std::snprintf(user, sizeof(user), "u-%05" PRIu64, f.user);
  *out = json{{"id", id},
              {"user", user},
              {"kind", f.kind},
              {"cents", static_cast<int64_t>(f.amount) * 100},
              {"country", f.country}};
  return true;
}

// ---------------------------------------------------------------------------
// 2. Orders.

const char* CommandTypeName(CommandType t) {
  switch (t) {
    case CommandType::kCreateOrder:
      return "CreateOrder";
    case CommandType::kAdjustQuantity:
      return "AdjustQuantity";
    case CommandType::kCancelOrder:
      return "CancelOrder";
  }
  return "?";
}

std::string ProductOf(uint64_t k) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "p-%03" PRIu64, (k * 7919) % 1000);
  return buf;
}

namespace {

std::string Numbered(const std::string& prefix, int digits, uint64_t k) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*" PRIu64, digits, k);
  return prefix + buf;
}

}  // namespace

OrderCommand OrderStep(const OrderNaming& naming, uint64_t k, int s) {
  const uint64_t r = SplitMix64(k * 16 + static_cast<uint64_t>(s));
  OrderCommand c;
  c.order_id = Numbered(naming.order_prefix, naming.digits, k);
  c.command_id = Numbered(naming.command_prefix, naming.digits, k) + "-" +
                 std::to_string(s);
  const bool create = s == 0 || (s == 9 && k % 2 == 1);
  const bool cancel = (s == 8 && k % 4 == 0) || (s == 9 && k % 2 == 0);
  if (create) {
    c.type = CommandType::kCreateOrder;
    c.product = ProductOf(k);
    c.quantity = (s == 0 && k % 20 == 0) ? 0 : static_cast<int64_t>(1 + r % 10);
  } else if (cancel) {
    c.type = CommandType::kCancelOrder;
  } else {
    c.type = CommandType::kAdjustQuantity;
    c.delta = static_cast<int64_t>(r % 9) - 3;
  }
  return c;
}

OrderCommand RecoveryCommand(uint64_t k) {
  OrderCommand c;
  c.type = CommandType::kCreateOrder;
  c.order_id = Numbered("o-R", 7, k);
  c.command_id = Numbered("c-R", 7, k);
  c.product = ProductOf(k);
  c.quantity = static_cast<int64_t>(1 + SplitMix64(k * 16) % 10);
  return c;
}

std::string CommandValue(const OrderCommand& c) {
  // Written by hand rather than with nlohmann (which sorts keys) so that the
  // field order is the contract's.
  std::string v = "{\"type\":\"";
  v += CommandTypeName(c.type);
  v += "\",\"orderId\":\"" + c.order_id + "\"";
  switch (c.type) {
    case CommandType::kCreateOrder:
      v += ",\"product\":\"" + c.product +
           "\",\"quantity\":" + std::to_string(c.quantity);
      break;
    case CommandType::kAdjustQuantity:
      v += ",\"delta\":" + std::to_string(c.delta);
      break;
    case CommandType::kCancelOrder:
      break;
  }
  v += ",\"commandId\":\"" + c.command_id + "\"}";
  return v;
}

void OrdersModel::AddEvent(Digest* d, std::string_view key, const json& event) {
  d->Add(key, Canonicalize(event).dump());
}

std::string OrdersModel::EventHeaderIdentity(std::string_view type,
                                             std::string_view version,
                                             std::string_view command_id,
                                             std::string_view command_type) {
  std::string s;
  for (std::string_view part : {type, version, command_id, command_type}) {
    s += part;
    s += '\n';
  }
  return s;
}

json OrdersModel::RejectionIdentity(const json& rejection) {
  json id = json::object();
  for (const char* f :
       {"commandId", "commandType", "aggregate", "aggregateId", "code"}) {
    auto it = rejection.find(f);
    id[f] = it == rejection.end() ? json(nullptr) : *it;
  }
  return id;
}

void OrdersModel::Reject(const OrderCommand& c, const char* code) {
  ++rejections_by_code_[code];
  json rejection = {{"commandId", c.command_id},
                    {"commandType", CommandTypeName(c.type)},
                    {"aggregate", "order"},
                    {"aggregateId", c.order_id},
                    {"code", code}};
  rejections_.Add(c.order_id, RejectionIdentity(rejection).dump());
}

void OrdersModel::Emit(const OrderCommand& c, json event) {
  const std::string type = event["type"].get<std::string>();
  ++events_by_type_[type];
  AddEvent(&events_, c.order_id, event);
  const int64_t version = ++aggregates_[c.order_id].version;
  event_headers_.Add(c.order_id,
                     EventHeaderIdentity(type, std::to_string(version),
                                         c.command_id, CommandTypeName(c.type)));

  // Projection `orders`, keyed by the event key.
  json& view = orders_view_[c.order_id];
  // Projection `product_totals`, keyed by event.product.
  const std::string product = event["product"].get<std::string>();
  json& totals = product_totals_[product];
  if (totals.is_null())
    totals = {{"product", product}, {"orders", 0}, {"quantity", 0}};
  const int64_t quantity = event["quantity"].get<int64_t>();
  if (type == "OrderCreated") {
    view = {{"orderId", c.order_id},
            {"product", product},
            {"quantity", quantity},
            {"status", "CREATED"}};
    totals["orders"] = totals["orders"].get<int64_t>() + 1;
    totals["quantity"] = totals["quantity"].get<int64_t>() + quantity;
  } else if (type == "QuantityAdjusted") {
    view["quantity"] = quantity;
    totals["quantity"] =
        totals["quantity"].get<int64_t>() + event["delta"].get<int64_t>();
  } else {  // OrderCancelled
    view["status"] = "CANCELLED";
    totals["orders"] = totals["orders"].get<int64_t>() - 1;
    totals["quantity"] = totals["quantity"].get<int64_t>() - quantity;
  }
}

void OrdersModel::Apply(const OrderCommand& c) {
  ++commands_;
  Aggregate& a = aggregates_[c.order_id];
  // Deduplication by commandId within the aggregate's last 100 (accepted or
  // rejected alike), as kcqrs's dedup_window does.
  if (std::find(a.seen.begin(), a.seen.end(), c.command_id) != a.seen.end())
    return;
  a.seen.push_back(c.command_id);
  if (a.seen.size() > 100) a.seen.erase(a.seen.begin());

  const bool exists = !a.product.empty();
  switch (c.type) {
    case CommandType::kCreateOrder:
      if (exists) return Reject(c, "already_exists");
      if (c.quantity <= 0) return Reject(c, "invalid");
      a.product = c.product;
      a.quantity = c.quantity;
      a.cancelled = false;
      return Emit(c, {{"type", "OrderCreated"},
                      {"orderId", c.order_id},
                      {"product", c.product},
                      {"quantity", c.quantity}});
    case CommandType::kAdjustQuantity:
      if (!exists) return Reject(c, "not_found");
      if (a.cancelled) return Reject(c, "cancelled");
      if (a.quantity + c.delta <= 0) return Reject(c, "invalid");
      a.quantity += c.delta;
      return Emit(c, {{"type", "QuantityAdjusted"},
                      {"orderId", c.order_id},
                      {"product", a.product},
                      {"delta", c.delta},
                      {"quantity", a.quantity}});
    case CommandType::kCancelOrder:
      if (!exists) return Reject(c, "not_found");
      if (a.cancelled) return Reject(c, "already_cancelled");
      a.cancelled = true;
      return Emit(c, {{"type", "OrderCancelled"},
                      {"orderId", c.order_id},
                      {"product", a.product},
                      {"quantity", a.quantity}});
  }
}

namespace {

json StoreSummary(const std::map<std::string, json>& store) {
  Digest d;
  for (const auto& [k, v] : store) d.Add(k, Canonicalize(v).dump());
  return {{"keys", d.count()}, {"digest", d.Hex()}};
}

uint64_t Total(const std::map<std::string, uint64_t>& m) {
  uint64_t t = 0;
  for (const auto& [k, v] : m) t += v;
  return t;
}

}  // namespace

json OrdersModel::Summary() const {
  return {{"commands", commands_},
          {"events",
           {{"total", Total(events_by_type_)},
            {"by_type", events_by_type_},
            {"digest", events_.Hex()},
            {"headers_digest", event_headers_.Hex()}}},
          {"rejections",
           {{"total", Total(rejections_by_code_)},
            {"by_code", rejections_by_code_},
            {"digest", rejections_.Hex()}}},
          {"stores",
           {{"orders", StoreSummary(orders_view_)},
            {"product_totals", StoreSummary(product_totals_)}}}};
}

// ---------------------------------------------------------------------------
// The headers of events and rejections.

namespace {

// kcqrs's names (engine/codec/headers.h), the contract's (WORKLOADS.md §2).
constexpr char kTypeHeader[] = "kcqrs.type";
constexpr char kAggregateHeader[] = "kcqrs.aggregate";
constexpr char kAggregateIdHeader[] = "kcqrs.aggregate.id";
constexpr char kVersionHeader[] = "kcqrs.version";
constexpr char kCommandIdHeader[] = "kcqrs.command.id";
constexpr char kCommandTypeHeader[] = "kcqrs.command.type";

// Text as a JSON string, for messages (bytes that are not UTF-8 replaced).
std::string Quoted(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false,
                                      json::error_handler_t::replace);
}

std::optional<std::string> StringField(const json& v, const char* field) {
  auto it = v.find(field);
  if (it == v.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The command type that makes each event type (bench/orders/topology.yaml).
const char* CommandOfEvent(std::string_view event_type) {
  if (event_type == "OrderCreated") return "CreateOrder";
  if (event_type == "QuantityAdjusted") return "AdjustQuantity";
  if (event_type == "OrderCancelled") return "CancelOrder";
  return nullptr;
}

// A version as kcqrs writes it: decimal digits, no sign, no leading zero, at
// least 1; 0 when the text is anything else.
int64_t ParseVersion(std::string_view text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return 0;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

// One record's headers under check: finds each header once and collects
// what is wrong, reported as one line per record.
class OrdersHeaderCheck::Record {
 public:
  Record(std::string_view topic, int32_t partition, int64_t offset,
         std::string_view key, const Headers& headers)
      : headers_(headers) {
    where_ = std::string(topic) + " partition " + std::to_string(partition) +
             " offset " + std::to_string(offset) + " (key " + Quoted(key) +
             ")";
  }

  // The value of header `name`, or nullptr (a problem noted) when it is
  // missing, repeated or null.
  const std::string* Get(const char* name) {
    const std::string* value = nullptr;
    int seen = 0;
    bool null = false;
    for (const auto& [k, v] : headers_) {
      if (k != name) continue;
      ++seen;
      if (v) {
        value = &*v;
      } else {
        null = true;
      }
    }
    if (seen == 0) {
      Wrong(std::string("header ") + name + " is missing");
    } else if (seen > 1) {
      Wrong(std::string("header ") + name + " appears " +
            std::to_string(seen) + " times");
    } else if (null) {
      Wrong(std::string("header ") + name + " has a null value");
    } else {
      return value;
    }
    return nullptr;
  }

  // Get, noting a problem unless the value is `want`; `why` says where the
  // right value comes from.
  const std::string* Expect(const char* name, const std::optional<std::string>& want,
                            const char* why) {
    const std::string* got = Get(name);
    if (got != nullptr && want && *got != *want) {
      Wrong(std::string("header ") + name + " is " + Quoted(*got) + ", not " +
            Quoted(*want) + " (" + why + ")");
    }
    return got;
  }

  void Absent(const char* name) {
    for (const auto& h : headers_) {
      if (h.first == name) {
        Wrong(std::string("header ") + name + " is there (only events have it)");
        return;
      }
    }
  }

  void Wrong(std::string what) { wrong_.push_back(std::move(what)); }

  // Counts and keeps the record's problems, if any.
  void Report(OrdersHeaderCheck* check) const {
    if (wrong_.empty()) return;
    ++check->bad_records_;
    if (check->problems_.size() >= kMaxProblems) return;
    std::string line = where_ + ": ";
    for (size_t i = 0; i < wrong_.size(); ++i) {
      if (i > 0) line += "; ";
      line += wrong_[i];
    }
    check->problems_.push_back(std::move(line));
  }

 private:
  const Headers& headers_;
  std::string where_;
  std::vector<std::string> wrong_;
};

void OrdersHeaderCheck::Event(std::string_view topic, int32_t partition,
                              int64_t offset, std::string_view key,
                              const json& event, const Headers& headers) {
  Record r(topic, partition, offset, key, headers);
  const std::optional<std::string> type = StringField(event, "type");
  const std::string* h_type = r.Expect(kTypeHeader, type, "the event's type");
  r.Expect(kAggregateHeader, std::string("order"), "the aggregate");
  r.Expect(kAggregateIdHeader, std::string(key), "the record key");
  const std::optional<std::string> order_id = StringField(event, "orderId");
  if (order_id && *order_id != key) {
    r.Wrong("the key is not the event's orderId " + Quoted(*order_id));
  }
  const std::string* command_id = r.Get(kCommandIdHeader);
  if (command_id != nullptr && command_id->empty()) {
    r.Wrong(std::string("header ") + kCommandIdHeader + " is empty");
  }
  std::optional<std::string> want_command;
  if (type) {
    if (const char* c = CommandOfEvent(*type)) want_command = c;
  }
  const std::string* command_type =
      r.Expect(kCommandTypeHeader, want_command, "the command that makes this event type");
  const std::string* version_text = r.Get(kVersionHeader);
  if (version_text != nullptr) {
    const int64_t version = ParseVersion(*version_text);
    if (version == 0) {
      r.Wrong(std::string("header ") + kVersionHeader + " is " +
              Quoted(*version_text) + ", not a version (1, 2, 3, ...)");
    } else {
      auto [it, first] = orders_.try_emplace(std::string(key));
      Order& o = it->second;
      if (!first && o.partition != partition) {
        r.Wrong("this order's events are in partitions " +
                std::to_string(o.partition) + " and " +
                std::to_string(partition));
      } else if (version != o.version + 1) {
        r.Wrong(std::string("header ") + kVersionHeader + " is " +
                std::to_string(version) + ", not " +
                std::to_string(o.version + 1) +
                (first ? " (the order's first event)"
                       : " (the order's previous event made version " +
                             std::to_string(o.version) + ")"));
      }
      o.partition = partition;
      o.version = version;
    }
  }
  if (h_type != nullptr && command_id != nullptr && command_type != nullptr &&
      version_text != nullptr) {
    event_headers_.Add(key, OrdersModel::EventHeaderIdentity(
                                *h_type, *version_text, *command_id,
                                *command_type));
  }
  r.Report(this);
}

void OrdersHeaderCheck::Rejection(std::string_view topic, int32_t partition,
                                  int64_t offset, std::string_view key,
                                  const json& rejection,
                                  const Headers& headers) {
  Record r(topic, partition, offset, key, headers);
  r.Expect(kTypeHeader, std::string("Rejected"), "a rejection");
  r.Expect(kAggregateHeader, StringField(rejection, "aggregate"),
           "the rejection's aggregate");
  r.Expect(kAggregateIdHeader, std::string(key), "the record key");
  const std::optional<std::string> aggregate_id =
      StringField(rejection, "aggregateId");
  if (aggregate_id && *aggregate_id != key) {
    r.Wrong("the key is not the rejection's aggregateId " + Quoted(*aggregate_id));
  }
  const std::string* command_id = r.Expect(
      kCommandIdHeader, StringField(rejection, "commandId"), "the rejection's commandId");
  if (command_id != nullptr && command_id->empty()) {
    r.Wrong(std::string("header ") + kCommandIdHeader + " is empty");
  }
  r.Expect(kCommandTypeHeader, StringField(rejection, "commandType"),
           "the rejection's commandType");
  r.Absent(kVersionHeader);
  r.Report(this);
}

OrderCommand OfferedCommand(const std::string& prefix, uint64_t i) {
  const OrderNaming naming{"o-" + prefix + "-", "c-" + prefix + "-", 7};
  constexpr uint64_t kBlock = 100;
  const uint64_t block = i / (kBlock * 10), within = i % (kBlock * 10);
  return OrderStep(naming, block * kBlock + within % kBlock,
                   static_cast<int>(within / kBlock));
}

json ExpectedCommands(uint64_t orders, uint64_t recovery,
                      const std::vector<OfferedRun>& offered) {
  OrdersModel model;
  OrderNaming naming;
  for (uint64_t k = 0; k < orders; ++k) {
    for (int s = 0; s < 10; ++s) model.Apply(OrderStep(naming, k, s));
  }
  for (uint64_t k = 0; k < recovery; ++k) model.Apply(RecoveryCommand(k));
  json runs = json::array();
  for (const OfferedRun& run : offered) {
    for (uint64_t i = 0; i < run.sent; ++i) {
      model.Apply(OfferedCommand(run.prefix, i));
    }
    runs.push_back({{"prefix", run.prefix}, {"sent", run.sent}});
  }
  json out = model.Summary();
  out["workload"] = "orders";
  out["orders"] = orders;
  out["recovery"] = recovery;
  out["offered"] = std::move(runs);
  return out;
}

json ExpectedOrders(uint64_t orders) {
  OrdersModel model;
  OrderNaming naming;
  // Order by order rather than step-major as the topic holds them: the rules
  // of one order read only that order (and product_totals only adds), so the
  // outcome is the same and this needs no replay order.
  for (uint64_t k = 0; k < orders; ++k) {
    for (int s = 0; s < 10; ++s) model.Apply(OrderStep(naming, k, s));
  }
  json out = model.Summary();
  out["workload"] = "orders";
  out["orders"] = orders;
  return out;
}

void ChangelogFold::Put(std::string_view key,
                        const std::string* value_or_null) {
  if (value_or_null == nullptr) {
    last_.erase(std::string(key));
  } else {
    last_[std::string(key)] = *value_or_null;
  }
}

std::string_view ChangelogDocument(std::string_view value, bool* timestamped) {
  *timestamped = false;
  // A JSON document starts with a printable character (after optional
  // whitespace); a big-endian epoch-ms timestamp starts with a 0 byte.
  if (value.size() > 8 && value[0] == '\0') {
    std::string_view rest = value.substr(8);
    if (!rest.empty() && (rest[0] == '{' || rest[0] == '[' || rest[0] == '"')) {
      *timestamped = true;
      return rest;
    }
  }
  return value;
}

json ChangelogFold::Summary() const {
  Digest d;
  uint64_t timestamped = 0;
  // Canonicalized here, once per key, rather than per changelog record.
  for (const auto& [k, v] : last_) {
    bool ts = false;
    d.Add(k, CanonicalJson(ChangelogDocument(v, &ts)));
    timestamped += ts ? 1 : 0;
  }
  return {{"keys", d.count()},
          {"digest", d.Hex()},
          {"timestamped_values", timestamped}};
}

}  // namespace kbench
