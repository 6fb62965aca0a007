// Internal to topology/: the compiled form of an expression, shared by the
// parser (expression.cc) and the evaluator (expression_eval.cc).
//
// A Program is a flat array of nodes that refer to their children by index;
// constants, paths and argument lists live in side tables so that a Node
// stays 20 bytes and evaluation walks a small, contiguous array.
#ifndef KCQRS_TOPOLOGY_EXPRESSION_PROGRAM_H_
#define KCQRS_TOPOLOGY_EXPRESSION_PROGRAM_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "json/document.h"
#include "kcqrs/status.h"
#include "topology/expression.h"

namespace kcqrs::topology::internal {

enum class Op : uint8_t {
  kConst,  // constants[a]
  kPath,   // paths[a]: a root or a computed value, then static segments
  kIndex,  // node a indexed by the value of node b (a field name or index)
  kArray,  // an array of the values of args[a .. a+b)
  kNot,    // !a
  kNeg,    // -a
  kAnd,    // a && b
  kOr,     // a || b
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kCall,  // fn applied to args[a .. a+b)
};

enum class Fn : uint8_t {
  kNone,
  kExists,
  kCoalesce,
  kLen,
  kLower,
  kUpper,
  kString,
  kNumber,
  kContains,
  kStartsWith,
  kAbs,
  kMin,
  kMax,
  kNow,
  kIsNumber,
  kIsInteger,
  kIsDecimal,
  kIsString,
  kIsBoolean,
  kIsArray,
  kIsObject,
  kType,
  kBetween,
  kRound,
  kDiv,
};

struct Node {
  Op op = Op::kConst;
  Fn fn = Fn::kNone;
  uint32_t begin = 0;  // [begin, end) is this node's text in Program::text
  uint32_t end = 0;
  uint32_t a = 0;
  uint32_t b = 0;
};

// One step of a path: `.name`, `["name"]` or `[index]`.
struct Segment {
  std::string name;
  int64_t index = 0;
  bool is_index = false;
  uint32_t end = 0;  // text [path node begin, end) names the value after it
};

struct Path {
  bool from_root = true;
  uint32_t base = 0;      // the root index, or the node computing the base
  uint32_t base_end = 0;  // text [path node begin, base_end) names the base
  std::vector<Segment> segments;
};

struct Program {
  std::string text;
  std::vector<std::string> root_names;
  std::vector<Node> nodes;
  std::vector<kcqrs::Json> constants;
  std::vector<Path> paths;
  std::vector<uint32_t> args;
  std::vector<bool> uses_root;
  bool uses_now = false;
  uint32_t root = 0;  // the node of the whole expression

  std::string_view NodeText(uint32_t node) const {
    const Node& n = nodes[node];
    return std::string_view(text).substr(n.begin, n.end - n.begin);
  }
};

// Evaluation entry points (expression_eval.cc). None of them throws.
Status EvaluateToJson(const Program& program, const Expression::Context& ctx,
                      kcqrs::Json* out);
Status EvaluateToBool(const Program& program, const Expression::Context& ctx,
                      bool* out);
// Appends the value rendered as string() renders it.
Status EvaluateAppend(const Program& program, const Expression::Context& ctx,
                      std::string* out);

// "null", "a boolean", "a number", "a string", "an array", "an object".
std::string_view TypeName(const kcqrs::Json& value);

// JSON text of `value`, without throwing on invalid UTF-8 (replaced by
// U+FFFD).
void AppendCompactJson(const kcqrs::Json& value, std::string* out);

}  // namespace kcqrs::topology::internal

#endif  // KCQRS_TOPOLOGY_EXPRESSION_PROGRAM_H_
