// Per-record cost of the expressions of declarative rules: what one
// require/emit/merge condition costs the stream thread for every record.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "decimal/decimal.h"
#include "topology/expression.h"

namespace kcqrs::topology {
namespace {

using json = kcqrs::Json;

const std::vector<std::string> kRoots = {"command", "state", "view"};

Expression MustCompile(const char* text) {
  Result<Expression> e = Expression::Compile(text, kRoots);
  if (!e.ok()) {
    std::cerr << text << ": " << e.status().ToString() << "\n";
    std::abort();
  }
  return *e;
}

struct Documents {
  json command = json::parse(R"({"orderId": "o-1", "product": "widget",
                                 "quantity": 3, "customer": {"name": "Ann"}})");
  json state;  // a fresh aggregate
  json view =
      json::parse(R"({"product": "widget", "orders": 41, "units": 120})");
  // With money, as it arrives from JSON text: exact decimals. Without, the
  // documents of the integer cases stay what they were before decimals, so
  // that their figures compare with earlier runs.
  explicit Documents(bool money = false) {
    if (!money) return;
    command["amount"] = decimal::FromText("12.50");
    view["balance"] = decimal::FromText("1000.25");
  }
  const json* roots[3] = {&command, &state, &view};
  Expression::Context ctx() const { return {roots, 3, 1700000000000}; }
};

void Evaluate(benchmark::State& st, const char* text, bool money = false) {
  Expression e = MustCompile(text);
  Documents d(money);
  for (auto _ : st) {
    Result<json> r = e.Evaluate(d.ctx());
    benchmark::DoNotOptimize(r);
  }
}

void EvaluateBool(benchmark::State& st, const char* text, bool money = false) {
  Expression e = MustCompile(text);
  Documents d(money);
  for (auto _ : st) {
    Result<bool> r = e.EvaluateBool(d.ctx());
    benchmark::DoNotOptimize(r);
  }
}

void RenderTemplate(benchmark::State& st, const char* text) {
  Result<Template> t = Template::Compile(text, kRoots);
  if (!t.ok()) std::abort();
  Documents d;
  for (auto _ : st) {
    Result<std::string> r = t->Render(d.ctx());
    benchmark::DoNotOptimize(r);
  }
}

void Compile(benchmark::State& st, const char* text) {
  for (auto _ : st) {
    Result<Expression> e = Expression::Compile(text, kRoots);
    benchmark::DoNotOptimize(e);
  }
}

BENCHMARK_CAPTURE(EvaluateBool, state_is_null, "state == null");
BENCHMARK_CAPTURE(EvaluateBool, quantity_and_exists,
                  "command.quantity > 0 && exists(command.product)");
BENCHMARK_CAPTURE(Evaluate, coalesce_plus_one, "coalesce(view.orders, 0) + 1");
BENCHMARK_CAPTURE(Evaluate, state_is_null, "state == null");
BENCHMARK_CAPTURE(Evaluate, quantity_and_exists,
                  "command.quantity > 0 && exists(command.product)");
BENCHMARK_CAPTURE(Evaluate, view_key_path, "command.product");
BENCHMARK_CAPTURE(Evaluate, in_literal_list,
                  "contains(['NEW', 'PAID'], view.status)");
// Decimals (decimal/): the money path, next to the integer one above.
BENCHMARK_CAPTURE(Evaluate, decimal_balance_plus_amount,
                  "coalesce(view.balance, 0) + command.amount", true);
BENCHMARK_CAPTURE(EvaluateBool, decimal_amount_checks,
                  "is_decimal(command.amount, 2) && between(command.amount, 0.01, 1000000)", true);
BENCHMARK_CAPTURE(EvaluateBool, decimal_compare, "view.balance - command.amount >= 0", true);
BENCHMARK_CAPTURE(EvaluateBool, integer_amount_checks,
                  "command.quantity > 0 && command.quantity <= 1000000");
BENCHMARK_CAPTURE(RenderTemplate, already_exists,
                  "order {command.orderId} already exists");
BENCHMARK_CAPTURE(Compile, quantity_and_exists,
                  "command.quantity > 0 && exists(command.product)");

}  // namespace
}  // namespace kcqrs::topology
