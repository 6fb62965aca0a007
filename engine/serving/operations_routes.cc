#include "engine/serving/operations_routes.h"

#include "json/document.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "engine/graph/describe.h"
#include "engine/serving/ui_page.h"

namespace kcqrs::engine {

using json = kcqrs::Json;

std::string ReadinessJson(const ReadinessReport& report) {
  json tasks = json::array();
  for (const TaskReadiness& t : report.tasks) {
    tasks.push_back({{"task", t.task},
                     {"state", t.state},
                     {"restored", t.restored},
                     {"remaining", t.remaining}});
  }
  json body;
  body["status"] = report.not_ready_reason.empty() ? "READY" : "NOT_READY";
  if (!report.not_ready_reason.empty()) body["reason"] = report.not_ready_reason;
  body["tasks"] = std::move(tasks);
  return body.dump();
}

std::string StatsJson(const StatsReport& report, const StoreRegistry* registry) {
  json out;
  out["application"] = report.application;
  out["ready"] = report.ready;
  const EngineStats& totals = report.totals;
  out["totals"] = {{"records_processed", totals.records_processed},
                   {"dead_letters", totals.dead_letters},
                   {"records_redelivered", totals.records_redelivered},
                   {"commits", totals.commits},
                   {"aborts", totals.aborts},
                   {"restored_records", totals.restored_records},
                   {"rebalances", totals.rebalances}};
  json threads = json::array();
  for (size_t i = 0; i < report.thread_states.size(); ++i) {
    threads.push_back({{"index", i}, {"state", report.thread_states[i]}});
  }
  out["threads"] = std::move(threads);
  json stores = json::array();
  if (registry != nullptr) {
    for (const std::string& name : registry->stores()) {
      const HostedSummary hosted = SummarizeHosted(*registry, name);
      stores.push_back({{"name", name},
                        {"keys", hosted.keys},
                        {"keys_exact", hosted.keys_exact},
                        {"partitions", registry->partitions(name)},
                        {"hosted", hosted.partitions}});
    }
  }
  out["stores"] = std::move(stores);
  json nodes = json::object();
  for (const auto& [name, n] : report.processed_by_node) nodes[name] = {{"processed", n}};
  json lag = json::object();
  for (const auto& [topic, parts] : report.lag) {
    for (const auto& [p, l] : parts) {
      lag[topic][std::to_string(p)] = l == StatsReport::kLagUnknown ? json() : json(l);
    }
  }
  out["nodes"] = std::move(nodes);
  out["lag"] = std::move(lag);
  if (!report.process_managers.empty()) {
    json pms = json::object();
    for (const auto& [name, c] : report.process_managers) {
      pms[name] = {{"started", c.started},
                   {"completed", c.completed},
                   {"compensated", c.compensated},
                   {"timed_out", c.timed_out},
                   {"active", c.active}};
    }
    out["process_managers"] = std::move(pms);
  }
  return out.dump();
}

void OperationsRoutes::Register(RouteTable& routes) {
  routes.Add("GET", "/healthz", [this](const http::Request&) { return Healthz(); });
  routes.Add("GET", "/readyz", [this](const http::Request&) { return Readyz(); });
  routes.Add("GET", "/stats", [this](const http::Request&) {
    return http::Response::Json(200, StatsJson(engine_->Stats(), engine_->registry()));
  });
  routes.Add("GET", "/metrics", [this](const http::Request&) {
    // Readiness is computed when asked for, so the gauge is brought up to
    // date here rather than kept in step with every thread's state.
    engine_->metrics()->Ready().Set(engine_->ready() ? 1 : 0);
    return http::Response::Text(200, engine_->metrics()->Serialize(),
                                std::string(metrics::Metrics::kContentType));
  });
  routes.Add("GET", "/instances", [this](const http::Request&) { return Instances(); });
  routes.Add("GET", "/topology", [this](const http::Request& req) { return Topology(req); });
  routes.Add("GET", "/", [](const http::Request&) {
    return http::Response::Text(200, std::string(UiPageHtml()), "text/html; charset=utf-8");
  });
}

std::string InstancesJson(const std::vector<InstanceInfo>& instances) {
  json list = json::array();
  for (const InstanceInfo& i : instances) {
    list.push_back({{"id", i.id},
                    {"url", i.url},
                    {"active_tasks", i.active_tasks},
                    {"standby_tasks", i.standby_tasks},
                    {"updated_ms", i.updated_ms},
                    {"self", i.self}});
  }
  return json{{"instances", list}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

http::Response OperationsRoutes::Instances() const {
  if (const InstanceDirectory* d = forwarder_->directory()) {
    return http::Response::Json(200, InstancesJson(d->Instances()));
  }
  // A process alone (or not started yet): itself, with the tasks it runs.
  InstanceInfo self;
  self.id = forwarder_->SelfId();
  for (const TaskReadiness& t : engine_->Readiness().tasks) self.active_tasks.push_back(t.task);
  std::sort(self.active_tasks.begin(), self.active_tasks.end());
  self.updated_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  self.self = true;
  return http::Response::Json(200, InstancesJson({self}));
}

http::Response OperationsRoutes::Healthz() const {
  Status s = engine_->health();
  if (!s.ok()) return Problem(500, "failed", "The engine has stopped", s.ToString());
  return http::Response::Json(200, R"({"status":"UP"})");
}

http::Response OperationsRoutes::Readyz() const {
  std::string body = ReadinessJson(engine_->Readiness());
  if (engine_->ready()) return http::Response::Json(200, std::move(body));
  http::Response r = http::Response::Json(503, std::move(body));
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

http::Response OperationsRoutes::Topology(const http::Request& req) const {
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

}  // namespace kcqrs::engine
