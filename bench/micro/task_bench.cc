// One command through a whole task, in process, with no broker: the orders
// workload of bench/WORKLOADS.md through bench/orders/topology.yaml. A
// command runs the command handler of its task (order-aggregates); its
// event then runs the task of the `orders` projection and the repartition
// of `product_totals`, and the repartitioned event runs the `product_totals`
// task. Changelog records, rejections and the events themselves are handed
// to a collector, as the stream thread hands them to its producer.
//
// Two harnesses:
//  - BM_WholeTask/rocksdb and /memory: engine::Task as the stream thread
//    drives it, with the engine's metrics, stores on RocksDB (in a temporary
//    directory) or in memory, and a commit (write buffer -> storage, with a
//    checkpoint) every kCommitEvery commands, as one commit interval would.
//    The collector keeps what a task reads and drops the rest, so Kafka's
//    own cost is not measured.
//  - BM_TopologyTestDriver: the public kcqrs::testing::TopologyTestDriver
//    (memory stores, a commit after every command, every output kept until
//    read), as a user's test sees it.
//
// Items are commands. A run is a fixed number of commands (default 300,000,
// env KCQRS_MICRO_COMMANDS), so that every run sees the same mix: the
// workload's commands in blocks of 10,000 orders, each block step-major
// (all creates, then the adjusts, then the cancels and second creates), new
// order ids in every block, so the stores grow as in the real workload.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/micro/orders_workload.h"
#include "bench/micro/temp_dir.h"
#include "engine/graph/compiled_topology.h"
#include "engine/processors/lua_functions.h"
#include "engine/metrics/metrics.h"
#include "engine/runtime/task.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "state/task_storage.h"

namespace kcqrs::bench {
namespace {

constexpr int64_t kOrdersPerBlock = 10'000;
constexpr int64_t kCommitEvery = 5'000;

int64_t CommandsPerRun() {
  const char* env = std::getenv("KCQRS_MICRO_COMMANDS");
  return env != nullptr ? std::atoll(env) : 300'000;
}

// The workload's commands in order, generated in chunks outside the timing.
class CommandSource {
 public:
  explicit CommandSource(benchmark::State& st) : st_(st) {}

  const Command& Next() {
    if (i_ == chunk_.size()) Refill();
    return chunk_[i_++];
  }

  // Commands in the current chunk; generating is not measured.
  void Refill() {
    st_.PauseTiming();
    chunk_.clear();
    for (int j = 0; j < 10'000; ++j, ++n_) {
      const int64_t block = n_ / (10 * kOrdersPerBlock);
      const int64_t within = n_ % (10 * kOrdersPerBlock);
      chunk_.push_back(OrderCommand(block * kOrdersPerBlock + within % kOrdersPerBlock,
                                    static_cast<int>(within / kOrdersPerBlock)));
    }
    i_ = 0;
    st_.ResumeTiming();
  }

 private:
  benchmark::State& st_;
  std::vector<Command> chunk_;
  size_t i_ = 0;
  int64_t n_ = 0;
};

// The tasks of the topology (one partition each) in one process, driven as
// a stream thread drives them.
class InProcessTasks final : public engine::RecordCollector {
 public:
  // `state_dir` empty: stores in memory.
  Status Init(const EngineOptions& options, const std::string& state_dir) {
    auto compiled = engine::CompiledTopology::Compile(options);
    if (!compiled.ok()) return compiled.status();
    std::map<std::string, int> one;
    for (const engine::SubTopology& st : (*compiled)->subtopologies()) {
      for (const std::string& s : st.sources) one[s] = 1;
      for (const engine::Node& n : st.nodes) {
        for (const std::string& s : n.sinks) one[s] = 1;
      }
      for (const std::string& store : st.stores) one[(*compiled)->ChangelogTopic(store)] = 1;
    }
    KCQRS_RETURN_IF_ERROR((*compiled)->ResolvePartitions(one));
    topology_ = std::shared_ptr<const engine::CompiledTopology>(std::move(compiled).value());
    auto lua = engine::LuaFunctions::Create(*topology_, lua::Limits{});
    if (!lua.ok()) return lua.status();
    lua_ = std::move(lua).value();
    env_ = state::RocksDbEnv::Create();
    for (const engine::SubTopology& st : topology_->subtopologies()) {
      std::unique_ptr<state::TaskStorage> storage;
      if (state_dir.empty()) {
        storage = state::TaskStorage::OpenMemory(st.stores);
      } else {
        auto opened = state::TaskStorage::OpenRocksDb(
            state_dir + "/" + std::to_string(st.id) + "_0", st.stores, env_);
        if (!opened.ok()) return opened.status();
        storage = std::move(opened).value();
      }
      auto task = engine::Task::Create(engine::TaskId{st.id, 0}, st, topology_,
                                       std::move(storage), this, lua_.get(), &metrics_);
      if (!task.ok()) return task.status();
      KCQRS_RETURN_IF_ERROR((*task)->Init());
      for (const std::string& s : st.sources) topics_[s].reader = task->get();
      tasks_.push_back(std::move(task).value());
    }
    return Status::OK();
  }

