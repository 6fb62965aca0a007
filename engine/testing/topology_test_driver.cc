#include "kcqrs/testing/topology_test_driver.h"

#include <deque>
#include <map>

#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "engine/runtime/task.h"
#include "state/task_storage.h"

namespace kcqrs::testing {

class TopologyTestDriver::Impl final : public engine::RecordCollector {
 public:
  Status Init(const EngineOptions& options) {
    auto compiled = engine::CompiledTopology::Compile(options);
    if (!compiled.ok()) return compiled.status();
    // Every topic has one partition here.
    std::map<std::string, int> one;
    for (const engine::SubTopology& st : (*compiled)->subtopologies()) {
      for (const std::string& s : st.sources) one[s] = 1;
      for (const engine::Node& n : st.nodes) {
        for (const std::string& s : n.sinks) one[s] = 1;
      }
      for (const std::string& store : st.stores) one[(*compiled)->ChangelogTopic(store)] = 1;
    }
    for (const auto& [topic, n] : options.topics) one[topic] = 1;
    KCQRS_RETURN_IF_ERROR((*compiled)->ResolvePartitions(one));
    topology_ = std::shared_ptr<const engine::CompiledTopology>(std::move(compiled).value());

    auto lua = engine::LuaFunctions::Create(*topology_, lua::Limits{});
    if (!lua.ok()) return lua.status();
    lua_ = std::move(lua).value();

    for (const engine::SubTopology& st : topology_->subtopologies()) {
      auto task = engine::Task::Create(engine::TaskId{st.id, 0}, st, topology_,
                                       state::TaskStorage::OpenMemory(st.stores), this,
                                       lua_.get());
      if (!task.ok()) return task.status();
      (*task)->set_max_record_bytes(engine::MaxRecordBytesFor(options.kafka.properties));
      (*task)->set_wall_clock([this] { return wall_clock_; });
      KCQRS_RETURN_IF_ERROR((*task)->Init());
      for (const std::string& s : st.sources) task_of_topic_[s] = task->get();
      tasks_.push_back(std::move(task).value());
    }
    return Status::OK();
  }

  Status Send(kafka::OutgoingRecord out) override {
    Record r;
    r.topic = std::move(out.topic);
    r.partition = 0;
    r.offset = next_offset_[r.topic]++;
    r.key = std::move(out.key);
    r.value = std::move(out.value);
    r.headers = std::move(out.headers);
    r.timestamp_ms = out.timestamp_ms != 0 ? out.timestamp_ms : clock_;
    if (task_of_topic_.count(r.topic)) pending_.push_back(r);
    outputs_[r.topic].push_back(std::move(r));
    return Status::OK();
  }

  Status Pipe(const std::string& topic, std::optional<std::string> key,
              std::optional<std::string> value, int64_t timestamp_ms,
              std::vector<Header> headers) {
    ++clock_;
    Record r;
    r.topic = topic;
    r.partition = 0;
    r.offset = next_offset_[topic]++;
    r.key = std::move(key);
    r.value = std::move(value);
    r.headers = std::move(headers);
    r.timestamp_ms = timestamp_ms != 0 ? timestamp_ms : clock_;
    if (!task_of_topic_.count(topic)) {
      return Status::InvalidArgument("the topology reads no topic named '" + topic + "'");
    }
    pending_.push_back(std::move(r));
    return Drain();
  }

  Status AdvanceWallClock(int64_t ms) {
    if (ms < 0) return Status::InvalidArgument("the wall clock cannot go back");
    wall_clock_ += ms;
    return Drain();
  }

  int64_t wall_clock() const { return wall_clock_; }

  // Processes what is pending and fires the timers now due, until neither
  // is left, then commits, as the engine's commit would.
  Status Drain() {
    for (int rounds = 0;; ++rounds) {
      if (rounds > 100000) {
        return Abort(Status::FailedPrecondition(
            "timers keep firing: a timer that sets itself again at or before now fires "
            "forever"));
      }
      while (!pending_.empty()) {
        Record next = std::move(pending_.front());
        pending_.pop_front();
        auto it = task_of_topic_.find(next.topic);
        Status s = it->second->Process(next);
        if (!s.ok()) return Abort(s);
      }
      bool fired = false;
      for (auto& t : tasks_) {
        if (!t->TimersDue()) continue;
        Status s = t->FireTimers();
        if (!s.ok()) return Abort(s);
        fired = true;
      }
      if (!fired && pending_.empty()) break;
    }
    for (auto& t : tasks_) {
      KCQRS_RETURN_IF_ERROR(t->state().FlushChangelog());
      KCQRS_RETURN_IF_ERROR(t->state().Commit(state::Checkpoint{}));
      t->Committed();
    }
    return Status::OK();
  }

  Status Abort(const Status& s) {
    for (auto& t : tasks_) t->Abort();
    pending_.clear();
    return s;
  }

  std::vector<Record> Read(const std::string& topic) {
    std::vector<Record> out = std::move(outputs_[topic]);
    outputs_[topic].clear();
    return out;
  }

  std::shared_ptr<const ReadOnlyKeyValueStore> Store(const std::string& name) const {
    for (const auto& t : tasks_) {
      for (const std::string& s : t->subtopology().stores) {
        if (s == name) return t->state().storage().Reader(name);
      }
    }
    return nullptr;
  }

  ~Impl() override {
    for (auto& t : tasks_) t->Close();
  }

 private:
  std::shared_ptr<const engine::CompiledTopology> topology_;
  std::unique_ptr<engine::LuaFunctions> lua_;
  std::vector<std::unique_ptr<engine::Task>> tasks_;
  std::map<std::string, engine::Task*> task_of_topic_;
  std::map<std::string, int64_t> next_offset_;
  std::map<std::string, std::vector<Record>> outputs_;
  std::deque<Record> pending_;
  int64_t clock_ = 0;
  int64_t wall_clock_ = 0;
};

TopologyTestDriver::TopologyTestDriver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TopologyTestDriver::~TopologyTestDriver() = default;

Result<std::unique_ptr<TopologyTestDriver>> TopologyTestDriver::Create(
    const EngineOptions& options) {
  auto impl = std::make_unique<Impl>();
  KCQRS_RETURN_IF_ERROR(impl->Init(options));
  return std::unique_ptr<TopologyTestDriver>(new TopologyTestDriver(std::move(impl)));
}

Status TopologyTestDriver::PipeInput(const std::string& topic, std::optional<std::string> key,
                                     std::optional<std::string> value, int64_t timestamp_ms,
                                     std::vector<Header> headers) {
  return impl_->Pipe(topic, std::move(key), std::move(value), timestamp_ms, std::move(headers));
}

Status TopologyTestDriver::AdvanceWallClockTime(int64_t ms) {
  return impl_->AdvanceWallClock(ms);
}

int64_t TopologyTestDriver::wall_clock_ms() const { return impl_->wall_clock(); }

std::vector<Record> TopologyTestDriver::ReadOutput(const std::string& topic) {
  return impl_->Read(topic);
}

std::shared_ptr<const ReadOnlyKeyValueStore> TopologyTestDriver::GetStore(
    const std::string& name) const {
  return impl_->Store(name);
}

}  // namespace kcqrs::testing
