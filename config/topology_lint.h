// Warnings about a topology that is valid but probably not what its author
// meant: an event type that a rule emits and nothing handles (no evolve of
// its aggregate, no projection of its event topic), and an event type that
// an evolve, a projection or a process manager handles and no rule of the
// topology emits (a typo on one side or the other); and, for process
// managers, a case after one that takes every event, a deadline started
// with no on_deadline, and an on_deadline no reaction can start. `kcqrs validate` prints them (and fails on
// them with --strict); `kcqrs run` logs the same lines at start.
//
// Lua decides are read for `type = "..."` literals; a decide that builds a
// type any other way makes its aggregate's types unknown, and nothing is
// said about what it might emit. A topic that something other than an
// aggregate writes (a transform, a C++ processor, a producer outside the
// topology) may carry any type, and one that a transform or a C++ processor
// reads has every type handled.
//
// Thread-safety: a pure function.
#ifndef KCQRS_CONFIG_TOPOLOGY_LINT_H_
#define KCQRS_CONFIG_TOPOLOGY_LINT_H_

#include <string>
#include <vector>

#include "kcqrs/topology_spec.h"

namespace kcqrs::config {

struct ConfigWarning {
  SourcePosition where;
  std::string message;

  std::string ToString() const;  // "file:line:col: warning: message"
};

// Every warning, in the order of the file.
std::vector<ConfigWarning> LintTopology(const TopologySpec& spec);

}  // namespace kcqrs::config

#endif  // KCQRS_CONFIG_TOPOLOGY_LINT_H_
