// QueryRoutes: the read side of HttpApi (Kafka Streams' interactive
// queries), over the StoreRegistry's committed-data readers:
//
//   GET /stores                      stores, key estimates, positions
//   GET /stores/{store}/keys/{key}   one value (?position=TOKEN waits)
//   GET /stores/{store}/keys         prefix / range scans with paging, and
//                                    partial answers when asked for
//
// Any instance answers for any key (docs/http-api.md): a get for a key of a
// partition hosted elsewhere is forwarded to its holder (forwarding.h); a
// scan asks every holder of the partitions not hosted here for its first
// page (`only_partitions`, `partial=true`) and merges the pages in key order.
// A partition whose holder cannot answer is read from a standby copy (this
// instance's, else another standby holder's, asked with Kcqrs-Standby-Ok):
// always for a get, for a scan when its client allows it; never for a read
// that waits for a ?position.
//
// Owned by HttpApi. Thread-safety: the handlers run on the server's I/O
// threads and, for reads that wait for a position, on the Waiter's; the
// answers of other instances arrive on the Forwarder's thread.
#ifndef KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_
#define KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/serving/engine_view.h"
#include "engine/serving/forwarding.h"
#include "engine/serving/http_api.h"
#include "engine/serving/route_helpers.h"
#include "engine/serving/waiter.h"

namespace kcqrs::engine {

class QueryRoutes {
 public:
  // Every argument must outlive the routes.
  QueryRoutes(EngineView* engine, const HttpApiOptions* options, Waiter* waiter,
              const Forwarder* forwarder)
      : engine_(engine), options_(options), waiter_(waiter), forwarder_(forwarder) {}

  void Register(RouteTable& routes);

  // One source's page of a scan: this instance's, or a holder's, or a
  // standby copy's.
  struct ScanPage {
    // (key bytes, the item's JSON), in key order.
    std::vector<std::pair<std::string, std::string>> items;
    bool more = false;             // the source has items past the last
    std::vector<int32_t> missing;  // partitions asked of it that it lacks
    std::vector<int32_t> standby;  // partitions read from a standby copy
  };
  struct Gather;

 private:
  http::Response ListStores() const;
  void Query(const http::Request& req, http::Responder respond, bool scan);
  http::Response Get(StoreRegistry* registry, const std::string& store,
                     const std::string& key) const;
  void ForwardGet(const http::Request& req, const SubTopology& st, int32_t partition,
                  std::chrono::milliseconds timeout, http::Responder respond) const;
  // The key's answer from this instance's standby copy of `partition`
  // (marked Kcqrs-Standby), if it keeps one and could read it.
  std::optional<http::Response> FromStandby(const std::string& store, const std::string& key,
                                            int32_t partition) const;
  // The holder of a key's partition cannot answer: a standby copy here or
  // on another instance answers instead, else `unavailable` does.
  void OrFromStandby(const http::Request& req, const SubTopology& st, int32_t partition,
                     http::Response unavailable, http::Responder respond) const;
  // `r` as it is if it names who served it, else as served here.
  http::Response ServedBySomeone(http::Response r) const;
  // The other instances that keep a standby copy of `partition`'s task.
  std::vector<InstanceInfo> OtherStandbys(const SubTopology& st, int32_t partition) const;
  // Asks `target` of each of `standbys` in turn, from `next` on, marked
  // Kcqrs-Standby-Ok, until one gives an answer `answers` accepts; `done`
  // gets it and who gave it, or nullopt when none did (called once, on the
  // Forwarder's thread, or here when there is nobody to ask).
  using StandbyAnswer = std::optional<std::pair<http::ClientResponse, InstanceInfo>>;
  void AskStandbys(std::string target, std::vector<InstanceInfo> standbys, size_t next,
                   std::function<bool(const http::ClientResponse&)> answers,
                   std::function<void(StandbyAnswer)> done) const;
  // `only`: the only_partitions asked for, when the request has them.
  bool ValidateScan(const http::Request& req, int partitions,
                    std::optional<std::set<int32_t>>* only, http::Response* bad) const;
  // The local part of a scan: the hosted partitions (of `only`, if set).
  // Sets *error instead when the store cannot be read.
  ScanPage LocalScan(StoreRegistry* registry, const std::string& store,
                     const http::Request& req, const std::optional<std::set<int32_t>>& only,
                     http::Response* error) const;
  http::Response Scan(StoreRegistry* registry, const std::string& store,
                      const http::Request& req,
                      const std::optional<std::set<int32_t>>& only) const;
  // The same page over this instance's standby copies of `partitions`:
  // those it keeps no copy of are `missing`, the others `standby`.
  ScanPage StandbyScan(const std::string& store, const http::Request& req,
                       const std::vector<int32_t>& partitions) const;
  // A source of `gather` answered `page`; the partitions it lacks are read
  // from standby copies when the scan allows it (StandbyScans).
  void PageOrStandbys(const std::shared_ptr<Gather>& gather, ScanPage page,
                      const std::string& why) const;
  // Answers, as one source of `gather`, for `partitions` whose active
  // holder is unknown, did not answer or lacks them (`why`): from this
  // instance's standby copies, then each other standby holder's, when the
  // scan allows it; else (and for what no copy answers) as unanswered.
  void StandbyScans(const std::shared_ptr<Gather>& gather, std::vector<int32_t> partitions,
                    const std::string& why) const;
  // A scan of every partition: here and at each holder of the others.
  // `hosted`: the partitions scanned here; `elsewhere`: the others.
  // `wait_local`: parks the local part until the ?position is applied
  // (calls its argument with the local part's answer), or null.
  void FanOutScan(const http::Request& req, StoreRegistry* registry, const SubTopology& st,
                  std::set<int32_t> hosted, std::vector<int32_t> elsewhere,
                  std::chrono::milliseconds timeout, http::Responder respond) const;
  // Parks `run` until the store has applied the request's ?position (or
  // answers the timeout / too-old problem through `respond`).
  void AfterPosition(const RecordPosition& position, const SubTopology& st,
                     const std::string& store, std::chrono::milliseconds timeout,
                     std::function<void()> run,
                     std::function<void(http::Response)> respond) const;
  int Limit(const http::Request& req) const;

  EngineView* engine_;
  const HttpApiOptions* options_;
  Waiter* waiter_;
  const Forwarder* forwarder_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_
