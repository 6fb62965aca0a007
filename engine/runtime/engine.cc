#include "kcqrs/engine.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "engine/graph/compiled_topology.h"
#include "engine/http/server.h"
#include "engine/serving/http_api.h"
#include "engine/kafka/admin.h"
#include "engine/kafka/mock_cluster.h"
#include "engine/kafka/properties.h"
#include "engine/processors/lua_functions.h"
#include "engine/metrics/metrics.h"
#include "engine/serving/position_log.h"
#include "engine/serving/store_registry.h"
#include "engine/runtime/client_configs.h"
#include "engine/runtime/engine_internals.h"
#include "engine/runtime/instance_metadata.h"
#include "engine/runtime/fault_injector.h"
#include "engine/runtime/internal_topics.h"
#include "engine/runtime/standby_assignor.h"
#include "engine/runtime/standby_thread.h"
#include "engine/runtime/state_directory.h"
#include "engine/runtime/stream_thread.h"
#include "kcqrs/version.h"
#include "state/rocksdb_env.h"

namespace kcqrs {
namespace {

constexpr std::chrono::milliseconds kRetryBackoff{2000};

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

state::RocksDbEnvOptions RocksDbEnvOptionsFor(const RocksDbOptions& o) {
  state::RocksDbEnvOptions env;
  env.block_cache_bytes = static_cast<size_t>(o.block_cache_bytes);
  env.write_buffer_manager_bytes = static_cast<size_t>(o.memtable_bytes);
  env.write_buffer_bytes = static_cast<size_t>(o.write_buffer_bytes);
  env.max_unflushed_writes = static_cast<uint64_t>(o.max_unflushed_writes);
  switch (o.compression) {
    case RocksDbOptions::Compression::kNone:
      env.compression = state::RocksDbCompression::kNone;
      break;
    case RocksDbOptions::Compression::kSnappy:
      env.compression = state::RocksDbCompression::kSnappy;
      break;
    case RocksDbOptions::Compression::kLz4:
      env.compression = state::RocksDbCompression::kLz4;
      break;
    case RocksDbOptions::Compression::kZstd:
      env.compression = state::RocksDbCompression::kZstd;
      break;
  }
  return env;
}

// Compiles the topology and its Lua snippets, so that every error is found
// before anything starts.
Result<std::unique_ptr<engine::CompiledTopology>> CompileAll(const EngineOptions& options) {
  // Checked here, not only at start, so that Validate refuses what Open would.
  if (!options.kafka.embedded && options.kafka.bootstrap_servers.empty()) {
    return Status::InvalidArgument(
        "kafka.bootstrap_servers is empty: give host:port of your brokers or 'embedded'");
  }
  if (!state::RocksDbSupports(RocksDbEnvOptionsFor(options.application.rocksdb).compression)) {
    return Status::InvalidArgument(
        "application.rocksdb.compression: the RocksDB this kcqrs is linked with cannot "
        "write that compression; use none or snappy");
  }
  // A property librdkafka refuses would stop the first client at start.
  KCQRS_RETURN_IF_ERROR(kafka::CheckProperties(options.kafka.properties));
  auto compiled = engine::CompiledTopology::Compile(options);
  if (!compiled.ok()) return compiled.status();
  auto lua = engine::LuaFunctions::Create(**compiled, lua::Limits{});
  if (!lua.ok()) return lua.status();
  return compiled;
}

}  // namespace

class Engine::Impl final : public engine::EngineView {
 public:
  explicit Impl(EngineOptions options, StateListener listener = nullptr)
      : options_(std::move(options)),
        faults_(engine::FaultInjectorForTesting()),
        listener_(std::move(listener)) {}
  ~Impl() override { Stop(); }

