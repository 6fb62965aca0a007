// The expression language of the YAML topology: the conditions and field
// values of declarative rules ("state == null", "coalesce(view.orders, 0) + 1")
// and the templates of human-readable text ("order {command.orderId} already
// exists"). The language is described for users in docs/expressions.md.
//
// An expression is compiled once, when the topology is loaded, into a compact
// tree; evaluating it per record does no parsing, no regex and no allocation
// beyond the values it computes. Paths such as `command.items[0].sku` are
// resolved to pointers into the caller's documents, never copied, except that
// Evaluate() returns its result by value.
//
// Nothing here throws: errors come back as Status::InvalidArgument.
#ifndef KCQRS_TOPOLOGY_EXPRESSION_H_
#define KCQRS_TOPOLOGY_EXPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "json/document.h"
#include "kcqrs/status.h"

namespace kcqrs::topology {

namespace internal {
struct Program;
}  // namespace internal

// A compiled expression.
//
// Ownership and thread-safety: an Expression is an immutable value. Copies
// share the compiled program (copying and moving cost a reference count at
// most), and const methods keep no caches, so one Expression may be evaluated
// from any number of threads at once without synchronization. A moved-from
// Expression may only be assigned to or destroyed.
class Expression {
 public:
  // The values of the root names for one evaluation. roots[i] is the value
  // of the i-th name given to Compile(); a null pointer means JSON null. The
  // documents must outlive the call; they are read, never copied or changed.
  struct Context {
    const kcqrs::Json* const* roots = nullptr;
    size_t num_roots = 0;
    int64_t now_ms = 0;  // what now() returns: the record timestamp, in ms
  };

  // The expression `null`. Exists so that Expression can be a member of a
  // struct that is filled in later; compiled expressions come from Compile().
  Expression();

  // Compiles `text`. `roots` are the names the expression may use, in the
  // order in which Context::roots supplies their values.
  //
  // Errors are Status::InvalidArgument whose message always starts with
  // "at column N: " (N is 1-based, in bytes, within `text`) followed by what
  // was expected and what was found, so that the caller can turn N into a
  // file:line:col of its own. (Only a root name that is not an identifier,
  // a bug of the caller, is reported without a column.)
  static Result<Expression> Compile(std::string_view text,
                                    const std::vector<std::string>& roots);

  // Evaluates the expression. Runtime errors (a type mismatch, an integer
  // overflow, a division by zero, ...) are Status::InvalidArgument whose
  // message ends with the failing sub-expression in parentheses:
  // "expected a boolean, found a number (command.quantity)".
  Result<kcqrs::Json> Evaluate(const Context& ctx) const;

  // As Evaluate(), for conditions: an error when the result is not a boolean.
  Result<bool> EvaluateBool(const Context& ctx) const;

  // The source text as given to Compile().
  const std::string& text() const;

  // When the whole expression is one path from a root ("event.product",
  // "command['order id'][0]"), that path in canonical form: fields that are
  // identifiers as `.name`, others as `["name"]`, indexes as `[N]`. Meant for
  // describe() and for recognising plain field copies.
  std::optional<std::string> SinglePath() const;

  // Whether the expression reads the root with this index (in the order
  // given to Compile()).
  bool UsesRoot(size_t index) const;

  // The top-level fields of the root with this index that the expression
  // reads, added to *fields ("event.items[0].sku" reads "items"). False
  // when it may read that root as a whole, or a field not known before it
  // runs: the root alone ("exists(event)"), an index into it ("event[0]"),
  // a computed field name ("event[command.field]"). Lets a producer send
  // only the fields its consumer's rules read.
  bool RootFields(size_t index, std::set<std::string>* fields) const;

  // Whether the expression calls now(), i.e. depends on the record time.
  bool UsesNow() const;

 private:
  friend class Template;
  explicit Expression(std::shared_ptr<const internal::Program> program);

  std::shared_ptr<const internal::Program> program_;  // null once moved from
};

// A text with embedded expressions: "order {command.orderId} already exists".
// `{expr}` is replaced by the value of expr, rendered as string() would
// (strings as they are, everything else as compact JSON, a missing field as
// "null"); `{{` and `}}` stand for literal braces.
//
// Ownership and thread-safety: as Expression, an immutable value that may be
// rendered from any number of threads at once.
class Template {
 public:
  Template() = default;  // the empty text

  // Errors as Expression::Compile(), with columns within `text`.
  static Result<Template> Compile(std::string_view text,
                                  const std::vector<std::string>& roots);

  Result<std::string> Render(const Expression::Context& ctx) const;

  const std::string& text() const { return text_; }

  // The embedded expressions, in order of appearance.
  std::vector<Expression> expressions() const;

 private:
  struct Part {
    std::string literal;  // text to copy; used when !expression
    std::optional<Expression> expression;
  };

  std::string text_;
  std::vector<Part> parts_;
};

}  // namespace kcqrs::topology

#endif  // KCQRS_TOPOLOGY_EXPRESSION_H_
