#include "engine/serving/http_api.h"

#include <atomic>
#include <utility>

#include "engine/serving/command_routes.h"
#include "engine/serving/forwarding.h"
#include "engine/serving/operations_routes.h"
#include "engine/serving/query_routes.h"
#include "engine/serving/route_helpers.h"
#include "engine/serving/waiter.h"

namespace kcqrs::engine {

// The route families and what they share: the options and the Waiter.
class HttpApi::Impl {
 public:
  Impl(EngineView* engine, HttpApiOptions options, std::unique_ptr<http::Client> client)
      : engine_(engine),
        options_(std::move(options)),
        waiter_(&engine->positions()),
        forwarder_(engine, options_.instance_id, options_.query_token, std::move(client)),
        operations_(engine, &forwarder_),
        queries_(engine, &options_, &waiter_, &forwarder_),
        commands_(engine, &options_, &waiter_, &forwarder_) {}

  ~Impl() { Stop(); }

  Status Start() { return commands_.Start(); }

  void Stop() {
    if (stopped_.exchange(true)) return;
    // Parked requests first (answered 503): a decision still in flight then
    // finds the waiter stopped and is answered at once, not parked.
    waiter_.Stop();
    // Forwarded requests next (answered 503, or a command produced here):
    // the command producer is still there for them.
    forwarder_.Stop();
    commands_.Stop();
  }

  void Register(http::Router& router) {
    RouteTable routes(&router, engine_->metrics());
    operations_.Register(routes);
    queries_.Register(routes);
    commands_.Register(routes);
  }

 private:
  EngineView* engine_;
  const HttpApiOptions options_;
  Waiter waiter_;
  Forwarder forwarder_;
  OperationsRoutes operations_;
  QueryRoutes queries_;
  CommandRoutes commands_;
  std::atomic<bool> stopped_{false};
};

HttpApi::HttpApi(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpApi::~HttpApi() = default;

Result<std::unique_ptr<HttpApi>> HttpApi::Create(EngineView* engine, HttpApiOptions options) {
  http::ClientOptions client_options;
  client_options.connect_timeout = options.forward_connect_timeout;
  client_options.max_response_bytes = options.forward_max_response_bytes;
  client_options.tls = options.forward_tls;
  auto client = http::Client::Create(client_options);
  if (!client.ok()) return client.status().WithContext("the forwarding HTTP client");
  auto impl = std::make_unique<Impl>(engine, std::move(options), std::move(client).value());
  KCQRS_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpApi>(new HttpApi(std::move(impl)));
}

void HttpApi::Register(http::Router& router) { impl_->Register(router); }
void HttpApi::Stop() { impl_->Stop(); }

}  // namespace kcqrs::engine