  Status Start() {
    auto compiled = CompileAll(options_);
    if (!compiled.ok()) return compiled.status();
    compiled_ = std::move(compiled).value();
    if (!options_.application.state_dir.empty()) {
      auto lock = state_directory_.Lock();
      if (!lock.ok()) return lock.status();
      state_dir_lock_ = std::move(lock).value();
    }

    if (options_.kafka.embedded) {
      Result<std::unique_ptr<kafka::MockCluster>> cluster =
          kafka::MockCluster::Create(options_.kafka.embedded_brokers,
                                     static_cast<uint16_t>(options_.kafka.embedded_port));
      if (!cluster.ok()) {
        return cluster.status().WithContext("starting the embedded Kafka");
      }
      embedded_ = std::move(cluster).value();
      bootstrap_ = embedded_->bootstrap_servers();
      if (!embedded_->bootstrap_port_note().empty()) {
        spdlog::warn(
            "embedded Kafka: kafka.embedded_port {} cannot be used ({}); it listens on a "
            "port the system picked instead, which changes at every start",
            options_.kafka.embedded_port, embedded_->bootstrap_port_note());
      }
      spdlog::warn(
          "embedded Kafka (librdkafka's mock cluster) is listening on {} "
          "(try: kcat -b {} -L). It is for trying kcqrs out: it keeps nothing "
          "on disk and does not enforce transactional isolation. Production "
          "runs set kafka.bootstrap_servers to a real Kafka cluster.",
          bootstrap_, bootstrap_);
    } else {
      bootstrap_ = Join(options_.kafka.bootstrap_servers, ",");  // CompileAll checked it
    }
    if (options_.http.enabled) {
      KCQRS_RETURN_IF_ERROR(StartHttp());
    } else {
      spdlog::info("HTTP server off (http.enabled: false)");
    }
    SetState(EngineState::kStarting);
    supervisor_ = std::thread([this] { Boot(); });
    if (listener_) watcher_ = std::thread([this] { WatchState(); });
    return Status::OK();
  }

  // The state the engine is in now, from its threads (kStopping and
  // kStopped are set by Stop() alone).
  EngineState ObservedState() const {
    if (!HealthLocked().ok()) return EngineState::kError;
    if (ReadyLocked()) return EngineState::kRunning;
    std::lock_guard<std::mutex> l(mu_);
    return threads_.empty() ? EngineState::kStarting : EngineState::kRebalancing;
  }

  EngineState state() const {
    {
      std::lock_guard<std::mutex> l(state_mu_);
      if (state_ == EngineState::kStopping || state_ == EngineState::kStopped ||
          state_ == EngineState::kCreated) {
        return state_;
      }
    }
    return ObservedState();
  }

  // Records `next` and tells the listener when it differs from the last
  // state told. listener_mu_ keeps the calls one at a time and in order.
  void SetState(EngineState next) {
    std::lock_guard<std::mutex> calls(listener_mu_);
    EngineState previous;
    {
      std::lock_guard<std::mutex> l(state_mu_);
      previous = state_;
      if (previous == next || previous == EngineState::kStopped) return;
      // An engine that never started (Open failed) has nothing to report.
      if (previous == EngineState::kCreated && next != EngineState::kStarting) {
        state_ = next;
        return;
      }
      // Only Stop() leaves kStopping.
      if (previous == EngineState::kStopping && next != EngineState::kStopped) return;
      state_ = next;
    }
    if (listener_) listener_(next, previous);
  }

