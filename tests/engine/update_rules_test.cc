// EvaluateFields: the fields of an emit, a set update, a transform or a
// process manager's send, evaluated into one object.
#include "engine/processors/update_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/codec/json_codec.h"
#include "topology/expression.h"

namespace kcqrs::engine {
namespace {

using json = kcqrs::Json;

CompiledFields Fields(const std::vector<std::pair<std::string, std::string>>& texts) {
  CompiledFields out;
  for (const auto& [name, text] : texts) {
    auto e = topology::Expression::Compile(text, {"command"});
    EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
    out.emplace_back(name, std::move(e).value());
  }
  return out;
}

// In key order whatever the declared order, and a field the object already
// has, or one named twice, takes the last value: as assignment one by one.
TEST(EvaluateFieldsTest, FieldsLandInKeyOrderAndTheLastValueOfANameWins) {
  const json command = json::parse(R"({"x":7,"who":"ann"})");
  const json* roots[] = {&command};
  const topology::Expression::Context ctx{roots, 1, 0};
  json out = json::object();
  out["type"] = "Created";
  out["m"] = 1;
  ASSERT_TRUE(EvaluateFields(Fields({{"z", "command.x + 1"},
                                     {"type", "'Renamed'"},
                                     {"a", "command.who"},
                                     {"z", "command.x * 2"}}),
                             ctx, "emit", &out)
                  .ok());
  EXPECT_EQ(DumpJson(out), R"({"a":"ann","m":1,"type":"Renamed","z":14})");
  EXPECT_EQ(out.find("z")->get<int64_t>(), 14);

  json fresh;  // null: a new object
  ASSERT_TRUE(EvaluateFields(Fields({{"b", "2"}, {"a", "1"}}), ctx, "set", &fresh).ok());
  EXPECT_EQ(DumpJson(fresh), R"({"a":1,"b":2})");
}

// A field that fails names itself and leaves the object as it was.
TEST(EvaluateFieldsTest, AFailingFieldLeavesTheObjectAsItWas) {
  const json command = json::parse(R"({"x":"text"})");
  const json* roots[] = {&command};
  const topology::Expression::Context ctx{roots, 1, 0};
  json out = json::object();
  out["type"] = "Created";
  Status s = EvaluateFields(Fields({{"a", "1"}, {"b", "command.x + 1"}, {"c", "3"}}), ctx,
                            "emit", &out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("emit.b"), std::string::npos) << s.message();
  EXPECT_EQ(DumpJson(out), R"({"type":"Created"})");

  json none;
  EXPECT_FALSE(EvaluateFields(Fields({{"a", "1"}, {"b", "command.x + 1"}}), ctx, "set", &none).ok());
  EXPECT_TRUE(none.is_null());

  json list = json::array();
  EXPECT_FALSE(EvaluateFields(Fields({{"a", "1"}}), ctx, "emit", &list).ok());
}

}  // namespace
}  // namespace kcqrs::engine
