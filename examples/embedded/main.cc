// examples/embedded: a C++ program that embeds the kcqrs engine with a
// processor of its own, using only the public API (include/kcqrs/). It is
// built against the installed package (find_package(kcqrs) or pkg-config),
// as docs/embedding.md shows.
//
//   kcqrs_embedded topology.yaml --test-driver   runs three page views
//       through the topology without Kafka (TopologyTestDriver) and prints
//       what came out
// Three processors: "counter" counts views and forwards the counts to its
// children "announcer" and "welcomer" (ProcessorContext::ForwardTo), which
// send them on, all in one task and one transaction.
//   kcqrs_embedded topology.yaml                 runs the engine until
//       Ctrl-C (bootstrap servers from the file; "embedded" starts an
//       in-process cluster)
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "kcqrs/engine.h"
#include "kcqrs/logging.h"
#include "kcqrs/processor.h"
#include "kcqrs/testing/topology_test_driver.h"
#include "kcqrs/topology_file.h"

namespace {

// Counts page views per user (the record key) in a store and forwards the
// count to its children (the processors that name it under `parents:`):
// every view to "announcer", a user's first view to "welcomer" too. Its
// store writes, and everything its children do, belong to the task's Kafka
// transaction.
class VisitCounter : public kcqrs::Processor {
 public:
  explicit VisitCounter(std::string store) : store_name_(std::move(store)) {}

  kcqrs::Status Init(kcqrs::ProcessorContext& context) override {
    store_ = context.GetStateStore(store_name_);
    if (store_ == nullptr) return kcqrs::Status::Internal("no store " + store_name_);
    return kcqrs::Status::OK();
  }

  kcqrs::Status Process(const kcqrs::Record& record,
                        kcqrs::ProcessorContext& context) override {
    if (!record.key) return kcqrs::Status::InvalidArgument("a page view needs a user as key");
    auto current = store_->Get(*record.key);
    if (!current.ok()) return current.status();
    int visits = current->has_value() ? std::stoi(**current) + 1 : 1;
    KCQRS_RETURN_IF_ERROR(store_->Put(*record.key, std::to_string(visits)));
    kcqrs::Record count = record;
    count.value = std::to_string(visits);
    if (visits == 1) KCQRS_RETURN_IF_ERROR(context.ForwardTo("welcomer", count));
    return context.ForwardTo("announcer", std::move(count));
  }

 private:
  std::string store_name_;
  kcqrs::KeyValueStore* store_ = nullptr;
};

// Sends what its parent forwards, formatted with `format` ("{user}" and
// "{visits}" replaced), to `output`.
class Announcer : public kcqrs::Processor {
 public:
  Announcer(std::string format, std::string output)
      : format_(std::move(format)), output_(std::move(output)) {}

  kcqrs::Status Process(const kcqrs::Record& record,
                        kcqrs::ProcessorContext& context) override {
    std::string text = format_;
    Replace(&text, "{user}", record.key.value_or(""));
    Replace(&text, "{visits}", record.value.value_or(""));
    return context.Send(output_, record.key, text);
  }

 private:
  static void Replace(std::string* text, std::string_view from, const std::string& to) {
    for (size_t at = text->find(from); at != std::string::npos; at = text->find(from, at)) {
      text->replace(at, from.size(), to);
      at += to.size();
    }
  }

  std::string format_;
  std::string output_;
};

int RunTestDriver(const kcqrs::EngineOptions& options) {
  auto driver = kcqrs::testing::TopologyTestDriver::Create(options);
  if (!driver.ok()) {
    std::cerr << driver.status().ToString() << "\n";
    return 1;
  }
  for (const char* user : {"ada", "bob", "ada"}) {
    auto piped = (*driver)->PipeInput("page.views", std::string(user), "/index.html");
    if (!piped.ok()) {
      std::cerr << piped.ToString() << "\n";
      return 1;
    }
  }
  for (const char* topic : {"page.welcomes", "page.visits"}) {
    for (const auto& record : (*driver)->ReadOutput(topic)) {
      std::cout << topic << ": " << record.value.value_or("") << "\n";
    }
  }
  auto ada = (*driver)->GetStore("visits")->Get("ada");
  std::cout << "store visits: ada=" << (ada.ok() && ada->has_value() ? **ada : "?") << "\n";
  return 0;
}

volatile std::sig_atomic_t stop_requested = 0;

int RunEngine(const kcqrs::EngineOptions& options) {
  // kcqrs's log lines through the host's logger (here: std::clog with a
  // prefix of our own) instead of its own stderr format.
  kcqrs::SetLogSink([](kcqrs::LogLevel level, std::string_view component,
                       std::string_view message) {
    static std::mutex mu;  // the engine logs from several threads
    std::lock_guard<std::mutex> lock(mu);
    std::clog << "[embedded] " << component << " " << kcqrs::LogLevelName(level) << ": "
              << message << "\n";
  });
  // Told of every state change instead of polling health().
  auto engine = kcqrs::Engine::Open(options, [](kcqrs::EngineState now, kcqrs::EngineState) {
    std::cout << "engine " << kcqrs::EngineStateName(now) << std::endl;
  });
  if (!engine.ok()) {
    std::cerr << engine.status().ToString() << "\n";
    return 1;
  }
  std::signal(SIGINT, [](int) { stop_requested = 1; });
  std::signal(SIGTERM, [](int) { stop_requested = 1; });
  std::cout << "running on " << (*engine)->bootstrap_servers() << ", HTTP at "
            << ((*engine)->http_address().empty() ? "(off)" : (*engine)->http_address())
            << "; Ctrl-C stops" << std::endl;
  while (!stop_requested && (*engine)->health().ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  (*engine)->Stop();
  auto health = (*engine)->health();
  if (!health.ok()) std::cerr << health.ToString() << "\n";
  return health.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " TOPOLOGY.yaml [--test-driver]\n";
    return 2;
  }
  // A factory that throws (std::out_of_range for a missing key here) makes
  // `kcqrs validate` and Engine::Open fail with the node's position.
  for (const auto& [name, factory] : std::map<std::string, kcqrs::ProcessorFactory>{
           {"visit-counter",
            [](const std::map<std::string, std::string>& config) {
              return std::make_unique<VisitCounter>(config.at("store"));
            }},
           {"announcer", [](const std::map<std::string, std::string>& config) {
              return std::make_unique<Announcer>(config.at("format"), config.at("output"));
            }}}) {
    auto registered = kcqrs::RegisterProcessor(name, factory);
    if (!registered.ok()) {
      std::cerr << registered.ToString() << "\n";
      return 1;
    }
  }
  // Errors say file:line:col, one per line.
  auto options = kcqrs::LoadTopologyFile(argv[1]);
  if (!options.ok()) {
    std::cerr << options.status().message() << "\n";
    return 1;
  }
  bool test_driver = argc > 2 && std::strcmp(argv[2], "--test-driver") == 0;
  return test_driver ? RunTestDriver(*options) : RunEngine(*options);
}
