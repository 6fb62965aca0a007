// Store reads and writes through a task's transactional write buffer
// (state::TaskState) over RocksDB task storage in a temporary directory: what
// each processor's Get and Put cost the stream thread. Commits are part of
// the measured loop, one per kCommitEvery writes, as the engine commits once
// per commit interval, so their cost is spread over the writes they apply.
// The changelog sink only counts: producing to Kafka is not measured here.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench/micro/temp_dir.h"
#include "state/task_state.h"
#include "state/task_storage.h"

namespace kcqrs::bench {
namespace {

constexpr int kKeys = 100'000;
constexpr int kCommitEvery = 1000;
const std::string kStore = "order-aggregates";

class CountingSink final : public state::ChangelogSink {
 public:
  Status Append(const std::string&, std::string_view, std::optional<std::string_view>) override {
    ++appended_;
    return Status::OK();
  }

 private:
  uint64_t appended_ = 0;
};

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "o-%06d", i);
  return buf;
}

// About the size of an order's aggregate document in mid-life.
const std::string kValue(700, 'v');

// A task's state with kKeys keys committed to RocksDB.
struct Fixture {
  TempDir dir;
  CountingSink sink;
  std::unique_ptr<state::TaskState> state;
  KeyValueStore* store = nullptr;
  std::vector<std::string> keys;

  Fixture() {
    auto storage = state::TaskStorage::OpenRocksDb(dir.path() + "/0_0", {kStore}, nullptr);
    if (!storage.ok()) {
      std::cerr << storage.status().ToString() << "\n";
      std::abort();
    }
    state = std::make_unique<state::TaskState>(std::move(storage).value(), &sink);
    store = state->Store(kStore);
    for (int i = 0; i < kKeys; ++i) keys.push_back(Key(i));
    for (int i = 0; i < kKeys; ++i) {
      if (!store->Put(keys[static_cast<size_t>(i)], kValue).ok()) std::abort();
      if ((i + 1) % 10'000 == 0 &&
          (!state->FlushChangelog().ok() || !state->Commit(state::Checkpoint{}).ok())) {
        std::abort();
      }
    }
  }

  // Keys in a scattered order that visits each one once per kKeys calls.
  const std::string& NextKey() {
    next_ = (next_ + 7919) % kKeys;
    return keys[static_cast<size_t>(next_)];
  }

 private:
  int next_ = 0;
};

// One fixture for all: loading it costs more than a benchmark run. Each
// benchmark starts and ends with an empty write buffer.
Fixture& Shared() {
  static Fixture f;
  return f;
}

void Commit(benchmark::State& st, Fixture& f) {
  Status s = f.state->FlushChangelog();
  if (s.ok()) s = f.state->Commit(state::Checkpoint{});
  if (!s.ok()) st.SkipWithError(s.ToString().c_str());
}

void BM_StoreGetCommitted(benchmark::State& st) {
  Fixture& f = Shared();
  for (auto _ : st) {
    auto v = f.store->Get(f.NextKey());
    if (!v.ok() || !v->has_value()) {
      st.SkipWithError("missing key");
      break;
    }
    benchmark::DoNotOptimize(v);
  }
  Commit(st, f);
  st.SetItemsProcessed(st.iterations());
}

void BM_StoreGetBuffered(benchmark::State& st) {
  Fixture& f = Shared();
  // A write buffer as full as one commit interval of writes makes it.
  std::vector<std::string> buffered;
  for (int i = 0; i < kCommitEvery; ++i) {
    buffered.push_back(f.NextKey());
    if (!f.store->Put(buffered.back(), kValue).ok()) std::abort();
  }
  size_t i = 0;
  for (auto _ : st) {
    auto v = f.store->Get(buffered[i]);
    i = (i + 1) % buffered.size();
    benchmark::DoNotOptimize(v);
  }
  Commit(st, f);
  st.SetItemsProcessed(st.iterations());
}

void BM_StorePut(benchmark::State& st) {
  Fixture& f = Shared();
  int n = 0;
  for (auto _ : st) {
    Status s = f.store->Put(f.NextKey(), kValue);
    benchmark::DoNotOptimize(s);
    if (++n % kCommitEvery == 0) Commit(st, f);
  }
  Commit(st, f);
  st.SetItemsProcessed(st.iterations());
}

// The command handler's pattern: read the aggregate, write it back.
void BM_StoreGetPut(benchmark::State& st) {
  Fixture& f = Shared();
  int n = 0;
  for (auto _ : st) {
    const std::string& key = f.NextKey();
    auto v = f.store->Get(key);
    if (!v.ok() || !v->has_value()) {
      st.SkipWithError("missing key");
      break;
    }
    Status s = f.store->Put(key, **v);
    benchmark::DoNotOptimize(s);
    if (++n % kCommitEvery == 0) Commit(st, f);
  }
  Commit(st, f);
  st.SetItemsProcessed(st.iterations());
}

BENCHMARK(BM_StoreGetCommitted);
BENCHMARK(BM_StoreGetBuffered);
BENCHMARK(BM_StorePut);
BENCHMARK(BM_StoreGetPut);

}  // namespace
}  // namespace kcqrs::bench
