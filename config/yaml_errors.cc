#include "config/yaml_errors.h"

#include "util/edit_distance.h"

#include <algorithm>
#include <vector>

namespace kcqrs::config {

std::string ConfigError::ToString() const {
  std::string s = source;
  if (line > 0) {
    s += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  s += ": ";
  s += message;
  return s;
}

Diagnostics::Place Diagnostics::At(const YAML::Mark& mark) const {
  for (const Override& o : overrides_) {
    if (mark.line >= o.first_line && mark.line < o.end_line) return Place{o.source, 0, 0};
  }
  Place p{source_, 0, 0};
  // yaml-cpp marks are 0-based; a null mark (-1) has no position.
  if (mark.line >= 0) {
    p.line = mark.line + 1;
    p.column = mark.column + 1;
  }
  return p;
}

int Diagnostics::AddOverride(int first_line, int lines, std::string source) {
  overrides_.push_back(Override{first_line, first_line + lines, std::move(source)});
  return first_line + lines;
}

void Diagnostics::Error(const YAML::Mark& mark, std::string message) {
  Place p = At(mark);
  errors_.push_back(ConfigError{std::move(p.source), p.line, p.column, std::move(message)});
}

void Diagnostics::ErrorAt(std::string source, std::string message) {
  errors_.push_back(ConfigError{std::move(source), 0, 0, std::move(message)});
}

std::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Undefined: return "nothing";
  }
  return "nothing";
}

bool Diagnostics::ExpectMap(const YAML::Node& node, std::string_view where) {
  if (node.IsMap()) return true;
  Error(node.Mark(), std::string(where) + ": expected a map of keys, found " +
                         std::string(KindName(node)));
  return false;
}

bool Diagnostics::ExpectScalar(const YAML::Node& node, std::string_view where) {
  if (node.IsScalar()) return true;
  Error(node.Mark(), std::string(where) + ": expected a single value, found " +
                         std::string(KindName(node)));
  return false;
}

bool Diagnostics::ExpectSequence(const YAML::Node& node,
                                 std::string_view where) {
  if (node.IsSequence()) return true;
  Error(node.Mark(), std::string(where) + ": expected a list, found " +
                         std::string(KindName(node)));
  return false;
}

void Diagnostics::CheckKeys(const YAML::Node& map, std::string_view where,
                            std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
      continue;
    }
    std::string msg = "unknown key '" + key + "' in " + std::string(where);
    std::string hint = DidYouMean(key, allowed);
    if (!hint.empty()) {
      msg += " (did you mean '" + hint + "'?)";
    } else {
      msg += " (expected one of:";
      for (std::string_view a : allowed) {
        msg += " ";
        msg += a;
      }
      msg += ")";
    }
    // A key that a --set override added has no mark of its own; its value
    // says which override it was.
    Error(kv.first.Mark().line >= 0 ? kv.first.Mark() : kv.second.Mark(), std::move(msg));
  }
}

namespace {

using util::EditDistance;

}  // namespace

std::string DidYouMean(std::string_view word,
                       std::initializer_list<std::string_view> candidates) {
  std::string best;
  size_t best_distance = 0;
  for (std::string_view c : candidates) {
    size_t d = EditDistance(word, c);
    if (best.empty() || d < best_distance) {
      best = std::string(c);
      best_distance = d;
    }
  }
  // A third of the word's length catches transpositions and dropped letters
  // without suggesting unrelated keys.
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : std::string();
}

}  // namespace kcqrs::config