  ~InProcessTasks() override {
    for (auto& t : tasks_) {
      t->Close();
      (void)t->state().storage().Close();
    }
  }

  // Processes a command and everything it causes.
  Status Pipe(const Command& c) {
    Record r;
    r.topic = kCommandTopic;
    r.partition = 0;
    r.offset = topics_[r.topic].next_offset++;
    r.key = c.key;
    r.value = c.value;
    r.timestamp_ms = ++clock_;
    pending_.push_back(std::move(r));
    while (!pending_.empty()) {
      Record next = std::move(pending_.front());
      pending_.pop_front();
      KCQRS_RETURN_IF_ERROR(topics_.at(next.topic).reader->Process(next));
    }
    return Status::OK();
  }

  // What StreamThread::Commit does once Kafka has committed: each task's
  // write buffer goes to storage with its checkpoint.
  Status Commit() {
    for (auto& t : tasks_) {
      state::Checkpoint cp;
      for (const state::TopicPartition& tp : t->ChangelogPartitions()) {
        cp.changelog_offsets[tp] = topics_[tp.topic].next_offset;
      }
      for (const std::string& source : t->subtopology().sources) {
        cp.metadata["position." + source + ".0"] = std::to_string(topics_[source].next_offset);
      }
      KCQRS_RETURN_IF_ERROR(t->state().FlushChangelog());  // before the Kafka commit, there
      KCQRS_RETURN_IF_ERROR(t->state().Commit(cp));
    }
    return Status::OK();
  }

  // As the engine's collector: a record no task reads (a changelog) is
  // counted, not copied.
  Status SendCopyOf(const kafka::OutgoingRecord& out) override {
    auto topic = topics_.find(out.topic);
    if (topic != topics_.end() && topic->second.reader == nullptr) {
      ++topic->second.sent;
      ++topic->second.next_offset;
      return Status::OK();
    }
    return Send(out);
  }

  Status Send(kafka::OutgoingRecord out) override {
    Topic& topic = topics_[out.topic];
    ++topic.sent;
    const int64_t offset = topic.next_offset++;
    if (topic.reader == nullptr) return Status::OK();  // the producer's concern
    Record r;
    r.topic = std::move(out.topic);
    r.partition = 0;
    r.offset = offset;
    r.key = std::move(out.key);
    r.value = std::move(out.value);
    r.headers = std::move(out.headers);
    r.timestamp_ms = out.timestamp_ms != 0 ? out.timestamp_ms : clock_;
    pending_.push_back(std::move(r));
    return Status::OK();
  }

  uint64_t sent(const std::string& topic) const {
    auto it = topics_.find(topic);
    return it == topics_.end() ? 0 : it->second.sent;
  }
  const engine::CompiledTopology& topology() const { return *topology_; }

