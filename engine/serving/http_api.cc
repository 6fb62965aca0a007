#include "engine/serving/http_api.h"

#include <atomic>
#include <utility>

#include "engine/serving/command_routes.h"
#include "engine/serving/operations_routes.h"
#include "engine/serving/query_routes.h"
#include "engine/serving/route_helpers.h"
#include "engine/serving/waiter.h"

namespace kcqrs::engine {

// The route families and what they share: the options and the Waiter.
class HttpApi::Impl {
 public:
  Impl(EngineView* engine, HttpApiOptions options)
      : engine_(engine),
        options_(std::move(options)),
        waiter_(&engine->positions()),
        operations_(engine),
        queries_(engine, &options_, &waiter_),
        commands_(engine, &options_, &waiter_) {}

  ~Impl() { Stop(); }

  Status Start() { return commands_.Start(); }

  void Stop() {
    if (stopped_.exchange(true)) return;
    // Parked requests first (answered 503): a decision still in flight then
    // finds the waiter stopped and is answered at once, not parked.
    waiter_.Stop();
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
  OperationsRoutes operations_;
  QueryRoutes queries_;
  CommandRoutes commands_;
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
