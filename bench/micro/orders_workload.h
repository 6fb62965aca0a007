// The orders workload of bench/WORKLOADS.md (section 2) for the micro
// benchmarks: the topology of bench/orders/topology.yaml and its commands,
// generated as the workload defines them.
#ifndef KCQRS_BENCH_MICRO_ORDERS_WORKLOAD_H_
#define KCQRS_BENCH_MICRO_ORDERS_WORKLOAD_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "kcqrs/options.h"
#include "kcqrs/testing/topology_test_driver.h"

namespace kcqrs::bench {

inline constexpr char kCommandTopic[] = "bench.orders.commands";

// bench/orders/topology.yaml with every ${VAR:-default} at its default,
// whatever the environment says. Aborts on error: a benchmark of a
// topology that does not load measures nothing.
inline EngineOptions LoadOrdersTopology() {
  config::LoadOptions load;
  load.getenv = [](const std::string&) { return std::optional<std::string>(); };
  auto options = config::LoadEngineOptionsFromFile(
      std::string(KCQRS_SOURCE_DIR) + "/bench/orders/topology.yaml", load);
  if (!options.ok()) {
    std::cerr << options.status().ToString() << "\n";
    std::abort();
  }
  return std::move(options).value();
}

inline uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct Command {
  std::string key;    // the order id
  std::string value;  // the command as JSON, fields in the workload's order
};

// Command `step` (0..9) of order `k`, as WORKLOADS.md defines it: a create,
// seven adjusts, then adjusts and cancels, with some creates rejected
// (quantity 0 for every 20th order) and some commands rejected for their
// order's state (adjusting an order that was never created, cancelling twice,
// creating again).
inline Command OrderCommand(int64_t k, int step) {
  char id[32];
  char product[16];
  char command_id[40];
  char value[256];
  std::snprintf(id, sizeof(id), "o-%06lld", static_cast<long long>(k));
  std::snprintf(product, sizeof(product), "p-%03lld", static_cast<long long>((k * 7919) % 1000));
  std::snprintf(command_id, sizeof(command_id), "c-%06lld-%d", static_cast<long long>(k), step);
  const uint64_t r = SplitMix64(static_cast<uint64_t>(k) * 16 + static_cast<uint64_t>(step));
  const int delta = static_cast<int>(r % 9) - 3;
  const auto quantity = static_cast<int>(1 + r % 10);
  const bool cancel = (step == 8 && k % 4 == 0) || (step == 9 && k % 2 == 0);
  const bool create = step == 0 || step == 9;
  if (cancel) {
    std::snprintf(value, sizeof(value),
                  R"({"type":"CancelOrder","orderId":"%s","commandId":"%s"})", id, command_id);
  } else if (create) {
    std::snprintf(value, sizeof(value),
                  R"({"type":"CreateOrder","orderId":"%s","product":"%s","quantity":%d,)"
                  R"("commandId":"%s"})",
                  id, product, step == 0 && k % 20 == 0 ? 0 : quantity, command_id);
  } else {
    std::snprintf(value, sizeof(value),
                  R"({"type":"AdjustQuantity","orderId":"%s","delta":%d,"commandId":"%s"})",
                  id, delta, command_id);
  }
  return Command{id, value};
}

// The commands of orders [first, first + count), step-major as the workload
// writes them: every order's step 0, then every order's step 1, and so on.
inline std::vector<Command> OrderCommands(int64_t first, int64_t count) {
  std::vector<Command> out;
  out.reserve(static_cast<size_t>(count) * 10);
  for (int step = 0; step < 10; ++step) {
    for (int64_t k = first; k < first + count; ++k) out.push_back(OrderCommand(k, step));
  }
  return out;
}

// The stored aggregate document of order 42 after its first eight
// commands, read from a test driver's store: exactly what kcqrs writes.
inline const std::string& StoredOrderAggregate() {
  static const std::string text = [] {
    auto driver = testing::TopologyTestDriver::Create(LoadOrdersTopology());
    if (!driver.ok()) {
      std::cerr << driver.status().ToString() << "\n";
      std::abort();
    }
    for (int step = 0; step < 8; ++step) {
      Command c = OrderCommand(42, step);
      if (!(*driver)->PipeInput(kCommandTopic, c.key, c.value).ok()) std::abort();
    }
    auto value = (*driver)->GetStore("order-aggregates")->Get(OrderCommand(42, 0).key);
    if (!value.ok() || !value->has_value()) std::abort();
    return **value;
  }();
  return text;
}

}  // namespace kcqrs::bench

#endif  // KCQRS_BENCH_MICRO_ORDERS_WORKLOAD_H_
