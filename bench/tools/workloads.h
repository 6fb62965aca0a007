// The benchmark workloads of bench/WORKLOADS.md as pure functions: the
// deterministic record generators, the orders rules
// (bench/orders/topology.yaml) simulated in memory, and the order-independent
// digests the checker compares.
//
// No Kafka here, so that the generator, the expected outcome and the checker
// share one definition of every record and cannot drift apart. Everything is
// deterministic; none of it is thread-safe unless stated (each instance is
// owned by one thread).
#ifndef KCQRS_BENCH_TOOLS_WORKLOADS_H_
#define KCQRS_BENCH_TOOLS_WORKLOADS_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kbench {

// splitmix64 (Steele, Lea, Flood 2014) as a function of its state: the value
// the generator returns after being seeded with x. WORKLOADS.md's r.
uint64_t SplitMix64(uint64_t x);

// A 64-bit hash of bytes (FNV-1a, then the splitmix64 finalizer so that the
// sums below spread over all 64 bits).
uint64_t Hash64(std::string_view bytes);

// A multiset digest: the sum mod 2^64 of Hash64(key + "\n" + value) over the
// records added, so it does not depend on the order records are read in (Kafka
// gives no order across partitions) but does count duplicates.
class Digest {
 public:
  void Add(std::string_view key, std::string_view value);
  uint64_t value() const { return sum_; }
  uint64_t count() const { return count_; }
  // 16 lowercase hex digits: JSON numbers above 2^53 do not survive every
  // reader, so the expected files store digests as strings.
  std::string Hex() const;

 private:
  uint64_t sum_ = 0;
  uint64_t count_ = 0;
};

std::string HexDigest(uint64_t v);

// The canonical text of a JSON document: object keys sorted (nlohmann's
// default std::map), no whitespace, and floats with an integral value written
// as integers, so that 3.0 from one engine equals 3 from another (the contract
// compares parsed JSON, and `cents`/`quantity` are integers).
nlohmann::json Canonicalize(nlohmann::json v);
// Parses `text` and returns its canonical text; throws std::invalid_argument
// when it is not JSON.
std::string CanonicalJson(std::string_view text);

// ---------------------------------------------------------------------------
// 1. Stateless.

// Fills key and value of record n (0-based) of bench.stateless.in.
void StatelessRecord(uint64_t n, std::string* key, std::string* value);

// The transform of WORKLOADS.md §1 on record n: false when the record is
// dropped, else the output value as a JSON object.
bool StatelessTransform(uint64_t n, nlohmann::json* out);

// ---------------------------------------------------------------------------
// 2. Orders.

enum class CommandType { kCreateOrder, kAdjustQuantity, kCancelOrder };
const char* CommandTypeName(CommandType t);

// One command of the orders workload, not yet rendered as JSON.
struct OrderCommand {
  CommandType type;
  std::string order_id;
  std::string product;   // CreateOrder only
  int64_t quantity = 0;  // CreateOrder only
  int64_t delta = 0;     // AdjustQuantity only
  std::string command_id;
};

// How an order family names its orders: bench.orders.commands uses
// `o-%06d`/`c-%06d-%d`, `kbench offer` `o-<prefix>-%07d`/`c-<prefix>-%07d-%d`,
// recovery `o-R%07d`/`c-R%07d`.
struct OrderNaming {
  std::string order_prefix = "o-";
  std::string command_prefix = "c-";
  int digits = 6;
};

std::string ProductOf(uint64_t k);

// Step s (0..9) of order k, by the rules of WORKLOADS.md §2.
OrderCommand OrderStep(const OrderNaming& naming, uint64_t k, int s);

// The single CreateOrder of recovery order k (WORKLOADS.md §4): orderId
// `o-R%07d`, commandId `c-R%07d`, quantity 1 + r % 10 with r = splitmix64(16k)
// as for step 0 of the orders workload, product as there.
OrderCommand RecoveryCommand(uint64_t k);

// Command i (0-based) of `kbench offer --prefix prefix`: orders
// `o-<prefix>-%07d`, in blocks of 100 orders, step-major within a block, so
// that the load spreads over keys and partitions while each order still sees
// its own commands in order. Offer and the expected outcome share it.
OrderCommand OfferedCommand(const std::string& prefix, uint64_t i);

// The command's record value, fields in the contract's order (type, orderId,
// product/quantity or delta, commandId). Byte-exact: the generators write it.
std::string CommandValue(const OrderCommand& c);

// The outcome of the orders rules, event by event and view by view: what an
// engine's output topics and changelogs must hold after processing every
// command. Commands are applied one at a time; since every rule reads only its
// own aggregate (or, for product_totals, only sums), the outcome does not
// depend on how commands of different orders interleave.
class OrdersModel {
 public:
  void Apply(const OrderCommand& c);

  // {"commands", "events":{"total","by_type","digest"},
  //  "rejections":{"total","by_code","digest"},
  //  (events also "headers_digest": EventHeaderIdentity of every event)
  //  "stores":{"orders":{"keys","digest"},"product_totals":{"keys","digest"}}}
  nlohmann::json Summary() const;

