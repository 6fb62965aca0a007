// Why decimal/ uses libmpdec: the cost of the money path (two amounts read
// from their JSON text, added exactly, the sum written back as text) with
// libmpdec through decimal/, against Boost.Multiprecision's cpp_dec_float_50,
// the other decimal type among Debian 12's packages (it is a 50-digit
// floating decimal: it rounds silently and has no rounding modes, so it could
// only be a fallback).
#include <benchmark/benchmark.h>

#include <boost/multiprecision/cpp_dec_float.hpp>
#include <string>

#include "decimal/decimal.h"

namespace {

using json = kcqrs::Json;

void LibmpdecAdd(benchmark::State& st) {
  const json a = kcqrs::decimal::FromText("1234567.89");
  const json b = kcqrs::decimal::FromText("0.01");
  std::string out;
  for (auto _ : st) {
    json r;
    kcqrs::Status s = kcqrs::decimal::Add(a, b, &r);
    out.clear();
    kcqrs::decimal::AppendText(r, &out);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out);
  }
}

void LibmpdecMultiplyRound(benchmark::State& st) {
  const json a = kcqrs::decimal::FromText("1234567.89");
  const json b = kcqrs::decimal::FromText("0.035");
  std::string out;
  for (auto _ : st) {
    json p, r;
    kcqrs::Status s = kcqrs::decimal::Multiply(a, b, &p);
    s = kcqrs::decimal::Round(p, 2, kcqrs::decimal::Rounding::kHalfEven, &r);
    out.clear();
    kcqrs::decimal::AppendText(r, &out);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out);
  }
}

void CppDecFloatAdd(benchmark::State& st) {
  using Dec = boost::multiprecision::cpp_dec_float_50;
  const std::string a = "1234567.89", b = "0.01";
  for (auto _ : st) {
    Dec x(a), y(b);
    std::string out = Dec(x + y).str(0, std::ios_base::fixed);
    benchmark::DoNotOptimize(out);
  }
}

void CppDecFloatMultiply(benchmark::State& st) {
  using Dec = boost::multiprecision::cpp_dec_float_50;
  const std::string a = "1234567.89", b = "0.035";
  for (auto _ : st) {
    Dec x(a), y(b);
    std::string out = Dec(x * y).str(2, std::ios_base::fixed);  // rounds, mode unspecified
    benchmark::DoNotOptimize(out);
  }
}

BENCHMARK(LibmpdecAdd);
BENCHMARK(CppDecFloatAdd);
BENCHMARK(LibmpdecMultiplyRound);
BENCHMARK(CppDecFloatMultiply);

}  // namespace