  // The state listener's thread: samples the state every 50 ms.
  void WatchState() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stopping_) {
      l.unlock();
      SetState(ObservedState());
      l.lock();
      cv_.wait_for(l, std::chrono::milliseconds(50), [this] { return stopping_; });
    }
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    SetState(EngineState::kStopping);
    if (supervisor_.joinable()) supervisor_.join();
    // The tombstone first: the other instances stop sending requests here
    // before this server stops answering them. The directory itself keeps
    // answering until the API is stopped.
    if (auto* m = metadata(); m != nullptr) m->Stop();
    // HTTP first: no new request reaches the API once the server stops;
    // then the API answers what is parked (a no-op for closed connections)
    // and stops its producer, all while the stream threads still stand.
    if (http_) http_->Stop();
    if (api_) api_->Stop();
    // All threads finish their transactions at once, not one after another.
    for (auto& t : threads_) t->RequestStop();
    // The standbys let go of their directories (a thread taking a task over
    // may be waiting for one).
    if (standby_) standby_->Stop();
    for (auto& t : threads_) t->Stop();
    {
      std::lock_guard<std::mutex> l(mu_);
      standby_.reset();
      threads_.clear();
      standby_registry_.reset();  // the threads' warm tasks list themselves there
      registry_.reset();
      topology_.reset();
    }
    http_.reset();
    api_.reset();
    {
      std::lock_guard<std::mutex> l(mu_);
      metadata_.reset();
    }
    embedded_.reset();
    SetState(EngineState::kStopped);
  }

  // A thread that aborts this many transactions in a row without a commit
  // between them is stuck on something, not having a bad moment.
  static constexpr int kAbortsNotReady = 3;

  // A thread that has not heard from Kafka for 3 s (its idle probe runs
  // every second) is waiting for it: stuck in a commit, or cut off.
  static bool KafkaAnsweredRecently(const engine::StreamThread& t) {
    if (!t.stats().kafka_reachable.load()) return false;
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    return now - t.stats().kafka_ok_ns.load() < 3'000'000'000;
  }

  bool ReadyLocked() const {
    std::lock_guard<std::mutex> l(mu_);
    if (threads_.empty() || !failure_.ok()) return false;
    for (const auto& t : threads_) {
      if (t->state() != engine::StreamThread::State::kRunning) return false;
      if (t->stats().restoring_tasks.load() > 0) return false;
      if (!KafkaAnsweredRecently(*t)) return false;
      if (t->stats().consecutive_aborts.load() >= kAbortsNotReady) return false;
    }
    return true;
  }

  Status HealthLocked() const {
    std::lock_guard<std::mutex> l(mu_);
    if (!failure_.ok()) return failure_;
    for (const auto& t : threads_) {
      if (t->state() == engine::StreamThread::State::kFailed) return t->error();
    }
    return Status::OK();
  }

  EngineStats stats() const {
    std::lock_guard<std::mutex> l(mu_);
    EngineStats out;
    for (const auto& t : threads_) {
      const engine::StreamThreadStats& s = t->stats();
      out.records_processed += s.records_processed;
      out.dead_letters += s.dead_letters;
      out.records_redelivered += s.records_redelivered;
      out.commits += s.commits;
      out.aborts += s.aborts;
      out.restored_records += s.restored_records;
      out.rebalances += s.rebalances;
      out.running_tasks += s.running_tasks;
      out.restoring_tasks += s.restoring_tasks;
    }
    return out;
  }

  std::shared_ptr<const ReadOnlyKeyValueStore> GetStore(const std::string& name) const {
    std::lock_guard<std::mutex> l(mu_);
    return registry_ ? registry_->View(name) : nullptr;
  }

  // engine::EngineView
  std::shared_ptr<const engine::CompiledTopology> topology() const override {
    std::lock_guard<std::mutex> l(mu_);
    return topology_;
  }
  engine::StoreRegistry* registry() const override {
    std::lock_guard<std::mutex> l(mu_);
    return registry_.get();
  }
  engine::StoreRegistry* standby_registry() const override {
    std::lock_guard<std::mutex> l(mu_);
    return standby_registry_.get();
  }
  const engine::PositionLog& positions() const override { return positions_; }
  metrics::Metrics* metrics() override { return &metrics_; }
  bool ready() const override { return ReadyLocked(); }
  const engine::InstanceDirectory* instances() const override { return metadata(); }
  Status health() const override { return HealthLocked(); }

  engine::ReadinessReport Readiness() const override {
    engine::ReadinessReport report;
    std::lock_guard<std::mutex> l(mu_);
    bool restoring = false;
    bool unreachable = false;
    bool starting = threads_.empty();
    std::string aborting;
    for (size_t i = 0; i < threads_.size(); ++i) {
      const auto& t = threads_[i];
      if (t->state() != engine::StreamThread::State::kRunning) starting = true;
      if (!KafkaAnsweredRecently(*t)) unreachable = true;
      const int aborts = t->stats().consecutive_aborts.load();
      if (aborts >= kAbortsNotReady && aborting.empty()) {
        aborting = "stream thread " + std::to_string(i) + " has aborted " +
                   std::to_string(aborts) + " transactions in a row (last: " +
                   t->last_abort_reason() + ")";
      }
      for (const engine::TaskStatus& ts : t->Tasks()) {
        if (ts.state != "RUNNING") restoring = true;
        report.tasks.push_back({ts.task, ts.state, ts.restored, ts.remaining});
      }
    }
    std::string& reason = report.not_ready_reason;
    if (!failure_.ok()) {
      reason = "failed: " + failure_.ToString();
    } else if (starting) {
      reason = registry_ ? "stream threads are starting" : "waiting for Kafka at " + bootstrap_;
    } else if (unreachable) {
      reason = "Kafka is not reachable";
    } else if (!aborting.empty()) {
      reason = aborting;
    } else if (restoring) {
      reason = "restoring state";
    }
    return report;
  }

  engine::StatsReport Stats() const override {
    engine::StatsReport report;
    report.application = options_.application.id;
    report.ready = ready();
    report.totals = stats();
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& t : threads_) {
      static constexpr const char* kNames[] = {"CREATED", "STARTING", "RUNNING",
                                               "STOPPING", "STOPPED", "FAILED"};
      report.thread_states.push_back(kNames[static_cast<int>(t->state())]);
    }
    for (const auto& t : threads_) t->Snapshot(&report.processed_by_node, &report.lag);
    for (const ProcessManagerSpec& pm : options_.topology.process_managers) {
      metrics::Metrics& m = metrics_;
      engine::StatsReport::ProcessManagerCounts& c = report.process_managers[pm.name];
      c.started = static_cast<uint64_t>(m.ProcessManagerStarted(pm.name).Value());
      c.completed = static_cast<uint64_t>(m.ProcessManagerEnded(pm.name, "completed").Value());
      c.compensated =
          static_cast<uint64_t>(m.ProcessManagerEnded(pm.name, "compensated").Value());
      c.timed_out = static_cast<uint64_t>(m.ProcessManagerDeadlinesFired(pm.name).Value());
      c.active = static_cast<int64_t>(m.ProcessManagerActive(pm.name).Value());
    }
    return report;
  }

  std::string http_address() const {
    return http_ ? http_->local_address() : std::string();
  }
  const std::string& bootstrap_servers() const { return bootstrap_; }

 private:
  // Sleeps unless stopping; false when stopping.
  bool Backoff() {
    std::unique_lock<std::mutex> l(mu_);
    return !cv_.wait_for(l, kRetryBackoff, [this] { return stopping_; });
  }
  bool stopping() const {
    std::lock_guard<std::mutex> l(mu_);
    return stopping_;
  }
  void Fail(Status s) {
    spdlog::error("{}", s.ToString());
    std::lock_guard<std::mutex> l(mu_);
    failure_ = std::move(s);
  }

  // In the background: wait for Kafka, make the topics ready, start the
  // threads.
  void Boot() {
    auto admin = kafka::Admin::Create(engine::AdminConfig(options_, bootstrap_).properties);
    if (!admin.ok()) return Fail(admin.status().WithContext("Kafka admin client"));
    engine::InternalTopics internal(admin->get(), embedded_.get(), bootstrap_,
                                   [this] { return Backoff(); });
    auto topic_max_bytes = internal.Setup(compiled_.get(), options_.kafka.properties);
    if (!topic_max_bytes.ok()) {
      if (topic_max_bytes.status().IsAborted()) return;  // stopping
      return Fail(topic_max_bytes.status());
    }
    for (const engine::SubTopology& st : compiled_->subtopologies()) {
      spdlog::info("sub-topology {}: reads {}; stores [{}]; {} task(s)", st.id,
                   Join(st.sources, ", "), Join(st.stores, ", "), st.partitions);
    }

    auto instance = state_directory_.InstanceId();
    if (!instance.ok()) return Fail(instance.status());
    std::shared_ptr<const engine::CompiledTopology> topology(std::move(compiled_));
    std::map<std::string, int> store_partitions;
    for (const engine::SubTopology& st : topology->subtopologies()) {
      for (const std::string& store : st.stores) store_partitions[store] = st.partitions;
    }
    auto metadata = StartInstanceMetadata(*topology, *instance);
    if (!metadata.ok()) return Fail(metadata.status());
    auto rocksdb = state::RocksDbEnv::Create(RocksDbEnvOptionsFor(options_.application.rocksdb));
    std::lock_guard<std::mutex> l(mu_);
    metadata_ = std::move(metadata).value();
    if (stopping_) return;
    registry_ = std::make_unique<engine::StoreRegistry>(store_partitions);
    // Before the stream threads: a task they take over from a standby copy
    // answers from it there while it restores.
    if (options_.application.standby_replicas > 0) {
      standby_registry_ = std::make_unique<engine::StoreRegistry>(store_partitions);
    }
    topology_ = topology;
    for (int i = 0; i < options_.application.threads; ++i) {
      engine::StreamThreadConfig c;
      c.index = i;
      c.options = options_;
      c.bootstrap_servers = bootstrap_;
      c.member_id = options_.application.id + "-" + *instance + "-" + std::to_string(i);
      c.topology = topology;
      c.rocksdb = rocksdb;
      c.registry = registry_.get();
      c.standby_registry = standby_registry_.get();
      c.positions = &positions_;
      c.metrics = &metrics_;
      c.faults = faults_;
      c.state_directory = &state_directory_;
      c.topic_max_record_bytes = *topic_max_bytes;
      threads_.push_back(std::make_unique<engine::StreamThread>(std::move(c)));
      threads_.back()->Start();
    }
    if (options_.application.standby_replicas > 0) {
      engine::StandbyThreadConfig sc;
      sc.options = options_;
      sc.bootstrap_servers = bootstrap_;
      sc.member_id = options_.application.id + "-" + *instance;
      sc.topology = topology;
      sc.rocksdb = rocksdb;
      sc.state_directory = &state_directory_;
      sc.registry = standby_registry_.get();
      sc.metrics = &metrics_;
      std::vector<std::string> all_tasks;
      for (const engine::SubTopology& st : topology->subtopologies()) {
        for (int32_t p = 0; p < st.partitions; ++p) {
          all_tasks.push_back(engine::TaskId{st.id, p}.ToString());
        }
      }
      const int replicas = options_.application.standby_replicas;
      sc.desired = [this, all_tasks, replicas] {
        engine::InstanceMetadata* m = this->metadata();
        if (m == nullptr) return std::set<std::string>();
        return engine::StandbyTasksFor(m->self_id(), m->Instances(), all_tasks, replicas);
      };
      standby_ = std::make_unique<engine::StandbyThread>(std::move(sc));
      standby_->Start();
    }
    spdlog::info("started {} stream thread(s){} for application {}", threads_.size(),
                 standby_ ? " and a standby thread" : "", options_.application.id);
  }

  engine::InstanceMetadata* metadata() const {
    std::lock_guard<std::mutex> l(mu_);
    return metadata_.get();
  }

  // Tells the other instances what this one holds, and learns what they
  // hold and commit. Before the threads start: their commits go to the
  // others from the first one on.
  Result<std::unique_ptr<engine::InstanceMetadata>> StartInstanceMetadata(
      const engine::CompiledTopology& topology, const std::string& instance) {
    engine::InstanceMetadataConfig c;
    c.application_id = options_.application.id;
    c.instance_id = instance;
    const std::string url = AdvertisedUrl();
    c.url = url;
    const std::string who = options_.application.id + "-" + instance + "-metadata";
    c.producer_properties = engine::MetadataProducerConfig(options_, bootstrap_, who).properties;
    c.consumer_properties = engine::MetadataConsumerConfig(options_, bootstrap_, who).properties;
    c.held = [this] {
      engine::HeldTasks held;
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& t : threads_) {
        for (const engine::TaskStatus& ts : t->Tasks()) held.active.push_back(ts.task);
      }
      if (standby_) held.standby = standby_->Tasks();
      return held;
    };
    c.positions = &positions_;
    for (const engine::SubTopology& st : topology.subtopologies()) {
      for (const std::string& store : st.stores) {
        c.unfollowed_topics.insert(topology.ChangelogTopic(store));
      }
    }
    auto m = engine::InstanceMetadata::Start(std::move(c));
    if (!m.ok()) return m.status().WithContext("instance metadata");
    engine::InstanceMetadata* raw = m->get();
    positions_.SetLocalListener([raw](const engine::PositionLog::Entry& e) {
      raw->PublishCommit(e);
    });
    spdlog::info("instance {} advertises {}", instance,
                 http_ ? url : "no HTTP API (http.enabled: false)");
    return m;
  }

  // How other instances reach this one: http.advertised_url, else the bound
  // address, over https when http.tls is set; without the server,
  // http.advertised_url if set (a proxy in front), else empty.
  std::string AdvertisedUrl() const {
    if (!http_) return options_.http.advertised_url;
    std::string url = engine::AdvertisedUrl(options_.http.advertised_url, http_->local_address());
    if (options_.http.tls.enabled() && url.rfind("http://", 0) == 0) {
      url.insert(4, "s");
    }
    return url;
  }

  Status StartHttp() {
    engine::HttpApiOptions api_options;
    api_options.bootstrap_servers = bootstrap_;
    api_options.kafka_properties = options_.kafka.properties;
    api_options.application_id = options_.application.id;
    api_options.command_token = options_.http.command_token;
    api_options.query_token = options_.http.query_token;
    const HttpTlsOptions& tls = options_.http.tls;
    http::ServerOptions http_options;
    if (tls.enabled()) {
      http_options.tls.cert_file = tls.cert_file;
      http_options.tls.key_file = tls.key_file;
      http_options.tls.ca_file = tls.ca_file;
      http_options.tls.client_auth =
          tls.client_auth == HttpTlsOptions::ClientAuth::kRequired   ? http::ClientAuth::kRequired
          : tls.client_auth == HttpTlsOptions::ClientAuth::kOptional ? http::ClientAuth::kOptional
                                                                     : http::ClientAuth::kNone;
      // Requests forwarded to other instances: their certificates chain to
      // the same CA; where they require a client certificate, this
      // instance's own is it.
      api_options.forward_tls.ca_file = tls.ca_file;
      if (tls.client_auth == HttpTlsOptions::ClientAuth::kRequired) {
        api_options.forward_tls.cert_file = tls.cert_file;
        api_options.forward_tls.key_file = tls.key_file;
      }
    }
    api_options.limits.max_depth = options_.limits.max_json_depth;
    api_options.limits.max_bytes = static_cast<size_t>(options_.limits.max_document_bytes);
    // Before anything starts: a certificate, key or CA file that cannot be
    // used is named here ("http.tls key_file '...': ...").
    KCQRS_RETURN_IF_ERROR(http::CheckServerTls(http_options.tls));
    auto api = engine::HttpApi::Create(this, api_options);
    if (!api.ok()) return api.status();
    api_ = std::move(api).value();
    http::Router router;
    api_->Register(router);
    http_options.listen = options_.http.listen;
    http_options.threads = options_.http.threads;
    // A body is one document: one larger is refused (413) before it is read.
    http_options.max_body_bytes = static_cast<size_t>(options_.limits.max_document_bytes);
    Result<std::unique_ptr<http::Server>> server =
        http::Server::Start(http_options, std::move(router));
    if (!server.ok()) return server.status().WithContext("http.listen");
    http_ = std::move(server).value();
    spdlog::info("HTTP server listening on {}://{}", tls.enabled() ? "https" : "http",
                 http_->local_address());
    return Status::OK();
  }

  EngineOptions options_;
  std::unique_ptr<engine::StateDirectoryLock> state_dir_lock_;  // held while the engine lives
  // Task directories in use, and the sweep of the others.
  engine::StateDirectory state_directory_{options_.application.state_dir};
  std::shared_ptr<engine::FaultInjector> faults_;  // tests only; nullable
  // Declared first: everything below may hold metric handles.
  // Mutable: Stats() (const) looks handles up, which is thread-safe.
  mutable metrics::Metrics metrics_;
  std::string bootstrap_;
  std::unique_ptr<engine::CompiledTopology> compiled_;  // until Boot shares it
  std::unique_ptr<kafka::MockCluster> embedded_;
  std::unique_ptr<engine::HttpApi> api_;
  std::unique_ptr<http::Server> http_;
  std::thread supervisor_;
  engine::PositionLog positions_;

  mutable std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool stopping_ = false;
  Status failure_;
  std::unique_ptr<engine::StoreRegistry> registry_;
  std::shared_ptr<const engine::CompiledTopology> topology_;
  std::vector<std::unique_ptr<engine::StreamThread>> threads_;
  std::unique_ptr<engine::StoreRegistry> standby_registry_;  // with standby_
  std::unique_ptr<engine::StandbyThread> standby_;
  // Lives until after the API stops (serving routes by it).
  std::unique_ptr<engine::InstanceMetadata> metadata_;

  std::mutex stop_mu_;
  bool stopped_ = false;

  StateListener listener_;     // may be empty
  std::thread watcher_;        // with listener_
  std::mutex listener_mu_;     // one listener call at a time
  mutable std::mutex state_mu_;  // guards state_
  EngineState state_ = EngineState::kCreated;
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  return Open(options, nullptr);
}

