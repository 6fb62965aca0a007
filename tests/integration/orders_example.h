// The orders example, loaded for one integration test: its own application
// id, state directory and topic names on the shared test broker.
#ifndef KCQRS_TESTS_INTEGRATION_ORDERS_EXAMPLE_H_
#define KCQRS_TESTS_INTEGRATION_ORDERS_EXAMPLE_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "config/config_loader.h"
#include "json/document.h"
#include "tests/support/examples.h"
#include "kcqrs/options.h"

namespace kcqrs::testing {

struct OrdersNames {
  std::string app;
  std::string commands, events, rejections, dlq;
  std::string state_dir;
};

inline OrdersNames MakeOrdersNames(const std::string& unique) {
  OrdersNames n;
  n.app = unique;
  n.commands = unique + ".commands";
  n.events = unique + ".events";
  n.rejections = unique + ".rejections";
  n.dlq = unique + "-dlq";
  n.state_dir = (std::filesystem::temp_directory_path() / ("kcqrs-" + unique)).string();
  return n;
}

// `--set` overrides that give the example these names (also used to run the
// kcqrs binary).
inline std::vector<std::string> OrdersOverrides(const OrdersNames& n, const std::string& bootstrap) {
  return {
      "application.id=" + n.app,
      "application.state_dir=" + n.state_dir,
      "kafka.bootstrap_servers=" + bootstrap,
      "http.listen=127.0.0.1:0",
      "topics={" + n.commands + ": {partitions: 3}, " + n.events + ": {partitions: 3}, " +
          n.rejections + ": {partitions: 3}}",
      "aggregates.order.command_topics=[" + n.commands + "]",
      "aggregates.order.event_topic=" + n.events,
      "aggregates.order.rejection_topic=" + n.rejections,
      "projections.orders.event_topics=[" + n.events + "]",
      "projections.product_totals.event_topics=[" + n.events + "]",
  };
}

inline EngineOptions LoadOrders(const OrdersNames& n, const std::string& bootstrap) {
  return LoadExample("orders", OrdersOverrides(n, bootstrap));
}

inline std::string CreateOrder(const std::string& id, const std::string& product, int quantity,
                               const std::string& command_id) {
  return kcqrs::Json{{"type", "CreateOrder"}, {"orderId", id}, {"product", product},
                        {"quantity", quantity}, {"commandId", command_id}}
      .dump();
}

inline std::string CancelOrder(const std::string& id, const std::string& command_id) {
  return kcqrs::Json{{"type", "CancelOrder"}, {"orderId", id}, {"commandId", command_id}}
      .dump();
}

}  // namespace kcqrs::testing

#endif  // KCQRS_TESTS_INTEGRATION_ORDERS_EXAMPLE_H_
