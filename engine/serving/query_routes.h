// QueryRoutes: the read side of HttpApi (Kafka Streams' interactive
// queries), over the StoreRegistry's committed-data readers:
//
//   GET /stores                      stores, key estimates, positions
//   GET /stores/{store}/keys/{key}   one value (?position=TOKEN waits)
//   GET /stores/{store}/keys         prefix / range scans with paging, and
//                                    partial answers when asked for
//
// Owned by HttpApi. Thread-safety: the handlers run on the server's I/O
// threads and, for reads that wait for a position, on the Waiter's.
#ifndef KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_
#define KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_

#include <string>

#include "engine/serving/engine_view.h"
#include "engine/serving/http_api.h"
#include "engine/serving/route_helpers.h"
#include "engine/serving/waiter.h"

namespace kcqrs::engine {

class QueryRoutes {
 public:
  // Every argument must outlive the routes.
  QueryRoutes(EngineView* engine, const HttpApiOptions* options, Waiter* waiter)
      : engine_(engine), options_(options), waiter_(waiter) {}

  void Register(RouteTable& routes);

 private:
  http::Response ListStores() const;
  void Query(const http::Request& req, http::Responder respond, bool scan);
  http::Response Get(StoreRegistry* registry, const std::string& store,
                     const std::string& key) const;
  bool ValidateScan(const http::Request& req, http::Response* bad) const;
  http::Response Scan(StoreRegistry* registry, const std::string& store,
                      const http::Request& req) const;

  EngineView* engine_;
  const HttpApiOptions* options_;
  Waiter* waiter_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_QUERY_ROUTES_H_