Result<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options,
                                             StateListener listener) {
  auto impl = std::make_unique<Impl>(options, std::move(listener));
  Status s = impl->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

std::string_view EngineStateName(EngineState state) {
  switch (state) {
    case EngineState::kCreated: return "CREATED";
    case EngineState::kStarting: return "STARTING";
    case EngineState::kRebalancing: return "REBALANCING";
    case EngineState::kRunning: return "RUNNING";
    case EngineState::kError: return "ERROR";
    case EngineState::kStopping: return "STOPPING";
    case EngineState::kStopped: return "STOPPED";
  }
  return "UNKNOWN";
}

Status Engine::Validate(const EngineOptions& options) {
  auto compiled = CompileAll(options);
  return compiled.ok() ? Status::OK() : compiled.status();
}

void Engine::Stop() { impl_->Stop(); }
bool Engine::ready() const { return impl_->ReadyLocked(); }
Status Engine::health() const { return impl_->HealthLocked(); }
EngineStats Engine::stats() const { return impl_->stats(); }
EngineState Engine::state() const { return impl_->state(); }
std::shared_ptr<const ReadOnlyKeyValueStore> Engine::GetStore(const std::string& name) const {
  return impl_->GetStore(name);
}
std::string Engine::http_address() const { return impl_->http_address(); }
std::string Engine::bootstrap_servers() const { return impl_->bootstrap_servers(); }

engine::EngineView* engine::EngineInternals::View(Engine& engine) {
  return engine.impl_.get();
}

}  // namespace kcqrs
