#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "topology/expression.h"

namespace kcqrs::topology {
namespace {

using json = kcqrs::Json;
using ::testing::StartsWith;

const std::vector<std::string> kRoots = {"command", "state"};

const json kCommand = json::parse(R"({
  "orderId": "o-1", "quantity": 3, "price": 2.5, "tags": ["a", "b"],
  "flag": true, "customer": {"name": "Ann"}
})");

std::string Render(std::string_view text, const json& state = nullptr) {
  Result<Template> t = Template::Compile(text, kRoots);
  EXPECT_TRUE(t.ok()) << text << " -> " << t.status().ToString();
  if (!t.ok()) return "<compile error>";
  const json* roots[] = {&kCommand, &state};
  Result<std::string> r = t->Render({roots, 2, 0});
  EXPECT_TRUE(r.ok()) << text << " -> " << r.status().ToString();
  return r.ok() ? *r : "<error>";
}

std::string CompileError(std::string_view text) {
  Result<Template> t = Template::Compile(text, kRoots);
  EXPECT_FALSE(t.ok()) << text;
  if (t.ok()) return "<no error>";
  EXPECT_TRUE(t.status().IsInvalidArgument());
  return t.status().message();
}

TEST(TemplateTest, SubstitutesExpressions) {
  EXPECT_EQ(Render("order {command.orderId} already exists"),
            "order o-1 already exists");
  EXPECT_EQ(Render("{command.orderId}"), "o-1");
  EXPECT_EQ(Render("{command.quantity}x{command.orderId}!"), "3xo-1!");
  EXPECT_EQ(Render("{ command.quantity * 2 } items"), "6 items");
  EXPECT_EQ(Render("total {command.quantity * command.price}"), "total 7.5");
  EXPECT_EQ(Render("{upper(command.customer.name)}"), "ANN");
}

TEST(TemplateTest, RendersValuesAsString) {
  EXPECT_EQ(Render("{command.tags} {command.flag} {command.customer}"),
            R"(["a","b"] true {"name":"Ann"})");
  EXPECT_EQ(Render("{command.price} {1.0} {-4}"), "2.5 1.0 -4");
}

TEST(TemplateTest, MissingFieldsRenderAsNull) {
  EXPECT_EQ(Render("was {state.status}, is {command.missing.deeper}"),
            "was null, is null");
  EXPECT_EQ(Render("{state}"), "null");
  EXPECT_EQ(Render("{state.status}", json{{"status", "NEW"}}), "NEW");
}

TEST(TemplateTest, DoubledBracesAreLiteral) {
  EXPECT_EQ(Render("{{literal}}"), "{literal}");
  EXPECT_EQ(Render("{{{command.orderId}}}"), "{o-1}");
  EXPECT_EQ(Render("a }} b {{"), "a } b {");
  EXPECT_EQ(Render("{coalesce(state, '}')}"), "}");
  EXPECT_EQ(Render("{'{' + command.orderId + '}'}"), "{o-1}");
}

TEST(TemplateTest, PlainAndEmptyTexts) {
  EXPECT_EQ(Render(""), "");
  EXPECT_EQ(Render("no expressions here"), "no expressions here");
  Template empty;
  Result<std::string> r = empty.Render({});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "");
}

TEST(TemplateTest, ListsItsExpressions) {
  Result<Template> t =
      Template::Compile("order {command.orderId} x{ state.n + 1 }", kRoots);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::vector<Expression> exprs = t->expressions();
  ASSERT_EQ(exprs.size(), 2u);
  EXPECT_EQ(exprs[0].text(), "command.orderId");
  EXPECT_EQ(exprs[1].text(), "state.n + 1");
  EXPECT_EQ(t->text(), "order {command.orderId} x{ state.n + 1 }");
}

// Found by fuzz/expression_fuzzer: literal text that is not UTF-8 went into
// rejection reasons, where the engine's dump() threw (type_error 316).
TEST(TemplateTest, TextThatIsNotUtf8IsACompileErrorWithItsColumn) {
  EXPECT_EQ(CompileError("\x92\x8fll < 1"),
            "at column 1: expected UTF-8 text, found the byte 0x92");
  EXPECT_EQ(CompileError("order {command.orderId} caf\xC3"),
            "at column 28: expected UTF-8 text, found the byte 0xC3");
  EXPECT_EQ(Render("caf\xC3\xA9 {command.orderId}"), "caf\xC3\xA9 o-1");
}

TEST(TemplateTest, CompileErrorsHaveColumnsInTheTemplate) {
  EXPECT_EQ(CompileError("order {comand.orderId} exists"),
            "at column 8: unknown name 'comand' (did you mean 'command'?); "
            "names here: command, state");
  EXPECT_EQ(CompileError("a } b"),
            "at column 3: found a '}' that closes no '{'; write '}}' for a "
            "literal brace");
  EXPECT_EQ(CompileError("x {command.orderId"),
            "at column 19: expected '}' to close the '{' at column 3, found "
            "the end of the text");
  EXPECT_EQ(CompileError("x {command.orderId and"),
            "at column 23: expected an expression, found the end of the text");
  EXPECT_EQ(CompileError("x {}"),
            "at column 4: expected an expression between { and } (write '{{' "
            "for a literal brace), found '}'");
  EXPECT_EQ(CompileError("{1 +}"),
            "at column 5: expected an expression, found '}'");
  EXPECT_EQ(
      CompileError("{1 2}"),
      "at column 4: expected '}' to close the '{' at column 1, found '2'");
  EXPECT_THAT(CompileError("ok {len(1, 2)}"),
              StartsWith("at column 5: len() takes 1 argument"));
}

TEST(TemplateTest, RuntimeErrorsNameTheExpression) {
  Result<Template> t = Template::Compile("qty {command.quantity.x}", kRoots);
  ASSERT_TRUE(t.ok());
  const json state;
  const json* roots[] = {&kCommand, &state};
  Result<std::string> r = t->Render({roots, 2, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().message(),
            "cannot access field 'x' of a number (command.quantity)");
}

}  // namespace
}  // namespace kcqrs::topology
