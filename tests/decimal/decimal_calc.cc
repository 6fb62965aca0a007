// A command-line calculator over decimal/ for the differential test against
// Python's decimal module (decimal_oracle.py). Reads lines of
//   add|sub|mul|div|rem A B
//   round X SCALE MODE
//   divround A B SCALE MODE
//   neg|abs X
//   cmp A B
//   fits X SCALE
// and writes one line each: the result's JSON text, or "error: <message>".
#include <iostream>
#include <sstream>
#include <string>

#include "decimal/decimal.h"

namespace {

using json = kcqrs::Json;
namespace decimal = kcqrs::decimal;

json Number(const std::string& text) {
  auto n = decimal::FromString(text);
  if (!n.ok()) {
    std::cerr << "not a number: " << text << "\n";
    std::exit(2);
  }
  return std::move(n.value());
}

std::string Show(const kcqrs::Status& s, const json& r) {
  if (!s.ok()) return "error: " + s.message();
  std::string out;
  decimal::AppendText(r, &out);
  return out;
}

}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string op, a, b, scale, mode;
    in >> op >> a;
    json r;
    kcqrs::Status s;
    if (op == "round") {
      in >> scale >> mode;
      s = decimal::Round(Number(a), std::stoi(scale), *decimal::ParseRounding(mode), &r);
    } else if (op == "divround") {
      in >> b >> scale >> mode;
      s = decimal::DivideRounded(Number(a), Number(b), std::stoi(scale),
                                 *decimal::ParseRounding(mode), &r);
    } else if (op == "neg") {
      s = decimal::Negate(Number(a), &r);
    } else if (op == "abs") {
      s = decimal::Abs(Number(a), &r);
    } else if (op == "fits") {
      in >> scale;
      std::cout << (decimal::FitsScale(Number(a), std::stoi(scale)) ? "true" : "false") << "\n";
      continue;
    } else {
      in >> b;
      if (op == "cmp") {
        std::cout << decimal::Compare(Number(a), Number(b)) << "\n";
        continue;
      }
      if (op == "add") s = decimal::Add(Number(a), Number(b), &r);
      else if (op == "sub") s = decimal::Subtract(Number(a), Number(b), &r);
      else if (op == "mul") s = decimal::Multiply(Number(a), Number(b), &r);
      else if (op == "div") s = decimal::Divide(Number(a), Number(b), &r);
      else if (op == "rem") s = decimal::Remainder(Number(a), Number(b), &r);
      else {
        std::cerr << "unknown operation: " << op << "\n";
        return 2;
      }
    }
    std::cout << Show(s, r) << "\n";
  }
  return 0;
}
