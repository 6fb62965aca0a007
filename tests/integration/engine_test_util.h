// Helpers for integration tests that run engines in-process.
#ifndef KCQRS_TESTS_INTEGRATION_ENGINE_TEST_UTIL_H_
#define KCQRS_TESTS_INTEGRATION_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/kafka/consumer.h"
#include "json/document.h"
#include "kcqrs/engine.h"
#include "tests/support/kafka_io.h"

namespace kcqrs::testing {

inline bool WaitFor(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

inline std::unique_ptr<Engine> OpenEngine(const EngineOptions& options) {
  auto engine = Engine::Open(options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

// command id -> number of outcomes (events and rejections) on the topics.
inline std::map<std::string, int> Outcomes(const std::string& bootstrap, const std::string& events,
                                           const std::string& rejections, size_t expected) {
  std::map<std::string, int> out;
  auto e = ReadCommitted(bootstrap, events, 0, std::chrono::seconds(30), std::chrono::seconds(3));
  auto r = ReadCommitted(bootstrap, rejections, 0, std::chrono::seconds(30),
                         std::chrono::seconds(3));
  for (const auto& rec : e) out[HeaderValue(rec, "kcqrs.command.id")]++;
  for (const auto& rec : r) out[kcqrs::Json::parse(*rec.value)["commandId"]]++;
  (void)expected;
  return out;
}

// Waits until `store` holds `key` in every engine-visible way.
inline bool StoreHas(const Engine& engine, const std::string& store, const std::string& key) {
  auto view = engine.GetStore(store);
  if (!view) return false;
  auto v = view->Get(key);
  return v.ok() && v->has_value();
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_INTEGRATION_ENGINE_TEST_UTIL_H_
