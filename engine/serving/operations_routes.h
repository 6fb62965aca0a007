// OperationsRoutes: what operators and orchestrators read.
//
//   GET /healthz    200 while the engine runs, 500 once it has failed
//   GET /readyz     200 when every task is restored and running, else 503
//                   with the reason; the tasks and their restore progress
//   GET /stats      totals, threads, stores, per-node counts, consumer lag
//   GET /metrics    Prometheus text
//   GET /topology   Describe (?format=json|mermaid|text)
//   GET /           the web page (ui_page.h), which reads the two above
//
// The JSON bodies of /readyz and /stats are made here, from the plain data
// the engine hands over (engine_view.h). Owned by HttpApi.
// Thread-safety: the handlers run on the server's I/O threads.
#ifndef KCQRS_ENGINE_SERVING_OPERATIONS_ROUTES_H_
#define KCQRS_ENGINE_SERVING_OPERATIONS_ROUTES_H_

#include <string>
#include <vector>

#include "engine/serving/engine_view.h"
#include "engine/serving/forwarding.h"
#include "engine/serving/route_helpers.h"

namespace kcqrs::engine {

// The bodies of GET /readyz and GET /stats. `registry` may be null (before
// the engine has started its threads): no stores then.
std::string ReadinessJson(const ReadinessReport& report);
std::string StatsJson(const StatsReport& report, const StoreRegistry* registry);
// The body of GET /instances: {"instances":[{id, url, active_tasks,
// standby_tasks, updated_ms, self}]}, ordered by id.
std::string InstancesJson(const std::vector<InstanceInfo>& instances);

class OperationsRoutes {
 public:
  // Both must outlive the routes.
  OperationsRoutes(EngineView* engine, const Forwarder* forwarder)
      : engine_(engine), forwarder_(forwarder) {}

  void Register(RouteTable& routes);

 private:
  http::Response Healthz() const;
  http::Response Readyz() const;
  http::Response Topology(const http::Request& req) const;
  http::Response Instances() const;

  EngineView* engine_;
  const Forwarder* forwarder_;
};

}  // namespace kcqrs::engine

#endif  // KCQRS_ENGINE_SERVING_OPERATIONS_ROUTES_H_