  // The digest of an event record (key = orderId, canonical value).
  static void AddEvent(Digest* d, std::string_view key,
                       const nlohmann::json& event);
  // The part of a rejection that every engine must agree on: the reason and the
  // timestamp are left out (the reason text is an engine's wording).
  static nlohmann::json RejectionIdentity(const nlohmann::json& rejection);
  // What an event's headers must say beyond its value (WORKLOADS.md §2,
  // Headers): the command that made it and the aggregate version it made;
  // digested per event with the orderId as key ("headers_digest").
  static std::string EventHeaderIdentity(std::string_view type,
                                         std::string_view version,
                                         std::string_view command_id,
                                         std::string_view command_type);

 private:
  struct Aggregate {
    std::string product;
    int64_t quantity = 0;
    int64_t version = 0;  // events so far: the version the last one made
    bool cancelled = false;
    std::vector<std::string> seen;  // last 100 command ids, oldest first
  };
  void Reject(const OrderCommand& c, const char* code);
  void Emit(const OrderCommand& c, nlohmann::json event);

  std::unordered_map<std::string, Aggregate> aggregates_;
  std::map<std::string, nlohmann::json> orders_view_;
  std::map<std::string, nlohmann::json> product_totals_;
  std::map<std::string, uint64_t> events_by_type_;
  std::map<std::string, uint64_t> rejections_by_code_;
  Digest events_;
  Digest event_headers_;
  Digest rejections_;
  uint64_t commands_ = 0;
};

// The Kafka record headers every engine writes on the orders workload's
// events and rejections (WORKLOADS.md §2, Headers; kcqrs's
// engine/codec/headers.h), checked record by record as the checker reads
// them. Records of one partition must come in offset order.
class OrdersHeaderCheck {
 public:
  // Name and value (nullopt: a null value) of each header, in record order.
  using Headers =
      std::vector<std::pair<std::string, std::optional<std::string>>>;

  // An event of `topic`: kcqrs.type = the value's "type", kcqrs.aggregate =
  // order, kcqrs.aggregate.id = the key = the value's "orderId",
  // kcqrs.command.type = the command that makes such an event,
  // kcqrs.command.id non-empty, kcqrs.version = 1, 2, 3, ... over the order's
  // events in offset order (all in one partition).
  void Event(std::string_view topic, int32_t partition, int64_t offset,
             std::string_view key, const nlohmann::json& event,
             const Headers& headers);
  // A rejection: kcqrs.type = Rejected, kcqrs.aggregate = the value's
  // "aggregate", kcqrs.aggregate.id = the key = "aggregateId",
  // kcqrs.command.id = "commandId", kcqrs.command.type = "commandType", and
  // no kcqrs.version.
  void Rejection(std::string_view topic, int32_t partition, int64_t offset,
                 std::string_view key, const nlohmann::json& rejection,
                 const Headers& headers);

  // Records with at least one wrong, missing or duplicated header.
  uint64_t bad_records() const { return bad_records_; }
  // The first problems, one line each: topic, partition, offset, what.
  const std::vector<std::string>& problems() const { return problems_; }
  // EventHeaderIdentity of each event whose headers were all there, keyed by
  // its key: compared with the model's "headers_digest".
  const Digest& event_headers() const { return event_headers_; }

  static constexpr size_t kMaxProblems = 20;

 private:
  struct Order {
    int32_t partition = 0;
    int64_t version = 0;  // of its last event read
  };
  class Record;
  std::unordered_map<std::string, Order> orders_;
  Digest event_headers_;
  uint64_t bad_records_ = 0;
  std::vector<std::string> problems_;
};

// The expected outcome of `orders` orders of bench.orders.commands.
nlohmann::json ExpectedOrders(uint64_t orders);

// The first `sent` commands `kbench offer --prefix prefix` produced.
struct OfferedRun {
  std::string prefix;
  uint64_t sent = 0;
};

// The expected outcome of an input topic that holds `orders` orders of the
// orders workload, recovery orders 0..recovery-1 and the offered runs (each
// order's commands reach the rules in order; orders never share an id across
// these families, so how they interleave does not matter).
nlohmann::json ExpectedCommands(uint64_t orders, uint64_t recovery,
                                const std::vector<OfferedRun>& offered);

// Folds a changelog into the final value per key and digests it: null (a
// tombstone) deletes the key.
class ChangelogFold {
 public:
  void Put(std::string_view key, const std::string* value_or_null);
  // {"keys", "digest", "timestamped_values"}. Throws std::invalid_argument
  // when a final value is not JSON.
  nlohmann::json Summary() const;

 private:
  std::unordered_map<std::string, std::string> last_;
};

// The JSON document of a store value as its changelog holds it. Kafka
// Streams' timestamped key-value stores (the DSL's default) prefix every
// changelog value with its 8-byte record timestamp; without that prefix the
// value is the document itself. Sets *timestamped when the prefix was found.
std::string_view ChangelogDocument(std::string_view value, bool* timestamped);

}  // namespace kbench

#endif  // KCQRS_BENCH_TOOLS_WORKLOADS_H_
