#include "engine/runtime/standby_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/runtime/client_configs.h"

namespace kcqrs::engine {
namespace {

// One pass of changelog reading; a stream thread taking a task over waits
// for the end of a pass (Claim), while the task answers from neither copy
// nor active task: short.
constexpr std::chrono::milliseconds kStepBudget{20};
constexpr std::chrono::milliseconds kIdleWait{20};
constexpr std::chrono::seconds kReconcileInterval{1};
constexpr std::chrono::seconds kRetryBackoff{1};

}  // namespace

StandbyThread::StandbyThread(StandbyThreadConfig config) : config_(std::move(config)) {
  if (!config_.clients) config_.clients = KafkaClientSupplier();
}

StandbyThread::~StandbyThread() { Stop(); }

void StandbyThread::Start() {
  thread_ = std::thread([this] { Main(); });
}

void StandbyThread::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> StandbyThread::Tasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

void StandbyThread::Main() {
  while (!stop_) {
    Status s = RunClients();
    std::vector<std::string> open;
    for (const auto& [task, standby] : standbys_) open.push_back(task);
    for (const std::string& task : open) Close(task);
    reader_.reset();
    if (s.ok() || stop_) break;
    spdlog::warn("standby thread: {}; starting again", s.ToString());
    for (auto until = std::chrono::steady_clock::now() + kRetryBackoff;
         !stop_ && std::chrono::steady_clock::now() < until;) {
      std::this_thread::sleep_for(kIdleWait);
    }
  }
}

Status StandbyThread::RunClients() {
  const StreamThreadIdentity who{config_.bootstrap_servers, -1, config_.member_id};
  ClientConfig rc = RestoreConsumerConfig(config_.options, who);
  rc.properties["client.id"] = config_.member_id + "-standby";
  auto consumer = config_.clients->GetConsumer(rc.properties);
  if (!consumer.ok()) return consumer.status();
  reader_ = std::make_unique<ChangelogReader>(std::move(consumer).value(), config_.metrics,
                                              ChangelogReader::Progress());
  auto last_reconcile = std::chrono::steady_clock::time_point();
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    const bool due = now - last_reconcile >= kReconcileInterval;
    if (due) last_reconcile = now;
    // Asking for the desired set costs a look at the directory: once a
    // second; a stream thread waiting for a directory is looked at always.
    KCQRS_RETURN_IF_ERROR(Reconcile(/*ask=*/due));
    if (standbys_.empty()) {
      std::this_thread::sleep_for(kIdleWait * 5);
      continue;
    }
    const auto step_start = std::chrono::steady_clock::now();
    auto stepped = reader_->Step(kStepBudget);
    if (!stepped.ok()) return stepped.status();
    // Caught up: wait a little rather than spin on an empty changelog.
    if (std::chrono::steady_clock::now() - step_start < kIdleWait) {
      std::this_thread::sleep_for(kIdleWait);
    }
  }
  return Status::OK();
}

const SubTopology* StandbyThread::SubTopologyOfTask(const std::string& task, TaskId* id) const {
  const size_t u = task.find('_');
  if (u == std::string::npos) return nullptr;
  try {
    id->subtopology = std::stoi(task.substr(0, u));
    id->partition = std::stoi(task.substr(u + 1));
  } catch (...) {
    return nullptr;
  }
  for (const SubTopology& st : config_.topology->subtopologies()) {
    if (st.id == id->subtopology && id->partition >= 0 && id->partition < st.partitions) {
      return &st;
    }
  }
  return nullptr;
}

Status StandbyThread::Reconcile(bool ask) {
  if (ask && config_.desired) desired_ = config_.desired();
  std::vector<std::string> closing;
  for (const auto& [task, standby] : standbys_) {
    if (!desired_.count(task) || config_.state_directory->ReleaseRequested(task)) {
      closing.push_back(task);
    }
  }
  for (const std::string& task : closing) Close(task);
  for (const std::string& task : desired_) {
    if (standbys_.count(task)) continue;
    Status s = Open(task);
    if (!s.ok()) spdlog::warn("standby {}: {}", task, s.ToString());
  }
  std::lock_guard<std::mutex> lock(mu_);
  held_.clear();
  for (const auto& [task, standby] : standbys_) held_.push_back(task);
  return Status::OK();
}

Status StandbyThread::Open(const std::string& task) {
  TaskId id;
  const SubTopology* st = SubTopologyOfTask(task, &id);
  if (st == nullptr || st->stores.empty()) return Status::OK();  // nothing to keep warm
  const bool persistent = std::any_of(st->stores.begin(), st->stores.end(), [&](const auto& s) {
    return config_.topology->Store(s).kind != StoreSpec::Kind::kMemory;
  });
  if (!persistent) return Status::OK();  // memory stores restore in full anyway
  auto dir = config_.state_directory->ClaimStandby(task);
  if (!dir) return Status::OK();  // an active task of this process has it
  auto open = [&]() -> Result<std::unique_ptr<state::TaskState>> {
    auto storage = state::TaskStorage::OpenRocksDb(*dir, st->stores, config_.rocksdb);
    if (!storage.ok() && storage.status().code() == Status::Code::kCorruption) {
      (void)state::TaskStorage::Destroy(*dir);
      storage = state::TaskStorage::OpenRocksDb(*dir, st->stores, config_.rocksdb);
    }
    if (!storage.ok()) return storage.status();
    return std::make_unique<state::TaskState>(std::move(storage).value(), nullptr);
  };
  auto state = open();
  if (!state.ok()) {
    config_.state_directory->Release(task);
    return state.status();
  }
  RestoreTarget target;
  target.id = id;
  target.name = task;
  target.state = state->get();
  for (const std::string& store : st->stores) {
    target.changelogs.emplace_back(
        state::TopicPartition{config_.topology->ChangelogTopic(store), id.partition}, store);
  }
  Status registered = reader_->Register(target, /*standby=*/true);
  if (registered.code() == Status::Code::kFailedPrecondition) {
    // The copy does not belong to the changelog as it is now: start over.
    spdlog::warn("standby {}: {}; wiping the copy", task, registered.message());
    state->reset();
    (void)state::TaskStorage::Destroy(*dir);
    state = open();
    if (!state.ok()) {
      config_.state_directory->Release(task);
      return state.status();
    }
    target.state = state->get();
    registered = reader_->Register(target, /*standby=*/true);
  }
  if (!registered.ok()) {
    config_.state_directory->Release(task);
    return registered;
  }
  spdlog::info("standby {}: keeping a warm copy", task);
  if (config_.registry != nullptr) {
    for (const std::string& store : st->stores) {
      config_.registry->Add(store, id.partition, (*state)->storage().Reader(store));
    }
  }
  standbys_[task] = Standby{id, st->stores, std::move(state).value()};
  return Status::OK();
}

void StandbyThread::Close(const std::string& task) {
  auto it = standbys_.find(task);
  if (it == standbys_.end()) return;
  (void)reader_->Unregister(it->second.id);
  if (config_.registry != nullptr) {
    for (const std::string& store : it->second.stores) {
      config_.registry->Remove(store, it->second.id.partition);
    }
  }
  Status s = it->second.state->storage().Close();
  if (!s.ok()) spdlog::warn("standby {}: closing its stores: {}", task, s.ToString());
  standbys_.erase(it);
  config_.state_directory->Release(task);
  spdlog::info("standby {}: closed", task);
}

}  // namespace kcqrs::engine