 private:
  metrics::Metrics metrics_;
  std::shared_ptr<const engine::CompiledTopology> topology_;
  std::unique_ptr<engine::LuaFunctions> lua_;
  std::shared_ptr<state::RocksDbEnv> env_;
  std::vector<std::unique_ptr<engine::Task>> tasks_;
  // Per topic: the task reading it (null: none), offsets, records sent.
  struct Topic {
    engine::Task* reader = nullptr;
    int64_t next_offset = 0;
    uint64_t sent = 0;
  };
  std::unordered_map<std::string, Topic> topics_;
  std::deque<Record> pending_;
  int64_t clock_ = 1764300000000;
};

void Report(benchmark::State& st, uint64_t commands, uint64_t events, uint64_t rejections,
            uint64_t dead_letters) {
  st.SetItemsProcessed(static_cast<int64_t>(commands));
  st.counters["events/cmd"] = static_cast<double>(events) / static_cast<double>(commands);
  st.counters["rejections/cmd"] =
      static_cast<double>(rejections) / static_cast<double>(commands);
  if (dead_letters > 0) st.SkipWithError("dead letters: the workload does not fit the rules");
}

void BM_WholeTask(benchmark::State& st, bool rocksdb) {
  const EngineOptions options = LoadOrdersTopology();
  std::unique_ptr<TempDir> dir;
  if (rocksdb) dir = std::make_unique<TempDir>();
  uint64_t commands = 0;
  {
    InProcessTasks tasks;
    Status s = tasks.Init(options, rocksdb ? dir->path() : "");
    if (!s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      return;
    }
    CommandSource source(st);
    for (auto _ : st) {
      s = tasks.Pipe(source.Next());
      if (s.ok() && ++commands % kCommitEvery == 0) s = tasks.Commit();
      if (!s.ok()) {
        st.SkipWithError(s.ToString().c_str());
        break;
      }
    }
    const AggregateSpec& order = tasks.topology().aggregates().at(0).spec;
    Report(st, commands, tasks.sent(order.event_topic), tasks.sent(order.rejection_topic),
           tasks.sent(tasks.topology().errors().dead_letter_topic));
  }
}

void BM_TopologyTestDriver(benchmark::State& st) {
  const EngineOptions options = LoadOrdersTopology();
  auto driver = testing::TopologyTestDriver::Create(options);
  if (!driver.ok()) {
    st.SkipWithError(driver.status().ToString().c_str());
    return;
  }
  // Every topic the driver writes, read now and then so that its output
  // queues stay small.
  auto compiled = engine::CompiledTopology::Compile(options);
  if (!compiled.ok()) std::abort();
  std::vector<std::string> outputs = {(*compiled)->errors().dead_letter_topic};
  for (const engine::SubTopology& sub : (*compiled)->subtopologies()) {
    for (const engine::Node& n : sub.nodes) {
      outputs.insert(outputs.end(), n.sinks.begin(), n.sinks.end());
    }
    for (const std::string& store : sub.stores) outputs.push_back((*compiled)->ChangelogTopic(store));
  }
  const std::string& events_topic = (*compiled)->aggregates().at(0).spec.event_topic;
  const std::string& rejections_topic = (*compiled)->aggregates().at(0).spec.rejection_topic;
  const std::string& dlq = (*compiled)->errors().dead_letter_topic;
  uint64_t commands = 0, events = 0, rejections = 0, dead = 0;
  auto drain = [&] {
    for (const std::string& t : outputs) {
      const size_t n = (*driver)->ReadOutput(t).size();
      if (t == events_topic) events += n;
      if (t == rejections_topic) rejections += n;
      if (t == dlq) dead += n;
    }
  };
  CommandSource source(st);
  for (auto _ : st) {
    const Command& c = source.Next();
    Status s = (*driver)->PipeInput(kCommandTopic, c.key, c.value);
    if (!s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      break;
    }
    if (++commands % 1000 == 0) drain();
  }
  drain();
  Report(st, commands, events, rejections, dead);
}

BENCHMARK_CAPTURE(BM_WholeTask, rocksdb, true)
    ->Iterations(CommandsPerRun())
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_WholeTask, memory, false)
    ->Iterations(CommandsPerRun())
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopologyTestDriver)->Iterations(CommandsPerRun())->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kcqrs::bench
